"""Tests for include/retrainer/gate.py.

Oracles: scipy.stats.ks_2samp for prediction drift, scipy.stats.norm for the
performance z test (computed here from the formula, not through the module),
and Monte Carlo simulations with known truth for the error rates.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from include.retrainer.drift import detect_drift
from include.retrainer.gate import (
    GateDecision,
    SignalResult,
    age_signal,
    allocate_alpha,
    combine_signals,
    data_drift_signal,
    performance_decay_signal,
    prediction_drift_signal,
)
from tests.drift_spec_helper import drift_spec


def frames(n: int, k: int, seed: int, shift: dict[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(k)})
    cur = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(k)})
    for col, delta in (shift or {}).items():
        cur[col] += delta
    return ref, cur


# --------------------------------------------------------------------------------------
# allocate_alpha
# --------------------------------------------------------------------------------------


def test_allocate_alpha_bonferroni_over_pvalue_signals_only():
    got = allocate_alpha(0.06, ["data_drift", "performance_decay", "age", "prediction_drift"])
    assert got == pytest.approx({"data_drift": 0.02, "prediction_drift": 0.02, "performance_decay": 0.02})
    assert sum(got.values()) == pytest.approx(0.06)
    assert allocate_alpha(0.05, {"data_drift": True, "prediction_drift": False, "age": True}) == {"data_drift": 0.05}
    assert allocate_alpha(0.05, ["age"]) == {}
    with pytest.raises(ValueError, match="'weather'"):
        allocate_alpha(0.05, ["data_drift", "weather"])
    with pytest.raises(ValueError, match="alpha"):
        allocate_alpha(1.0, ["data_drift"])
    with pytest.raises(ValueError, match="single string"):
        allocate_alpha(0.05, "data_drift")


# --------------------------------------------------------------------------------------
# prediction drift
# --------------------------------------------------------------------------------------


def test_prediction_drift_binary_equals_scipy_ks():
    rng = np.random.default_rng(1)
    ref = rng.beta(2, 5, size=400)
    cur = rng.beta(2.6, 5, size=300)
    sig = prediction_drift_signal(ref, cur, alpha=0.05)
    res = stats.ks_2samp(ref, cur)
    assert sig.statistic == pytest.approx(res.statistic, abs=1e-12)
    assert sig.p_value == pytest.approx(res.pvalue, rel=1e-9, abs=1e-12)
    assert sig.status == ("fired" if res.pvalue < 0.05 else "quiet")
    quiet = prediction_drift_signal(ref, rng.beta(2, 5, size=300), alpha=0.001)
    assert quiet.status == "quiet"
    json.dumps(sig.to_dict(), allow_nan=False)


def test_prediction_drift_multiclass_bonferroni_over_columns():
    rng = np.random.default_rng(2)
    ref = rng.dirichlet([3, 2, 1], size=500)
    cur = rng.dirichlet([3, 2, 1.6], size=450)
    sig = prediction_drift_signal(ref, cur, alpha=0.05)
    raw = [stats.ks_2samp(ref[:, j], cur[:, j]).pvalue for j in range(3)]
    expected = min(1.0, 3 * min(raw))
    assert sig.p_value == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert sig.details["p_values"] == pytest.approx(raw, rel=1e-9, abs=1e-15)
    assert sig.statistic == pytest.approx(max(stats.ks_2samp(ref[:, j], cur[:, j]).statistic for j in range(3)))
    assert "Bonferroni over 3" in sig.summary


def test_prediction_drift_nan_and_small_samples_are_named_not_crashes():
    rng = np.random.default_rng(3)
    ref = rng.random(200)
    cur = rng.random(150)
    cur[[3, 9, 27]] = np.nan
    sig = prediction_drift_signal(ref, cur, alpha=0.05)
    assert sig.status == "insufficient"
    assert sig.details["error"] == "non_finite_scores" and sig.details["non_finite_current"] == 3
    assert "3 current rows" in sig.summary
    small = prediction_drift_signal(ref, rng.random(20), alpha=0.05)
    assert small.status == "insufficient" and small.details["error"] == "too_few_rows"
    assert "min_rows=30" in small.summary
    json.dumps(sig.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="class columns"):
        prediction_drift_signal(rng.random((50, 3)), rng.random((50, 2)), alpha=0.05)


def test_prediction_drift_false_alarm_rate_is_at_most_alpha():
    """Stationary scores, 400 repetitions as columns of one KS call through the signal's own code path."""
    rng = np.random.default_rng(4)
    fired = 0
    reps = 400
    for _ in range(reps):
        sig = prediction_drift_signal(rng.random(60), rng.random(45), alpha=0.05)
        fired += sig.status == "fired"
    rate = fired / reps
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


# --------------------------------------------------------------------------------------
# performance decay
# --------------------------------------------------------------------------------------


def test_performance_decay_z_test_against_formula():
    sig = performance_decay_signal(0.842, 0.010, 0.801, 0.012, greater_is_better=True, alpha=0.05, metric="roc_auc")
    se = math.sqrt(0.010**2 + 0.012**2)
    drop = 0.842 - 0.801
    assert sig.statistic == pytest.approx(drop)
    assert sig.p_value == pytest.approx(stats.norm.sf(drop / se), rel=1e-12)
    assert sig.status == "fired"
    z = stats.norm.ppf(0.95)
    assert sig.details["ci_low"] == pytest.approx(drop - z * se)
    assert sig.details["ci_high"] == pytest.approx(drop + z * se)
    assert sig.details["ci_level"] == pytest.approx(0.9)
    assert sig.summary.startswith("roc_auc 0.842 -> 0.801, drop 0.041 > 0, p=")
    assert sig.summary.endswith(" < 0.05")
    # A positive drop within its noise says so (not "drop 0.010 not > 0").
    within = performance_decay_signal(0.842, 0.010, 0.832, 0.012, True, 0.05, metric="roc_auc")
    assert within.status == "quiet" and within.p_value > 0.05
    assert within.summary == f"roc_auc 0.842 -> 0.832, drop 0.010 not significantly > 0, p={within.p_value:.3g} >= 0.05"
    rise = performance_decay_signal(0.842, 0.010, 0.872, 0.012, True, 0.05, metric="roc_auc")
    assert rise.summary == f"roc_auc 0.842 -> 0.872, drop -0.030 not > 0, p={rise.p_value:.3g} >= 0.05"
    # A p-value that rounds like alpha gets more digits, so "p=0.0167 < 0.0167" is never printed.
    from include.retrainer.gate import _decay_verdict

    assert _decay_verdict(False, 0.05, 0.0, 0.01671, 0.05 / 3) == "not significantly > 0, p=0.01671 >= 0.01667"
    # A loss (lower is better): the drop is current - baseline.
    loss = performance_decay_signal(0.30, 0.01, 0.36, 0.01, greater_is_better=False, alpha=0.05, min_decay=0.02)
    assert loss.statistic == pytest.approx(0.06)
    assert loss.p_value == pytest.approx(stats.norm.sf((0.06 - 0.02) / math.sqrt(2e-4)), rel=1e-12)
    # Improvement never fires.
    assert performance_decay_signal(0.8, 0.01, 0.85, 0.01, True, 0.05).status == "quiet"


@pytest.mark.parametrize("current", np.linspace(0.70, 0.80, 21))
def test_performance_decay_interval_excludes_min_decay_iff_significant(current):
    sig = performance_decay_signal(0.80, 0.02, float(current), 0.02, True, alpha=0.05, min_decay=0.01)
    assert (sig.details["ci_low"] > 0.01) == (sig.p_value < 0.05) == (sig.status == "fired")


def test_performance_decay_false_alarm_rate_when_true_drop_equals_min_decay():
    rng = np.random.default_rng(5)
    reps = 4000
    se_b, se_c, md = 0.01, 0.015, 0.02
    base = 0.85 + rng.normal(0, se_b, reps)
    cur = 0.85 - md + rng.normal(0, se_c, reps)
    fired = sum(performance_decay_signal(b, se_b, c, se_c, True, 0.05, md).status == "fired" for b, c in zip(base, cur))
    rate = fired / reps
    assert abs(rate - 0.05) <= 3 * math.sqrt(0.05 * 0.95 / reps)


def test_performance_decay_missing_inputs_and_validation():
    sig = performance_decay_signal(0.84, 0.01, None, None, True, 0.05, metric="roc_auc")
    assert sig.status == "insufficient" and "current_value" in sig.summary
    assert performance_decay_signal(0.84, float("nan"), 0.80, 0.01, True, 0.05).status == "insufficient"
    zero = performance_decay_signal(0.84, 0.0, 0.80, 0.0, True, 0.05)
    assert zero.status == "fired" and zero.p_value == 0.0
    json.dumps(zero.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="baseline_se"):
        performance_decay_signal(0.84, -0.1, 0.80, 0.01, True, 0.05)
    with pytest.raises(ValueError, match="min_decay"):
        performance_decay_signal(0.84, 0.01, 0.80, 0.01, True, 0.05, min_decay=-0.1)
    with pytest.raises(ValueError, match="current_value"):
        performance_decay_signal(0.84, 0.01, "0.8", 0.01, True, 0.05)


# --------------------------------------------------------------------------------------
# age
# --------------------------------------------------------------------------------------


def test_age_signal():
    assert age_signal(12.0, 12).status == "fired"
    assert age_signal(11.9, 12).status == "quiet"
    assert age_signal(100.0, None).status == "disabled"
    assert age_signal(3, 12).summary == "3.0 < 12 weeks"
    with pytest.raises(ValueError, match="max_age_weeks"):
        age_signal(3, 0)
    # A real-valued limit (the cost rule's refresh interval) with its basis in the summary.
    refresh = age_signal(2.0, 1.4142, basis="cost-optimal refresh interval")
    assert refresh.status == "fired" and refresh.threshold == pytest.approx(1.4142)
    assert refresh.summary == "2.0 >= 1.41 weeks (cost-optimal refresh interval)"
    assert refresh.details["basis"] == "cost-optimal refresh interval"
    assert age_signal(5.0, 5.657).status == "quiet"
    with pytest.raises(ValueError, match="max_age_weeks"):
        age_signal(3, 0.5)
    with pytest.raises(ValueError, match="age_weeks"):
        age_signal(-1, 4)


# --------------------------------------------------------------------------------------
# data drift signal
# --------------------------------------------------------------------------------------


def test_data_drift_signal_wraps_report_and_rethresholds_at_given_alpha():
    ref, cur = frames(2_000, 5, seed=9, shift={"x0": 0.15})
    report = detect_drift(
        ref, cur, list(ref.columns), [], importance={"x0": 0.5, "x1": 0.2, "x2": 0.1, "x3": 0.1, "x4": 0.1}
    )
    p0 = report.features["x0"].p_value_adjusted
    assert 0.001 < p0 < 0.05, p0  # chosen so that a smaller alpha changes the verdict
    sig = data_drift_signal(report, alpha=0.05)
    assert sig.status == "fired" and report.gate
    assert sig.statistic == pytest.approx(0.5)
    assert sig.p_value == pytest.approx(p0)
    assert "1 of 5 features, 50% of importance: x0" == sig.summary
    strict = data_drift_signal(report, alpha=p0 / 2)
    assert strict.status == "quiet" and strict.statistic == 0.0
    json.dumps(sig.to_dict(), allow_nan=False)


def test_data_drift_signal_insufficient():
    ref, cur = frames(500, 2, seed=7)
    report = detect_drift(ref, cur.iloc[:10], ["x0", "x1"], [])
    sig = data_drift_signal(report, 0.05)
    assert sig.status == "insufficient" and "10 rows" in sig.summary


# --------------------------------------------------------------------------------------
# combine
# --------------------------------------------------------------------------------------


def sig(name: str, status: str, summary: str = "s") -> SignalResult:
    return SignalResult(name, status, None, None, None, None, summary, {})


def test_combine_reason_names_every_fired_signal_and_lists_others():
    perf = performance_decay_signal(0.842, 0.010, 0.801, 0.012, True, 0.025, metric="roc_auc")
    drift = sig("data_drift", "fired", "2 of 8 features, 46% of importance")
    pred = sig("prediction_drift", "insufficient", "insufficient: 12 reference / 12 current rows, need min_rows=30")
    age = age_signal(3, None)
    decision = combine_signals([perf, drift, pred, age], rule="any")
    assert isinstance(decision, GateDecision) and decision.retrain
    assert decision.reason.startswith(
        "retrain: performance decay (roc_auc 0.842 -> 0.801, drop 0.041 > 0, p=0.00434 < 0.025) "
        "and data drift (2 of 8 features, 46% of importance)"
    )
    assert "not assessed: prediction drift (insufficient: 12 reference" in decision.reason
    assert decision.reason.endswith("disabled: champion age")
    assert decision.fired == ["performance_decay", "data_drift"]
    json.dumps(decision.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    "statuses,rule,expected",
    [
        (["fired", "quiet", "quiet"], "any", True),
        (["quiet", "quiet", "disabled"], "any", False),
        (["fired", "quiet", "insufficient"], "all", False),
        (["fired", "fired", "insufficient"], "all", True),
        (["insufficient", "disabled"], "all", False),
        (["fired", "fired", "quiet"], "majority", True),
        (["fired", "quiet"], "majority", False),
        (["fired", "insufficient", "disabled"], "majority", True),
    ],
)
def test_combine_rules(statuses, rule, expected):
    names = ["data_drift", "prediction_drift", "performance_decay"][: len(statuses)]
    decision = combine_signals([sig(n, s) for n, s in zip(names, statuses)], rule=rule)
    assert decision.retrain is expected
    assert decision.reason.startswith("retrain:" if expected else "no retrain:")


def test_combine_validation_and_nothing_assessed():
    with pytest.raises(ValueError, match="rule"):
        combine_signals([], rule="vote")
    with pytest.raises(ValueError, match="distinct"):
        combine_signals([sig("age", "quiet"), sig("age", "fired")])
    with pytest.raises(ValueError, match="status"):
        sig("age", "maybe")
    nothing = combine_signals([sig("data_drift", "insufficient", "insufficient: x")])
    assert nothing.retrain is False and nothing.reason.startswith("no retrain: no signal could be assessed")


def test_gate_false_alarm_rate_with_allocated_alpha():
    """Stationary data and scores, stable metric: the 'any' rule fires in <= alpha of runs."""
    rng = np.random.default_rng(8)
    alphas = allocate_alpha(0.05, ["data_drift", "prediction_drift", "performance_decay", "age"])
    reps = 250
    fired = 0
    for r in range(reps):
        ref = pd.DataFrame({f"x{j}": rng.normal(size=80) for j in range(4)})
        cur = pd.DataFrame({f"x{j}": rng.normal(size=60) for j in range(4)})
        report = detect_drift(
            ref, cur, list(ref.columns), [], drift_spec(seed=r), importance={"x0": 1.0, "x1": 0, "x2": 0, "x3": 0}
        )
        signals = [
            data_drift_signal(report, alphas["data_drift"]),
            prediction_drift_signal(rng.random(80), rng.random(60), alphas["prediction_drift"]),
            performance_decay_signal(
                0.8 + rng.normal(0, 0.01), 0.01, 0.8 + rng.normal(0, 0.01), 0.01, True, alphas["performance_decay"]
            ),
            age_signal(2.0, 26),
        ]
        fired += combine_signals(signals, "any").retrain
    assert fired / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


def test_data_drift_signal_counts_schema_outcomes_and_critical_features():
    ref, cur = frames(400, 4, seed=10)
    cur = cur.assign(extra=np.arange(400.0))
    report = detect_drift(ref, cur, ["x0", "x1", "x2", "x3", "extra"], [], drift_spec(critical_features=("extra",)))
    assert report.features["extra"].status == "missing_reference"
    s = data_drift_signal(report, alpha=0.01)
    assert s.status == "fired" and s.details["critical_drifted"] == ["extra"]
    assert "critical: extra" in s.summary
