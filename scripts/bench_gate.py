"""Monte Carlo calibration table of the data-drift signal: false alarms and power.

Usage: PYTHONPATH=. python scripts/bench_gate.py [--quick]

False alarms: stationary data, 8 features of one kind per call, every method
(numeric ks / psi / wasserstein on N(0,1) columns; categorical chi2 / psi on
columns with 2..50 uniform categories), n rows per side in
{100, 1k, 10k, 1M}.  Two rates are printed with their Monte Carlo standard
errors ``sqrt(r (1 - r) / reps)`` (with ``r = (hits + 1) / (reps + 2)``, so
that a rate of 0 or 1 still shows its resolution):

* ``any``: at least one feature drifted after Holm - the family-wise error
  rate, which bounds the gate's false-alarm rate for *any* importance weights
  and critical features (module docstring of drift.py);
* ``gate``: the data-drift verdict with equal weights (>= 20% of 8 features,
  i.e. 2 features).

Power: one numeric feature among 8 shifted by 0.1 / 0.25 / 0.5 sd at
1k / 10k / 1M rows per side, for each numeric method:

* (a) ``unweighted``: equal weights.  The gate needs 2 of 8 features, so a
  single shifted feature trips it only by chance - by design; the table also
  shows how often the feature itself is detected (``found``);
* (b) ``important``: the shifted feature carries 25% (>= 20%) of the
  importance, so detecting it trips the gate.

The same generated frames serve every method of a repetition, and the power
runs reuse the false-alarm frames with one column shifted.  ``run(quick)``
returns everything as a dict (for docs/benchmarks.md); ``--quick`` uses
fewer repetitions (about a minute).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from include.retrainer.config import DriftSpec
from include.retrainer.drift import detect_drift

ALPHA = 0.05
# Rows compared per side: above drift.max_rows' default (50k) so the 1M-row false-alarm and
# power figures measure the tests at a large subsample (the figures in docs/benchmarks.md).
MAX_ROWS = 200_000
N_FEATURES = 8
CARDINALITIES = (2, 3, 5, 10, 20, 50, 4, 8)
FALSE_ALARM_SIZES = (100, 1_000, 10_000, 1_000_000)
POWER_SIZES = (1_000, 10_000, 1_000_000)
SHIFTS_SD = (0.1, 0.25, 0.5)
NUMERIC_METHODS = ("ks", "psi", "wasserstein")
CATEGORICAL_METHODS = ("chi2", "psi")
IMPORTANT_SHARE = 0.25
# Repetitions per size: (false alarms, power).  Fewer at 1M rows (each call subsamples 1M -> 200k).
REPS_FULL = {100: (300, 0), 1_000: (200, 60), 10_000: (100, 40), 1_000_000: (12, 4)}
REPS_QUICK = {100: (40, 0), 1_000: (30, 12), 10_000: (12, 8), 1_000_000: (2, 1)}

NUMERIC = [f"x{j}" for j in range(N_FEATURES)]
CATEGORICAL = [f"c{j}" for j in range(N_FEATURES)]
SHIFTED = NUMERIC[0]
IMPORTANCE = {SHIFTED: IMPORTANT_SHARE} | {c: (1 - IMPORTANT_SHARE) / (N_FEATURES - 1) for c in NUMERIC[1:]}


def _numeric_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(rng.standard_normal((n, N_FEATURES)), columns=NUMERIC)


def _categorical_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({c: rng.integers(0, k, size=n) for c, k in zip(CATEGORICAL, CARDINALITIES)})


def _rate(hits: int, reps: int) -> dict[str, float]:
    """Rate and its Monte Carlo s.e.; the s.e. uses (hits + 1) / (reps + 2) so that 0 and 1 show their resolution."""
    if not reps:
        return {"rate": math.nan, "se": math.nan, "reps": 0}
    smoothed = (hits + 1) / (reps + 2)
    return {"rate": hits / reps, "se": math.sqrt(smoothed * (1 - smoothed) / reps), "reps": reps}


def run(quick: bool = False, log=print) -> dict[str, Any]:
    """Run the Monte Carlo study; returns {"false_alarms": ..., "power": ..., "settings": ...}."""
    reps_table = REPS_QUICK if quick else REPS_FULL
    false_alarms: dict[str, dict[str, Any]] = {}
    power: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for n in FALSE_ALARM_SIZES:
        fa_reps, power_reps = reps_table[n]
        rng = np.random.default_rng(np.random.SeedSequence([20261201, n]))
        fa_any = {f"numeric/{m}": 0 for m in NUMERIC_METHODS} | {f"categorical/{m}": 0 for m in CATEGORICAL_METHODS}
        fa_gate = dict.fromkeys(fa_any, 0)
        hits = {
            (m, s, scenario): 0
            for m in NUMERIC_METHODS
            for s in SHIFTS_SD
            for scenario in ("unweighted", "important", "found")
        }
        for r in range(fa_reps):
            ref, cur = _numeric_frame(rng, n), _numeric_frame(rng, n)
            for m in NUMERIC_METHODS:
                report = detect_drift(
                    ref, cur, NUMERIC, [], DriftSpec(numeric_method=m, alpha=ALPHA, seed=r, max_rows=MAX_ROWS)
                )
                fa_any[f"numeric/{m}"] += bool(report.drifted)
                fa_gate[f"numeric/{m}"] += report.gate
            if r < power_reps and n in POWER_SIZES:
                base = cur[SHIFTED].to_numpy()
                for s in SHIFTS_SD:
                    shifted = cur.assign(**{SHIFTED: base + s})
                    for m in NUMERIC_METHODS:
                        settings = DriftSpec(numeric_method=m, alpha=ALPHA, seed=r, max_rows=MAX_ROWS)
                        report = detect_drift(ref, shifted, NUMERIC, [], settings, importance=IMPORTANCE)
                        hits[(m, s, "important")] += report.gate
                        hits[(m, s, "found")] += SHIFTED in report.drifted
                        # Equal weights: the gate needs >= 20% of 8 features, i.e. 2 drifted features
                        # (same Holm decisions, only the weights differ).
                        hits[(m, s, "unweighted")] += len(report.drifted) / N_FEATURES >= 0.2
            del ref, cur
            cref, ccur = _categorical_frame(rng, n), _categorical_frame(rng, n)
            for m in CATEGORICAL_METHODS:
                report = detect_drift(
                    cref, ccur, [], CATEGORICAL, DriftSpec(categorical_method=m, alpha=ALPHA, seed=r, max_rows=MAX_ROWS)
                )
                fa_any[f"categorical/{m}"] += bool(report.drifted)
                fa_gate[f"categorical/{m}"] += report.gate
            del cref, ccur
        for key in fa_any:
            false_alarms.setdefault(key, {})[str(n)] = {
                "any": _rate(fa_any[key], fa_reps),
                "gate": _rate(fa_gate[key], fa_reps),
            }
        if n in POWER_SIZES and power_reps:
            for (m, s, scenario), h in hits.items():
                power.setdefault(m, {}).setdefault(str(n), {}).setdefault(str(s), {})[scenario] = _rate(h, power_reps)
        log(
            f"  n={n:,}: {fa_reps} false-alarm reps, {power_reps if n in POWER_SIZES else 0} power reps, "
            f"{time.perf_counter() - started:.0f} s elapsed",
            file=sys.stderr,
        )
    return {
        "settings": {
            "alpha": ALPHA,
            "features": N_FEATURES,
            "correction": "holm",
            "max_rows": MAX_ROWS,
            "null_resamples": DriftSpec().null_resamples,
            "null_max_rows": DriftSpec().null_max_rows,
            "important_share": IMPORTANT_SHARE,
            "quick": quick,
        },
        "false_alarms": false_alarms,
        "power": power,
        "seconds": time.perf_counter() - started,
    }


def _cell(entry: dict[str, float]) -> str:
    return f"{entry['rate']:.3f} ± {entry['se']:.3f}"


def format_tables(result: dict[str, Any]) -> str:
    lines = [
        f"False alarms on stationary data (alpha={ALPHA}, {N_FEATURES} features, Holm; rate ± MC s.e.)",
        "'any' = some feature drifted (bounds the gate for any weights); 'gate' = equal-weight verdict",
        "",
    ]
    header = f"{'method':<24}" + "".join(f"{'n=' + format(n, ','):>34}" for n in FALSE_ALARM_SIZES)
    lines.append(header)
    for key, by_n in result["false_alarms"].items():
        cells = []
        for n in FALSE_ALARM_SIZES:
            entry = by_n[str(n)]["any"]
            cells.append(f"{_cell(entry) + ' (' + str(entry['reps']) + ' reps)':>34}")
        lines.append(f"{key + ' any':<24}" + "".join(cells))
        lines.append(f"{key + ' gate':<24}" + "".join(f"{_cell(by_n[str(n)]['gate']):>34}" for n in FALSE_ALARM_SIZES))
    lines += [
        "",
        "Power, one feature of 8 shifted by s sd (gate verdict; 'found' = the feature itself drifted)",
        f"(a) unweighted: equal weights; (b) important: the feature has {IMPORTANT_SHARE:.0%} of the importance",
        "",
    ]
    lines.append(f"{'method':<14}{'n':>11}{'shift':>7}{'(a) unweighted':>22}{'found':>22}{'(b) important':>22}")
    for m, by_n in result["power"].items():
        for n, by_s in by_n.items():
            for s, cells in by_s.items():
                lines.append(
                    f"{m:<14}{int(n):>11,}{s:>7}{_cell(cells['unweighted']):>22}"
                    f"{_cell(cells['found']):>22}{_cell(cells['important']):>22}"
                )
    lines.append(f"\n{result['seconds']:.0f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    parser.add_argument("--json", metavar="PATH", help="also write the result dict as JSON")
    args = parser.parse_args()
    result = run(quick=args.quick)
    print(format_tables(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


def markdown(result: dict[str, Any]) -> str:
    """The tables for docs/benchmarks.md (``scripts/bench.py``'s gate section)."""
    return "```\n" + format_tables(result) + "\n```\n"


if __name__ == "__main__":
    main()
