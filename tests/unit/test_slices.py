"""Slice gate (include/retrainer/slices.py) against independent oracles.

Per-slice intervals: a textbook O(n^2) DeLong written here from the pairwise definition
(placement values), and the binomial interval by hand; multiplicity: statsmodels' Holm.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

from include.retrainer.compare import aligned_scores
from include.retrainer.slices import MISSING, evaluate_slices, group_labels, holm_adjust


def _naive_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float, float]:
    """(auc_a, auc_b, se_a, se_b, se_diff) by the pairwise definition (DeLong et al. 1988)."""
    pos, neg = y == 1, y == 0
    m, n = pos.sum(), neg.sum()

    def comps(s):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)  # auc, V10 (per pos), V01 (per neg)

    auc_a, v10a, v01a = comps(a)
    auc_b, v10b, v01b = comps(b)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    s = s10 / m + s01 / n
    return auc_a, auc_b, math.sqrt(s[0, 0]), math.sqrt(s[1, 1]), math.sqrt(s[0, 0] + s[1, 1] - 2 * s[0, 1])


def _data(n=1200, seed=0, hurt_region="north", hurt=0.0):
    """Champion and challenger scores; the challenger is better except (optionally) on one region."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n)
    signal = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    champ = 1 / (1 + np.exp(-(signal + rng.normal(0, 1.2, n))))
    chall = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.3, n))))
    bad = region == hurt_region
    chall[bad] = (1 - hurt) * chall[bad] + hurt * rng.random(bad.sum())
    frame = pd.DataFrame({"region": region, "tenure": rng.gamma(2, 10, n)})
    return frame, y, champ, chall


def _evaluate(frame, y, champ, chall, columns=("region",), **kw):
    preds = {"champion": (champ > 0.5).astype(int), "challenger": (chall > 0.5).astype(int)}
    probas = {"champion": np.column_stack([1 - champ, champ]), "challenger": np.column_stack([1 - chall, chall])}
    yt, preds, probas, labels = aligned_scores(y, preds, probas, {"champion": [0, 1], "challenger": [0, 1]})
    kw.setdefault("metric", "roc_auc")
    kw.setdefault("min_rows", 50)
    return evaluate_slices(frame, list(columns), yt, preds, probas, labels, **kw)


def test_per_slice_auc_intervals_and_paired_p_match_a_naive_delong():
    frame, y, champ, chall = _data(n=900, seed=3)
    alpha = 0.05
    rep = _evaluate(frame, y, champ, chall, alpha=alpha)
    z = norm.ppf(1 - alpha / 2)
    for s in rep.slices:
        m = frame["region"].to_numpy() == s.value
        auc_a, auc_b, se_a, se_b, se_d = _naive_delong(y[m], champ[m], chall[m])
        assert s.status == "judged" and s.rows == m.sum()
        assert s.champion["value"] == pytest.approx(auc_a, abs=1e-12)
        assert s.challenger["value"] == pytest.approx(auc_b, abs=1e-12)
        assert s.champion["ci_low"] == pytest.approx(max(0.0, auc_a - z * se_a), abs=1e-9)
        assert s.challenger["ci_high"] == pytest.approx(min(1.0, auc_b + z * se_b), abs=1e-9)
        assert s.effect == pytest.approx(auc_b - auc_a, abs=1e-12)
        # One-sided "challenger worse": small when auc_b << auc_a.
        assert s.p_worse == pytest.approx(norm.cdf((auc_b - auc_a) / se_d), abs=1e-9)
        q = norm.ppf(1 - alpha)
        assert s.effect_ci_low == pytest.approx(auc_b - auc_a - q * se_d, abs=1e-9)


def test_accuracy_slices_use_the_binomial_interval():
    frame, y, champ, chall = _data(n=600, seed=4)
    rep = _evaluate(frame, y, champ, chall, metric="accuracy", alpha=0.1)
    z = norm.ppf(0.95)
    for s in rep.slices:
        m = frame["region"].to_numpy() == s.value
        acc = ((chall[m] > 0.5).astype(int) == y[m]).mean()
        se = math.sqrt(acc * (1 - acc) / m.sum())
        assert s.challenger["value"] == pytest.approx(acc)
        assert s.challenger["ci_low"] == pytest.approx(acc - z * se)
        assert s.method == "binomial_diff"


def test_holm_matches_statsmodels():
    p = [0.01, 0.04, 0.03, 0.2, 0.005, 0.5, 0.049]
    assert holm_adjust(p) == pytest.approx(list(multipletests(p, alpha=0.05, method="holm")[1]))
    assert holm_adjust([]) == []


def test_challenger_better_overall_but_worse_on_one_slice_is_blocked_naming_it():
    frame, y, champ, chall = _data(n=3000, seed=5, hurt_region="north", hurt=0.75)
    # Overall the challenger still wins (two regions of three are better).
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, chall) > roc_auc_score(y, champ)
    rep = _evaluate(frame, y, champ, chall)
    assert not rep.passed
    worse = [s for s in rep.slices if s.worse]
    assert [s.label for s in worse] == ["region=north"]
    assert worse[0].p_adjusted < 0.05 and worse[0].effect < 0
    reason = next(r for r in rep.reasons if "region=north" in r)
    assert "Holm-adjusted" in reason and "not promoting" in reason and f"({worse[0].rows} rows)" in reason
    assert rep.to_dict()["worse"] == ["region=north"]


def test_identical_models_never_block_and_each_slice_has_p_one():
    frame, y, champ, _ = _data(n=800, seed=6)
    rep = _evaluate(frame, y, champ, champ.copy())
    assert rep.passed
    assert all(s.p_worse == 1.0 and not s.worse for s in rep.slices)
    assert "not significantly worse on any of 3 judged slice(s)" in rep.reasons[0]


def test_small_single_class_and_missing_slices_are_named_never_passed_silently():
    frame, y, champ, chall = _data(n=900, seed=7)
    frame.loc[:19, "region"] = "west"  # 20 rows: too small
    y = y.copy()
    frame.loc[20:89, "region"] = "solo"  # 70 rows, one class
    y[20:90] = 1
    frame.loc[90:199, "region"] = None  # missing values: their own slice, judged
    frame.loc[200:279, "region"] = "rare"  # 80 rows, 3 positives: too few of a class for DeLong
    y[200:280] = 0
    y[200:203] = 1
    rep = _evaluate(frame, y, champ, chall)
    by = {s.value: s for s in rep.slices}
    assert by["west"].status == "too_small" and by["west"].rows == 20
    assert by["solo"].status == "single_class" and by["solo"].class_counts == {1: 70}
    assert by[MISSING].status == "judged" and by[MISSING].rows == 110
    assert by["rare"].status == "too_small" and "min_class_rows=10" in by["rare"].note
    assert rep.passed  # nothing judged worse...
    text = " ".join(rep.reasons)
    assert "region=west (20 rows, too small to judge)" in text  # ...but the gaps are said
    assert "region=solo (70 rows, single class)" in text
    d = rep.to_dict()
    assert "region=rare (80 rows, too small to judge)" in text
    assert d["too_small"] == 2 and d["judged"] == 4


def test_missing_column_and_too_many_values_block_with_a_named_outcome():
    frame, y, champ, chall = _data(n=400, seed=8)
    frame["customer"] = [f"c{i}" for i in range(len(frame))]
    rep = _evaluate(frame, y, champ, chall, columns=("plan", "customer"))
    assert not rep.passed
    assert rep.columns["plan"]["status"] == "column_missing"
    assert rep.columns["customer"]["status"] == "too_many_values"
    assert any("'plan' cannot be judged (column_missing)" in r for r in rep.reasons)


def test_numeric_columns_are_cut_into_quantile_bins():
    labels, how = group_labels(np.r_[np.arange(100.0), np.nan], bin_numeric=True, bins=4, max_groups=50)
    assert how == "quantile_bins"
    counts = pd.Series(labels).value_counts()
    assert counts[MISSING] == 1
    assert sorted(counts.drop(MISSING).tolist()) == [25, 25, 25, 25]
    assert "[74.25, 99]" in counts.index  # the last bin is closed
    const, _ = group_labels(np.full(10, 3.0), bin_numeric=True, bins=4, max_groups=50)
    assert set(const) == {"= 3"}
    # A numeric attribute with many values is binned even when not declared numeric.
    _, how = group_labels(np.arange(200), bin_numeric=False, bins=4, max_groups=50)
    assert how == "quantile_bins"


def test_cold_start_reports_the_challenger_per_slice_without_testing():
    frame, y, _, chall = _data(n=600, seed=9)
    p = {"challenger": (chall > 0.5).astype(int)}
    yt, preds, probas, labels = aligned_scores(
        y, p, {"challenger": np.column_stack([1 - chall, chall])}, {"challenger": [0, 1]}
    )
    rep = evaluate_slices(frame, ["region"], yt, preds, probas, labels, metric="roc_auc", min_rows=50)
    assert rep.passed and rep.cold_start
    assert all(s.challenger is not None and s.champion is None and s.p_worse is None for s in rep.slices)


@pytest.mark.parametrize(
    ("metric", "method"),
    [("log_loss", "paired_t"), ("f1", "bootstrap"), ("balanced_accuracy", "bootstrap"), ("roc_auc", "delong")],
)
def test_every_primary_metric_is_judged_per_slice_also_multiclass(metric, method):
    rng = np.random.default_rng(12)
    n = 900
    y = rng.integers(0, 3, n)
    frame = pd.DataFrame({"region": rng.choice(["north", "south"], n)})
    raw = {
        role: rng.dirichlet(np.ones(3), n) + np.eye(3)[y] * k for role, k in (("champion", 1.0), ("challenger", 1.5))
    }
    probas = {role: p / p.sum(axis=1, keepdims=True) for role, p in raw.items()}
    preds = {role: p.argmax(axis=1) for role, p in probas.items()}
    yt, preds, probas, labels = aligned_scores(y, preds, probas, {"champion": [0, 1, 2], "challenger": [0, 1, 2]})
    rep = evaluate_slices(
        frame, ["region"], yt, preds, probas, labels, metric=metric, min_rows=50, bootstrap_resamples=300
    )
    assert [s.status for s in rep.slices] == ["judged", "judged"]
    assert all(s.method == method and s.champion["value"] is not None and s.p_worse is not None for s in rep.slices)
    assert rep.passed  # the challenger is the sharper model everywhere
