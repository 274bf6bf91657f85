"""Drift statistics: ``detect_drift`` vs a per-column scipy loop (the scripts/bench_drift.py data).

Reference and current frames of ``rows`` rows x 20 numeric + 3 categorical columns (half the
numeric columns shifted), every row compared (``max_rows = rows``, no subsampling). The peer
is the obvious implementation: ``scipy.stats.ks_2samp`` per numeric column and
``scipy.stats.chi2_contingency`` on the 2 x K count table per categorical column. Times are
measured without tracing; peak Python-heap memory (numpy and pandas buffers included) in a
second, traced run of each. The statistics and p-values of both must agree.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
#: Relative tolerance for "identical statistics" (floating-point summation order only).
RTOL = 1e-9


def scipy_loop(reference: Any, current: Any, numeric: list[str], categorical: list[str]) -> dict[str, tuple[float, float]]:
    import numpy as np
    from scipy import stats

    out: dict[str, tuple[float, float]] = {}
    for col in numeric:
        res = stats.ks_2samp(reference[col].to_numpy(), current[col].to_numpy())
        out[col] = (float(res.statistic), float(res.pvalue))
    for col in categorical:
        ref_counts = reference[col].astype(object).value_counts(dropna=False)
        cur_counts = current[col].astype(object).value_counts(dropna=False)
        cats = sorted(set(ref_counts.index) | set(cur_counts.index), key=str)
        table = np.array([[ref_counts.get(c, 0) for c in cats], [cur_counts.get(c, 0) for c in cats]])
        table = table[:, table.sum(axis=0) > 0]
        chi2, p, _, _ = stats.chi2_contingency(table)
        out[col] = (float(chi2), float(p))
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def _peak_bytes(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run(quick: bool) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from include.retrainer.drift import DriftSettings, detect_drift
    from scripts.bench_drift import make_frame

    rows = 100_000 if quick else 1_000_000
    reference = make_frame(rows, 0.0, seed=1)
    current = make_frame(rows, 0.5, seed=2)
    numeric = [c for c in reference.columns if c.startswith("num_")]
    categorical = [c for c in reference.columns if c.startswith("cat_")]
    settings = DriftSettings(max_rows=rows)

    def ours() -> Any:
        return detect_drift(reference, current, numeric, categorical, settings)

    def peer() -> Any:
        return scipy_loop(reference, current, numeric, categorical)

    # Warm-up on a small slice: imports (scipy.stats, ...) are paid here, not in the timings.
    small = slice(0, 2_000)
    detect_drift(reference[small], current[small], numeric, categorical, DriftSettings(max_rows=2_000))
    scipy_loop(reference[small], current[small], numeric, categorical)

    t_ours, report = _timed(ours)
    print(f"  detect_drift: {t_ours:.2f} s", flush=True)
    t_peer, expected = _timed(peer)
    print(f"  scipy loop:   {t_peer:.2f} s", flush=True)
    mem_ours = _peak_bytes(ours)
    mem_peer = _peak_bytes(peer)

    worst = 0.0
    mismatches = []
    for col, (stat, p) in expected.items():
        got = report.features[col]
        for name, a, b in (("statistic", got.statistic, stat), ("p_value", got.p_value, p)):
            if a is None or b is None:
                if a is not b:
                    mismatches.append(f"{col}.{name}: {a} vs {b}")
                continue
            rel = abs(a - b) / max(abs(b), 1e-300)
            worst = max(worst, rel)
            if rel > RTOL and abs(a - b) > 1e-300:
                mismatches.append(f"{col}.{name}: {a!r} vs scipy {b!r}")
    fig = {
        "rows": rows, "numeric": len(numeric), "categorical": len(categorical),
        "ours_s": t_ours, "scipy_s": t_peer, "ours_peak_mb": mem_ours / 1e6, "scipy_peak_mb": mem_peer / 1e6,
        "identical": not mismatches, "worst_relative_difference": worst, "mismatches": mismatches[:5],
        "drifted": len(report.drifted),
    }
    print(f"  peak traced memory: detect_drift {fig['ours_peak_mb']:.0f} MB, scipy loop {fig['scipy_peak_mb']:.0f} MB; "
          f"identical statistics: {fig['identical']} (worst relative difference {worst:.1e})")
    return fig


def markdown(fig: dict[str, Any]) -> str:
    ratio = fig["scipy_s"] / fig["ours_s"]
    lines = [
        f"{fig['rows']:,} rows per side x {fig['numeric']} numeric + {fig['categorical']} categorical columns "
        "(data of `scripts/bench_drift.py`), every row compared (no subsampling). Peer: `scipy.stats.ks_2samp` "
        "per numeric column, `scipy.stats.chi2_contingency` per categorical column.",
        "",
        "| | time | peak traced memory |",
        "|---|---|---|",
        f"| `detect_drift` | {fig['ours_s']:.2f} s | {fig['ours_peak_mb']:.0f} MB |",
        f"| per-column scipy loop | {fig['scipy_s']:.2f} s | {fig['scipy_peak_mb']:.0f} MB |",
        "",
        f"Time ratio scipy loop / `detect_drift`: {ratio:.1f}x; statistics and p-values identical to scipy: "
        f"{'yes' if fig['identical'] else '**no**'} (worst relative difference {fig['worst_relative_difference']:.1e}, "
        f"tolerance {RTOL:g}); {fig['drifted']} features flagged as drifted.",
    ]
    if fig["mismatches"]:
        lines += ["", "Mismatches: " + "; ".join(fig["mismatches"])]
    return "\n".join(lines) + "\n"


def run_section(quick: bool) -> str:
    return markdown(run(quick))


if __name__ == "__main__":
    print(run_section("--quick" in sys.argv))
