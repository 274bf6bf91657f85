"""Run the replay on every stream, check the targets and render Markdown tables.

Targets (a decision rule counts as good when all are met):

1. regret share <= 0.25 at every retrain-cost ratio on every stream, for "ours" configured with
   that ratio as its ``retrain_cost`` (``ours@<ratio>``: the cost is a property of the model the
   user states in its YAML; the optimum is computed for the same ratio);
2. served quality of "ours" within 0.005 of the best baseline on every stream;
3. on stationary stretches, "ours" retrains at least 50% less than "always retrain"
   (judged on every stream with at least 4 stationary decision weeks);
4. every change whose measured cost is >= 0.02 of the primary metric is detected within
   2 weeks of its onset (a champion put in office at or after the change's week, i.e. a
   model trained since or an earlier champion reinstated on post-change held-out rows, serves
   no more than 2 weeks after it); the delay from the week a gradual change first
   measurably costs 0.02 (``replay.change_clocks``) is reported beside it, as information;
5. "ours" is never unassessed or stuck.
"""

from __future__ import annotations

import math
import platform
import time
from typing import Any

from benchmarks.optimum import COST_RATIOS, period_text
from benchmarks.replay import COSTLY_CHANGE, POLICIES, StreamResult, load_loop, ours_at, replay_stream, retrain_values
from benchmarks.streams import make_stream, stream_designs

__all__ = ["TARGETS", "audit_cells", "evaluate_targets", "fmt", "render_markdown", "retrain_audit", "run"]

TARGETS = {
    "regret": "regret share of ours (retrain_cost stated = the ratio) <= 0.25 at every cost ratio on every stream",
    "served_quality": "served quality of ours within 0.005 of the best baseline on every stream",
    "stationary_retrains": ">= 50% fewer retrains than 'always retrain' on stationary stretches "
    "(streams with >= 4 stationary weeks)",
    "detection": "detection within 2 weeks of every change costing >= 0.02 (measured)",
    "never_stuck": "ours never unassessed or stuck",
}
MAX_REGRET = 0.25
QUALITY_SLACK = 0.005
STATIONARY_MIN_WEEKS = 4
MAX_STATIONARY_RATIO = 0.5
MAX_DELAY = 2


def fmt(x: Any, digits: int = 4, none: str = "never") -> str:
    """A figure for a Markdown cell: ``none`` for None (a delay never reached), n/a, inf."""
    if x is None:
        return none
    if isinstance(x, float):
        if math.isinf(x):
            return "inf"
        if math.isnan(x):
            return "n/a"
        return f"{x:.{digits}f}"
    return str(x)


def evaluate_targets(results: list[StreamResult]) -> dict[str, dict]:
    """Each target: met (bool) and the failing cases with their numbers."""
    out: dict[str, dict] = {}
    fails = []
    for r in results:
        for ratio, reg in r.regret.items():
            name = ours_at(ratio) if ours_at(ratio) in reg else "ours"
            if not reg[name] <= MAX_REGRET:
                fails.append(f"{r.stream} @ {ratio}: {fmt(reg[name], 2)}")
    out["regret"] = {"met": not fails, "failures": fails}

    fails = []
    for r in results:
        best = max(r.policies[p].served_quality for p in POLICIES if p != "ours")
        ours = r.policies["ours"].served_quality
        if not ours >= best - QUALITY_SLACK:
            fails.append(f"{r.stream}: ours {ours:.4f} vs best baseline {best:.4f} ({ours - best:+.4f})")
    out["served_quality"] = {"met": not fails, "failures": fails}

    fails, judged = [], []
    tot_ours = tot_always = 0
    for r in results:
        o, a = r.policies["ours"], r.policies["always"]
        tot_ours += o.stationary_retrains
        tot_always += a.stationary_retrains
        if o.stationary_weeks >= STATIONARY_MIN_WEEKS and a.stationary_retrains:
            ratio = o.stationary_retrains / a.stationary_retrains
            judged.append(r.stream)
            if ratio > MAX_STATIONARY_RATIO:
                fails.append(f"{r.stream}: {o.stationary_retrains}/{a.stationary_retrains} retrains ({ratio:.0%})")
    out["stationary_retrains"] = {
        # None = not judged (no stream has a long enough stationary stretch, e.g. --quick).
        "met": (not fails) if judged else None,
        "failures": fails,
        "judged_streams": judged,
        "pooled": f"{tot_ours}/{tot_always}",
    }

    fails = []
    for r in results:
        ours = r.policies["ours"]
        for c, delay, clocked in zip(r.changes, ours.detection_delays, ours.costly_delays, strict=True):
            cost = c["measured_cost"]
            if (
                cost is not None
                and not math.isnan(cost)
                and cost >= COSTLY_CHANGE
                and (delay is None or delay > MAX_DELAY)
            ):
                after = (
                    f"; {fmt(clocked)} from week {c.get('clock_week')}, when it first cost {COSTLY_CHANGE:g}"
                    if c.get("clock_week") != c["week"]
                    else ""
                )
                fails.append(f"{r.stream} week {c['week']} (cost {cost:.3f}): delay {fmt(delay)}{after}")
    out["detection"] = {"met": not fails, "failures": fails}

    fails = [
        f"{r.stream} {name}: {run_.unassessed_weeks} unassessed, {run_.stuck_weeks} stuck"
        for r in results
        for name, run_ in r.policies.items()
        if name.startswith("ours") and (run_.unassessed_weeks or run_.stuck_weeks)
    ]
    out["never_stuck"] = {"met": not fails, "failures": fails}
    return out


def _trigger_label(trigger: list[str] | tuple[str, ...]) -> str:
    return " + ".join(trigger) if trigger else "(none recorded)"


def retrain_audit(results: list[StreamResult], policies: list[tuple[str, float]] | None = None) -> list[dict]:
    """What a policy's retrains were worth, by the signals that asked for them.

    ``policies``: (policy, retrain cost) pairs, by default ``ours@<ratio>`` at each of
    ``COST_RATIOS``. Pooled over ``results`` (:func:`benchmarks.replay.retrain_values` per
    stream): per policy and trigger, the retrains, how many changed the champion, the mean
    value won and the median and total net of the cost (metric-weeks), and how many paid (net > 0).
    """
    pairs = policies if policies is not None else [(ours_at(r), r) for r in COST_RATIOS]
    out = []
    for policy, cost in pairs:
        groups: dict[str, list[dict]] = {}
        for r in results:
            if policy not in r.policies:
                continue
            for v in retrain_values(r, policy, cost):
                groups.setdefault(_trigger_label(v["trigger"]), []).append(v)
        for label, vs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            nets = sorted(v["net"] for v in vs)
            mid = len(nets) // 2
            out.append(
                {
                    "policy": policy,
                    "cost": cost,
                    "trigger": label,
                    "retrains": len(vs),
                    "changed": sum(v["changed"] for v in vs),
                    "mean_value": sum(v["value"] for v in vs) / len(vs),
                    "median_net": nets[mid] if len(nets) % 2 else (nets[mid - 1] + nets[mid]) / 2,
                    "total_net": sum(nets),
                    "paid": sum(n > 0 for n in nets),
                }
            )
    return out


def audit_cells(a: dict) -> str:
    """A :func:`retrain_audit` row's figures as Markdown cells, from its trigger on."""
    return (
        f"{a['trigger']} | {a['retrains']} | {a['changed']} | {a['mean_value']:+.4f} | "
        f"{a['median_net']:+.4f} | {a['total_net']:+.3f} | {a['paid']}/{a['retrains']} |"
    )


def run(quick: bool = False, progress: bool = False) -> dict:
    """Replay every stream; returns all figures (JSON-ready) plus the targets' verdicts."""
    t0 = time.perf_counter()
    loop, loop_name = load_loop()
    results: list[StreamResult] = []
    for design in stream_designs(quick):
        stream = make_stream(design)
        res = replay_stream(stream, loop, loop_name)  # single-threaded sklearn (see replay_stream)
        results.append(res)
        if progress:
            print(f"  {stream.name}: {res.seconds:.0f} s ({res.fit_seconds:.0f} s building models)", flush=True)
    targets = evaluate_targets(results)
    return {
        "quick": quick,
        "loop_module": loop_name,
        "cost_ratios": list(COST_RATIOS),
        "policies": list(POLICIES),
        "streams": [r.to_dict() for r in results],
        "targets": {k: {**v, "target": TARGETS[k]} for k, v in targets.items()},
        "all_met": all(v["met"] is not False for v in targets.values()),
        "retrain_audit": retrain_audit(results),
        "seconds": round(time.perf_counter() - t0, 1),
        "python": platform.python_version(),
        "_results": results,
    }


def render_markdown(fig: dict) -> str:
    results: list[StreamResult] = fig["_results"]
    L: list[str] = []
    L.append("## Policy replay benchmark" + (" (quick)" if fig["quick"] else ""))
    L.append("")
    L.append(
        f"Generated by `python scripts/bench_policy.py{' --quick' if fig['quick'] else ''}` in {fig['seconds']:.0f} s; "
        f"decisions by `{fig['loop_module']}` (assess -> build_challenger -> judge), models and "
        "spec defaults as shipped (HistGradientBoosting, max_iter 60, 4-week window, 2 held-out days)."
    )
    L.append("")
    L.append("### Targets")
    L.append("")
    L.append("| target | met | failing cases |")
    L.append("|---|---|---|")
    for key, t in fig["targets"].items():
        extra = (
            f" (pooled {t['pooled']}; judged: {', '.join(t['judged_streams']) or 'none'})"
            if key == "stationary_retrains"
            else ""
        )
        L.append(
            f"| {t['target']} | {'n/a' if t['met'] is None else 'yes' if t['met'] else '**no**'} | {'; '.join(t['failures']) or '-'}{extra} |"
        )
    L.append("")
    L.append("### Streams")
    L.append("")
    L.append("| stream | weeks | rows/week | first model (week) | changes: week kind (oracle cost / measured cost) |")
    L.append("|---|---|---|---|---|")
    for r in results:
        ch = (
            "; ".join(
                f"{c['week']} {c['kind']}: {c['description']} ({c['oracle_cost']:.3f} / {fmt(c['measured_cost'], 3)})"
                for c in r.changes
            )
            or "none"
        )
        L.append(f"| {r.stream} | {r.weeks} | {r.rows_per_week} | {r.start} | {ch} |")
    L.append("")
    L.append("### Served quality and decisions")
    L.append("")
    L.append(
        "Served quality: mean over weeks of the serving champion's ROC AUC on the week it serves. "
        "Delay: weeks from a change until the champion is one put in office at or after it (a model trained "
        "since, or an earlier champion reinstated on post-change held-out rows), counted from "
        "its onset and, in brackets where it differs, from the week a gradual change first measurably costs "
        f"{COSTLY_CHANGE:g} (information; the target counts from the onset). "
        "Stationary: retrains / decision weeks on stationary stretches."
    )
    L.append("")
    L.append(
        "| stream | policy | served quality | retrains | promotions | delay per change | unassessed | stuck | stationary |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for p in [*POLICIES[:1], *(k for k in r.policies if k.startswith("ours@")), *POLICIES[1:]]:
            run_ = r.policies[p]
            delays = (
                ", ".join(
                    fmt(d) if d == k else f"{fmt(d)} ({fmt(k)})"
                    for d, k in zip(run_.detection_delays, run_.costly_delays or run_.detection_delays, strict=True)
                )
                or "-"
            )
            L.append(
                f"| {r.stream} | {p} | {run_.served_quality:.4f} | {run_.retrains} | {run_.promotions} | {delays} | "
                f"{run_.unassessed_weeks} | {run_.stuck_weeks} | {run_.stationary_retrains}/{run_.stationary_weeks} |"
            )
    L.append("")
    L.append("### Cost and regret against the retrospective optimum")
    L.append("")
    L.append(
        "Cost = retrain cost x retrains + metric lost (best available that week - served), in metric-weeks. "
        "Regret share = (cost - optimum) / (never - optimum). ours@cost: the shipped rule with "
        "`drift.gate.retrain_cost` set to the row's ratio (rule `cost`); ours: the defaults, no cost stated. "
        "periodic (k): context, not a policy: retrain every k weeks and always promote, k the period with the "
        "lowest mean cost over its phases on this stream, never retraining included (hindsight of the period "
        "only, not of which weeks' models fit well; a rule that reacts to what it measures can beat it)."
    )
    L.append("")
    cols = ["ours@cost", *POLICIES]
    L.append(
        "| stream | retrain cost | optimum (retrains) | "
        + " | ".join(f"{p} cost (regret)" for p in cols)
        + " | periodic (k) cost (regret) |"
    )
    L.append("|---|---|---|" + "---|" * (len(cols) + 1))
    for r in results:
        for ratio in r.costs:
            c, g = r.costs[ratio], r.regret[ratio]
            names = [ours_at(ratio) if ours_at(ratio) in c else "ours", *POLICIES]
            cells = " | ".join(f"{c[p]:.3f} ({fmt(g[p], 2)})" for p in names)
            cells += f" | ({period_text(r.periodic_weeks[ratio])}) {c['periodic']:.3f} ({fmt(g['periodic'], 2)})"
            L.append(f"| {r.stream} | {ratio} | {c['optimum']:.3f} ({r.optimum_retrains[ratio]}) | {cells} |")
    audit = fig.get("retrain_audit") or retrain_audit(results)
    if audit:
        L.append("")
        L.append("### What each retrain was worth, by the signal that asked for it")
        L.append("")
        L.append(
            "`ours@<ratio>` on every stream, pooled. Value of a retrain = the sum, over the weeks the new "
            "champion then served, of its quality minus that of the champion it replaced, on the same weeks "
            "(0 when the champion stayed: the challenger rejected and no earlier champion reinstated); net = value "
            "- the retrain cost (metric-weeks). An "
            "attribution after the fact, not a replay without that retrain: later decisions depend on the path."
        )
        L.append("")
        L.append(
            "| retrain cost | signals that asked | retrains | champion changed | mean value | median net | total net | paid |"
        )
        L.append("|---|---|---|---|---|---|---|---|")
        for a in audit:
            L.append(f"| {a['cost']:g} | {audit_cells(a)}")
    notes = [f"{r.stream}: {n}" for r in results for n in (*r.notes, *r.cold_start_notes)]
    if notes:
        L.append("")
        L.append("### Notes")
        L.append("")
        L.extend(f"- {n}" for n in notes)
    L.append("")
    L.append("### Definitions")
    L.append("")
    L.append(
        "- Policies: `ours` = the product with the model YAML's defaults (no retrain cost stated: gate rule "
        "`any`, promotion policy `expected_gain`); `ours@<ratio>` = the same product with "
        '`drift.gate.retrain_cost: <ratio>` in the model YAML, so gate rule `cost` (README "How a run decides", *Retrain cost*). '
        "The regret target is judged on `ours@<ratio>` at its own ratio (a user who states what a retrain "
        "costs), the other targets on `ours`. Baselines: `never` (the cold-start model serves for ever), `always` "
        "(retrain every week and promote), `always_if_better` (retrain every week, promote when the point "
        "estimate on the held-out rows is better); `periodic (k)` retrains every k weeks and always promotes, "
        "with the k that costs least on that stream (hindsight of the period only: a reference, not a bound)."
    )
    L.append(
        "- Streams: `benchmarks/streams.py` (seeded, 8 numeric + 3 categorical features of unequal importance; "
        "oracle cost = Bayes scorer of the new regime minus the pre-change Bayes scorer, on post-change rows). "
        "Measured cost = mean of q[t-1][t] - q[c-1][t] over the 4 weeks starting max(window, ramp) weeks after the change. "
        "Clock of a gradual change (reported in brackets): the first week t of its ramp in which the best model "
        f"trained since the change, max over c <= s < t of q[s][t], leads q[c-1][t] by >= {COSTLY_CHANGE:g}, "
        "at the latest the ramp's end."
    )
    L.append(
        "- q[s][t] = ROC AUC on week t of the model trained at the end of week s on its whole window; best "
        "available = max over s < t. The optimum is a dynamic programme over retrain weeks "
        "(`benchmarks/optimum.py`). A model `ours` trained on the rows since a change of its champion's errors "
        "(`training.window_from_change`) is scored the same way on its own row and counts like the others: in "
        "the best available of a week and as a model the optimum may install when it retrains that week."
    )
    L.append(
        "- Retrain cost ratios 0.0025 / 0.01 / 0.04 metric-weeks: cheap unattended retrain / retrain with a "
        "reviewed report / expensive job with sign-off."
    )
    L.append("- Stationary decision week: no change (nor the cold start) in the preceding 2 x window weeks.")
    L.append(
        "- Unassessed: assess raised or had no usable signal. Stuck: a retrain was wanted but no challenger "
        "could be trained, or still no champion after the baselines had one."
    )
    return "\n".join(L) + "\n"
