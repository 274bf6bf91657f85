"""Time ``detect_drift`` on a large synthetic batch (no asserts; prints timings).

Usage: PYTHONPATH=. .venv/bin/python scripts/bench_drift.py [--rows 1000000] [--max-rows 50000] [--summary]

The reference and current frames both have ``--rows`` rows, 20 numeric and
3 categorical columns; half the numeric columns are shifted in the current
batch so the report has real work to describe.  With the default
``max_rows`` (``drift.max_rows``, what the pipeline uses) both frames are subsampled before testing; pass
``--max-rows`` equal to ``--rows`` to time the statistics on every row.  With
``--summary`` the reference is summarised once (timed) and every run compares
against the :class:`ReferenceSummary`, as the drift step does with a cached one.
The side-by-side comparison with scipy and Evidently is ``benchmarks/bench_drift.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from include.retrainer.config import DriftSpec
from include.retrainer.drift import detect_drift, summarize_reference


def make_frame(rows: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for j in range(20):
        loc = shift if j % 2 else 0.0
        data[f"num_{j:02d}"] = rng.normal(loc, 1.0 + 0.1 * j, size=rows)
    for j, k in enumerate((3, 12, 50)):
        data[f"cat_{j}"] = pd.Categorical(rng.integers(0, k, size=rows).astype(str))
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--max-rows", type=int, default=DriftSpec().max_rows)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--summary", action="store_true", help="compare against a ReferenceSummary made once")
    args = parser.parse_args()

    reference = make_frame(args.rows, 0.0, seed=1)
    current = make_frame(args.rows, 0.5, seed=2)
    numeric = [c for c in reference.columns if c.startswith("num_")]
    categorical = [c for c in reference.columns if c.startswith("cat_")]
    settings = DriftSpec(max_rows=args.max_rows)
    base: object = reference
    if args.summary:
        start = time.perf_counter()
        base = summarize_reference(reference, numeric, categorical, settings)
        print(f"summarize_reference: {time.perf_counter() - start:.2f} s")

    for i in range(args.repeat):
        start = time.perf_counter()
        report = detect_drift(base, current, numeric, categorical, settings)
        seconds = time.perf_counter() - start
        total_rows = len(reference) + len(current)
        print(
            f"run {i + 1}: {args.rows:,} rows x {len(numeric)} numeric + {len(categorical)} categorical "
            f"(max_rows={args.max_rows:,}): {seconds:.2f} s, {total_rows / seconds:,.0f} rows/s"
        )
    print(f"gate={report.gate} reason={report.reason}")


if __name__ == "__main__":
    main()
