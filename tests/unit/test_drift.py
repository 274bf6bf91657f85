"""Tests for include/retrainer/drift.py.

Every statistic is checked against an independent oracle: scipy.stats for KS,
Wasserstein and chi-square (on tables counted here with collections.Counter),
statsmodels for the multiple-testing corrections, and a plain numpy loop for
PSI.  The gate is checked on data whose answer is known by construction.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats
from scipy.stats.contingency import association
from statsmodels.stats.multitest import multipletests

from include.retrainer import drift as drift_mod
from include.retrainer.config import DriftSpec
from include.retrainer.drift import (
    NULL_CATEGORY,
    PSI_EPSILON,
    DriftReport,
    FeatureDrift,
    adjust_pvalues,
    chi2_columns,
    detect_drift,
    ks_2samp_columns,
    psi_categorical,
    psi_columns,
    wasserstein_columns,
)
from tests.drift_spec_helper import GATE_KEYS, drift_spec

TOL = 1e-9


# --------------------------------------------------------------------------------------
# helpers / oracles
# --------------------------------------------------------------------------------------


def finite(col: np.ndarray) -> np.ndarray:
    return col[np.isfinite(col)]


def sprinkle_nan(rng: np.random.Generator, a: np.ndarray, rate: float) -> np.ndarray:
    a = a.copy()
    a[rng.random(a.shape) < rate] = np.nan
    return a


def psi_oracle(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    """Straightforward PSI: quantile edges, open outer bins, (lo, hi] membership, floor 1e-4."""
    ref = finite(ref)
    cur = finite(cur)
    inner = np.unique(np.quantile(ref, [i / bins for i in range(1, bins)]))
    edges = [-np.inf, *inner.tolist(), np.inf]
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        r = max(np.sum((ref > lo) & (ref <= hi)) / ref.size, 1e-4)
        c = max(np.sum((cur > lo) & (cur <= hi)) / cur.size, 1e-4)
        total += (c - r) * math.log(c / r)
    return total


def table_oracle(ref: pd.Series, cur: pd.Series) -> np.ndarray:
    """2 x K table with missing values as their own category, counted with Counter."""

    def key(v):
        return NULL_CATEGORY if pd.isna(v) else v

    rc = Counter(key(v) for v in ref.tolist())
    cc = Counter(key(v) for v in cur.tolist())
    cats = list(dict.fromkeys([*rc, *cc]))
    return np.array([[rc[c] for c in cats], [cc[c] for c in cats]], dtype=np.int64)


def make_numeric(n: int, shift: float = 0.0, seed: int = 0, k: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"x{j}": rng.normal(shift, 1.0, size=n) for j in range(k)})


# --------------------------------------------------------------------------------------
# KS and Wasserstein vs scipy
# --------------------------------------------------------------------------------------

KS_SHAPES = [
    (37, 53, 3),  # exact, n1 != n2
    (50, 50, 2),  # exact, n1 == n2 (square-path formula)
    (400, 9_000, 4),  # exact, unequal and large-ish
    (15_000, 12_000, 3),  # asymptotic (both > 10,000)
    (20_000, 300, 2),  # asymptotic because max(n1, n2) > 10,000
    (1, 7, 2),  # degenerate tiny samples
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n1,n2,k", KS_SHAPES)
def test_ks_and_wasserstein_match_scipy_continuous(seed, n1, n2, k):
    rng = np.random.default_rng(seed)
    ref = rng.normal(0.0, 1.0, size=(n1, k))
    cur = rng.normal(rng.uniform(-0.3, 0.3, size=k), rng.uniform(0.8, 1.3, size=k), size=(n2, k))
    d, p = ks_2samp_columns(ref, cur)
    w = wasserstein_columns(ref, cur)
    assert d.shape == p.shape == w.shape == (k,)
    for j in range(k):
        res = stats.ks_2samp(ref[:, j], cur[:, j])
        assert d[j] == pytest.approx(res.statistic, abs=TOL, rel=0)
        assert p[j] == pytest.approx(res.pvalue, abs=TOL, rel=TOL)
        assert w[j] == pytest.approx(stats.wasserstein_distance(ref[:, j], cur[:, j]), abs=TOL, rel=TOL)


@pytest.mark.parametrize("seed", [3, 4, 5])
@pytest.mark.parametrize("n1,n2", [(60, 80), (3_000, 2_000), (12_000, 11_000)])
def test_ks_and_wasserstein_match_scipy_with_ties(seed, n1, n2):
    """Heavily tied integer data: D must be evaluated at tie-group ends only."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 6, size=(n1, 3)).astype(float)
    cur = rng.integers(0, 7, size=(n2, 3)).astype(float)
    cur[:, 2] = rng.integers(0, 6, size=n2)  # same distribution column
    d, p = ks_2samp_columns(ref, cur)
    w = wasserstein_columns(ref, cur)
    for j in range(3):
        res = stats.ks_2samp(ref[:, j], cur[:, j])
        assert d[j] == pytest.approx(res.statistic, abs=TOL, rel=0)
        assert p[j] == pytest.approx(res.pvalue, abs=TOL, rel=TOL)
        assert w[j] == pytest.approx(stats.wasserstein_distance(ref[:, j], cur[:, j]), abs=TOL, rel=TOL)


@pytest.mark.parametrize("seed", [6, 7, 8])
@pytest.mark.parametrize("n1,n2,k", [(80, 120, 4), (5_000, 4_000, 6), (14_000, 600, 3)])
def test_ks_and_wasserstein_ignore_nan_and_inf_per_column(seed, n1, n2, k):
    rng = np.random.default_rng(seed)
    ref = sprinkle_nan(rng, rng.normal(size=(n1, k)), rate=rng.uniform(0.0, 0.4))
    cur = sprinkle_nan(rng, rng.normal(0.2, size=(n2, k)), rate=rng.uniform(0.0, 0.4))
    ref[0, 0] = np.inf  # treated as missing, like NaN
    cur[1, -1] = -np.inf
    d, p = ks_2samp_columns(ref, cur)
    w = wasserstein_columns(ref, cur)
    for j in range(k):
        a, b = finite(ref[:, j]), finite(cur[:, j])
        res = stats.ks_2samp(a, b)
        assert d[j] == pytest.approx(res.statistic, abs=TOL, rel=0)
        assert p[j] == pytest.approx(res.pvalue, abs=TOL, rel=TOL)
        assert w[j] == pytest.approx(stats.wasserstein_distance(a, b), abs=TOL, rel=TOL)


def test_ks_column_without_values_is_nan_and_others_unaffected():
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(300, 3))
    cur = rng.normal(size=(250, 3))
    cur[:, 1] = np.nan
    ref[:, 2] = 4.0  # constant reference column
    d, p = ks_2samp_columns(ref, cur)
    w = wasserstein_columns(ref, cur)
    assert np.isnan(d[1]) and np.isnan(p[1]) and np.isnan(w[1])
    for j in (0, 2):
        res = stats.ks_2samp(ref[:, j], cur[:, j])
        assert d[j] == pytest.approx(res.statistic, abs=TOL)
        assert p[j] == pytest.approx(res.pvalue, abs=TOL)
        assert w[j] == pytest.approx(stats.wasserstein_distance(ref[:, j], cur[:, j]), abs=TOL)


def test_merge_in_several_column_blocks_gives_same_result(monkeypatch):
    """Force the memory-bounding block loop to split columns; results must not change."""
    rng = np.random.default_rng(12)
    ref = sprinkle_nan(rng, rng.normal(size=(700, 7)), 0.1)
    cur = sprinkle_nan(rng, rng.normal(0.1, size=(900, 7)), 0.1)
    d_one, p_one = ks_2samp_columns(ref, cur)
    w_one = wasserstein_columns(ref, cur)
    monkeypatch.setattr(drift_mod, "_MERGE_BLOCK_ELEMENTS", 2 * (700 + 900))  # 2 columns per block
    d_blk, p_blk = ks_2samp_columns(ref, cur)
    np.testing.assert_array_equal(d_one, d_blk)
    np.testing.assert_array_equal(p_one, p_blk)
    np.testing.assert_allclose(wasserstein_columns(ref, cur), w_one, rtol=1e-12, atol=0)


def test_a_tie_longer_than_a_merge_block_equals_scipy(monkeypatch):
    """A value repeated over more than one merge block (a zero-inflated feature over a long
    reference: NYC flights' precipitation over 16 weeks) leaves a block with no tie end; it
    crashed the drift step (max of an empty array) instead of waiting for the group's end."""
    from include.retrainer.drift import _ks_wasserstein_sorted

    rng = np.random.default_rng(14)
    ref = np.sort(np.concatenate([np.zeros(900), rng.exponential(size=150)]))
    cur = np.sort(np.concatenate([np.zeros(500), rng.exponential(1.3, size=200)]))
    monkeypatch.setattr(drift_mod, "_MERGE_BLOCK_ELEMENTS", 256)  # the zeros span several blocks
    d, w = _ks_wasserstein_sorted(ref, cur)
    assert d == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=TOL)
    assert w == pytest.approx(stats.wasserstein_distance(ref, cur), abs=TOL)


def test_one_dimensional_input_is_one_column():
    rng = np.random.default_rng(13)
    a, b = rng.normal(size=100), rng.normal(size=90)
    d, p = ks_2samp_columns(a, b)
    res = stats.ks_2samp(a, b)
    assert d.shape == (1,)
    assert d[0] == pytest.approx(res.statistic, abs=TOL) and p[0] == pytest.approx(res.pvalue, abs=TOL)


def test_column_count_mismatch_raises():
    with pytest.raises(ValueError, match="columns"):
        ks_2samp_columns(np.zeros((10, 2)), np.zeros((10, 3)))


# --------------------------------------------------------------------------------------
# PSI vs numpy oracle
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("bins", [10, 5, 20])
def test_psi_columns_matches_numpy_oracle(seed, bins):
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(300, 3_000, size=2)
    ref = np.column_stack(
        [
            rng.normal(size=n1),
            rng.exponential(size=n1),
            np.where(rng.random(n1) < 0.5, 0.0, rng.normal(size=n1)),  # point mass -> tied quantiles
            rng.integers(0, 4, size=n1).astype(float),  # few distinct values
            np.full(n1, 2.5),  # constant
        ]
    )
    cur = np.column_stack(
        [
            rng.normal(0.4, 1.2, size=n2),  # partly outside reference range
            rng.exponential(2.0, size=n2),
            np.where(rng.random(n2) < 0.3, 0.0, rng.normal(size=n2)),
            rng.integers(0, 6, size=n2).astype(float),
            np.full(n2, 2.5),
        ]
    )
    ref = sprinkle_nan(rng, ref, 0.05)
    got = psi_columns(ref, cur, bins=bins)
    for j in range(ref.shape[1]):
        assert got[j] == pytest.approx(psi_oracle(ref[:, j], cur[:, j], bins), abs=TOL, rel=TOL)
    assert got[4] == 0.0


def test_psi_identical_samples_is_zero_and_empty_bins_are_floored():
    ref = np.arange(1000, dtype=float)[:, None]
    assert psi_columns(ref, ref)[0] == pytest.approx(0.0, abs=1e-15)
    # Current entirely above the reference range: 9 of 10 bins empty (floored), last bin full.
    cur = np.full((200, 1), 5_000.0)
    expected = 9 * (PSI_EPSILON - 0.1) * math.log(PSI_EPSILON / 0.1) + (1.0 - 0.1) * math.log(1.0 / 0.1)
    assert psi_columns(ref, cur)[0] == pytest.approx(expected, rel=1e-12)


def test_psi_categorical_arrays_and_keyed_counts():
    ref = np.array([50, 30, 20, 0])
    cur = np.array([40, 30, 20, 10])
    pr = np.maximum(ref / ref.sum(), 1e-4)
    pc = np.maximum(cur / cur.sum(), 1e-4)
    expected = float(np.sum((pc - pr) * np.log(pc / pr)))
    assert psi_categorical(ref, cur) == pytest.approx(expected, rel=1e-12)
    keyed = psi_categorical(pd.Series({"a": 50, "b": 30, "c": 20}), {"c": 20, "a": 40, "b": 30, "d": 10})
    assert keyed == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError):
        psi_categorical([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        psi_categorical([0, 0], [1, 2])


# --------------------------------------------------------------------------------------
# chi-square vs scipy
# --------------------------------------------------------------------------------------


def assert_chi2_matches(ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str]) -> None:
    got = chi2_columns(ref, cur, columns)
    assert len(got) == len(columns)
    for (chi2, p, dof, v), col in zip(got, columns):
        table = table_oracle(ref[col], cur[col])
        res = stats.chi2_contingency(table)
        assert dof == res.dof
        assert chi2 == pytest.approx(res.statistic, abs=TOL, rel=TOL)
        assert p == pytest.approx(res.pvalue, abs=TOL, rel=TOL)
        if table.shape[1] > 1:
            assert v == pytest.approx(association(table, method="cramer"), abs=TOL)
        else:
            assert v == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_chi2_matches_scipy_various_cardinalities(seed):
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(200, 5_000, size=2)
    ref = pd.DataFrame(
        {
            "two": rng.choice(["a", "b"], size=n1, p=[0.7, 0.3]),  # dof=1 -> Yates
            "five": rng.choice(list("abcde"), size=n1),
            "ints": rng.integers(0, 12, size=n1),
            "with_null": pd.Series(rng.choice(["u", "v", None], size=n1), dtype=object),
        }
    )
    cur = pd.DataFrame(
        {
            "two": rng.choice(["a", "b"], size=n2, p=[0.65, 0.35]),
            "five": rng.choice(list("abcdef"), size=n2),  # 'f' unseen in reference
            "ints": rng.integers(0, 12, size=n2),
            "with_null": pd.Series(rng.choice(["u", "v", "w", None], size=n2), dtype=object),
        }
    )
    assert_chi2_matches(ref, cur, list(ref.columns))


@pytest.mark.parametrize("seed", [0, 1])
def test_chi2_large_table_path_matches_scipy(monkeypatch, seed):
    """Above _FACTORIZE_MAX_ROWS the table is built with value_counts: same oracle."""
    monkeypatch.setattr(drift_mod, "_FACTORIZE_MAX_ROWS", 0)
    test_chi2_matches_scipy_various_cardinalities(seed)
    test_chi2_category_only_in_current_and_unused_categorical_levels()


def test_chi2_yates_at_dof_1_small_counts_and_degenerate_table():
    ref = pd.DataFrame({"c": ["a"] * 15 + ["b"] * 3, "one": ["z"] * 18})
    cur = pd.DataFrame({"c": ["a"] * 4 + ["b"] * 9, "one": ["z"] * 13})
    assert_chi2_matches(ref, cur, ["c", "one"])
    (chi2, p, dof, v), (chi2_1, p_1, dof_1, v_1) = chi2_columns(ref, cur, ["c", "one"])
    assert dof == 1
    # Yates-corrected value is smaller than the uncorrected one.
    assert chi2 < stats.chi2_contingency(table_oracle(ref["c"], cur["c"]), correction=False).statistic
    assert (chi2_1, p_1, dof_1, v_1) == (0.0, 1.0, 0, 0.0)


def test_chi2_category_only_in_current_and_unused_categorical_levels():
    ref = pd.DataFrame({"c": pd.Categorical(["a", "b"] * 100, categories=["a", "b", "never"])})
    cur = pd.DataFrame({"c": pd.Categorical(["a", "b", "new"] * 50, categories=["a", "b", "new", "never"])})
    assert_chi2_matches(ref, cur, ["c"])
    assert chi2_columns(ref, cur, ["c"])[0][2] == 2  # 'never' (0 rows anywhere) is dropped


def test_chi2_missing_column_raises_naming_it():
    ref = pd.DataFrame({"a": ["x"] * 5, "b": ["y"] * 5})
    cur = pd.DataFrame({"a": ["x"] * 5})
    with pytest.raises(ValueError, match="'b'.*current"):
        chi2_columns(ref, cur, ["a", "b"])


# --------------------------------------------------------------------------------------
# multiple-testing corrections vs statsmodels
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["holm", "bonferroni", "fdr_bh"])
@pytest.mark.parametrize("seed", range(6))
def test_adjust_pvalues_matches_statsmodels(method, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    p = np.concatenate([rng.uniform(0, 0.1, size=n), rng.uniform(0, 1, size=n)])
    p[rng.integers(0, p.size, size=3)] = p[0]  # ties
    p[-1] = 0.0
    p[-2] = 1.0
    expected = multipletests(p, method=method)[1]
    np.testing.assert_allclose(adjust_pvalues(p, method), expected, rtol=1e-12, atol=1e-15)


def test_adjust_pvalues_none_and_validation():
    p = np.array([0.01, 0.5, 0.03])
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)
    assert adjust_pvalues(np.array([]), "holm").size == 0
    with pytest.raises(ValueError, match="holm"):
        adjust_pvalues(p, "sidak")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues(np.array([0.1, np.nan]), "holm")


# Drift settings (the YAML drift block) validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"numeric_method": "t-test"}, "numeric_method"),
        ({"categorical_method": "ks"}, "categorical_method"),
        ({"correction": "sidak"}, "correction"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"psi_bins": 1}, "psi_bins"),
        ({"psi_bins": 2.5}, "psi_bins"),
        ({"min_rows": 0}, "min_rows"),
        ({"min_rows": 500, "max_rows": 100}, "max_rows"),
        ({"seed": -1}, "seed"),
        ({"null_resamples": 10}, "null_resamples"),
        ({"null_max_rows": 50}, "null_max_rows"),
        ({"min_importance_share": 0.0}, "min_importance_share"),
        ({"min_importance_share": 1.5}, "min_importance_share"),
        ({"min_importance_share": True}, "min_importance_share"),
        ({"critical_features": "x"}, "critical_features"),
        # Numbers are strict, as DriftSettings was: no bools, no float for an int.
        ({"alpha": True}, "alpha"),
        ({"psi_bins": 10.0}, "psi_bins"),
        ({"seed": True}, "seed"),
        ({"null_resamples": 1000.0}, "null_resamples"),
    ],
)
def test_settings_validation_names_the_field(kwargs, field):
    with pytest.raises(ValidationError, match=field) as exc:
        drift_spec(**kwargs)
    # The error is located at the field (drift.gate.* for the gate's knobs), or names it.
    located = [".".join(map(str, e["loc"])) for e in exc.value.errors()]
    want = f"gate.{field}" if field in GATE_KEYS else field
    assert want in located or (located == [""] and field in str(exc.value)), located


def test_settings_error_lists_allowed_values_and_list_stays_a_list():
    with pytest.raises(ValidationError, match="'ks', 'psi' or 'wasserstein'"):
        drift_spec(numeric_method="kolmogorov")
    s = drift_spec(critical_features=("a", "b"))
    assert s.gate.critical_features == ["a", "b"]
    with pytest.raises(ValidationError, match="frozen"):
        s.seed = 3  # type: ignore[misc]
    assert drift_spec().model_dump() == DriftSpec().model_dump()


def test_removed_effect_floors_and_count_rules_are_rejected():
    """The old decision knobs are gone (module docstring): passing them is an error, not a silent no-op."""
    for old in (
        "ks_min_statistic",
        "chi2_min_cramers_v",
        "psi_threshold",
        "wasserstein_threshold",
        "gate_min_drifted_share",
        "gate_min_drifted_features",
    ):
        with pytest.raises(ValidationError, match=old):
            drift_spec(**{old: 0.1})


# --------------------------------------------------------------------------------------
# detect_drift: decisions and gate
# --------------------------------------------------------------------------------------


def test_max_rows_bounds_sensitivity_and_detectable_effect_is_reported():
    """0.015 sd shift at 300k rows: below the detectable D at 10k compared rows, above it (and found) at all rows."""
    rng = np.random.default_rng(100)
    n = 300_000
    ref = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(3)})
    cur = pd.DataFrame({f"x{j}": rng.normal(0.015, size=n) for j in range(3)})
    true_d = 2 * stats.norm.cdf(0.015 / 2) - 1  # KS distance of a 0.015 sd normal shift
    bounded = detect_drift(ref, cur, ["x0", "x1", "x2"], [], drift_spec(max_rows=10_000))
    for f in bounded.features.values():
        assert f.n_reference == f.n_current == 10_000
        # Independent formula: kstwo critical value at alpha/k plus 0.8416 * 0.5 / sqrt(n_eff).
        expected = stats.kstwo.isf(0.05 / 3, 5_000) + stats.norm.ppf(0.8) * 0.5 / math.sqrt(5_000)
        assert f.detectable_effect == pytest.approx(expected, rel=1e-9)
        assert f.detectable_effect > 3 * true_d
        d = f.detectable_effect
        assert f.effect["detectable_shift_sd_if_normal"] == pytest.approx(2 * stats.norm.ppf((1 + d) / 2), rel=1e-9)
    assert bounded.n_reference == bounded.n_current == n
    full = detect_drift(ref, cur, ["x0", "x1", "x2"], [], drift_spec(max_rows=n))
    assert all(f.detectable_effect < true_d for f in full.features.values())
    assert full.drifted == ["x0", "x1", "x2"]


def test_ks_detectable_effect_has_about_80_percent_power():
    """Shift a normal so that its true KS distance equals the reported detectable D; count detections."""
    n, reps, k = 3_000, 300, 4
    f = detect_drift(make_numeric(n, seed=1, k=k), make_numeric(n, seed=2, k=k), [f"x{j}" for j in range(k)], [])
    d = f.features["x0"].detectable_effect
    delta = 2 * stats.norm.ppf((1 + d) / 2)  # normal mean shift with KS distance d
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(n, reps))
    cur = rng.normal(delta, size=(n, reps))
    _, p = ks_2samp_columns(ref, cur)
    power = float(np.mean(p < 0.05 / k))
    assert 0.8 - 3 * math.sqrt(0.16 / reps) <= power <= 0.97


def test_real_shift_drifts_and_statistics_match_scipy():
    ref = make_numeric(4_000, seed=1, k=4)
    cur = make_numeric(3_000, seed=2, k=4)
    cur["x0"] += 0.6  # real shift
    cur["x1"] *= 2.0  # scale change
    report = detect_drift(ref, cur, list(ref.columns), [])
    assert report.gate is True and report.status == "assessed"
    assert report.drifted == ["x0", "x1"]
    assert report.reason == "drift: 2 of 4 features drifted, 50% of features (equal weights) >= 20%: x0, x1"
    raw_p = []
    for col in ref.columns:
        f = report.features[col]
        res = stats.ks_2samp(ref[col], cur[col])
        assert f.statistic == pytest.approx(res.statistic, abs=TOL)
        assert f.p_value == pytest.approx(res.pvalue, abs=TOL)
        assert f.effect["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref[col], cur[col]), abs=TOL)
        assert f.effect["wasserstein_normalized"] == pytest.approx(
            f.effect["wasserstein"] / np.std(ref[col].to_numpy()), rel=1e-12
        )
        assert f.effect["psi"] == pytest.approx(psi_oracle(ref[col].to_numpy(), cur[col].to_numpy()), abs=TOL)
        raw_p.append(res.pvalue)
    holm = multipletests(raw_p, method="holm")[1]
    for col, expected in zip(ref.columns, holm):
        assert report.features[col].p_value_adjusted == pytest.approx(expected, abs=TOL)
        assert report.features[col].drifted == (expected < 0.05)


def test_categorical_drift_and_unseen_category_note():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"c": rng.choice(["a", "b", "c"], size=3_000)})
    cur = pd.DataFrame({"c": rng.choice(["a", "b", "c", "new"], size=2_000, p=[0.2, 0.2, 0.2, 0.4])})
    report = detect_drift(ref, cur, [], ["c"])
    f = report.features["c"]
    res = stats.chi2_contingency(table_oracle(ref["c"], cur["c"]))
    assert f.statistic == pytest.approx(res.statistic, rel=TOL)
    assert f.p_value == pytest.approx(res.pvalue, abs=TOL)
    assert f.drifted is True and report.gate is True
    assert f.effect["cramers_v"] >= 0.1
    assert "unseen in reference" in f.note and "'new'" in f.note
    assert f.effect["unseen_category_share"] == pytest.approx((cur["c"] == "new").mean())


def test_chi2_detectable_cramers_v_from_noncentral_chi2():
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"c": rng.choice(list("abcde"), size=1_500)})
    cur = pd.DataFrame({"c": rng.choice(list("abcde"), size=1_000)})
    f = detect_drift(ref, cur, [], ["c"]).features["c"]
    crit = stats.chi2.isf(0.05, 4)
    lam = f.detectable_effect**2 * 2_500
    assert stats.ncx2.sf(crit, 4, lam) == pytest.approx(0.8, abs=1e-4)


def test_insufficient_data_does_not_guess_and_small_reference_is_not_stuck():
    ref = make_numeric(5_000, seed=6, k=2)
    cur = make_numeric(20, shift=3.0, seed=7, k=2)  # obviously shifted, but too few rows
    report = detect_drift(ref, cur, ["x0", "x1"], [])
    assert report.gate is False and report.status == "insufficient"
    assert report.reason.startswith("insufficient data:")
    assert "20" in report.reason and "min_rows=30" in report.reason
    assert report.features == {} and report.drifted == []
    json.dumps(report.to_dict(), allow_nan=False)
    # The stuck case: 125 reference rows used to be "insufficient" forever (min_rows=150).
    small_ref = detect_drift(make_numeric(125, seed=8, k=1), make_numeric(175, shift=1.0, seed=9, k=1), ["x0"], [])
    assert small_ref.status == "assessed" and small_ref.gate is True
    assert drift_spec().min_rows == 30


def test_importance_weighted_gate():
    ref = make_numeric(3_000, seed=30, k=10)
    cur = make_numeric(3_000, seed=130, k=10)
    cur["x3"] += 1.0
    cols = list(ref.columns)
    default = detect_drift(ref, cur, cols, [])
    assert default.gate is False and default.drifted == ["x3"]
    assert default.reason == "no drift: 1 of 10 features drifted, 10% of features (equal weights) < 20%: x3"
    weights = {c: 1.0 for c in cols} | {"x3": 3.0}  # x3 carries 3/12 = 25%
    weighted = detect_drift(ref, cur, cols, [], importance=weights)
    assert weighted.gate is True and weighted.importance_source == "importance"
    assert weighted.drifted_importance == pytest.approx(0.25)
    assert weighted.features["x3"].importance == pytest.approx(0.25)
    assert weighted.reason == "drift: 1 of 10 features drifted, 25% of importance >= 20%: x3"
    # Lacking a feature, negative weights, all-zero: documented fallbacks; non-numbers raise.
    lacking = detect_drift(ref, cur, cols, [], importance={"x3": 5.0})
    assert lacking.importance_source == "equal" and "importance lacks x0" in lacking.reason
    clipped = detect_drift(ref, cur, cols, [], importance={c: -0.01 for c in cols} | {"x3": 0.5})
    assert clipped.features["x3"].importance == 1.0 and clipped.gate is True
    zero = detect_drift(ref, cur, cols, [], importance={c: 0.0 for c in cols})
    assert zero.importance_source == "equal"
    with pytest.raises(ValueError, match="'x3'"):
        detect_drift(ref, cur, cols, [], importance={c: 1.0 for c in cols} | {"x3": float("nan")})


def test_critical_feature_trips_gate_alone():
    ref = make_numeric(3_000, seed=30, k=10)
    cur = make_numeric(3_000, seed=130, k=10)
    cur["x3"] += 1.0
    critical = detect_drift(ref, cur, list(ref.columns), [], drift_spec(critical_features=("x3", "x5")))
    assert critical.gate is True
    assert critical.reason == (
        "critical feature drifted: x3 (1 of 10 features drifted, 10% of features (equal weights): x3)"
    )
    held = detect_drift(ref, cur, list(ref.columns), [], drift_spec(critical_features=("x5",)))
    assert held.gate is False
    with pytest.raises(ValueError, match="'nope'"):
        detect_drift(ref, cur, list(ref.columns), [], drift_spec(critical_features=("nope",)))


def test_gate_implies_a_holm_significant_feature():
    """The gate event is a subset of 'some feature significant after Holm', whatever the weights."""
    rng = np.random.default_rng(12)
    for r in range(20):
        ref = make_numeric(300, seed=100 + r, k=6)
        cur = make_numeric(300, seed=200 + r, k=6)
        cur["x0"] += rng.uniform(0, 0.4)
        weights = dict(zip(ref.columns, rng.dirichlet(np.ones(6) * 0.3)))
        s = drift_spec(critical_features=tuple(rng.choice(list(ref.columns), size=2, replace=False)))
        report = detect_drift(ref, cur, list(ref.columns), [], s, importance=weights)
        if report.gate:
            assert min(f.p_value_adjusted for f in report.features.values()) < 0.05


@pytest.mark.parametrize("numeric_method,categorical_method", [("ks", "chi2"), ("psi", "psi"), ("wasserstein", "chi2")])
def test_gate_false_alarm_rate_at_most_alpha_worst_case_weights(numeric_method, categorical_method):
    """Stationary data, all importance on one feature and every feature critical: gate rate <= alpha."""
    rng = np.random.default_rng(13)
    reps, fired = 120, 0
    cols = ["x0", "x1", "x2", "c"]
    for r in range(reps):
        ref = pd.DataFrame({c: rng.normal(size=60) for c in cols[:3]}).assign(c=rng.integers(0, 4, size=60))
        cur = pd.DataFrame({c: rng.normal(size=45) for c in cols[:3]}).assign(c=rng.integers(0, 4, size=45))
        s = drift_spec(
            numeric_method=numeric_method,
            categorical_method=categorical_method,
            seed=r,
            critical_features=tuple(cols),
            null_resamples=200,
        )
        fired += detect_drift(ref, cur, cols[:3], ["c"], s, importance={"x0": 1, "x1": 0, "x2": 0, "c": 0}).gate
    assert fired / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


@pytest.mark.parametrize("method", ["psi", "wasserstein"])
def test_numeric_permutation_p_value_matches_brute_force_oracle(method):
    """Below the cap the null is an exact permutation test: compare with a loop over scipy/numpy statistics."""
    rng = np.random.default_rng(14)
    ref = rng.normal(size=40)
    cur = rng.normal(0.5, 1.3, size=35)
    report = detect_drift(
        pd.DataFrame({"x": ref}),
        pd.DataFrame({"x": cur}),
        ["x"],
        [],
        drift_spec(numeric_method=method, null_resamples=4_000),
    )
    f = report.features["x"]

    def stat(a, b):
        if method == "psi":
            return psi_oracle(a, b)
        return stats.wasserstein_distance(a, b) / np.std(a)

    observed = stat(ref, cur)
    assert f.statistic == pytest.approx(observed, rel=1e-9)
    pooled = np.concatenate([ref, cur])
    draws = 4_000
    null = np.empty(draws)
    for b in range(draws):
        perm = rng.permutation(pooled)
        null[b] = stat(perm[:40], perm[40:])
    p_oracle = (1 + np.sum(null >= observed - 1e-12)) / (draws + 1)
    se = math.sqrt(p_oracle * (1 - p_oracle) / draws) * math.sqrt(2)
    assert abs(f.p_value - p_oracle) <= 4 * se + 1e-3, (f.p_value, p_oracle)


def test_categorical_psi_permutation_p_value_matches_brute_force_oracle():
    rng = np.random.default_rng(15)
    ref = pd.Series(rng.choice(list("abcd"), size=80, p=[0.4, 0.3, 0.2, 0.1]))
    cur = pd.Series(rng.choice(list("abcde"), size=60, p=[0.3, 0.3, 0.2, 0.1, 0.1]))
    f = detect_drift(
        pd.DataFrame({"c": ref}),
        pd.DataFrame({"c": cur}),
        [],
        ["c"],
        drift_spec(categorical_method="psi", null_resamples=4_000),
    ).features["c"]
    observed = psi_categorical(ref.value_counts(), cur.value_counts())
    assert f.statistic == pytest.approx(observed, rel=1e-12)
    labels, codes = np.unique(np.concatenate([ref.to_numpy(), cur.to_numpy()]), return_inverse=True)
    draws = 4_000
    null = np.empty(draws)
    for b in range(draws):
        perm = rng.permutation(codes)
        null[b] = psi_categorical(
            np.bincount(perm[:80], minlength=labels.size), np.bincount(perm[80:], minlength=labels.size)
        )
    p_oracle = (1 + np.sum(null >= observed - 1e-12)) / (draws + 1)
    se = math.sqrt(max(p_oracle * (1 - p_oracle), 1e-4) / draws) * math.sqrt(2)
    assert abs(f.p_value - p_oracle) <= 4 * se + 1e-3, (f.p_value, p_oracle)


@pytest.mark.parametrize("method", ["psi", "wasserstein"])
@pytest.mark.parametrize("n", [50, 3_000])
def test_bootstrap_p_values_are_calibrated_per_feature(method, n):
    """150 stationary columns in one call: raw p-values are (super-)uniform; at n=3000 the null is rescaled from the cap."""
    rng = np.random.default_rng(16)
    k = 100
    ref = pd.DataFrame(rng.standard_t(5, size=(n, k)), columns=[f"x{j}" for j in range(k)])
    cur = pd.DataFrame(rng.standard_t(5, size=(n, k)), columns=ref.columns)
    # alpha=0.5 only keeps the automatic resample count (4 k / alpha) small; raw p-values do not use it.
    s = drift_spec(numeric_method=method, alpha=0.5, null_resamples=400)
    report = detect_drift(ref, cur, list(ref.columns), [], s)
    p = np.array([f.p_value for f in report.features.values()])
    rate = float(np.mean(p < 0.1))
    assert rate <= 0.1 + 3 * math.sqrt(0.09 / k)
    assert rate >= 0.02  # not uselessly conservative


def test_all_null_columns_constant_columns_and_inf():
    rng = np.random.default_rng(14)
    n = 1_000
    ref = pd.DataFrame(
        {
            "gone": rng.normal(size=n),
            "never": np.full(n, np.nan),
            "const": np.full(n, 3.0),
            "with_inf": rng.normal(size=n),
            "cat_gone": rng.choice(["a", "b"], size=n),
        }
    )
    cur = pd.DataFrame(
        {
            "gone": np.full(n, np.nan),
            "never": np.full(n, np.nan),
            "const": np.full(n, 3.0),
            "with_inf": rng.normal(size=n),
            "cat_gone": pd.Series([None] * n, dtype=object),
        }
    )
    ref.loc[:9, "with_inf"] = np.inf
    report = detect_drift(ref, cur, ["gone", "never", "const", "with_inf"], ["cat_gone"])
    f = report.features
    assert f["gone"].status == "vanished" and f["gone"].drifted is True
    assert f["gone"].note == "all values null in current batch (feature vanished; reference null rate 0.0%)"
    assert f["gone"].p_value == 0.0
    assert f["cat_gone"].status == "vanished" and f["cat_gone"].drifted is True
    assert f["never"].status == "empty" and f["never"].drifted is False and "both" in f["never"].note
    assert f["never"].p_value is None
    assert f["const"].status == "tested" and f["const"].drifted is False and f["const"].statistic == 0.0
    assert f["const"].p_value == 1.0 and "reference is constant" in f["const"].note
    assert f["const"].effect["wasserstein_normalized"] == 0.0
    assert f["with_inf"].n_reference == n - 10
    assert "10 reference and 0 current infinite values treated as missing" in f["with_inf"].note
    res = stats.ks_2samp(ref["with_inf"].to_numpy()[10:], cur["with_inf"])
    assert f["with_inf"].statistic == pytest.approx(res.statistic, abs=TOL)
    assert report.drifted == ["gone", "cat_gone"]
    d = report.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["features"]["gone"]["statistic"] is None


def test_mostly_missing_feature_vanishing_in_small_batch_is_not_drift():
    """95% missing in the reference: 40 missing rows in a row happen by chance (p = 0.95**40)."""
    rng = np.random.default_rng(17)
    x = rng.normal(size=2_000)
    x[rng.random(2_000) < 0.95] = np.nan
    ref = pd.DataFrame({"x": x, "y": rng.normal(size=2_000)})
    cur = pd.DataFrame({"x": np.full(40, np.nan), "y": rng.normal(size=40)})
    f = detect_drift(ref, cur, ["x", "y"], []).features["x"]
    rate = float(np.isnan(x).mean())
    assert f.status == "vanished" and f.p_value == pytest.approx(rate**40)
    assert f.drifted is False


def test_feature_appearing_in_current_is_drift():
    ref = pd.DataFrame({"x": np.full(500, np.nan), "y": np.arange(500.0)})
    cur = pd.DataFrame({"x": np.arange(500.0), "y": np.arange(500.0)})
    f = detect_drift(ref, cur, ["x", "y"], []).features
    assert f["x"].status == "appeared" and f["x"].drifted is True and "reference" in f["x"].note
    assert f["y"].drifted is False


def test_column_absent_from_a_frame_is_a_named_outcome():
    ref = make_numeric(300, seed=22, k=2)
    cur = make_numeric(300, seed=23, k=3)
    report = detect_drift(ref, cur, ["x0", "x1", "x2"], [])
    f = report.features["x2"]
    assert f.status == "missing_reference" and f.drifted is True and f.p_value is None
    assert "absent from the reference data" in f.note
    assert report.gate is True  # 1 of 3 features = 33% >= 20%
    gone = detect_drift(cur, ref, ["x0", "x1", "x2"], []).features["x2"]
    assert gone.status == "missing_current" and gone.drifted is True
    json.dumps(report.to_dict(), allow_nan=False)


def test_constant_reference_with_wasserstein_method():
    ref = pd.DataFrame({"x": np.zeros(500)})
    cur = pd.DataFrame({"x": np.ones(500)})
    report = detect_drift(ref, cur, ["x"], [], drift_spec(numeric_method="wasserstein"))
    f = report.features["x"]
    assert f.drifted is True and math.isinf(f.statistic)
    assert f.p_value == pytest.approx(1 / (1_000 + 1))
    assert f.to_dict()["statistic"] is None
    json.dumps(report.to_dict(), allow_nan=False)


def test_psi_and_wasserstein_decide_by_calibrated_p_values():
    ref = make_numeric(3_000, seed=15, k=2)
    cur = make_numeric(3_000, seed=16, k=2)
    cur["x0"] += 1.0
    rng = np.random.default_rng(17)
    ref["c"] = rng.choice(list("abc"), size=3_000)
    cur["c"] = rng.choice(list("abc"), size=3_000, p=[0.6, 0.2, 0.2])
    s = drift_spec(numeric_method="psi", categorical_method="psi")
    report = detect_drift(ref, cur, ["x0", "x1"], ["c"], s)
    for f in report.features.values():
        assert f.statistic == f.effect["psi"]
        assert f.threshold == 0.05 and 0 < f.p_value <= 1
        assert f.drifted == (f.p_value_adjusted < 0.05)
        assert f.detectable_effect > 0
    assert report.drifted == ["x0", "c"]
    w = detect_drift(ref, cur, ["x0", "x1"], [], drift_spec(numeric_method="wasserstein"))
    assert w.features["x0"].statistic == w.features["x0"].effect["wasserstein_normalized"]
    assert w.drifted == ["x0"]


def test_subsampling_and_nulls_are_deterministic_and_seeded():
    ref = make_numeric(3_000, seed=18, k=2)
    cur = make_numeric(3_000, shift=0.05, seed=19, k=2)
    for method in ("ks", "psi"):
        s = drift_spec(max_rows=1_000, numeric_method=method)
        a = detect_drift(ref, cur, ["x0", "x1"], [], s).to_dict()
        b = detect_drift(ref, cur, ["x0", "x1"], [], s).to_dict()
        assert a == b
        assert a["features"]["x0"]["n_reference"] == 1_000
        c = detect_drift(ref, cur, ["x0", "x1"], [], drift_spec(max_rows=1_000, seed=1, numeric_method=method))
        assert c.to_dict()["features"]["x0"]["statistic"] != a["features"]["x0"]["statistic"]


def test_nullable_pandas_dtypes_and_low_count_note():
    ref = pd.DataFrame({"i": pd.array(list(range(400)) + [None] * 100, dtype="Int64")})
    cur = pd.DataFrame({"i": pd.array([None] * 450 + list(range(50)), dtype="Int64")})
    f = detect_drift(ref, cur, ["i"], [], drift_spec(min_rows=100)).features["i"]
    assert (f.n_reference, f.n_current) == (400, 50)
    assert f.effect["null_rate_current"] == pytest.approx(0.9)
    assert "low power" in f.note
    res = stats.ks_2samp(np.arange(400.0), np.arange(50.0))
    assert f.statistic == pytest.approx(res.statistic, abs=TOL) and f.p_value == pytest.approx(res.pvalue, abs=TOL)


@pytest.mark.parametrize(
    "numeric,categorical,match",
    [
        (["x0"], ["x0"], "both numeric and categorical"),
        (["x0", "x0"], [], "twice"),
        ([], [], "at least one"),
        (["s"], [], "dtype"),
    ],
)
def test_detect_drift_input_errors(numeric, categorical, match):
    ref = make_numeric(300, seed=20, k=1).assign(s="a")
    cur = make_numeric(300, seed=21, k=1).assign(s="b")
    with pytest.raises(ValueError, match=match):
        detect_drift(ref, cur, numeric, categorical)


def test_to_dict_shape_and_json():
    ref = make_numeric(1_000, seed=24, k=2)
    cur = make_numeric(1_000, shift=1.0, seed=25, k=2)
    report = detect_drift(ref, cur, ["x0", "x1"], [])
    assert isinstance(report, DriftReport)
    d = report.to_dict()
    assert set(d) == {
        "gate",
        "reason",
        "status",
        "features",
        "drifted",
        "drifted_importance",
        "importance_source",
        "n_reference",
        "n_current",
        "settings",
    }
    assert set(d["features"]["x0"]) == {
        "column",
        "kind",
        "method",
        "status",
        "statistic",
        "p_value",
        "p_value_adjusted",
        "threshold",
        "drifted",
        "importance",
        "detectable_effect",
        "effect",
        "n_reference",
        "n_current",
        "note",
    }
    assert d["settings"]["critical_features"] == []
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d
    bad = FeatureDrift(
        "z",
        "numeric",
        "ks",
        "tested",
        float("nan"),
        float("inf"),
        None,
        0.05,
        True,
        0.5,
        float("inf"),
        {"ks": float("-inf")},
        1,
        1,
    )
    assert bad.to_dict()["statistic"] is None and bad.to_dict()["p_value"] is None
    assert bad.to_dict()["effect"] == {"ks": None} and bad.to_dict()["detectable_effect"] is None
    json.dumps(bad.to_dict(), allow_nan=False)
