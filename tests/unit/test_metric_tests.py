"""Tests for include/retrainer/metric_tests.py.

Oracles: scikit-learn (metric values, log loss with clipping), a direct O(n*m)
placement-value DeLong written here, scipy.stats (t-tests, normal quantiles), and
seeded row bootstraps computed here with scikit-learn / rank formulas.
"""

import json
import math
import time
import warnings

import numpy as np
import pytest
from scipy.stats import norm, rankdata, ttest_1samp, ttest_rel
from sklearn import metrics as skm

from include.retrainer.metric_tests import (
    LOG_LOSS_EPS,
    MetricEstimate,
    PairedTest,
    delong_auc,
    delong_paired,
    label_metric_from_confusion,
    metric_estimate,
    paired_metric_test,
)

# --------------------------------------------------------------------------------------
# data and independent references
# --------------------------------------------------------------------------------------


def binary_scores(n, seed, shift_a=0.8, shift_b=1.1, shared=0.6, ties=False, prevalence=0.4):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    common = rng.normal(size=n)
    a = shift_a * y + shared * common + rng.normal(size=n)
    b = shift_b * y + shared * common + rng.normal(size=n)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return y, a, b


def multiclass_proba(n, k, seed, strength=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    common = rng.normal(size=(n, k))
    logits_a = strength * np.eye(k)[y] + 0.7 * common + rng.normal(size=(n, k))
    logits_b = 1.3 * strength * np.eye(k)[y] + 0.7 * common + rng.normal(size=(n, k))
    pa = np.exp(logits_a) / np.exp(logits_a).sum(axis=1, keepdims=True)
    pb = np.exp(logits_b) / np.exp(logits_b).sum(axis=1, keepdims=True)
    return y, pa, pb


def placements(pos_scores, neg_scores):
    """Direct O(m*n) DeLong placements: psi(x, y) = 1 if x > y, 1/2 if tied, else 0."""
    psi = (pos_scores[:, None] > neg_scores[None, :]) + 0.5 * (pos_scores[:, None] == neg_scores[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)  # V10 per positive, V01 per negative


def direct_delong(y, scores_list):
    """AUCs and DeLong covariance matrix S10/m + S01/n by explicit pairs (DeLong 1988)."""
    pos, neg = y == 1, y == 0
    v10 = np.array([placements(s[pos], s[neg])[0] for s in scores_list])
    v01 = np.array([placements(s[pos], s[neg])[1] for s in scores_list])
    aucs = v10.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10)) / pos.sum() + np.atleast_2d(np.cov(v01)) / neg.sum()
    return aucs, cov


def direct_macro_influence(y, proba):
    """Per-row influence on the OvR macro AUC, by explicit pairs, and the variance."""
    present = np.unique(y)
    psi = np.zeros(y.size)
    for k in present:
        pos, neg = y == k, y != k
        v10, v01 = placements(proba[pos, k], proba[neg, k])
        auc = v10.mean()
        psi[pos] += (v10 - auc) / pos.sum()
        psi[neg] += (v01 - auc) / neg.sum()
    psi /= present.size
    return psi


def stratified_var(psi, y):
    total = 0.0
    for k in np.unique(y):
        rows = psi[y == k]
        total += rows.size / (rows.size - 1) * np.sum(rows**2)
    return total


def rank_auc_rows(y_rows, s_rows):
    """AUC of each row of (B, n) resampled arrays by the Mann-Whitney rank formula."""
    ranks = rankdata(s_rows, axis=1)
    m = y_rows.sum(axis=1)
    n = y_rows.shape[1] - m
    return ((ranks * y_rows).sum(axis=1) - m * (m + 1) / 2) / (m * n)


def bootstrap_idx(n, resamples=2000, seed=123):
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def row_bootstrap_confusions(y, pred, k, idx):
    """(B, k, k) confusion matrices of explicitly resampled rows (one bincount per resample)."""
    codes = y[idx] * k + pred[idx] + (np.arange(idx.shape[0]) * k * k)[:, None]
    return np.bincount(codes.ravel(), minlength=idx.shape[0] * k * k).reshape(-1, k, k)


# --------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (2, False), (3, True)])
def test_binary_auc_equals_sklearn_and_variance_equals_direct_delong(seed, ties):
    y, a, b = binary_scores(int(60 + 37 * seed), seed, ties=ties)
    est = delong_auc(y, a)
    assert est.value == pytest.approx(skm.roc_auc_score(y, a), rel=1e-12)
    aucs, cov = direct_delong(y, [a, b])
    assert est.se == pytest.approx(math.sqrt(cov[0, 0]), rel=1e-10)

    paired = delong_paired(y, a, b)
    assert (paired.auc_a, paired.auc_b) == pytest.approx(tuple(aucs), rel=1e-12)
    assert paired.se_b == pytest.approx(math.sqrt(cov[1, 1]), rel=1e-10)
    assert paired.covariance == pytest.approx(cov[0, 1], rel=1e-9, abs=1e-15)
    expected_diff = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert paired.se_diff == pytest.approx(expected_diff, rel=1e-10)


def test_binary_inputs_as_two_columns_or_string_labels_give_the_same_answer():
    y, a, _ = binary_scores(150, 7)
    p = 1 / (1 + np.exp(-a))
    one_d = delong_auc(y, p)
    two_cols = delong_auc(y, np.column_stack([1 - p, p]), classes=[0, 1])
    reversed_cols = delong_auc(y, np.column_stack([p, 1 - p]), classes=[1, 0])
    labels = np.where(y == 1, "yes", "no")
    strings = delong_auc(labels, p)  # positive class = sorted labels[-1] = "yes"
    for other in (two_cols, reversed_cols, strings):
        assert other.value == pytest.approx(one_d.value, rel=1e-12)
        assert other.se == pytest.approx(one_d.se, rel=1e-12)


@pytest.mark.parametrize("seed, k", [(0, 3), (1, 4), (2, 5)])
def test_multiclass_macro_auc_equals_sklearn_and_variance_equals_direct_influence(seed, k):
    y, pa, pb = multiclass_proba(300, k, seed)
    est = delong_auc(y, pa, classes=list(range(k)))
    assert est.value == pytest.approx(skm.roc_auc_score(y, pa, multi_class="ovr", average="macro"), rel=1e-12)
    psi_a = direct_macro_influence(y, pa)
    assert est.se == pytest.approx(math.sqrt(stratified_var(psi_a, y)), rel=1e-10)
    paired = delong_paired(y, pa, pb, classes=list(range(k)))
    psi_b = direct_macro_influence(y, pb)
    assert paired.se_diff == pytest.approx(math.sqrt(stratified_var(psi_a - psi_b, y)), rel=1e-10)
    assert paired.classes == tuple(range(k))


def test_multiclass_uses_only_classes_present_in_y_true():
    y, pa, _ = multiclass_proba(200, 4, 5)
    keep = y != 2  # class 2 absent from the holdout: it has no AUC
    est = delong_auc(y[keep], pa[keep], classes=[0, 1, 2, 3])
    expected = np.mean([skm.roc_auc_score(y[keep] == c, pa[keep, c]) for c in (0, 1, 3)])
    assert est.value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "n, seed, shift_a, shift_b, shared, prevalence",
    [(300, 11, 0.8, 1.1, 0.6, 0.4), (500, 12, 1.5, 1.6, 1.2, 0.2), (800, 13, 0.3, 0.9, 0.0, 0.5)],
)
def test_paired_delong_se_matches_paired_bootstrap(n, seed, shift_a, shift_b, shared, prevalence):
    y, a, b = binary_scores(n, seed, shift_a, shift_b, shared, prevalence=prevalence)
    idx = bootstrap_idx(n, 2000, seed)
    y_rows = y[idx]
    boot = rank_auc_rows(y_rows, b[idx]) - rank_auc_rows(y_rows, a[idx])
    paired = delong_paired(y, a, b)
    assert paired.se_diff == pytest.approx(np.std(boot, ddof=1), rel=0.10)
    single = rank_auc_rows(y_rows, a[idx])
    assert delong_auc(y, a).se == pytest.approx(np.std(single, ddof=1), rel=0.10)


@pytest.mark.parametrize("seed, k", [(21, 3), (22, 4)])
def test_multiclass_se_matches_bootstrap(seed, k):
    n = 400
    y, pa, pb = multiclass_proba(n, k, seed)
    idx = bootstrap_idx(n, 2000, seed)
    y_rows = y[idx]
    macro_a = np.mean([rank_auc_rows((y_rows == c).astype(int), pa[:, c][idx]) for c in range(k)], axis=0)
    macro_b = np.mean([rank_auc_rows((y_rows == c).astype(int), pb[:, c][idx]) for c in range(k)], axis=0)
    classes = list(range(k))
    assert delong_auc(y, pa, classes).se == pytest.approx(np.std(macro_a, ddof=1), rel=0.10)
    assert delong_paired(y, pa, pb, classes).se_diff == pytest.approx(np.std(macro_b - macro_a, ddof=1), rel=0.10)


def test_constant_scores_give_auc_half_and_zero_se():
    y = np.array([0, 1] * 20)
    est = delong_auc(y, np.full(40, 0.3))
    assert (est.value, est.se) == (0.5, 0.0)
    test = paired_metric_test("roc_auc", y, None, None, np.full(40, 0.3), np.full(40, 0.7), None, 0.05, 0.0)
    assert (test.effect, test.se, test.ci_low, test.ci_high, test.p_value, test.mde) == (0.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def test_delong_rejects_undefined_inputs():
    with pytest.raises(ValueError, match="single class"):
        delong_auc([1, 1, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"non-finite .* in 1 of 3 rows"):
        delong_auc([0, 1, 1], [0.2, float("nan"), 0.4])
    with pytest.raises(ValueError, match=r"labels \[2\] not in classes"):
        delong_auc([0, 1, 2], np.eye(3)[:, :2], classes=[0, 1])


def test_delong_is_fast_on_a_large_multiclass_holdout():
    y, pa, pb = multiclass_proba(120_000, 4, 3)
    start = time.perf_counter()
    paired = delong_paired(y, pa, pb, classes=[0, 1, 2, 3])
    elapsed = time.perf_counter() - start
    assert paired.se_diff > 0
    assert elapsed < 20, f"DeLong took {elapsed:.1f}s on 120k rows (expected O(n log n))"


# --------------------------------------------------------------------------------------
# label metrics from confusion matrices (the bootstrap's engine)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("k, seed", [(2, 0), (2, 1), (3, 2), (5, 3)])
def test_label_metrics_from_confusion_equal_sklearn_on_resamples(k, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, 60)
    pred = np.where(rng.random(60) < 0.6, y, rng.integers(0, k, 60))
    kwargs = {"average": "binary", "pos_label": 1} if k == 2 else {"average": "macro"}
    for r in range(25):  # resamples often miss classes: exercises the zero-division rules
        rows = rng.integers(0, 60, int(rng.integers(3, 60)))
        cm = np.zeros((k, k))
        np.add.at(cm, (y[rows], pred[rows]), 1)
        expected = {
            "accuracy": skm.accuracy_score(y[rows], pred[rows]),
            "precision": skm.precision_score(y[rows], pred[rows], zero_division=0, **kwargs),
            "recall": skm.recall_score(y[rows], pred[rows], zero_division=0, **kwargs),
            "f1": skm.f1_score(y[rows], pred[rows], zero_division=0, **kwargs),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
            expected["balanced_accuracy"] = skm.balanced_accuracy_score(y[rows], pred[rows])
        for metric, value in expected.items():
            got = float(label_metric_from_confusion(metric, cm, binary=k == 2))
            assert got == pytest.approx(value, abs=1e-12), (metric, r)


# --------------------------------------------------------------------------------------
# one model
# --------------------------------------------------------------------------------------


def test_metric_estimate_accuracy_and_roc_auc():
    y, a, _ = binary_scores(250, 4)
    pred = (a > 0.5).astype(int)
    acc = metric_estimate("accuracy", y, pred, None, None)
    p = np.mean(pred == y)
    assert (acc.value, acc.method, acc.n) == (pytest.approx(p), "binomial", 250)
    assert acc.se == pytest.approx(math.sqrt(p * (1 - p) / 250))
    assert acc.ci_low == pytest.approx(p - norm.ppf(0.975) * acc.se)

    proba = 1 / (1 + np.exp(-a))
    auc = metric_estimate("roc_auc", y, None, proba, [0, 1], confidence=0.9)
    assert auc.value == pytest.approx(skm.roc_auc_score(y, proba))
    assert auc.se == pytest.approx(math.sqrt(direct_delong(y, [proba])[1][0, 0]), rel=1e-10)
    assert auc.ci_high - auc.value == pytest.approx(norm.ppf(0.95) * auc.se)
    assert auc.confidence == 0.9


def test_metric_estimate_log_loss_matches_sklearn_including_zero_probabilities():
    y, pa, _ = multiclass_proba(200, 3, 8)
    pa[:, 2] = 0.0  # a model that never saw class 2: its rows cost -log(eps)
    pa /= pa.sum(axis=1, keepdims=True)
    est = metric_estimate("log_loss", y, None, pa, [0, 1, 2])
    assert est.value == pytest.approx(skm.log_loss(y, pa, labels=[0, 1, 2]), rel=1e-12)
    per_row = -np.log(np.clip(pa[np.arange(200), y], LOG_LOSS_EPS, 1 - LOG_LOSS_EPS))
    assert est.se == pytest.approx(np.std(per_row, ddof=1) / math.sqrt(200), rel=1e-12)
    assert est.method == "per_row_mean"


@pytest.mark.parametrize("metric", ["f1", "balanced_accuracy", "precision", "recall"])
def test_metric_estimate_bootstrap_matches_a_row_bootstrap_and_is_seeded(metric):
    # The module draws multinomial cell counts; here rows are resampled explicitly. The
    # metric-from-confusion step is checked against scikit-learn in the test above.
    rng = np.random.default_rng(9)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.65, y, rng.integers(0, 3, 300))
    est = metric_estimate(metric, y, pred, None, [0, 1, 2], bootstrap_resamples=2000, seed=5)
    fn = {
        "f1": lambda t, p: skm.f1_score(t, p, average="macro", zero_division=0),
        "precision": lambda t, p: skm.precision_score(t, p, average="macro", zero_division=0),
        "recall": lambda t, p: skm.recall_score(t, p, average="macro", zero_division=0),
        "balanced_accuracy": skm.balanced_accuracy_score,
    }[metric]
    assert est.value == pytest.approx(fn(y, pred), rel=1e-12)
    cms = row_bootstrap_confusions(y, pred, 3, bootstrap_idx(300, 2000, 77))
    boot = label_metric_from_confusion(metric, cms, binary=False)
    assert est.se == pytest.approx(np.std(boot, ddof=1), rel=0.10)
    assert est.ci_low < est.value < est.ci_high
    assert est.ci_low == pytest.approx(np.quantile(boot, 0.025), abs=3 * est.se / math.sqrt(20))
    again = metric_estimate(metric, y, pred, None, [0, 1, 2], bootstrap_resamples=2000, seed=5)
    assert again == est
    other_seed = metric_estimate(metric, y, pred, None, [0, 1, 2], bootstrap_resamples=2000, seed=6)
    assert other_seed.se != est.se and other_seed.se == pytest.approx(est.se, rel=0.1)


def test_metric_estimate_validation():
    with pytest.raises(ValueError, match="unknown metric"):
        metric_estimate("mse", [0, 1], [0, 1], None, None)
    with pytest.raises(ValueError, match="needs probabilities"):
        metric_estimate("roc_auc", [0, 1], [0, 1], None, None)
    with pytest.raises(ValueError, match="bootstrap_resamples"):
        metric_estimate("f1", [0, 1], [0, 1], None, None, bootstrap_resamples=10)


# --------------------------------------------------------------------------------------
# paired tests
# --------------------------------------------------------------------------------------


def test_paired_roc_auc_is_delong_with_consistent_interval_p_and_mde():
    y, a, b = binary_scores(300, 31)
    paired = delong_paired(y, a, b)
    for null in (-0.05, 0.0, 0.02, 0.05, 0.1):
        t = paired_metric_test("roc_auc", y, None, None, a, b, None, alpha=0.05, null_value=null)
        assert t.method == "delong" and t.n == 300 and t.confidence == pytest.approx(0.9)
        assert t.effect == pytest.approx(skm.roc_auc_score(y, b) - skm.roc_auc_score(y, a), rel=1e-12)
        assert t.se == pytest.approx(paired.se_diff)
        assert t.p_value == pytest.approx(norm.sf((t.effect - null) / t.se), rel=1e-9)
        assert t.ci_low == pytest.approx(t.effect - norm.ppf(0.95) * t.se)
        assert t.mde == pytest.approx((norm.ppf(0.95) + norm.ppf(0.8)) * t.se)
        assert t.clears_null == (t.p_value < 0.05)


def test_mde_has_80_percent_power_in_the_normal_model():
    # If the true effect is null + mde and the estimate is N(effect, se), the lower bound
    # clears the null with probability 0.8: an independent check of the formula.
    se, alpha, null = 0.02, 0.05, 0.01
    t = PairedTest(
        "roc_auc", "delong", 0.7, 0.7, 0.0, se, 0, 0, 0.9, null, 1.0, (norm.ppf(1 - alpha) + norm.ppf(0.8)) * se, 100
    )
    true_effect = null + t.mde
    power = norm.sf(null + norm.ppf(1 - alpha) * se, loc=true_effect, scale=se)
    assert power == pytest.approx(0.8)


def test_paired_log_loss_is_a_paired_t_test():
    y, pa, pb = multiclass_proba(250, 3, 41)
    loss_a = -np.log(pa[np.arange(250), y])
    loss_b = -np.log(pb[np.arange(250), y])
    t = paired_metric_test("log_loss", y, None, None, pa, pb, [0, 1, 2], alpha=0.05, null_value=0.0)
    assert t.method == "paired_t"
    assert t.champion == pytest.approx(skm.log_loss(y, pa)) and t.challenger == pytest.approx(skm.log_loss(y, pb))
    assert t.effect == pytest.approx(t.champion - t.challenger)  # positive = challenger lower loss
    assert t.effect > 0
    assert t.p_value == pytest.approx(ttest_rel(loss_a, loss_b, alternative="greater").pvalue, rel=1e-9)
    shifted = paired_metric_test("log_loss", y, None, None, pa, pb, [0, 1, 2], alpha=0.05, null_value=0.03)
    assert shifted.p_value == pytest.approx(ttest_1samp(loss_a - loss_b, 0.03, alternative="greater").pvalue, rel=1e-9)
    assert shifted.clears_null == (shifted.p_value < 0.05)


def test_paired_accuracy_difference_of_correlated_proportions():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    p1 = np.where(rng.random(400) < 0.75, y, 1 - y)
    p2 = np.where(rng.random(400) < 0.8, y, 1 - y)
    t = paired_metric_test("accuracy", y, p1, p2, None, None, None, alpha=0.025, null_value=-0.01)
    d = (p2 == y).astype(float) - (p1 == y)  # per-row difference in correctness
    assert t.method == "binomial_diff"
    assert t.effect == pytest.approx(d.mean())
    assert t.se == pytest.approx(np.std(d) / math.sqrt(400))  # Wald SE of a paired difference
    assert t.p_value == pytest.approx(norm.sf((d.mean() + 0.01) / t.se))
    assert t.confidence == pytest.approx(0.95)


def paired_data(k, n=300, seed=17):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    noise = rng.random(n)
    p1 = np.where(noise < 0.7, y, rng.integers(0, k, n))
    p2 = np.where(noise < 0.78, y, rng.integers(0, k, n))  # correlated with p1
    return y, p1, p2


@pytest.mark.parametrize("metric, k", [("f1", 2), ("balanced_accuracy", 3), ("precision", 3), ("recall", 2)])
def test_paired_bootstrap_matches_a_row_bootstrap(metric, k):
    y, p1, p2 = paired_data(k)
    t = paired_metric_test(metric, y, p1, p2, None, None, list(range(k)), alpha=0.05, null_value=0.0)
    assert t.method == "bootstrap"
    idx = bootstrap_idx(y.size, 2000, 99)  # the SAME rows for both models
    boot = label_metric_from_confusion(metric, row_bootstrap_confusions(y, p2, k, idx), k == 2) - (
        label_metric_from_confusion(metric, row_bootstrap_confusions(y, p1, k, idx), k == 2)
    )
    assert t.se == pytest.approx(np.std(boot, ddof=1), rel=0.10)
    assert t.ci_low == pytest.approx(np.quantile(boot, 0.05), abs=0.2 * t.se)
    assert t.clears_null == (t.p_value < 0.05)
    assert t.p_value == pytest.approx(np.mean(boot <= 0), abs=0.03)


def test_paired_bootstrap_f1_against_sklearn_on_resampled_rows():
    # Fully independent oracle for one case: scikit-learn on explicitly resampled rows.
    y, p1, p2 = paired_data(2)
    t = paired_metric_test("f1", y, p1, p2, None, None, [0, 1], alpha=0.05, null_value=0.0)
    f1 = lambda a, b: skm.f1_score(a, b, zero_division=0)  # noqa: E731
    assert (t.champion, t.challenger) == pytest.approx((f1(y, p1), f1(y, p2)), rel=1e-12)
    boot = [f1(y[r], p2[r]) - f1(y[r], p1[r]) for r in bootstrap_idx(y.size, 400, 5)]
    assert t.se == pytest.approx(np.std(boot, ddof=1), rel=0.15)


def test_paired_bootstrap_handles_100k_rows_quickly():
    rng = np.random.default_rng(0)
    n = 100_000
    y = rng.integers(0, 4, n)
    p1 = np.where(rng.random(n) < 0.6, y, rng.integers(0, 4, n))
    p2 = np.where(rng.random(n) < 0.61, y, rng.integers(0, 4, n))
    start = time.perf_counter()
    t = paired_metric_test("f1", y, p1, p2, None, None, [0, 1, 2, 3], 0.05, 0.0)
    assert time.perf_counter() - start < 20
    assert 0 < t.se < 0.01


def test_identical_models_have_zero_se_and_a_deterministic_answer():
    y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    pred = np.array([0, 1, 0, 0, 1, 1, 1, 1])
    for metric in ("accuracy", "f1"):
        sup = paired_metric_test(metric, y, pred, pred, None, None, None, 0.05, 0.0)
        ni = paired_metric_test(metric, y, pred, pred, None, None, None, 0.05, -0.01)
        assert (sup.effect, sup.se, sup.p_value, sup.clears_null) == (0.0, 0.0, 1.0, False)
        assert (ni.p_value, ni.clears_null) == (0.0, True)


def test_paired_test_validation_and_json():
    y, a, b = binary_scores(50, 2)
    with pytest.raises(ValueError, match="alpha"):
        paired_metric_test("roc_auc", y, None, None, a, b, None, 0.6, 0.0)
    with pytest.raises(ValueError, match="probabilities from both"):
        paired_metric_test("roc_auc", y, None, None, a, None, None, 0.05, 0.0)
    with pytest.raises(ValueError, match="predicted labels"):
        paired_metric_test("f1", y, None, y, None, None, None, 0.05, 0.0)
    t = paired_metric_test("roc_auc", y, None, None, a, b, None, 0.05, 0.0)
    d = t.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    est = MetricEstimate("log_loss", float("inf"), float("nan"), 3, "per_row_mean")
    assert est.to_dict()["value"] is None and est.to_dict()["se"] is None


def test_metric_estimate_scores_a_class_the_model_never_saw():
    # A champion trained on {0, 1} scored on a batch that also holds class 2.
    rng = np.random.default_rng(12)
    y = rng.integers(0, 3, 240)
    p1 = np.clip(0.3 + 0.4 * (y == 1) + 0.2 * rng.random(240), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    aligned = np.column_stack([proba, np.zeros(240)])  # independent alignment
    ll = metric_estimate("log_loss", y, None, proba, [0, 1])
    assert ll.value == pytest.approx(skm.log_loss(y, aligned, labels=[0, 1, 2]), rel=1e-12)
    auc = metric_estimate("roc_auc", y, None, proba, [0, 1])
    assert auc.value == pytest.approx(skm.roc_auc_score(y, aligned, multi_class="ovr", labels=[0, 1, 2]))
    psi = direct_macro_influence(y, aligned)
    assert auc.se == pytest.approx(math.sqrt(stratified_var(psi, y)), rel=1e-10)
