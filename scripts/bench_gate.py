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

Weeks (the default in the DAG: ``drift.natural_variation``): the reference is
``WEEKS`` full weeks of n rows each, with their days, and the batch one more
week of n rows, n in {1k, 10k}.  Per method, the rate of "some feature drifted"
judged against the weeks and, on the same frames, by the plain tests:

* ``independent``: every week a sample of one distribution;
* ``varying``: every week's numeric means move by N(0, 0.1^2) sd and its
  category logits by N(0, 0.1^2): weeks that differ but do not drift (real
  weeks do), where the plain tests raise false alarms and the weeks do not;
* ``power``: independent weeks, the important feature of the batch shifted by
  0.25 sd (gate verdict with 25% of the importance).

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

from include.retrainer.config import PARTITION_COLUMN, DriftSpec
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
WEEKS = 4
WEEK_SIZES = (1_000, 10_000)
WEEK_SD = 0.1
# Repetitions per rows a week: (false alarms, power).
WEEK_REPS_FULL = {1_000: (80, 40), 10_000: (40, 30)}
WEEK_REPS_QUICK = {1_000: (10, 6), 10_000: (6, 4)}

NUMERIC = [f"x{j}" for j in range(N_FEATURES)]
CATEGORICAL = [f"c{j}" for j in range(N_FEATURES)]
SHIFTED = NUMERIC[0]
IMPORTANCE = {SHIFTED: IMPORTANT_SHARE} | {c: (1 - IMPORTANT_SHARE) / (N_FEATURES - 1) for c in NUMERIC[1:]}


def _numeric_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(rng.standard_normal((n, N_FEATURES)), columns=NUMERIC)


def _categorical_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({c: rng.integers(0, k, size=n) for c, k in zip(CATEGORICAL, CARDINALITIES)})


def _with_days(frame: pd.DataFrame, week: int, rng: np.random.Generator) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-05") + pd.Timedelta(days=7 * week)
    days = pd.date_range(start, periods=7).strftime("%Y-%m-%d").to_numpy()
    return frame.assign(**{PARTITION_COLUMN: days[rng.integers(0, 7, size=len(frame))]})


def _week(rng: np.random.Generator, n: int, week_sd: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One week of numeric and categorical rows; its means and category logits moved by week_sd."""
    numeric = pd.DataFrame(rng.standard_normal((n, N_FEATURES)) + rng.normal(0, week_sd, N_FEATURES), columns=NUMERIC)
    categorical = {}
    for c, k in zip(CATEGORICAL, CARDINALITIES):
        logits = rng.normal(0, week_sd, k)
        p = np.exp(logits) / np.exp(logits).sum()
        categorical[c] = rng.choice(k, size=n, p=p)
    return numeric, pd.DataFrame(categorical)


def _weeks_stream(rng, n: int, week_sd: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    weeks = [_week(rng, n, week_sd) for _ in range(WEEKS + 1)]
    ref_num = pd.concat([_with_days(w[0], i, rng) for i, w in enumerate(weeks[:-1])], ignore_index=True)
    ref_cat = pd.concat([_with_days(w[1], i, rng) for i, w in enumerate(weeks[:-1])], ignore_index=True)
    return ref_num, weeks[-1][0], ref_cat, weeks[-1][1]


def run_weeks(quick: bool = False, log=print) -> dict[str, Any]:
    """False alarms and power with references of ``WEEKS`` weeks, judged against their weeks and plainly."""
    reps_table = WEEK_REPS_QUICK if quick else WEEK_REPS_FULL
    methods = [f"numeric/{m}" for m in NUMERIC_METHODS] + [f"categorical/{m}" for m in CATEGORICAL_METHODS]
    out: dict[str, Any] = {}
    started = time.perf_counter()
    for n in WEEK_SIZES:
        fa_reps, power_reps = reps_table[n]
        rng = np.random.default_rng(np.random.SeedSequence([20261205, n]))
        hits = {
            (m, scenario, judged): 0
            for m in methods
            for scenario in ("independent", "varying")
            for judged in (True, False)
        }
        power = dict.fromkeys(NUMERIC_METHODS, 0)
        for r in range(fa_reps):
            for scenario, sd in (("independent", 0.0), ("varying", WEEK_SD)):
                ref_num, cur_num, ref_cat, cur_cat = _weeks_stream(rng, n, sd)
                for m in methods:
                    kind, method = m.split("/")
                    for judged in (True, False):
                        settings = DriftSpec(alpha=ALPHA, seed=r, natural_variation=judged).model_copy(
                            update={f"{kind}_method": method}
                        )
                        if kind == "numeric":
                            report = detect_drift(ref_num, cur_num, NUMERIC, [], settings)
                        else:
                            report = detect_drift(ref_cat, cur_cat, [], CATEGORICAL, settings)
                        hits[(m, scenario, judged)] += bool(report.drifted)
                if scenario == "independent" and r < power_reps:
                    shifted = cur_num.assign(**{SHIFTED: cur_num[SHIFTED] + 0.25})
                    for method in NUMERIC_METHODS:
                        settings = DriftSpec(numeric_method=method, alpha=ALPHA, seed=r)
                        power[method] += detect_drift(
                            ref_num, shifted, NUMERIC, [], settings, importance=IMPORTANCE
                        ).gate
        out[str(n)] = {
            "false_alarms": {
                m: {
                    scenario: {
                        "weeks": _rate(hits[(m, scenario, True)], fa_reps),
                        "plain": _rate(hits[(m, scenario, False)], fa_reps),
                    }
                    for scenario in ("independent", "varying")
                }
                for m in methods
            },
            "power_025": {m: _rate(h, power_reps) for m, h in power.items()},
        }
        log(f"  weeks, n={n:,} a week: {fa_reps} reps, {time.perf_counter() - started:.0f} s elapsed", file=sys.stderr)
    return out


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
        "weeks": run_weeks(quick, log),
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
    if "weeks" in result:
        lines += [
            "",
            f"References of {WEEKS} weeks with their days (n rows a week; the batch: one more week). Rate of 'some",
            "feature drifted' judged against the weeks (drift.natural_variation, the default) / by the plain tests;",
            f"'varying': each week's means move by N(0, {WEEK_SD}^2) sd and its category logits by N(0, {WEEK_SD}^2),",
            "weeks that differ but do not drift; power: independent weeks, the important feature shifted 0.25 sd",
            "",
            f"{'method':<22}{'n a week':>9}{'independent: weeks':>22}{'plain':>16}{'varying: weeks':>18}{'plain':>16}{'power 0.25 sd':>18}",
        ]
        for n, by in result["weeks"].items():
            for m, cells in by["false_alarms"].items():
                method = m.split("/")[1]
                pw = by["power_025"].get(method) if m.startswith("numeric/") else None
                lines.append(
                    f"{m:<22}{int(n):>9,}{_cell(cells['independent']['weeks']):>22}{_cell(cells['independent']['plain']):>16}"
                    f"{_cell(cells['varying']['weeks']):>18}{_cell(cells['varying']['plain']):>16}"
                    f"{(_cell(pw) if pw else ''):>18}"
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
