"""Tests for include/retrainer/compare.py.

McNemar is checked against statsmodels and scipy.stats.binomtest (mid-p against a hand
formula with scipy.stats.binom), metrics against sklearn.metrics directly, and the
decision rules against hand-constructed prediction vectors whose contingency tables are
known exactly, with expected bounds computed here from the formulas.
"""

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import binom, binomtest, norm
from sklearn import metrics as skm
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from include.retrainer.compare import (
    METRICS,
    ComparisonResult,
    McNemarResult,
    compare_models,
    compute_metrics,
    evaluate_cold_start,
    greater_is_better,
    mcnemar_test,
    mcnemar_verdict_of,
)
from include.retrainer.config import ComparisonSpec

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


def cmp_settings(**kwargs) -> ComparisonSpec:
    """The comparison block as compare.py receives it, with the policy these tests were written for."""
    return ComparisonSpec(**{"policy": "superiority", **kwargs})


def acc_settings(**kwargs) -> ComparisonSpec:
    return cmp_settings(primary_metric="accuracy", **kwargs)


# --------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------


def midp_by_hand(b: int, c: int) -> float:
    """Mid-p: two-sided exact p (2 P(X <= k), not capped) minus the point probability."""
    k, n = min(b, c), b + c
    return 2 * binom.cdf(k, n, 0.5) - binom.pmf(k, n, 0.5)


@pytest.mark.parametrize("seed", range(12))
def test_mcnemar_matches_statsmodels_exact_on_random_vectors(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    champ = rng.random(n) < rng.uniform(0.3, 0.95)
    chall = rng.random(n) < rng.uniform(0.3, 0.95)
    table = independent_table(champ, chall)
    discordant = table[0, 1] + table[1, 0]
    for method in ("exact", "midp"):
        result = mcnemar_test(champ, chall, method=method)
        assert (result.b, result.c) == (table[0, 1], table[1, 0])
        assert result.n == n
        if discordant == 0:
            assert (result.p_value, result.method) == (1.0, "none")
            continue
        assert result.method == method
        ref = sm_mcnemar(table, exact=True)
        assert result.statistic == pytest.approx(ref.statistic, rel=1e-12)
        if method == "exact":
            assert result.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
        else:
            assert result.p_value == pytest.approx(midp_by_hand(table[0, 1], table[1, 0]), rel=1e-9)


@pytest.mark.parametrize(
    "b, c", [(0, 1), (1, 0), (3, 9), (9, 3), (0, 24), (12, 12), (5, 19), (6, 19), (40, 70), (0, 30), (150, 120)]
)
def test_exact_is_binomtest_and_midp_is_exact_minus_point_probability(b, c):
    champ, chall = correctness(10, b, c, 4)
    exact = mcnemar_test(champ, chall, method="exact")
    midp = mcnemar_test(champ, chall, method="midp")
    assert exact.method == "exact" and midp.method == "midp"
    assert exact.p_value == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-12)
    assert exact.statistic == midp.statistic == min(b, c)
    assert midp.p_value == pytest.approx(midp_by_hand(b, c), rel=1e-12)
    if b != c:
        point = binom.pmf(min(b, c), b + c, 0.5)
        assert midp.p_value == pytest.approx(exact.p_value - point, rel=1e-12)
        assert midp.p_value < exact.p_value  # mid-p is the less conservative one
    else:
        assert midp.p_value == pytest.approx(1.0) and exact.p_value == 1.0


def test_default_method_is_midp():
    champ, chall = correctness(10, 4, 11, 3)
    assert mcnemar_test(champ, chall).method == "midp"
    assert cmp_settings().mcnemar_method == "midp"


def test_p_value_has_no_jump_at_any_number_of_discordant_pairs():
    # Same imbalance (challenger right on 2/3 of the disagreements) for b + c = 3 ... 60:
    # the p-value must fall smoothly, with no jump where the old code switched to
    # chi-square (b + c = 25). Each value is checked against binomtest, so a switch to an
    # approximation anywhere would fail.
    for method in ("exact", "midp"):
        previous = None
        for total in range(3, 61, 3):
            b, c = total // 3, 2 * total // 3
            champ, chall = correctness(5, b, c, 5)
            p = mcnemar_test(champ, chall, method=method).p_value
            assert mcnemar_test(champ, chall, method=method).method == method
            if method == "exact":
                assert p == pytest.approx(binomtest(b, total, 0.5).pvalue, rel=1e-12)
            if previous is not None:
                assert p < previous
            previous = p
    # Around the old threshold the change is small (the old code jumped from 0.064 to 0.043).
    p24 = mcnemar_test(*correctness(20, 6, 18, 5), method="exact").p_value
    p25 = mcnemar_test(*correctness(20, 6, 19, 5), method="exact").p_value
    assert p24 == pytest.approx(binomtest(6, 24, 0.5).pvalue)
    assert p25 == pytest.approx(binomtest(6, 25, 0.5).pvalue)


def test_table_layout_matches_statsmodels_convention():
    # Asymmetric everywhere so any transposition or row swap would be detected.
    champ, chall = correctness(both_right=50, b=7, c=31, both_wrong=12, seed=3)
    result = mcnemar_test(champ, chall, method="exact")
    table = independent_table(champ, chall)
    np.testing.assert_array_equal(table, [[result.both_right, result.b], [result.c, result.both_wrong]])
    assert (result.both_right, result.b, result.c, result.both_wrong) == (50, 7, 31, 12)
    ref = sm_mcnemar(table, exact=True)
    assert result.statistic == 7 == ref.statistic
    assert result.p_value == pytest.approx(ref.pvalue)


def test_no_disagreements_gives_p_one():
    champ, chall = correctness(both_right=30, b=0, c=0, both_wrong=10)
    for method in ("exact", "midp"):
        result = mcnemar_test(champ, chall, method=method)
        assert result.p_value == 1.0
        assert result.method == "none"
        assert result.statistic is None
        assert (result.b, result.c, result.both_right, result.both_wrong) == (0, 0, 30, 10)


def test_all_agree_including_all_wrong():
    result = mcnemar_test([False] * 8, [False] * 8)
    assert (result.b, result.c, result.both_wrong, result.p_value) == (0, 0, 8, 1.0)


def test_b_zero_c_thirty_is_exact():
    champ, chall = correctness(both_right=40, b=0, c=30, both_wrong=5)
    result = mcnemar_test(champ, chall, method="exact")
    assert result.method == "exact"
    assert result.p_value == pytest.approx(2 * 0.5**30)
    assert result.p_value == pytest.approx(sm_mcnemar([[40, 0], [30, 5]], exact=True).pvalue)


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


def test_mcnemar_rejects_unknown_method():
    with pytest.raises(ValueError, match="method='chi2'"):
        mcnemar_test([True], [False], method="chi2")


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
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, np.column_stack([1 - p_yes, p_yes]), labels=["no", "yes"]))


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
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))

    # Same model, columns supplied in a different class order -> identical metrics.
    order = [2, 0, 1]
    permuted = compute_metrics(y, pred, proba[:, order], classes=order)
    assert permuted == pytest.approx(got)


def test_metrics_without_proba_omit_proba_metrics():
    got = compute_metrics([0, 1, 1, 0], [0, 1, 0, 0])
    assert got.keys() == METRICS - {"roc_auc", "log_loss"}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_only_computes_the_metric_asked_for_and_the_same_value(name):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 60)
    pred = np.where(rng.random(60) < 0.7, y, rng.integers(0, 3, 60))
    proba = rng.dirichlet(np.ones(3), 60)
    every = compute_metrics(y, pred, proba, classes=[0, 1, 2])
    assert compute_metrics(y, pred, proba, classes=[0, 1, 2], only=(name,)) == {name: every[name]}
    assert compute_metrics(y, pred, proba, classes=[0, 1, 2], only=name) == {
        name: every[name]
    }  # a name, not a substring


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


def test_label_unseen_by_model_is_scored_with_probability_zero():
    # The holdout contains class 2, which the binary model (classes [0, 1]) never saw.
    y = np.array([0, 1, 2, 1, 0, 2, 1, 0])
    pred = np.array([0, 1, 1, 1, 0, 0, 1, 1])
    p1 = np.array([0.1, 0.9, 0.6, 0.8, 0.3, 0.4, 0.7, 0.6])
    got = compute_metrics(y, pred, np.column_stack([1 - p1, p1]), classes=[0, 1])
    assert got.keys() == METRICS
    # three labels in play -> macro averages, exactly as sklearn computes them
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    aligned = np.column_stack([1 - p1, p1, np.zeros(8)])  # built here, not by the code under test
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, aligned, labels=[0, 1, 2]), rel=1e-12)
    assert got["log_loss"] > -np.log(np.finfo(float).eps) * 2 / 8  # two rows at -log(eps)
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, aligned, multi_class="ovr", average="macro", labels=[0, 1, 2])
    )


# --------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.5}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"non_inferiority_margin": -0.01}, "non_inferiority_margin"),
        ({"min_improvement": -0.1}, "min_improvement"),
        ({"primary_metric": "mse"}, "primary_metric"),
        ({"policy": "yolo"}, "policy"),
        ({"mcnemar_method": "chi2_corrected"}, "mcnemar_method"),
        ({"bootstrap_resamples": 10}, "bootstrap_resamples"),
        ({"bootstrap_resamples": 2000.0}, "bootstrap_resamples"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
        ({"floor": 1.5}, "floor"),
        ({"floor": float("inf")}, "floor"),
        ({"primary_metric": "log_loss", "floor": 0.0}, "floor"),
    ],
)
def test_settings_validation_names_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ComparisonSpec(**kwargs)


def test_settings_defaults_and_frozen():
    s = ComparisonSpec()  # the YAML's defaults: compare.py receives the parsed block itself
    assert (s.primary_metric, s.policy, s.alpha, s.mcnemar_method) == ("roc_auc", "expected_gain", 0.05, "midp")
    assert (s.bootstrap_resamples, s.seed) == (2000, 0)
    assert s.null_value == 0.0
    assert ComparisonSpec(policy="non_inferiority", non_inferiority_margin=0.02).null_value == -0.02
    ComparisonSpec(primary_metric="log_loss", floor=0.7)  # ceiling for log_loss is fine
    ComparisonSpec(primary_metric="log_loss")  # floor disabled by default
    with pytest.raises(ValidationError):
        s.alpha = 0.1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ComparisonSpec(exact_threshold=25)  # removed: McNemar is exact for every b + c


# --------------------------------------------------------------------------------------
# decisions
# --------------------------------------------------------------------------------------


def paired_accuracy(b: int, c: int, n: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """(effect, one-sided lower bound, mde) of the paired accuracy difference, by formula."""
    effect = (c - b) / n
    se = math.sqrt(b + c - (c - b) ** 2 / n) / n
    return effect, effect - norm.ppf(1 - alpha) * se, (norm.ppf(1 - alpha) + norm.ppf(0.8)) * se


def test_clear_improvement_is_promoted():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    settings = acc_settings(floor=0.8, min_improvement=0.05)
    result = compare_models(y, champ, chall, settings)
    assert isinstance(result, ComparisonResult)
    assert result.decision == "promote" and result.outcome_code == "ok"
    assert result.mcnemar.b == 5 and result.mcnemar.c == 40
    assert result.metrics["challenger"]["accuracy"] == pytest.approx(140 / 150)
    assert result.metrics["champion"]["accuracy"] == pytest.approx(105 / 150)
    effect, lower, _ = paired_accuracy(5, 40, 150)
    pt = result.paired_test
    assert (pt.method, pt.effect, pt.ci_low, pt.null_value) == (
        "binomial_diff",
        pytest.approx(effect),
        pytest.approx(lower),
        0.05,
    )
    assert result.checks == {"floor": True, "improvement": True, "mcnemar": True}
    assert len(result.reasons) == 3
    assert result.reasons[0] == "challenger accuracy 0.933 >= floor 0.800"
    assert result.reasons[1].startswith(
        f"challenger accuracy +0.233 (95% one-sided lower bound {lower:+.3f}) clears +0.050"
    )
    assert "challenger not significantly more often wrong" in result.reasons[2]
    assert not result.cold_start and result.policy == "superiority"


def test_insignificant_improvement_is_rejected_with_the_detectable_effect():
    y, champ, chall = binary_preds(both_right=150, b=10, c=14, both_wrong=26)
    result = compare_models(y, champ, chall, acc_settings())
    effect, lower, mde = paired_accuracy(10, 14, 200)
    assert result.metrics["challenger"]["accuracy"] > result.metrics["champion"]["accuracy"]
    assert lower < 0 < effect
    assert result.decision == "reject"
    assert result.checks == {"floor": True, "improvement": False, "mcnemar": True}
    assert result.reasons[1].startswith(
        f"challenger accuracy +0.020 (95% one-sided lower bound {lower:+.3f}) does not clear +0.000; "
        f"with 200 held-out rows the smallest improvement this test detects at 80% power is {mde:+.3f}"
    )


def test_improvement_must_clear_min_improvement_with_its_lower_bound():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    _, lower, mde = paired_accuracy(5, 40, 150)  # lower bound ~0.167
    rejected = compare_models(y, champ, chall, acc_settings(min_improvement=0.2))
    assert rejected.decision == "reject" and rejected.checks["improvement"] is False
    assert "does not clear +0.200" in rejected.reasons[1]
    assert f"is {0.2 + mde:+.3f}" in rejected.reasons[1]  # null + mde: the detectable improvement
    # the point estimate (+0.233) is above 0.2, but that is not enough any more
    assert rejected.paired_test.effect > 0.2 > rejected.paired_test.ci_low
    assert compare_models(y, champ, chall, acc_settings(min_improvement=0.15)).decision == "promote"


def test_below_floor_is_rejected_even_if_significantly_better():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    result = compare_models(y, champ, chall, acc_settings(floor=0.95))
    assert result.decision == "reject"
    assert result.reasons[0] == "challenger accuracy 0.933 < floor 0.950"
    assert result.checks["improvement"] and result.checks["mcnemar"]


def test_expected_gain_below_the_floor_is_rejected_and_no_reason_says_promoted():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    result = compare_models(y, champ, chall, acc_settings(policy="expected_gain", floor=0.95))
    assert result.decision == "reject" and result.checks["expected_gain"] is True
    assert "expected to serve at least as well, on the point estimate" in result.reasons[1]
    assert not any("promoted" in r for r in result.reasons)


@pytest.mark.parametrize("policy", ["superiority", "non_inferiority"])
def test_significantly_worse_challenger_is_rejected(policy):
    y, champ, chall = binary_preds(both_right=100, b=40, c=5, both_wrong=5)
    result = compare_models(y, champ, chall, acc_settings(policy=policy, non_inferiority_margin=0.5))
    assert result.decision == "reject"
    assert result.checks["mcnemar"] is False
    assert any("significantly more often wrong" in r and "b=40 > c=5" in r for r in result.reasons)
    if policy == "non_inferiority":
        # the margin is generous, so only the McNemar guard rejects it
        assert result.checks["non_inferiority_margin"] is True


#: A draw of :func:`_ranking_vs_argmax` (noise 1.5) whose ROC AUC gain is positive but not significant.
SMALL_GAIN_SEED = 0


def _ranking_vs_argmax(shift: float, challenger_noise: float, seed: int = 3):
    """Binary held-out rows where the challenger's scores are shifted down by ``shift`` on the logit
    scale (more argmax errors at 0.5) with noise ``challenger_noise`` around the true signal."""
    rng = np.random.default_rng(seed)
    n = 2000
    y = rng.integers(0, 2, n)
    signal = 2.0 * y - 1.0
    champ = 1 / (1 + np.exp(-(signal + rng.normal(0, 1.6, n))))
    chall_logit = (signal + rng.normal(0, challenger_noise, n)) if challenger_noise else np.log(champ / (1 - champ))
    chall = 1 / (1 + np.exp(-(chall_logit - shift)))
    return y, champ, chall


@pytest.mark.parametrize("policy", ["expected_gain", "superiority", "non_inferiority"])
def test_primary_metric_significantly_better_outvotes_the_mcnemar_guard(policy):
    # Better ranking (ROC AUC) but shifted scores: more argmax errors. Both tests are significant
    # in opposite directions; the primary metric the YAML decides on wins, and the reason says so.
    y, champ, chall = _ranking_vs_argmax(shift=1.5, challenger_noise=0.8)
    settings = cmp_settings(policy=policy, primary_metric="roc_auc")
    cp, hp = (champ > 0.5).astype(int), (chall > 0.5).astype(int)
    result = compare_models(y, cp, hp, settings, champion_proba=champ, challenger_proba=chall)
    # Independent oracles: the McNemar veto would apply (scipy), the AUC gain is large (sklearn).
    b = int(((cp == y) & (hp != y)).sum())
    c = int(((cp != y) & (hp == y)).sum())
    assert b > c and binomtest(c, b + c, 0.5).pvalue < settings.alpha
    assert skm.roc_auc_score(y, chall) - skm.roc_auc_score(y, champ) > 0.05
    assert result.paired_test.ci_low > 0
    assert result.checks["mcnemar"] is True and result.mcnemar_verdict == "outvoted"
    assert result.to_dict()["mcnemar_verdict"] == "outvoted"
    assert result.decision == "promote"
    guard = next(r for r in result.reasons if r.startswith("McNemar"))
    assert f"b={b} > c={c}" in guard
    assert "significantly better on roc_auc, the primary metric" in guard and "the primary metric decides" in guard


def test_mcnemar_guard_still_vetoes_a_gain_that_is_not_significant():
    # The same shift of the champion's own scores: identical ranking (AUC gain 0, promoted on the
    # estimate under expected_gain), more argmax errors: the guard vetoes.
    y, champ, chall = _ranking_vs_argmax(shift=1.5, challenger_noise=0.0)
    settings = cmp_settings(policy="expected_gain", primary_metric="roc_auc")
    cp, hp = (champ > 0.5).astype(int), (chall > 0.5).astype(int)
    result = compare_models(y, cp, hp, settings, champion_proba=champ, challenger_proba=chall)
    assert skm.roc_auc_score(y, chall) == pytest.approx(skm.roc_auc_score(y, champ), abs=1e-12)
    assert result.checks["expected_gain"] is True
    assert not result.paired_test.ci_low > 0
    assert result.checks["mcnemar"] is False and result.decision == "reject"
    assert result.mcnemar_verdict == "worse"
    assert any("challenger significantly more often wrong than the champion" in r for r in result.reasons)


def test_mcnemar_guard_still_vetoes_a_positive_gain_whose_bound_is_not_above_zero():
    # A slightly better ranking (positive estimate) with shifted scores: the estimate passes
    # expected_gain and the bound passes a generous non-inferiority margin, but the gain is not
    # significant, so McNemar's significant excess of errors still vetoes.
    y, champ, chall = _ranking_vs_argmax(shift=1.5, challenger_noise=1.5, seed=SMALL_GAIN_SEED)
    cp, hp = (champ > 0.5).astype(int), (chall > 0.5).astype(int)
    assert skm.roc_auc_score(y, chall) > skm.roc_auc_score(y, champ)
    for policy in ("expected_gain", "non_inferiority"):
        settings = cmp_settings(policy=policy, primary_metric="roc_auc", non_inferiority_margin=0.05)
        result = compare_models(y, cp, hp, settings, champion_proba=champ, challenger_proba=chall)
        assert result.paired_test.effect > 0 and result.paired_test.ci_low <= 0
        assert result.checks["expected_gain" if policy == "expected_gain" else "non_inferiority_margin"] is True
        assert result.checks["mcnemar"] is False and result.decision == "reject"


def test_a_label_metric_never_outvotes_the_mcnemar_guard():
    # Recall bought by labelling every row positive: recall significantly better, far more
    # errors. Label metrics are computed from the labels McNemar counts: the guard keeps its veto.
    rng = np.random.default_rng(11)
    n = 2000
    y = (rng.random(n) < 0.1).astype(int)
    champ = np.where(rng.random(n) < 0.9, y, 1 - y)
    chall = np.ones(n, dtype=int)
    for metric in ("recall", "balanced_accuracy", "f1"):
        settings = cmp_settings(policy="expected_gain", primary_metric=metric)
        result = compare_models(y, champ, chall, settings)
        if metric == "recall":
            assert result.paired_test.ci_low > 0  # the metric alone would promote it
        assert result.checks["mcnemar"] is False and result.decision == "reject", metric
    # The same rows with the override turned off by the caller (reinstatement): vetoed too.
    y2, c2, h2 = _ranking_vs_argmax(shift=1.5, challenger_noise=0.8)
    strict = compare_models(
        y2,
        (c2 > 0.5).astype(int),
        (h2 > 0.5).astype(int),
        cmp_settings(policy="expected_gain", primary_metric="roc_auc"),
        champion_proba=c2,
        challenger_proba=h2,
        metric_outvotes_mcnemar=False,
    )
    assert strict.paired_test.ci_low > 0 and strict.checks["mcnemar"] is False and strict.decision == "reject"
    assert strict.mcnemar_verdict == "worse"


def test_mcnemar_guard_uses_the_configured_method():
    # b=11, c=3: exact p = 0.057 (not significant), mid-p = 0.035 (significant): the guard
    # fires only with mid-p. The margin is generous so only the guard decides.
    y, champ, chall = binary_preds(both_right=280, b=11, c=3, both_wrong=6)
    kwargs = {"policy": "non_inferiority", "non_inferiority_margin": 0.2}
    exact = compare_models(y, champ, chall, acc_settings(mcnemar_method="exact", **kwargs))
    midp = compare_models(y, champ, chall, acc_settings(**kwargs))
    assert exact.mcnemar.p_value == pytest.approx(binomtest(3, 14, 0.5).pvalue) and exact.mcnemar.p_value > 0.05
    assert midp.mcnemar.p_value == pytest.approx(midp_by_hand(11, 3)) and midp.mcnemar.p_value < 0.05
    assert exact.decision == "promote" and midp.decision == "reject"
    assert "McNemar (mid-p) p=0.0352" in midp.reasons[2]


def test_non_inferior_fresher_model_promoted_only_under_non_inferiority():
    y, champ, chall = binary_preds(both_right=1900, b=20, c=18, both_wrong=62)
    ni = compare_models(y, champ, chall, acc_settings(policy="non_inferiority", non_inferiority_margin=0.01))
    sup = compare_models(y, champ, chall, acc_settings(policy="superiority"))
    _, lower, _ = paired_accuracy(20, 18, 2000)
    assert -0.01 < lower < 0
    assert ni.decision == "promote"
    assert ni.paired_test.null_value == -0.01
    assert ni.reasons[1].startswith(
        f"challenger accuracy -0.001 (95% one-sided lower bound {lower:+.3f}) is above -0.010"
    )
    assert "not significantly more often wrong" in ni.reasons[2]
    assert sup.decision == "reject"
    assert sup.checks == {"floor": True, "improvement": False, "mcnemar": True}


def test_non_inferiority_rejects_a_model_2_4_points_worse_even_if_not_significantly_worse():
    # The issue's case: 2.4 points worse, McNemar not significant; the old rule ("not
    # significantly worse") promoted it. The lower bound is far below -margin.
    y, champ, chall = binary_preds(both_right=200, b=11, c=5, both_wrong=34)
    result = compare_models(y, champ, chall, acc_settings(policy="non_inferiority", non_inferiority_margin=0.01))
    effect, lower, _ = paired_accuracy(11, 5, 250)
    assert effect == pytest.approx(-0.024)
    assert result.mcnemar.p_value >= 0.05 and result.checks["mcnemar"] is True
    assert result.decision == "reject"
    assert result.checks["non_inferiority_margin"] is False
    assert result.reasons[1].startswith(
        f"challenger accuracy -0.024 (95% one-sided lower bound {lower:+.3f}) is not above -0.010: "
        "the data do not rule out that the challenger is worse"
    )


def test_better_auc_is_promoted_although_mcnemar_is_not_significant():
    # The case: ~290 rows, challenger +0.088 roc_auc, McNemar p ~0.17 on the
    # per-row correctness. The decision now follows the metric's own paired test.
    rng = np.random.default_rng(148)
    n = 290
    y = (rng.random(n) < 0.35).astype(int)
    shared = rng.normal(size=n)
    s1 = 1 / (1 + np.exp(-(1.0 * y - 0.6 + 0.9 * shared + 0.7 * rng.normal(size=n))))
    s2 = 1 / (1 + np.exp(-(1.3 * y - 0.75 + 0.9 * shared + 0.5 * rng.normal(size=n))))
    result = compare_models(
        y,
        (s1 > 0.5).astype(int),
        (s2 > 0.5).astype(int),
        cmp_settings(),
        np.column_stack([1 - s1, s1]),
        np.column_stack([1 - s2, s2]),
        classes=[0, 1],
    )
    effect = skm.roc_auc_score(y, s2) - skm.roc_auc_score(y, s1)
    assert effect == pytest.approx(0.088, abs=0.001)
    assert result.mcnemar.p_value > 0.1
    assert result.paired_test.method == "delong" and result.paired_test.effect == pytest.approx(effect)
    assert result.paired_test.p_value < 0.01
    assert result.decision == "promote"
    assert result.metrics["challenger"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s2))


def test_log_loss_lower_is_better():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    champ_proba = proba_from_correct(y, champ, 0.8)
    chall_proba = proba_from_correct(y, chall, 0.8)
    settings = cmp_settings(primary_metric="log_loss", min_improvement=0.1, floor=0.5)
    result = compare_models(y, champ, chall, settings, champ_proba, chall_proba)
    ll_champ = skm.log_loss(y, champ_proba)
    ll_chall = skm.log_loss(y, chall_proba)
    assert ll_chall < ll_champ
    assert result.metrics["challenger"]["log_loss"] == pytest.approx(ll_chall)
    assert result.paired_test.method == "paired_t"
    assert result.paired_test.effect == pytest.approx(ll_champ - ll_chall)  # positive = better
    assert result.decision == "promote"
    assert result.reasons[0].startswith("challenger log_loss") and "<= ceiling 0.500" in result.reasons[0]
    assert result.reasons[1].startswith(f"challenger log_loss +{ll_champ - ll_chall:.3f} (sign-adjusted")

    # Swapping roles: the higher-log-loss model must not be promoted.
    swapped = compare_models(y, chall, champ, settings, chall_proba, champ_proba)
    assert swapped.decision == "reject"
    assert swapped.paired_test.effect == pytest.approx(ll_chall - ll_champ)
    assert swapped.reasons[1].startswith(f"challenger log_loss -{ll_champ - ll_chall:.3f}")

    # A log_loss ceiling the challenger exceeds rejects it.
    strict = cmp_settings(primary_metric="log_loss", floor=0.2)
    assert compare_models(y, champ, chall, strict, champ_proba, chall_proba).checks["floor"] is False


@pytest.mark.parametrize("metric", ["f1", "balanced_accuracy", "precision", "recall"])
def test_bootstrap_metrics_decide_with_seeded_resamples(metric):
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    settings = cmp_settings(primary_metric=metric, bootstrap_resamples=500, seed=3)
    result = compare_models(y, champ, chall, settings)
    assert result.paired_test.method == "bootstrap"
    assert result.paired_test.challenger == pytest.approx(result.metrics["challenger"][metric])
    assert result.paired_test.champion == pytest.approx(result.metrics["champion"][metric])
    assert result.decision == "promote"
    assert compare_models(y, champ, chall, settings).to_dict() == result.to_dict()  # seeded


def test_primary_metric_without_probabilities_raises():
    y, champ, chall = binary_preds(20, 2, 3, 1)
    with pytest.raises(ValueError, match="roc_auc requires probabilities but champion_proba is None"):
        compare_models(y, champ, chall, cmp_settings())
    chall_proba = proba_from_correct(y, chall, 0.9)
    with pytest.raises(ValueError, match="log_loss requires probabilities but champion_proba is None"):
        compare_models(y, champ, chall, cmp_settings(primary_metric="log_loss"), None, chall_proba)


def test_models_with_different_label_sets_share_one_averaging_scheme():
    # Champion (labels only) predicts an extra class 2 the binary challenger lacks; the
    # comparison must average both models the same way (macro over the shared label space).
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    champ = np.array([0, 2, 1, 0, 1, 2, 0, 1, 0, 0])
    chall = np.array([0, 1, 1, 0, 1, 0, 0, 1, 0, 0])
    chall_proba = proba_from_correct(y, chall, 0.8)
    result = compare_models(y, champ, chall, acc_settings(policy="non_inferiority"), None, chall_proba, classes=[0, 1])
    for role, pred in (("champion", champ), ("challenger", chall)):
        assert result.metrics[role]["f1"] == pytest.approx(
            skm.f1_score(y, pred, labels=None, average="macro", zero_division=0)
        )
    assert "roc_auc" in result.metrics["challenger"] and "roc_auc" not in result.metrics["champion"]
    assert (result.mcnemar.b, result.mcnemar.c) == (0, 2)
    _, lower, _ = paired_accuracy(0, 2, 10)
    assert result.paired_test.ci_low == pytest.approx(lower)
    assert result.decision == ("promote" if lower > -0.01 else "reject")


@pytest.mark.parametrize("primary", ["roc_auc", "log_loss", "accuracy"])
def test_class_new_in_holdout_is_scored_not_an_error(primary):
    # Champion trained on {a, b}; challenger on {a, b, c} (columns in its own order);
    # the holdout contains c.
    rng = np.random.default_rng(5)
    n = 300
    y = rng.choice(np.array(["a", "b", "c"]), size=n, p=[0.45, 0.4, 0.15])
    onehot = np.stack([(y == k).astype(float) for k in ("a", "b", "c")], axis=1)
    chall_abc = np.exp(2.0 * onehot + rng.normal(size=(n, 3)))
    chall_abc /= chall_abc.sum(axis=1, keepdims=True)
    champ_ab = np.exp(2.0 * onehot[:, :2] + rng.normal(size=(n, 2)))
    champ_ab /= champ_ab.sum(axis=1, keepdims=True)
    champ_pred = np.array(["a", "b"])[champ_ab.argmax(axis=1)]
    chall_pred = np.array(["a", "b", "c"])[chall_abc.argmax(axis=1)]
    chall_cols = chall_abc[:, [2, 0, 1]]  # the challenger reports classes_ = [c, a, b]

    result = compare_models(
        y,
        champ_pred,
        chall_pred,
        cmp_settings(primary_metric=primary),
        champ_ab,
        chall_cols,
        champion_classes=["a", "b"],
        challenger_classes=["c", "a", "b"],
    )
    assert result.outcome_code == "ok"
    assert result.decision in ("promote", "reject") and len(result.reasons) == 3
    assert any(ch.isdigit() for ch in result.reasons[1])
    # Independent alignment: champion gets probability 0 for c.
    champ_abc = np.column_stack([champ_ab, np.zeros(n)])
    labels = ["a", "b", "c"]
    expected = {
        "champion": (
            skm.roc_auc_score(y, champ_abc, multi_class="ovr", labels=labels),
            skm.log_loss(y, champ_abc, labels=labels),
        ),
        "challenger": (
            skm.roc_auc_score(y, chall_abc, multi_class="ovr", labels=labels),
            skm.log_loss(y, chall_abc, labels=labels),
        ),
    }
    for role, (auc, ll) in expected.items():
        assert result.metrics[role]["roc_auc"] == pytest.approx(auc, rel=1e-12)
        assert result.metrics[role]["log_loss"] == pytest.approx(ll, rel=1e-12)
    # The champion is worse because it gives c probability 0 (AUC 0.5 for c, -log(eps) per c row).
    assert result.metrics["champion"]["log_loss"] > result.metrics["challenger"]["log_loss"] + 3
    assert result.metrics["champion"]["roc_auc"] < result.metrics["challenger"]["roc_auc"]
    if primary != "accuracy":
        assert result.paired_test.effect > 0 and result.decision == "promote"


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


# --------------------------------------------------------------------------------------
# degenerate inputs: a named outcome, never a crash or a silent pass
# --------------------------------------------------------------------------------------


def test_nan_scores_reject_naming_the_model_and_rows():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    champ_proba = proba_from_correct(y, champ, 0.7)
    chall_proba = proba_from_correct(y, chall, 0.9)
    champ_proba[[3, 7, 9], :] = np.nan
    result = compare_models(y, champ, chall, cmp_settings(), champ_proba, chall_proba)
    assert (result.decision, result.outcome_code) == ("reject", "nan_scores")
    assert result.reasons == [
        "champion produced non-finite scores (NaN/inf probabilities or NaN predictions) on 3 of "
        "150 held-out rows; a comparison needs finite scores: not promoting",
        "challenger scores are finite on all 150 held-out rows",
    ]
    assert result.checks == {"champion_finite_scores": False, "challenger_finite_scores": True}
    assert result.mcnemar is None and result.mcnemar_verdict is None

    chall_pred = chall.astype(float)
    chall_pred[0] = np.nan
    chall_proba[5, 1] = np.inf
    both = compare_models(y, champ, chall_pred, cmp_settings(), champ_proba, chall_proba)
    assert both.outcome_code == "nan_scores"
    assert [r.split(" produced")[0] for r in both.reasons] == ["champion", "challenger"]
    assert "on 2 of 150" in both.reasons[1]
    cold = evaluate_cold_start(y, chall, cmp_settings(), chall_proba)
    assert (cold.decision, cold.outcome_code) == ("reject", "nan_scores")
    # Missing string predictions (None / NaN in an object column) count as well.
    labels = np.array(["a", "b"], dtype=object)[y]
    missing = labels.copy()
    missing[[1, 2]] = [None, float("nan")]
    obj = compare_models(labels, labels, missing, acc_settings())
    assert obj.outcome_code == "nan_scores" and "challenger produced" in obj.reasons[1]
    assert "on 2 of 150" in obj.reasons[1]
    assert "on 1 of 150" in cold.reasons[1]


def test_single_class_holdout_is_a_named_reject_for_roc_auc():
    ones = np.ones(40, dtype=int)
    pred = np.array([1] * 30 + [0] * 10)
    proba = proba_from_correct(ones, pred, 0.9)
    result = compare_models(ones, pred, pred, cmp_settings(), proba, proba, classes=[0, 1])
    assert (result.decision, result.outcome_code) == ("reject", "single_class_holdout")
    assert result.checks == {"primary_metric_defined": False, "mcnemar": True}
    assert result.mcnemar_verdict == "not_worse"  # identical predictions: b = c = 0
    assert "single class (1, 40 rows)" in result.reasons[0]
    assert result.paired_test is None
    cold = evaluate_cold_start(ones, pred, cmp_settings(), proba, classes=[0, 1])
    assert (cold.decision, cold.outcome_code) == ("reject", "single_class_holdout")
    # A label metric is defined on a single-class holdout: a normal comparison.
    acc = compare_models(ones, pred, np.ones(40, dtype=int), acc_settings())
    assert acc.outcome_code == "ok" and acc.decision == "promote"


def test_constant_challenger_scores_are_a_named_reject():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    constant = np.tile([0.4, 0.6], (150, 1))
    champ_proba = proba_from_correct(y, champ, 0.7)
    for policy in ("superiority", "non_inferiority"):
        result = compare_models(
            y,
            champ,
            np.ones(150, dtype=int),
            cmp_settings(policy=policy, non_inferiority_margin=0.5),
            champ_proba,
            constant,
        )
        assert (result.decision, result.outcome_code) == ("reject", "constant_scores")
        assert result.checks["informative_scores"] is False
        assert result.paired_test.challenger == 0.5
        assert len(result.reasons) == 4  # the other rules are still evaluated and reported
    # Both models constant: AUC 0.5 each, standard error 0 -- no crash, a definite answer.
    both = compare_models(y, champ, champ, cmp_settings(policy="non_inferiority"), constant, constant)
    assert (both.paired_test.effect, both.paired_test.se) == (0.0, 0.0)
    assert (both.decision, both.outcome_code) == ("reject", "constant_scores")
    # A constant champion is compared normally.
    ok = compare_models(y, champ, chall, cmp_settings(), constant, proba_from_correct(y, chall, 0.9))
    assert (ok.outcome_code, ok.decision) == ("ok", "promote")
    cold = evaluate_cold_start(y, chall, cmp_settings(), constant)
    assert (cold.decision, cold.outcome_code) == ("reject", "constant_scores")


def test_no_disagreements_gives_mcnemar_p_one_and_a_decision_on_the_metric():
    y, champ, _ = binary_preds(both_right=100, b=0, c=0, both_wrong=20)
    ni = compare_models(y, champ, champ, acc_settings(policy="non_inferiority"))
    sup = compare_models(y, champ, champ, acc_settings())
    for result in (ni, sup):
        assert (result.mcnemar.b, result.mcnemar.c, result.mcnemar.p_value, result.mcnemar.method) == (
            0,
            0,
            1.0,
            "none",
        )
        assert result.reasons[2].startswith("McNemar: no held-out row where exactly one model is right (b=c=0), p=1")
        assert (result.paired_test.effect, result.paired_test.se) == (0.0, 0.0)
    assert ni.decision == "promote"  # identical is within any positive margin
    assert sup.decision == "reject"  # identical is not an improvement


# --------------------------------------------------------------------------------------
# cold start and serialisation
# --------------------------------------------------------------------------------------


def test_cold_start():
    y, _, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    chall_proba = proba_from_correct(y, chall, 0.9)
    ok = evaluate_cold_start(y, chall, cmp_settings(floor=0.7), chall_proba, classes=[0, 1])
    assert ok.decision == "promote" and ok.outcome_code == "ok"
    assert ok.cold_start is True and ok.mcnemar is None and ok.paired_test is None
    assert ok.mcnemar_verdict is None and ok.to_dict()["mcnemar_verdict"] is None
    assert ok.metrics["champion"] == {}
    assert ok.reasons[0] == "cold start: no champion"
    auc = skm.roc_auc_score(y, chall_proba[:, 1])
    assert ok.metrics["challenger"]["roc_auc"] == pytest.approx(auc)
    est = ok.challenger_estimate
    assert (est.metric, est.method, est.n, est.confidence) == ("roc_auc", "delong", 150, pytest.approx(0.9))
    assert est.value == pytest.approx(auc) and est.ci_low < auc < est.ci_high
    assert ok.reasons[1] == (
        f"challenger roc_auc {auc:.3f} (90% CI {est.ci_low:.3f} to {est.ci_high:.3f}, delong, n=150) >= floor 0.700"
    )

    too_strict = evaluate_cold_start(y, chall, cmp_settings(floor=0.99), chall_proba)
    assert too_strict.decision == "reject"
    assert "< floor 0.990" in too_strict.reasons[1]

    no_floor = evaluate_cold_start(y, chall, acc_settings())
    assert no_floor.decision == "promote"
    assert "no floor configured" in no_floor.reasons[1]
    assert no_floor.challenger_estimate.method == "binomial"

    with pytest.raises(ValueError, match="requires probabilities"):
        evaluate_cold_start(y, chall, cmp_settings())
    with pytest.raises(ValueError, match="challenger_pred has 3"):
        evaluate_cold_start(y, chall[:3], acc_settings())


def test_result_to_dict_is_json_serializable_without_nan():
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    champ_proba = proba_from_correct(y, champ, 0.7)
    chall_proba = proba_from_correct(y, chall, 0.9)
    nan_proba = chall_proba.copy()
    nan_proba[0] = np.nan
    constant = np.tile([0.5, 0.5], (150, 1))
    ones = np.ones(150, dtype=int)
    results = [
        compare_models(y, champ, chall, cmp_settings(), champ_proba, chall_proba),
        compare_models(y, champ, champ, acc_settings(policy="non_inferiority")),  # b=c=0
        evaluate_cold_start(y, chall, cmp_settings(), chall_proba),
        compare_models(y, champ, chall, cmp_settings(), champ_proba, nan_proba),
        compare_models(y, champ, chall, cmp_settings(), constant, constant),
        compare_models(ones, champ, chall, cmp_settings(), champ_proba, chall_proba, classes=[0, 1]),
        compare_models(y, champ, chall, cmp_settings(primary_metric="f1", bootstrap_resamples=200)),
    ]
    assert [r.outcome_code for r in results] == [
        "ok",
        "ok",
        "ok",
        "nan_scores",
        "constant_scores",
        "single_class_holdout",
        "ok",
    ]
    for result in results:
        d = result.to_dict()
        round_trip = json.loads(json.dumps(d, allow_nan=False))
        assert round_trip == d
        assert {
            "decision",
            "outcome_code",
            "reasons",
            "primary_metric",
            "metrics",
            "mcnemar",
            "paired_test",
            "policy",
            "cold_start",
            "checks",
        } <= d.keys()
        assert len(d["reasons"]) == len(d["checks"]) + (1 if result.cold_start else 0)  # one per rule
    assert results[1].to_dict()["mcnemar"]["p_value"] == 1.0
    assert results[1].decision == "promote"
    assert results[2].to_dict()["mcnemar"] is None
    assert results[2].to_dict()["challenger_estimate"]["method"] == "delong"
    assert results[0].to_dict()["paired_test"]["method"] == "delong"
    assert isinstance(results[0].mcnemar, McNemarResult)


def test_object_labels_from_pandas_columns_work():
    # pandas object columns give numpy object arrays, whose items have no .item().
    y, champ, chall = binary_preds(both_right=100, b=5, c=40, both_wrong=5)
    names = np.array(["churn", "stay"], dtype=object)
    champ_proba = proba_from_correct(y, champ, 0.7)
    chall_proba = proba_from_correct(y, chall, 0.9)
    as_obj = compare_models(
        names[y],
        names[champ],
        names[chall],
        cmp_settings(primary_metric="f1", bootstrap_resamples=200),
        champ_proba,
        chall_proba,
        classes=names,
    )
    as_int = compare_models(
        y, champ, chall, cmp_settings(primary_metric="f1", bootstrap_resamples=200), champ_proba, chall_proba
    )
    assert as_obj.metrics == as_int.metrics  # positive class "stay" = sorted last, like 1
    single = compare_models(
        names[np.zeros(150, dtype=int)],
        names[champ],
        names[chall],
        cmp_settings(),
        champ_proba,
        chall_proba,
        classes=names,
    )
    assert single.outcome_code == "single_class_holdout" and "('churn', 150 rows)" in single.reasons[0]


def test_expected_gain_policy_decides_on_the_point_estimate_and_reports_the_interval():
    rng = np.random.default_rng(5)
    n = 300
    y = rng.integers(0, 2, n)
    base = y + rng.normal(0, 1.2, n)
    champ = 1 / (1 + np.exp(-(base + rng.normal(0, 0.6, n))))
    chall = 1 / (1 + np.exp(-(base + rng.normal(0, 0.5, n))))
    settings = cmp_settings(policy="expected_gain", primary_metric="roc_auc")
    result = compare_models(
        y, (champ > 0.5).astype(int), (chall > 0.5).astype(int), settings, champion_proba=champ, challenger_proba=chall
    )
    effect = skm.roc_auc_score(y, chall) - skm.roc_auc_score(y, champ)
    assert result.paired_test.effect == pytest.approx(effect, abs=1e-12)
    assert result.checks["expected_gain"] is (effect >= 0)
    assert any("CI" in r for r in result.reasons)
    # Swapping the roles flips the estimate, so exactly one direction is promoted on it
    # (unless the McNemar guard objects).
    swapped = compare_models(
        y, (chall > 0.5).astype(int), (champ > 0.5).astype(int), settings, champion_proba=chall, challenger_proba=champ
    )
    assert swapped.checks["expected_gain"] is (effect <= 0)


def test_a_single_class_holdout_keeps_the_mcnemar_veto_in_its_verdict():
    # No paired test runs on one class, so nothing can outvote the guard.
    ones = np.ones(60, dtype=int)
    champ = np.ones(60, dtype=int)
    chall = np.array([0] * 20 + [1] * 40)  # b = 20, c = 0
    proba_c, proba_h = proba_from_correct(ones, champ, 0.9), proba_from_correct(ones, chall, 0.9)
    result = compare_models(ones, champ, chall, cmp_settings(), proba_c, proba_h, classes=[0, 1])
    assert result.outcome_code == "single_class_holdout" and (result.mcnemar.b, result.mcnemar.c) == (20, 0)
    assert result.mcnemar_verdict == "worse" and result.checks["mcnemar"] is False


@pytest.mark.parametrize(
    ("stored", "verdict"),
    [
        ({"mcnemar": {"b": 54, "c": 32, "p_value": 0.018, "method": "midp"}, "checks": {"mcnemar": True}}, "outvoted"),
        ({"mcnemar": {"b": 54, "c": 32, "p_value": 0.018, "method": "midp"}, "checks": {"mcnemar": False}}, "worse"),
        ({"mcnemar": {"b": 54, "c": 32, "p_value": 0.2, "method": "midp"}, "checks": {"mcnemar": True}}, "not_worse"),
        ({"mcnemar": {"b": 10, "c": 40, "p_value": 0.001, "method": "midp"}, "checks": {"mcnemar": True}}, "not_worse"),
        ({"mcnemar": {"b": 0, "c": 0, "p_value": 1.0, "method": "none"}, "checks": {"mcnemar": True}}, "not_worse"),
        ({"mcnemar": None, "checks": {}}, None),
        ({"decision": "reinstate", "reasons": ["..."]}, None),
        ({"mcnemar": {"b": 54, "c": 32, "p_value": 0.018}, "mcnemar_verdict": "worse"}, "worse"),
    ],
)
def test_the_verdict_of_a_comparison_stored_before_the_field_existed(stored, verdict):
    assert mcnemar_verdict_of(stored, 0.05) == verdict


def test_the_derived_verdict_equals_the_computed_one():
    # Oracle: compare_models' own verdict, on the three kinds of outcome.
    y, champ, chall = _ranking_vs_argmax(shift=1.5, challenger_noise=0.8)

    def judged(champion, challenger, **kwargs):
        return compare_models(
            y,
            (champion > 0.5).astype(int),
            (challenger > 0.5).astype(int),
            cmp_settings(),
            champion_proba=champion,
            challenger_proba=challenger,
            **kwargs,
        )

    cases = [judged(champ, chall), judged(champ, chall, metric_outvotes_mcnemar=False), judged(chall, champ)]
    assert [r.mcnemar_verdict for r in cases] == ["outvoted", "worse", "not_worse"]
    for r in cases:
        stored = {k: v for k, v in r.to_dict().items() if k != "mcnemar_verdict"}
        assert mcnemar_verdict_of(stored, cmp_settings().alpha) == r.mcnemar_verdict
