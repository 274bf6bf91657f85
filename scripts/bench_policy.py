"""Policy replay benchmark: is the retrain/promote rule good on replayed weeks?

Usage: PYTHONPATH=. .venv/bin/python scripts/bench_policy.py [--quick] [--out FILE.md] [--json FILE.json]
       PYTHONPATH=. .venv/bin/python scripts/bench_policy.py --seeds N [--streams a,b] [--out ...] [--json ...]

Replays seeded synthetic streams with known change points one week at a time through the
product's own decision functions (``include.retrainer.loop``: assess -> build_challenger ->
judge) and three baselines (never retrain, always retrain and promote, always retrain and
promote if better), then compares every policy's cost with the retrospective optimum. Prints
the tables (Markdown) and whether each target is met; ``--out`` also writes them to a file
(for docs/benchmarks.md). ``run(quick)`` returns every figure as a dict.

``--seeds N`` instead replays the streams (all, or those named by ``--streams``) on N random
draws each (draw 0 = the benchmark's own) and prints how much each cell moves with the draw
(``benchmarks.seeds``): the targets' verdicts stay those of draw 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

# Before numpy/sklearn load: one OpenMP/BLAS thread. On a shared, busy machine HGB's OpenMP
# team spin-waits and runs many times slower (threadpool_limits alone did not prevent it here).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import render_markdown  # noqa: E402
from benchmarks.report import run as _run  # noqa: E402


def run(quick: bool = False) -> dict:
    """Every figure of the benchmark, with the StreamResult objects under ``_results``:
    :func:`markdown` renders from them (pop it before writing the figures as JSON)."""
    return _run(quick)


def markdown(fig: dict) -> str:
    """The report for docs/benchmarks.md (``scripts/bench.py``'s policy section)."""
    return render_markdown(fig)


def _numpy_scalar(value: object) -> object:
    """numpy integers and floats in the figures (week numbers, counts) as Python numbers."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 shorter streams (~2 minutes)")
    ap.add_argument("--out", type=Path, help="write the Markdown report here")
    ap.add_argument("--json", type=Path, help="write every figure as JSON here")
    ap.add_argument("--seeds", type=int, help="replay each stream on this many random draws (seed spread)")
    ap.add_argument("--streams", help="with --seeds: comma-separated stream names (default: all)")
    args = ap.parse_args(argv)
    if args.streams and not args.seeds:
        ap.error("--streams goes with --seeds")
    if args.seeds is not None:
        return _seed_spread(args)
    # sklearn/pandas chatter (e.g. feature-name warnings) would bury the tables.
    warnings.filterwarnings("ignore")
    print(f"replaying {'quick' if args.quick else 'full'} streams ...", flush=True)
    fig = _run(args.quick, progress=True)
    md = render_markdown(fig)
    print(md)
    if args.out:
        args.out.write_text(md, encoding="utf-8")
        print(f"wrote {args.out}")
    if args.json:
        fig.pop("_results", None)
        args.json.write_text(json.dumps(fig, indent=1, allow_nan=False, default=_numpy_scalar), encoding="utf-8")
        print(f"wrote {args.json}")
    print("all targets met" if fig["all_met"] else "targets NOT all met")
    return 0


def _seed_spread(args: argparse.Namespace) -> int:
    from benchmarks import seeds
    from benchmarks.streams import stream_designs

    warnings.filterwarnings("ignore")
    names = args.streams.split(",") if args.streams else [d.name for d in stream_designs(args.quick)]
    print(f"replaying {len(names)} stream(s) on {args.seeds} draw(s) each ...", flush=True)
    try:
        fig = seeds.replicate(names, args.seeds, quick=args.quick, progress=True)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    md = seeds.render_markdown(fig)
    print(md)
    if args.out:
        args.out.write_text(md, encoding="utf-8")
        print(f"wrote {args.out}")
    if args.json:
        args.json.write_text(json.dumps(fig, indent=1, allow_nan=False, default=_numpy_scalar), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
