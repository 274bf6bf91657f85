"""Tests for include/retrainer/compare.py.

McNemar is checked against statsmodels and scipy.stats.binomtest, metrics against
sklearn.metrics directly, and the decision rules against hand-constructed prediction
vectors whose contingency tables are known exactly.
"""

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from include.retrainer.compare import (
    METRICS,
    ComparisonResult,
    ComparisonSettings,
    McNemarResult,
    compare_models,
    compute_metrics,
    evaluate_cold_start,
    greater_is_better,
    mcnemar_test,
)

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def correctness(both_right: int, b: int, c: int, both_wrong: int, seed: int = 0):
    """Shuffled champion/challenger correctness vectors with an exact contingency table."""
    champ = np.array([True] * both_right + [True] * b + [False] * c + [False] * both_wrong)
    chall = np.array([True] * both_right + [False] * b + [True] * c + [False] * both_wrong)
    perm = np.random.default_rng(seed).permutation(champ.size)
    return champ[perm], chall[perm]


def binary_preds(both_right: int, b: int, c: int, both_wrong: int, seed: int = 0):
    """(y_true, champion_pred, challenger_pred) for a binary problem with the given table."""
    champ_ok, chall_ok = correctness(both_right, b, c, both_wrong, seed)
    y = np.random.default_rng(seed + 1).integers(0, 2, champ_ok.size)
    champ = np.where(champ_ok, y, 1 - y)
    chall = np.where(chall_ok, y, 1 - y)
    return y, champ, chall


def proba_from_correct(y: np.ndarray, pred: np.ndarray, confidence: float) -> np.ndarray:
    """Binary (n, 2) probabilities that put `confidence` on the predicted label."""
    p1 = np.where(pred == 1, confidence, 1.0 - confidence)
    return np.column_stack([1.0 - p1, p1])


def independent_table(champ_ok: np.ndarray, chall_ok: np.ndarray) -> np.ndarray:
    """[[both right, b], [c, both wrong]] built without the code under test."""
    table = np.zeros((2, 2), dtype=int)
    for i, champ_state in enumerate((True, False)):
        for j, chall_state in enumerate((True, False)):
            table[i, j] = np.sum((champ_ok == champ_state) & (chall_ok == chall_state))
    return table


def acc_settings(**kwargs) -> ComparisonSettings:
    return ComparisonSettings(primary_metric="accuracy", **kwargs)


# --------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_mcnemar_matches_statsmodels_on_random_vectors(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    champ = rng.random(n) < rng.uniform(0.3, 0.95)
    chall = rng.random(n) < rng.uniform(0.3, 0.95)
    result = mcnemar_test(champ, chall)
    table = independent_table(champ, chall)
    discordant = table[0, 1] + table[1, 0]
    assert (result.b, result.c) == (table[0, 1], table[1, 0])
    assert result.n == n
    if discordant == 0:
        assert result.p_value == 1.0
        return
    if discordant < 25:
        ref = sm_mcnemar(table, exact=True)
        assert result.method == "exact"
    else:
        ref = sm_mcnemar(table, exact=False, correction=True)
        assert result.method == "chi2_corrected"
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("b, c", [(0, 1), (1, 0), (3, 9), (9, 3), (0, 24), (12, 12), (5, 19)])
def test_exact_p_value_matches_scipy_binomtest(b, c):
    champ, chall = correctness(10, b, c, 4)
    result = mcnemar_test(champ, chall)
    assert result.method == "exact"
    assert result.p_value == pytest.approx(binomtest(c, b + c, 0.5).pvalue, rel=1e-12)
    assert result.statistic == min(b, c)


def test_table_layout_matches_statsmodels_convention():
    # Asymmetric everywhere so any transposition or row swap would be detected.
    champ, chall = correctness(both_right=50, b=7, c=31, both_wrong=12, seed=3)
    result = mcnemar_test(champ, chall)
    table = independent_table(champ, chall)
    np.testing.assert_array_equal(
        table, [[result.both_right, result.b], [result.c, result.both_wrong]]
    )
    assert (result.both_right, result.b, result.c, result.both_wrong) == (50, 7, 31, 12)
    ref = sm_mcnemar(table, exact=False, correction=True)
    assert result.statistic == pytest.approx((abs(7 - 31) - 1) ** 2 / 38)
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue)


def test_no_disagreements_gives_p_one():
    champ, chall = correctness(both_right=30, b=0, c=0, both_wrong=10)
    result = mcnemar_test(champ, chall)
    assert result.p_value == 1.0
    assert result.method == "none"
    assert result.statistic is None
    assert (result.b, result.c, result.both_right, result.both_wrong) == (0, 0, 30, 10)
    # Even with exact_threshold=0 (which would otherwise force chi-square) p stays 1.
    assert mcnemar_test(champ, chall, exact_threshold=0).p_value == 1.0


def test_all_agree_including_all_wrong():
    result = mcnemar_test([False] * 8, [False] * 8)
    assert (result.b, result.c, result.both_wrong, result.p_value) == (0, 0, 8, 1.0)


def test_method_switches_at_threshold_boundary():
    champ24, chall24 = correctness(20, 6, 18, 5)  # b + c = 24
    champ25, chall25 = correctness(20, 6, 19, 5)  # b + c = 25
    r24 = mcnemar_test(champ24, chall24)
    r25 = mcnemar_test(champ25, chall25)
    assert r24.method == "exact"
    assert r25.method == "chi2_corrected"
    assert r24.p_value == pytest.approx(sm_mcnemar(independent_table(champ24, chall24), exact=True).pvalue)
    assert r25.p_value == pytest.approx(
        sm_mcnemar(independent_table(champ25, chall25), exact=False, correction=True).pvalue
    )
    # The threshold is configurable.
    assert mcnemar_test(champ25, chall25, exact_threshold=26).method == "exact"
    assert mcnemar_test(champ24, chall24, exact_threshold=24).method == "chi2_corrected"


def test_b_zero_c_thirty():
    champ, chall = correctness(both_right=40, b=0, c=30, both_wrong=5)
    result = mcnemar_test(champ, chall)
    assert result.method == "chi2_corrected"
    assert result.statistic == pytest.approx(29**2 / 30)
    ref = sm_mcnemar([[40, 0], [30, 5]], exact=False, correction=True)
    assert result.p_value == pytest.approx(ref.pvalue)
    assert result.p_value < 1e-6


def test_mcnemar_accepts_zero_one_numbers():
    as_bool = mcnemar_test([True, False, True, False], [False, False, True, True])
    as_int = mcnemar_test([1, 0, 1, 0], [0, 0, 1, 1])
    as_float = mcnemar_test(np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0]))
    assert as_bool == as_int == as_float


@pytest.mark.parametrize(
    "champ, chall, match",
    [
        ([True, False], [True], "same rows"),
        ([], [], "empty"),
        ([0, 2, 1], [1, 1, 0], "boolean-like"),
        (["yes", "no"], [True, False], "boolean-like"),
        ([[True, False]], [[True, False]], "1-dimensional"),
        ([1.0, float("nan")], [1.0, 0.0], "boolean-like"),
    ],
)
def test_mcnemar_validation(champ, chall, match):
    with pytest.raises(ValueError, match=match):
        mcnemar_test(champ, chall)


def test_mcnemar_rejects_negative_threshold():
    with pytest.raises(ValueError, match="exact_threshold"):
        mcnemar_test([True], [False], exact_threshold=-1)


def test_mcnemar_to_dict_is_json_safe():
    for champ, chall in (correctness(5, 0, 0, 1), correctness(5, 3, 4, 1), correctness(5, 20, 40, 1)):
        d = mcnemar_test(champ, chall).to_dict()
        assert {"b", "c", "statistic", "p_value", "method"} <= d.keys()
        assert json.loads(json.dumps(d, allow_nan=False)) == d


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def test_greater_is_better():
    assert greater_is_better("log_loss") is False
    for metric in METRICS - {"log_loss"}:
        assert greater_is_better(metric) is True
    with pytest.raises(ValueError, match="unknown metric"):
        greater_is_better("mse")


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    p1 = np.clip(0.35 * y + rng.uniform(0, 0.65, 300), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    pred = (p1 >= 0.5).astype(int)
    got = compute_metrics(y, pred, proba, classes=[0, 1])
    assert got.keys() == METRICS
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    # A 1-D positive-class probability vector is equivalent for binary problems.
    assert compute_metrics(y, pred, p1, classes=[0, 1]) == pytest.approx(got)


def test_binary_positive_class_is_sorted_last_for_string_labels():
    y = np.array(["no", "yes", "yes", "no", "yes", "no", "no"])
    pred = np.array(["no", "yes", "no", "yes", "yes", "no", "no"])
    # columns given in the model's order ["yes", "no"] -> reordered internally
    p_yes = np.array([0.2, 0.9, 0.4, 0.6, 0.8, 0.1, 0.3])
    proba_yes_no = np.column_stack([p_yes, 1 - p_yes])
    got = compute_metrics(y, pred, proba_yes_no, classes=["yes", "no"])
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label="yes"))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="yes"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="yes"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "yes", p_yes))
    assert got["log_loss"] == pytest.approx(
        skm.log_loss(y, np.column_stack([1 - p_yes, p_yes]), labels=["no", "yes"])
    )


def test_multiclass_metrics_match_sklearn_macro_and_ovr():
    rng = np.random.default_rng(11)
    n = 240
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    got = compute_metrics(y, pred, proba, classes=[0, 1, 2])
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))

    # Same model, columns supplied in a different class order -> identical metrics.
    order = [2, 0, 1]
    permuted = compute_metrics(y, pred, proba[:, order], classes=order)
    assert permuted == pytest.approx(got)


def test_metrics_without_proba_omit_proba_metrics():
    got = compute_metrics([0, 1, 1, 0], [0, 1, 0, 0])
    assert got.keys() == METRICS - {"roc_auc", "log_loss"}


def test_single_class_holdout_omits_roc_auc_and_never_nan():
    y = np.ones(6, dtype=int)
    pred = np.array([1, 1, 0, 1, 0, 1])
    proba = proba_from_correct(y, pred, 0.8)
    got = compute_metrics(y, pred, proba, classes=[0, 1])
    assert "roc_auc" not in got
    assert "log_loss" in got
    assert all(math.isfinite(v) for v in got.values())


def test_multiclass_with_absent_class_is_finite():
    y = np.array([0, 1, 0, 1, 0, 1])  # class 2 absent from the holdout
    proba = np.array([[0.7, 0.2, 0.1]] * 3 + [[0.2, 0.7, 0.1]] * 3)[[0, 3, 1, 4, 2, 5]]
    pred = proba.argmax(axis=1)
    got = compute_metrics(y, pred, proba, classes=[0, 1, 2])
    assert got.keys() == METRICS
    assert all(math.isfinite(v) for v in got.values())
    # AUC averaged over the present classes only.
    expected_auc = np.mean([skm.roc_auc_score(y == k, proba[:, k]) for k in (0, 1)])
    assert got["roc_auc"] == pytest.approx(expected_auc)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"y_true": [0, 1], "y_pred": [0]}, "y_pred has 1"),
        ({"y_true": [], "y_pred": []}, "empty"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "proba": [[0.5, 0.5]]}, "rows"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "proba": [[0.5, 0.6], [0.3, 0.7]]}, "sum to 1"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "proba": [[1.0], [1.0]], "classes": [0, 1]}, "columns"),
        (
            {"y_true": [0, 1], "y_pred": [0, 2], "proba": [[0.9, 0.1], [0.2, 0.8]], "classes": [0, 1]},
            r"predictions contain labels \[2\] that are not in classes \[0, 1\]",
        ),
        ({"y_true": [0, 1], "y_pred": [0, 1], "classes": [1, 1]}, "duplicates"),
        ({"y_true": [0.0, float("nan")], "y_pred": [0, 1]}, "NaN"),
    ],
)
def test_compute_metrics_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_metrics(**kwargs)


def test_label_unseen_by_model_omits_proba_metrics_but_keeps_label_metrics():
    # The holdout contains class 2, which the binary model (classes [0, 1]) never saw.
    y = np.array([0, 1, 2, 1, 0, 2, 1, 0])
    pred = np.array([0, 1, 1, 1, 0, 0, 1, 1])
    p1 = np.array([0.1, 0.9, 0.6, 0.8, 0.3, 0.4, 0.7, 0.6])
    got = compute_metrics(y, pred, np.column_stack([1 - p1, p1]), classes=[0, 1])
    assert got.keys() == METRICS - {"roc_auc", "log_loss"}
    # three labels in play -> macro averages, exactly as sklearn computes them
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


# --------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"non_inferiority_margin": -0.01}, "non_inferiority_margin"),
        ({"min_improvement": -0.1}, "min_improvement"),
        ({"primary_metric": "mse"}, "primary_metric"),
        ({"policy": "yolo"}, "policy"),
        ({"exact_threshold": -1}, "exact_threshold"),
        ({"exact_threshold": 2.5}, "exact_threshold"),
        ({"floor": 1.5}, "floor"),
        ({"floor": float("inf")}, "floor"),
        ({"primary_metric": "log_loss", "floor": 0.0}, "floor"),
    ],
)
def test_settings_validation_names_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ComparisonSettings(**kwargs)


def test_settings_defaults_and_frozen():
    s = ComparisonSettings()
    assert (s.primary_metric, s.policy, s.alpha, s.exact_threshold) == ("roc_auc", "superiority", 0.05, 25)
    ComparisonSettings(primary_metric="log_loss", floor=0.7)  # ceiling for log_loss is fine
    ComparisonSettings(primary_metric="log_loss")  # floor disabled by default
    with pytest.raises(AttributeError):
        s.alpha = 0.1  # type: ignore[misc]


# --------------------------------------------------------------------------------------
# decisions
# --------------------------------------------------------------------------------------


def test_clear_improvement_is_promoted():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    settings = acc_settings(floor=0.8, min_improvement=0.05)
    result = compare_models(y, champ, chall, settings)
    assert isinstance(result, ComparisonResult)
    assert result.decision == "promote"
    assert result.mcnemar.b == 5 and result.mcnemar.c == 40
    assert result.metrics["challenger"]["accuracy"] == pytest.approx(140 / 150)
    assert result.metrics["champion"]["accuracy"] == pytest.approx(105 / 150)
    assert len(result.reasons) == 3
    assert result.reasons[0] == "challenger accuracy 0.933 >= floor 0.800"
    assert result.reasons[1].startswith("improvement +0.233 >= minimum 0.050")
    assert "< alpha 0.05 with c=40 > b=5" in result.reasons[2]
    assert not result.cold_start and result.policy == "superiority"


def test_insignificant_improvement_is_rejected():
    y, champ, chall = binary_preds(both_right=150, b=10, c=14, both_wrong=26)
    result = compare_models(y, champ, chall, acc_settings())
    assert result.metrics["challenger"]["accuracy"] > result.metrics["champion"]["accuracy"]
    assert result.mcnemar.p_value >= 0.05
    assert result.decision == "reject"
    assert any("not significantly better" in r for r in result.reasons)
    assert result.checks == {"floor": True, "improvement": True, "mcnemar": False}


def test_improvement_below_minimum_is_rejected():
    # significant McNemar, but a 0.30 minimum is not met by a 0.233 gain
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    result = compare_models(y, champ, chall, acc_settings(min_improvement=0.3))
    assert result.decision == "reject"
    assert result.reasons[1].startswith("improvement +0.233 < minimum 0.300")


def test_improvement_exactly_at_minimum_passes_despite_float_rounding():
    # accuracy 0.57 vs 0.56 on 100 rows: 0.57 - 0.56 == 0.009999999999999898 < 0.01
    y, champ, chall = binary_preds(both_right=50, b=6, c=7, both_wrong=37)
    assert 0.57 - 0.56 < 0.01
    result = compare_models(y, champ, chall, acc_settings(min_improvement=0.01))
    assert result.checks["improvement"] is True
    assert result.reasons[1].startswith("improvement +0.010 >= minimum 0.010")


def test_below_floor_is_rejected_even_if_significantly_better():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    result = compare_models(y, champ, chall, acc_settings(floor=0.95))
    assert result.decision == "reject"
    assert result.reasons[0] == "challenger accuracy 0.933 < floor 0.950"
    assert result.checks["improvement"] and result.checks["mcnemar"]


@pytest.mark.parametrize("policy", ["superiority", "non_inferiority"])
def test_significantly_worse_challenger_is_rejected(policy):
    y, champ, chall = binary_preds(both_right=100, b=40, c=5, both_wrong=5)
    result = compare_models(y, champ, chall, acc_settings(policy=policy, non_inferiority_margin=0.5))
    assert result.decision == "reject"
    assert result.checks["mcnemar"] is False
    if policy == "non_inferiority":
        # margin is generous, so only the McNemar rule rejects it
        assert result.checks["non_inferiority_margin"] is True
        assert any("significantly worse" in r and "b=40 > c=5" in r for r in result.reasons)


def test_non_inferior_fresher_model_promoted_only_under_non_inferiority():
    y, champ, chall = binary_preds(both_right=170, b=10, c=9, both_wrong=11)
    ni = compare_models(y, champ, chall, acc_settings(policy="non_inferiority", non_inferiority_margin=0.01))
    sup = compare_models(y, champ, chall, acc_settings(policy="superiority"))
    assert ni.decision == "promote"
    assert ni.reasons[1].startswith("deficit +0.005 <= margin 0.010")
    assert "not significantly worse" in ni.reasons[2]
    assert sup.decision == "reject"
    assert sup.checks == {"floor": True, "improvement": False, "mcnemar": False}


def test_non_inferiority_margin_exceeded_is_rejected():
    # deficit 0.04 > margin 0.01, though McNemar is not significant
    y, champ, chall = binary_preds(both_right=150, b=14, c=10, both_wrong=26)
    result = compare_models(y, champ, chall, acc_settings(policy="non_inferiority"))
    assert result.mcnemar.p_value >= 0.05
    assert result.decision == "reject"
    assert result.reasons[1].startswith("deficit +0.020 > margin 0.010")


def test_roc_auc_primary_uses_probabilities():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    champ_proba = proba_from_correct(y, champ, 0.7)
    chall_proba = proba_from_correct(y, chall, 0.9)
    result = compare_models(
        y, champ, chall, ComparisonSettings(floor=0.7), champ_proba, chall_proba, classes=[0, 1]
    )
    assert result.metrics["challenger"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, chall_proba[:, 1]))
    assert result.metrics["champion"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, champ_proba[:, 1]))
    assert result.decision == "promote"


def test_log_loss_lower_is_better():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    champ_proba = proba_from_correct(y, champ, 0.8)
    chall_proba = proba_from_correct(y, chall, 0.8)
    settings = ComparisonSettings(primary_metric="log_loss", min_improvement=0.1, floor=0.5)
    result = compare_models(y, champ, chall, settings, champ_proba, chall_proba)
    ll_champ = skm.log_loss(y, champ_proba)
    ll_chall = skm.log_loss(y, chall_proba)
    assert ll_chall < ll_champ
    assert result.metrics["challenger"]["log_loss"] == pytest.approx(ll_chall)
    assert result.decision == "promote"
    assert result.reasons[0].startswith("challenger log_loss") and "<= ceiling 0.500" in result.reasons[0]
    assert result.reasons[1].startswith(f"improvement +{ll_champ - ll_chall:.3f} >= minimum")

    # Swapping roles: the higher-log-loss model must not be promoted.
    swapped = compare_models(y, chall, champ, settings, chall_proba, champ_proba)
    assert swapped.decision == "reject"
    assert swapped.reasons[1].startswith(f"improvement -{ll_champ - ll_chall:.3f} < minimum")

    # A log_loss ceiling the challenger exceeds rejects it.
    strict = ComparisonSettings(primary_metric="log_loss", floor=0.2)
    assert compare_models(y, champ, chall, strict, champ_proba, chall_proba).checks["floor"] is False


def test_primary_metric_not_computable_raises():
    y, champ, chall = binary_preds(20, 2, 3, 1)
    with pytest.raises(ValueError, match="roc_auc requires probabilities but champion_proba is None"):
        compare_models(y, champ, chall, ComparisonSettings())
    chall_proba = proba_from_correct(y, chall, 0.9)
    with pytest.raises(ValueError, match="log_loss requires probabilities but champion_proba is None"):
        compare_models(
            y, champ, chall, ComparisonSettings(primary_metric="log_loss"), None, chall_proba
        )
    ones = np.ones(10, dtype=int)
    proba = proba_from_correct(ones, ones, 0.9)
    with pytest.raises(ValueError, match="single class"):
        compare_models(ones, ones, ones, ComparisonSettings(), proba, proba, classes=[0, 1])


def test_models_with_different_label_sets_share_one_averaging_scheme():
    # Champion (labels only) knows an extra class 2 the binary challenger lacks; the
    # comparison must average both models the same way (macro over the shared label space).
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    champ = np.array([0, 2, 1, 0, 1, 2, 0, 1, 0, 0])
    chall = np.array([0, 1, 1, 0, 1, 0, 0, 1, 0, 0])
    chall_proba = proba_from_correct(y, chall, 0.8)
    result = compare_models(
        y, champ, chall, acc_settings(policy="non_inferiority"), None, chall_proba, classes=[0, 1]
    )
    for role, pred in (("champion", champ), ("challenger", chall)):
        assert result.metrics[role]["f1"] == pytest.approx(
            skm.f1_score(y, pred, labels=None, average="macro", zero_division=0)
        )
    assert "roc_auc" in result.metrics["challenger"] and "roc_auc" not in result.metrics["champion"]
    assert (result.mcnemar.b, result.mcnemar.c) == (0, 2)
    assert result.decision == "promote"

    # A class new in the holdout makes roc_auc undefined for a model that never saw it.
    y_new = y.copy()
    y_new[3] = 2
    with pytest.raises(ValueError, match=r"y_true contains labels \[2\] not in classes \[0, 1\]"):
        compare_models(
            y_new, chall, chall, ComparisonSettings(), chall_proba, chall_proba, classes=[0, 1]
        )


def test_compare_models_length_and_empty_validation():
    s = acc_settings()
    with pytest.raises(ValueError, match="challenger_pred has 2"):
        compare_models([0, 1, 1], [0, 1, 1], [0, 1], s)
    with pytest.raises(ValueError, match="champion_pred has 4"):
        compare_models([0, 1, 1], [0, 1, 1, 0], [0, 1, 1], s)
    with pytest.raises(ValueError, match="empty"):
        compare_models([], [], [], s)
    with pytest.raises(ValueError, match="challenger_proba has 2"):
        compare_models([0, 1, 1], [0, 1, 1], [0, 1, 1], s, None, [[0.5, 0.5]] * 2)


def test_cold_start():
    y, _, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    chall_proba = proba_from_correct(y, chall, 0.9)
    ok = evaluate_cold_start(y, chall, ComparisonSettings(floor=0.7), chall_proba, classes=[0, 1])
    assert ok.decision == "promote"
    assert ok.cold_start is True and ok.mcnemar is None
    assert ok.metrics["champion"] == {}
    assert ok.reasons[0] == "cold start: no champion"
    assert ok.metrics["challenger"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, chall_proba[:, 1]))

    too_strict = evaluate_cold_start(y, chall, ComparisonSettings(floor=0.99), chall_proba)
    assert too_strict.decision == "reject"
    assert "< floor 0.990" in too_strict.reasons[1]

    no_floor = evaluate_cold_start(y, chall, acc_settings())
    assert no_floor.decision == "promote"
    assert "no floor configured" in no_floor.reasons[1]

    with pytest.raises(ValueError, match="requires probabilities"):
        evaluate_cold_start(y, chall, ComparisonSettings())
    with pytest.raises(ValueError, match="challenger_pred has 3"):
        evaluate_cold_start(y, chall[:3], acc_settings())


def test_result_to_dict_is_json_serializable_without_nan():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    champ_proba = proba_from_correct(y, champ, 0.7)
    chall_proba = proba_from_correct(y, chall, 0.9)
    results = [
        compare_models(y, champ, chall, ComparisonSettings(), champ_proba, chall_proba),
        compare_models(y, champ, champ, acc_settings(policy="non_inferiority")),  # b=c=0
        evaluate_cold_start(y, chall, ComparisonSettings(), chall_proba),
    ]
    for result in results:
        d = result.to_dict()
        round_trip = json.loads(json.dumps(d, allow_nan=False))
        assert round_trip == d
        assert {"decision", "reasons", "primary_metric", "metrics", "mcnemar", "policy", "cold_start"} <= d.keys()
    assert results[1].to_dict()["mcnemar"]["p_value"] == 1.0
    assert results[1].decision == "promote"
    assert results[2].to_dict()["mcnemar"] is None
    assert isinstance(results[0].mcnemar, McNemarResult)
