"""Seed spread of the policy replay: how much of a cell is the draw of the stream.

The policy replay judges every target on ONE seeded draw of each stream. A regret share of
0.26 against a target of 0.25 says little until one knows how much the same policy's regret
moves when only the random draw changes. This module replays chosen streams with other seeds
(the same design: sizes, regimes, changes, models and spec; only the random rows differ) and
reports, per cell, the spread across draws: mean, standard error of the mean, range, and how
many draws meet the target; the baselines' cells beside ours for scale.

It does not replace the targets' verdicts, which stay judged on the benchmark's own seed
(draw 0 here is that draw, and reproduces the benchmark's figures exactly).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.optimum import COST_RATIOS, design_optimal_switches, path_cost, regret_share, schedule_serving
from benchmarks.replay import COSTLY_CHANGE, POLICIES, StreamResult, load_loop, ours_at, replay_stream
from benchmarks.report import MAX_DELAY, MAX_REGRET, QUALITY_SLACK, fmt
from benchmarks.streams import StreamDesign, make_stream, stream_designs

__all__ = ["design_with_seed", "draw_figures", "render_markdown", "replicate", "summarize"]

#: Policies (and the periodic reference) whose regret is shown beside ours@<ratio> in the spread table.
_CONTEXT = ("ours", "always", "always_if_better", "periodic")
#: Columns of the spread table beside ours@<ratio>: the context above and the design reference.
_COLUMNS = (*_CONTEXT, "design")


def design_with_seed(design: StreamDesign, draw: int) -> StreamDesign:
    """The same design, its ``draw``-th random draw (draw 0 = the benchmark's own seed)."""
    return dataclasses.replace(design, seed=design.seed + draw)


#: How an infinite regret share is stored (JSON has no inf): a policy that paid more than the
#: optimum when never retraining was optimal (``optimum.regret_share``); it misses the target.
INF = "inf"


def _num(x: float | None) -> float | str | None:
    if x is None or math.isnan(x):
        return None
    return INF if math.isinf(x) else float(x)


def _round(x: float) -> float:
    return round(x, 6) if math.isfinite(x) else x


def draw_figures(r: StreamResult, draw: int) -> dict:
    """The figures of one draw that the targets are judged on (JSON-ready)."""
    regret = {
        f"{ratio:g}": {p: _num(reg.get(p)) for p in (ours_at(ratio), *_CONTEXT) if p in reg}
        for ratio, reg in r.regret.items()
    }
    best = max(r.policies[p].served_quality for p in POLICIES if p != "ours")
    ours = r.policies["ours"]
    changes = [
        {
            "week": c["week"],
            "kind": c["kind"],
            "measured_cost": c["measured_cost"],
            "delay": delay,
            "judged": c["measured_cost"] is not None and c["measured_cost"] >= COSTLY_CHANGE,
        }
        for c, delay in zip(r.changes, ours.detection_delays, strict=True)
    ]
    return {
        "stream": r.stream,
        "draw": draw,
        "regret": regret,
        # What the design reference (:func:`design_regret`) needs of this draw.
        "matrix": {
            "start": r.start,
            # 6 decimals: far below any difference the schedules turn on, a fifth of the size.
            "quality": [[_num(_round(v)) for v in row] for row in r.quality],
            "extra": [[_num(_round(v)) for v in row] for row in r.extra_quality],
            "extra_weeks": list(r.extra_weeks),
            "optimum": {f"{ratio:g}": c["optimum"] for ratio, c in r.costs.items()},
            "never": {f"{ratio:g}": c["never"] for ratio, c in r.costs.items()},
        },
        "served": {"ours": ours.served_quality, "best_baseline": best, "gap": ours.served_quality - best},
        "changes": changes,
        "seconds": round(r.seconds, 1),
    }


def _spread(values: Sequence[float | str | None], met: Any) -> dict:
    """``n`` draws with a figure (an infinite one counts, as a miss); mean, se, min and max over
    the finite ones (``infinite`` says how many were left out of them)."""
    infinite = sum(1 for v in values if v == INF)
    xs = [float(v) for v in values if v is not None and v != INF]
    out: dict[str, Any] = {
        "n": len(xs) + infinite,
        "values": list(values),
        "met": sum(1 for v in xs if met(v)),
        "infinite": infinite,
    }
    if xs:
        out.update(mean=statistics.fmean(xs), min=min(xs), max=max(xs))
        out["se"] = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else None
    return out


def _matrix(rows: Sequence[Sequence[float | None]]) -> np.ndarray:
    return np.array([[math.nan if v is None else float(v) for v in row] for row in rows], dtype=float)


def design_regret(ds: Sequence[dict], ratio: str) -> list[float | str | None]:
    """Regret share, on each draw, of the schedule that is optimal on the OTHER draws (leave-one-out).

    A reference that knows the stream's design (when its changes come, how large they are,
    what a window of each size wins) as well as the other draws can show it, and nothing of
    this draw's own rows: the retrain weeks with the lowest total cost over the other draws
    (:func:`benchmarks.optimum.design_optimal_switches`), always promoted, scored on this draw
    against its own optimum and never-retrain cost. Where this reference misses the regret
    target too, what the optimum wins on that draw comes mostly from the draw's own noise (which
    weeks' models happened to fit the following weeks well); see ``benchmarks.optimum``. None
    when fewer than 2 draws, or when the matrices differ in shape or cold-start week.
    """
    if len(ds) < 2 or any("matrix" not in d for d in ds):
        return [None] * len(ds)
    mats = [_matrix(d["matrix"]["quality"]) for d in ds]
    starts = {d["matrix"]["start"] for d in ds}
    if len({m.shape for m in mats}) != 1 or len(starts) != 1:
        return [None] * len(ds)
    start = starts.pop()
    out: list[float | str | None] = []
    for k, d in enumerate(ds):
        m = d["matrix"]
        others = [mats[j] for j in range(len(ds)) if j != k]
        switches = design_optimal_switches(others, start, float(ratio))
        serving, retrains = schedule_serving(mats[k], start, switches)
        extra = _matrix(m["extra"]) if m["extra"] else None
        cost = path_cost(
            mats[k], start, serving, retrains, float(ratio), 0.5, extra, m["extra_weeks"] if extra is not None else None
        )
        opt, never = m["optimum"][ratio], m["never"][ratio]
        out.append(_num(0.0 if cost < opt - 1e-9 else regret_share(cost, opt, never)))
    return out


def summarize(draws: Sequence[dict]) -> dict:
    """Per stream and cell: the spread of each figure across the draws (pure)."""
    by_stream: dict[str, list[dict]] = {}
    for d in draws:
        by_stream.setdefault(d["stream"], []).append(d)
    for stream, ds in by_stream.items():
        numbers = [d["draw"] for d in ds]
        if len(set(numbers)) != len(numbers):
            # E.g. two merged runs that replayed the same draw: it would count twice.
            raise ValueError(
                f"stream {stream}: draw(s) {sorted({n for n in numbers if numbers.count(n) > 1})} given twice"
            )
    out: dict[str, dict] = {}
    for stream, ds in by_stream.items():
        ds = sorted(ds, key=lambda d: d["draw"])
        cells: dict[str, dict] = {}
        for ratio in ds[0]["regret"]:
            cells[ratio] = {
                p: _spread([d["regret"][ratio].get(p) for d in ds], lambda v: v <= MAX_REGRET)
                for p in ds[0]["regret"][ratio]
            }
            cells[ratio]["design"] = _spread(design_regret(ds, ratio), lambda v: v <= MAX_REGRET)
        served = _spread([d["served"]["gap"] for d in ds], lambda v: v >= -QUALITY_SLACK)
        delays = []
        for i, c in enumerate(ds[0]["changes"]):
            judged = [d["changes"][i] for d in ds if d["changes"][i]["judged"]]
            delays.append(
                {
                    "week": c["week"],
                    "kind": c["kind"],
                    "delays": [d["changes"][i]["delay"] for d in ds],
                    "judged_draws": len(judged),
                    "met": sum(1 for c_ in judged if c_["delay"] is not None and c_["delay"] <= MAX_DELAY),
                }
            )
        out[stream] = {"draws": [d["draw"] for d in ds], "regret": cells, "served_gap": served, "detection": delays}
    return out


def replicate(names: Sequence[str], draws: int, quick: bool = False, progress: bool = False, first: int = 0) -> dict:
    """Replay each named stream on draws ``first .. first + draws - 1``; every figure as a dict."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    t0 = time.perf_counter()
    designs = {d.name: d for d in stream_designs(quick)}
    unknown = [n for n in names if n not in designs]
    if unknown:
        raise ValueError(f"unknown stream(s) {unknown}; the streams are {sorted(designs)}")
    loop, loop_name = load_loop()
    figures = []
    for name in names:
        for draw in range(first, first + draws):
            r = replay_stream(make_stream(design_with_seed(designs[name], draw)), loop, loop_name)
            figures.append(draw_figures(r, draw))
            if progress:
                print(f"  {name} draw {draw}: {r.seconds:.0f} s", flush=True)
    return {
        "quick": quick,
        "streams": list(names),
        "draws": figures,
        "summary": summarize(figures),
        "cost_ratios": [f"{r:g}" for r in COST_RATIOS],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _cell(s: dict, digits: int = 2) -> str:
    if not s["n"]:
        return "n/a"
    if "mean" not in s:
        return f"inf x {s['infinite']}"
    inf = f"; {s['infinite']} inf" if s.get("infinite") else ""
    se = f" +/- {fmt(s['se'], digits)}" if s.get("se") is not None else ""
    return f"{fmt(s['mean'], digits)}{se} ({fmt(s['min'], digits)} to {fmt(s['max'], digits)}{inf})"


def _per_draw(values: Sequence[float | str | None]) -> str:
    return ", ".join(v if v == INF else fmt(v, 3, "n/a") for v in values)


def render_markdown(fig: dict) -> str:
    """The seed-spread tables (for docs/benchmarks.md)."""
    L = [
        "#### Seed spread (other draws of the same streams)",
        "",
        f"Generated by `python scripts/bench_policy.py --seeds N --streams ...`{' --quick' if fig['quick'] else ''} "
        f"in {fig['seconds']:.0f} s. Draw 0 is the benchmark's own draw; each draw adds 1 to the "
        "design's seed, nothing else changes. Cells: mean +/- standard error of the mean (min to max) "
        "over the draws (an infinite share, a policy that paid more when never retraining was "
        "optimal, is left out of them and counted as a miss), then how many draws meet the target "
        f"(regret share <= {MAX_REGRET:g}). "
        "The targets stay judged on draw 0.",
        "",
        "| stream | retrain cost | draws | ours@cost regret | meets | "
        + " | ".join(f"{p} regret" for p in _COLUMNS)
        + " | per draw (ours@cost) | per draw (design) |",
        "|---|---|---|---|---|" + "---|" * len(_COLUMNS) + "---|---|",
    ]
    for stream, s in fig["summary"].items():
        for ratio, cell in s["regret"].items():
            mine = cell[ours_at(float(ratio))]
            per = _per_draw(mine["values"])
            ctx = " | ".join(_cell(cell[p]) if p in cell else "-" for p in _COLUMNS)
            per_design = _per_draw(cell.get("design", {}).get("values") or []) or "-"
            L.append(
                f"| {stream} | {ratio} | {mine['n']} | {_cell(mine)} | {mine['met']}/{mine['n']} | {ctx} | {per} "
                f"| {per_design} |"
            )
    L += [
        "",
        f"Served quality of ours minus the best baseline (target >= -{QUALITY_SLACK:g}) and detection "
        f"delays of ours (target <= {MAX_DELAY} weeks for a change measured to cost >= {COSTLY_CHANGE:g}; "
        "a draw where the change cost less is not judged):",
        "",
        "| stream | served gap: mean +/- se (min to max) | meets | changes: delays per draw (judged draws meeting) |",
        "|---|---|---|---|",
    ]
    for stream, s in fig["summary"].items():
        g = s["served_gap"]
        det = (
            "; ".join(
                f"week {c['week']} {c['kind']}: {', '.join(fmt(x) for x in c['delays'])} "
                f"({c['met']}/{c['judged_draws']})"
                for c in s["detection"]
            )
            or "none"
        )
        L.append(f"| {stream} | {_cell(g, 4)} | {g['met']}/{g['n']} | {det} |")
    return "\n".join(L) + "\n"
