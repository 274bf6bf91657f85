"""Replay the retrain/promote policy on your own data: what would it have done, week by week?

Usage:
  .venv/bin/python scripts/replay_policy.py --data FILE [--spec MODEL.yaml] [options]
  make replay DATA=FILE [SPEC=include/models/<name>.yaml]

Cuts a CSV/TSV/Parquet file into the weekly batches the DAG would see (UTC days, Sunday-to-
Sunday weeks) and replays, one week at a time, the product's own decisions
(``include.retrainer.loop``: the drift gate, training, the comparison, reinstating an earlier
champion) with your model YAML, next to three baselines trained on the very same weeks: never
retrain, always retrain and promote, always retrain and promote when the point estimate is
better. Prints per policy the primary metric it served on each following week, its retrains
and promotions, and its total cost (retrain cost x retrains + the metric lost each week)
against the retrospective optimum (dynamic programming over retrain weeks, hindsight
included) at several retrain costs; then every week's decision of your YAML with its reasons.

Without ``--spec`` the YAML is the one ``make add-model`` would write for the file, its
training window chosen and its age limit measured on the replayed rows (``--no-window``,
``--no-staleness``: the defaults). Nothing is
uploaded or written except the optional ``--out``/``--json`` files; no stack is needed.
Validation (Great Expectations) is not replayed. Exit codes: 0 done, 2 bad input (one line
naming the problem).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

# Before numpy/sklearn load: one OpenMP/BLAS thread (see scripts/bench_policy.py: on a shared
# machine HGB's OpenMP team otherwise spin-waits and runs many times slower).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.optimum import COST_RATIOS, period_text  # noqa: E402

#: Characters of a week's reason printed on the terminal (the Markdown and JSON keep it whole).
REASON_CHARS = 220


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="replay_policy.py",
        description="Replay the retrain/promote policy on your own data, week by week, against baselines "
        "and the retrospective optimum.",
    )
    ap.add_argument("--data", required=True, help="CSV, TSV or Parquet file with a timestamp and a label column")
    ap.add_argument("--spec", help="model YAML to replay (default: the one make add-model would write for the file)")
    ap.add_argument("--name", help="model name when the YAML is inferred (default: from the file name)")
    ap.add_argument("--timestamp", help="timestamp column (default: the YAML's features.timestamp, or inferred)")
    ap.add_argument("--target", help="label column when the YAML is inferred (default: inferred)")
    ap.add_argument("--from", dest="first_day", metavar="YYYY-MM-DD", help="first day of rows to replay")
    ap.add_argument("--to", dest="last_day", metavar="YYYY-MM-DD", help="last day of rows to replay")
    ap.add_argument(
        "--cost",
        type=float,
        action="append",
        metavar="RATIO",
        help="retrain cost in metric-weeks to price every policy at (repeatable; default "
        f"{', '.join(f'{r:g}' for r in COST_RATIOS)}, plus the YAML's drift.gate.retrain_cost if it states one)",
    )
    ap.add_argument(
        "--no-staleness",
        action="store_true",
        help="with the inferred YAML: keep the default age limit instead of measuring staleness on the rows "
        "(as make add-model --no-staleness)",
    )
    ap.add_argument(
        "--no-window",
        action="store_true",
        help="with the inferred YAML: keep the default training window instead of choosing it on the rows "
        "(as make add-model --no-window)",
    )
    ap.add_argument("--out", type=Path, help="also write the report as Markdown here")
    ap.add_argument("--json", type=Path, help="also write every figure (each week's decision included) as JSON here")
    return ap


def _orient(value: float, metric: str) -> float:
    """The replay works in 'higher is better'; show a lower-is-better metric as itself."""
    from include.retrainer.compare import greater_is_better

    return value if greater_is_better(metric) or not math.isfinite(value) else -value


#: Below this many rows a week the report warns that the served figures are mostly noise.
SMALL_WEEK_ROWS = 200


def _fmt(x: Any, digits: int = 4) -> str:
    from benchmarks.report import fmt

    return fmt(x, digits, none="-")


def primary_metric(stream: Any) -> str:
    from include.retrainer.config import parse_spec

    return parse_spec(stream.spec, stream.spec_path or f"{stream.name}.yaml").comparison.primary_metric


def stating_advice(result: Any, ratios: list[float]) -> str:
    """Whether stating each retrain cost in the YAML would have cost less on this file, in numbers.

    The cost rule weighs what keeping the champion is expected to lose against what a retrain
    costs; without a stated cost the gate has no way to weigh fresh data that pays a little every
    week (docs/real-data.md), so the report says, per cost, what stating it would have changed.
    """
    from benchmarks.replay import ours_at

    better, not_better = [], []
    for r in ratios:
        mine, stated = result.costs[r]["ours"], result.costs[r][ours_at(r)]
        text = (
            f"{r:g}: {_fmt(stated, 3)} instead of {_fmt(mine, 3)} (regret {_fmt(result.regret[r][ours_at(r)], 2)} "
            f"instead of {_fmt(result.regret[r]['ours'], 2)})"
        )
        (better if stated < mine - 1e-9 else not_better).append(text)
    if not better:
        return "Stating the retrain cost would not have cost less on this file at " + "; ".join(not_better) + "."
    text = "Stating the retrain cost would have cost less on this file at " + "; ".join(better) + "."
    return text + (" It would not have at " + "; ".join(not_better) + "." if not_better else "")


def render(result: Any, stream: Any, notes: list[str], terminal: bool) -> str:
    """The report: policies, costs against the optimum, and the YAML's week-by-week decisions."""
    from benchmarks.replay import ours_at, retrain_values
    from benchmarks.report import audit_cells, retrain_audit
    from include.retrainer.compare import greater_is_better

    metric = primary_metric(stream)
    ratios = list(result.costs)
    lines = [f"## Policy replay: {stream.name}", "", f"Data: {stream.description}."]
    if stream.spec_path:
        lines.append(f"Model YAML: `{stream.spec_path}`.")
    lines += [f"- {n}" for n in (*notes, *result.notes)]
    first_model = stream.week_start(result.start)
    lines += [
        "",
        f"First model: week {result.start} (starting {first_model}); "
        + (
            "earlier weeks: " + "; ".join(result.cold_start_notes)
            if result.cold_start_notes
            else "the first week already had enough rows."
        ),
        f"Served {metric}: each week's champion scored on the week it serves (the week after its decision); "
        f"cost = retrain cost x retrains + the {metric} lost against the best model any policy could have "
        "served that week; regret share 0 = the optimum, 1 = no better than never retraining. Promotions: "
        "every change of champion, an earlier champion reinstated included (so they can outnumber retrains).",
    ]
    per_week = stream.rows_per_week
    if per_week < SMALL_WEEK_ROWS:
        # On a few rows a week every served figure is mostly noise; say how much before anyone reads it.
        lines.append(
            f"Weeks of ~{per_week:,} rows: a week's {metric} moves by at least about "
            f"+/-{0.5 / math.sqrt(max(per_week, 1)):.2f} (0.5/sqrt(rows); more for roc_auc with a rare class) on "
            "noise alone, and the optimum picks its models on that noise, so read the "
            "served figures, the regret and each retrain's worth as rough; a coarser period (or more rows "
            "a week) gives figures to decide on."
        )
    lines.append("")
    head = ["policy", f"served {metric}", "retrains", "promotions"] + [f"cost @{r:g} (regret)" for r in ratios]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = ["ours"] + [p for p in result.policies if p != "ours"]
    labels = {
        "ours": "ours (your YAML)",
        "never": "never retrain",
        "always": "always retrain and promote",
        "always_if_better": "always retrain, promote if better",
    }
    for p in names:
        run = result.policies[p]
        label = labels.get(p, p.replace("ours@", "ours with retrain_cost "))
        cells = [
            label,
            _fmt(_orient(run.served_quality, metric)),
            str(run.retrains),
            str(run.promotions),
        ]
        for r in ratios:
            cells.append(f"{_fmt(result.costs[r][p], 3)} ({_fmt(result.regret[r][p], 2)})")
        lines.append("| " + " | ".join(cells) + " |")
    opt = ["retrospective optimum", "", "", ""] + [
        f"{_fmt(result.costs[r]['optimum'], 3)} ({result.optimum_retrains[r]} retrains)" for r in ratios
    ]
    lines.append("| " + " | ".join(opt) + " |")
    periodic = ["retrain every k weeks (k best in hindsight)", "", "", ""] + [
        f"{_fmt(result.costs[r]['periodic'], 3)} ({_fmt(result.regret[r]['periodic'], 2)}; "
        f"k={period_text(result.periodic_weeks[r])})"
        for r in ratios
    ]
    lines.append("| " + " | ".join(periodic) + " |")
    stated = [r for r in ratios if ours_at(r) in result.policies]
    if stated:
        lines += [
            "",
            "`ours with retrain_cost R` = your YAML with `drift.gate.retrain_cost: R` and `rule: cost` (the gate "
            "then weighs the expected loss against that cost); its regret at R is the figure to read.",
        ]
        lines.append(stating_advice(result, stated))
    # Your YAML's own retrain cost when it states one (its net is then of that cost), else 0.
    own_cost = float(((stream.spec.get("drift") or {}).get("gate") or {}).get("retrain_cost") or 0.0)
    audit = retrain_audit([result], [("ours", own_cost), *((ours_at(r), r) for r in stated)])
    if audit:
        gained = (
            f"its {metric} minus that of the champion it replaced"
            if greater_is_better(metric)
            else f"the {metric} of the champion it replaced minus its own"
        )
        lines += [
            "",
            "What each retrain was worth, by the signals that asked for it: the sum, over the weeks the new "
            f"champion then served, of {gained} on the same weeks (positive = better; 0 when the champion "
            "stayed: the challenger rejected and no earlier champion reinstated), and that less the retrain "
            f"cost ({'your YAML states ' + format(own_cost, 'g') if own_cost else 'none stated for your YAML: 0'}). "
            "After the fact, not a replay without the retrain.",
            "",
            "| policy | signals that asked | retrains | champion changed | mean worth | median net of cost | total net | paid |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for a in audit:
            label = labels.get(a["policy"], a["policy"].replace("ours@", "ours with retrain_cost "))
            lines.append(f"| {label} | {audit_cells(a)}")
    worth = {v["week"]: v["value"] for v in retrain_values(result, "ours", 0.0)}
    lines += [
        "",
        "Week by week (your YAML; worth: what its retrain won, as above):",
        "",
        "| week | starts | rows | champion | retrained | promoted | worth | why |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")
    for rec in result.policies["ours"].records:
        why = " ".join(str(rec.reason).split())
        if terminal and len(why) > REASON_CHARS:
            why = why[: REASON_CHARS - 3] + "..."
        why = why.replace("|", "\\|")  # the reasons' separators inside a Markdown cell
        champ = result.model_label(rec.champion_after)
        if rec.champion_after != rec.champion_before and rec.champion_before is not None:
            champ = f"{result.model_label(rec.champion_before)} -> {champ}"
        lines.append(
            f"| {rec.week} | {stream.week_start(rec.week)} | {len(stream.frames[rec.week]):,} | {champ} | "
            f"{'yes' if rec.retrained else ''} | {'yes' if rec.promoted else ''} | "
            f"{f'{worth[rec.week]:+.4f}' if rec.week in worth else ''} | {rec.status}: {why} |"
        )
    final = stream.weeks - 1
    lines += [
        "",
        f"Week {final} (starting {stream.week_start(final)}, the last of your data) has no row in the table "
        "above: a decision at its end would serve a week beyond the data. It is the last week served in the "
        "figures above.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from benchmarks.replay import load_loop, replay_stream
    from benchmarks.user_data import UserDataError, load_user_stream

    t0 = time.perf_counter()
    try:
        stream, notes = load_user_stream(
            args.data,
            args.spec,
            name=args.name,
            timestamp=args.timestamp,
            target=args.target,
            first_day=args.first_day,
            last_day=args.last_day,
            staleness=not args.no_staleness,
            window=not args.no_window,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except UserDataError as exc:
        print(f"replay_policy: {exc}", file=sys.stderr)
        return 2
    ratios = list(args.cost or COST_RATIOS)
    stated = ((stream.spec.get("drift") or {}).get("gate") or {}).get("retrain_cost")
    if stated is not None and float(stated) not in ratios:
        ratios.append(float(stated))
    bad = [r for r in ratios if not r >= 0]
    if bad:
        print(f"replay_policy: --cost must be >= 0 (got {', '.join(map(str, bad))})", file=sys.stderr)
        return 2
    print(
        f"replaying {stream.name}: {stream.weeks} weeks, ~{stream.rows_per_week:,} rows a week, "
        f"{len(ratios)} retrain cost(s) ...",
        file=sys.stderr,
        flush=True,
    )
    loop, loop_name = load_loop()
    try:
        result = replay_stream(
            stream, loop, loop_name, cost_ratios=ratios, progress=lambda line: print(line, file=sys.stderr, flush=True)
        )
    except RuntimeError as exc:  # no model could be trained in any week
        print(f"replay_policy: {exc}", file=sys.stderr)
        return 2
    print(render(result, stream, notes, terminal=True))
    print(f"({time.perf_counter() - t0:.0f} s; {result.fit_seconds:.0f} s training models)", file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render(result, stream, notes, terminal=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        fig = result.to_dict()
        fig["notes"] = [*notes, *fig.get("notes", [])]
        fig["week_starts"] = [stream.week_start(w).isoformat() for w in range(stream.weeks)]
        fig["primary_metric"] = primary_metric(stream)
        fig["quality_orientation"] = "higher is better (a lower-is-better metric is negated)"
        args.json.write_text(json.dumps(fig, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
