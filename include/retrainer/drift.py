"""Data-drift statistics between the champion's training data and a new batch.

The retraining DAG asks one question of this module: *has the input
distribution moved enough that the champion may be stale?*  ``detect_drift``
answers it with a :class:`DriftReport` whose ``gate`` decides the branch, and
whose per-feature entries explain the decision to a human.

Everything here is pure numpy/pandas; scipy is imported lazily, only for
p-values (Kolmogorov-Smirnov and chi-square distributions).

Statistics
----------
Numeric columns (all three are always computed and reported in ``effect``):

* **KS** - two-sample Kolmogorov-Smirnov statistic ``D`` (largest gap between
  the two empirical CDFs) and its p-value.  ``D`` and the p-value equal
  ``scipy.stats.ks_2samp(ref, cur)`` with its default ``method='auto'``: the
  exact distribution when both samples have at most 10,000 values, Smirnov's
  asymptotic ``kstwo`` distribution otherwise.  ``D`` is computed for all
  columns at once: each column is sorted once, the two sorted samples are
  merged with a stable argsort, and cumulative counts give both ECDFs at
  every distinct value.
* **Wasserstein-1** - area between the two ECDFs, equal to
  ``scipy.stats.wasserstein_distance``.  It is in the feature's own units, so
  the decision uses ``W / std(reference)`` (population std, ddof=0), reported
  as ``wasserstein_normalized``; when the reference is constant the
  normalized value is 0 if W is 0 and infinite otherwise.
* **PSI** - population stability index, see *PSI binning* below.

Categorical columns: a 2 x K contingency table (row 0 = reference counts,
row 1 = current counts, columns = union of categories seen in either frame,
so categories unseen in the reference get a column with reference count 0).
Missing values are **counted as their own category** (reported as
``"__null__"``) rather than dropped, because a category that starts arriving
as null is itself a change in what the model receives.  Categories that have
no rows in either frame (unused levels of a pandas Categorical) are dropped.

* **chi2** - Pearson chi-square test of homogeneity on that table, equal to
  ``scipy.stats.chi2_contingency(table)`` including its default Yates
  continuity correction when dof == 1.  A table with one category has
  dof = 0, chi2 = 0 and p = 1, as in scipy.
* **Cramer's V** - ``sqrt(chi2_uncorrected / n)`` for a 2 x K table (the
  effect size of ``scipy.stats.contingency.association(method="cramer")``,
  always from the *uncorrected* chi-square); 0 when K = 1.
* **PSI** over the category proportions, same epsilon floor as below.

PSI binning
-----------
Bin edges are the reference quantiles at ``1/b, 2/b, ..., (b-1)/b`` with
``b = psi_bins`` (deciles by default; ``numpy.quantile`` with its default
linear interpolation), deduplicated so that tied quantiles (point masses,
e.g. many zeros) do not create empty zero-width bins.  The outer edges are
open (``-inf`` and ``+inf``), so current values outside the reference range
land in the first/last bin instead of being lost.  Bins are right-closed:
``(-inf, e1], (e1, e2], ..., (e_last, +inf)``, which puts a point mass at an
edge into the bin that ends there.  Bin proportions are floored at
``epsilon = 1e-4`` (without renormalising) so that an empty bin contributes a
large but finite term instead of ``log(0)``.
``PSI = sum((cur_i - ref_i) * ln(cur_i / ref_i))``.  Common reading: < 0.1
stable, 0.1-0.2 moderate, > 0.2 (the default threshold) significant shift.

Deciding that a feature drifted (and why p-values alone are not enough)
-----------------------------------------------------------------------
A p-value measures how sure we are that the two distributions differ, not
how *much* they differ.  Its standard error shrinks like ``1/sqrt(n)``, so
with hundreds of thousands of rows a KS or chi-square test flags shifts far
too small to hurt a model (a 0.01-standard-deviation shift of a feature with
500k rows per side is "highly significant").  Retraining on every such
shift wastes compute and churns the production model.  Conversely, an
effect size alone is noisy on small batches.  So the p-value methods
require **both**:

* numeric, ``numeric_method="ks"``: adjusted p < ``alpha`` **and**
  ``D >= ks_min_statistic`` (default 0.1: the ECDFs differ by at least ten
  percentage points somewhere);
* categorical, ``categorical_method="chi2"``: adjusted p < ``alpha`` **and**
  Cramer's V >= ``chi2_min_cramers_v`` (default 0.1, conventionally a
  "small" association).

The p-values of all tested features form one family and are adjusted with
``correction`` (Holm by default, which controls the family-wise error rate
without assuming independence; ``fdr_bh`` and ``bonferroni`` match
``statsmodels.stats.multitest.multipletests``).  Without it, 20 features at
alpha = 0.05 would flag about one false drift per batch even when nothing
changed.

The threshold methods have no p-value (``p_value`` is ``None``): a feature
drifts when ``psi >= psi_threshold`` (``numeric_method="psi"`` or
``categorical_method="psi"``) or ``W / std(reference) >=
wasserstein_threshold`` (``numeric_method="wasserstein"``).

Missing and non-finite values, edge cases
-----------------------------------------
* Numeric NaN/None/pd.NA are ignored per column; ``+inf``/``-inf`` are
  treated as missing as well (they are almost always sentinel or overflow
  values, and they would make the Wasserstein distance infinite); a note
  counts them.  The low-level ``*_columns`` functions follow the same rule.
  ``effect`` reports ``null_rate_reference`` / ``null_rate_current`` so a
  jump in missingness is visible even though KS/PSI ignore it.
* A column that is entirely missing in the current batch or in the reference
  (but not both) is **not computed and counts as drifted**, with a note: a
  feature that vanished (or appeared) is drift.  Missing in both: not
  drifted, note says there was nothing to compare.
* Constant columns need no special case (KS, PSI and chi2 handle them;
  see Wasserstein above).
* Fewer than ``min_rows`` rows in either frame: no statistics, ``gate`` is
  False and ``reason`` starts with ``"insufficient data:"`` - the gate does
  not guess on tiny samples.  A column with fewer than ``min_rows`` non-null
  values is still tested (the test accounts for sample size) and gets a note.
* Frames with more than ``max_rows`` rows are subsampled without replacement
  with ``numpy.random.default_rng(SeedSequence([seed, 0 or 1]))``: the same
  inputs and seed always give the same report.  ``DriftReport.n_reference`` /
  ``n_current`` are the full row counts; ``FeatureDrift.n_reference`` /
  ``n_current`` are the non-missing values actually compared.
* A column listed but absent from either frame, listed twice, or listed as
  both numeric and categorical raises ``ValueError`` naming it.

Gate
----
The gate trips (retrain) if any ``critical_features`` drifted, or the share of
drifted features is ``>= gate_min_drifted_share``, or their count is
``>= gate_min_drifted_features``.  ``reason`` is a human-readable sentence,
e.g. ``"drift: 3 of 7 features drifted (43% >= 30%): a, b, c"``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NULL_CATEGORY",
    "PSI_EPSILON",
    "DriftReport",
    "DriftSettings",
    "FeatureDrift",
    "adjust_pvalues",
    "chi2_columns",
    "detect_drift",
    "ks_2samp_columns",
    "psi_categorical",
    "psi_columns",
    "wasserstein_columns",
]

#: Label used in reports for the "missing" category of categorical columns.
NULL_CATEGORY = "__null__"
#: Floor for bin/category proportions in PSI, so empty bins stay finite.
PSI_EPSILON = 1e-4

_NUMERIC_METHODS = ("ks", "psi", "wasserstein")
_CATEGORICAL_METHODS = ("chi2", "psi")
_CORRECTIONS = ("holm", "bonferroni", "fdr_bh", "none")
# scipy.stats.ks_2samp(method="auto") is exact up to this many values per side.
_KS_MAX_EXACT_N = 10_000
# Upper bound on (columns x merged rows) processed in one block of the merge;
# bounds peak memory (~70 bytes per element) without giving up vectorization.
_MERGE_BLOCK_ELEMENTS = 1 << 22
_MAX_LISTED_CATEGORIES = 5


# --------------------------------------------------------------------------
# Settings and result types
# --------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(float(value))
    )


@dataclass(frozen=True)
class DriftSettings:
    """Thresholds and methods for :func:`detect_drift`.

    The defaults are tuned for weekly batches of thousands to hundreds of
    thousands of rows: significance *and* a minimum effect size are required
    (see the module docstring for why).
    """

    numeric_method: str = "ks"
    categorical_method: str = "chi2"
    alpha: float = 0.05
    correction: str = "holm"
    ks_min_statistic: float = 0.1
    chi2_min_cramers_v: float = 0.1
    psi_threshold: float = 0.2
    wasserstein_threshold: float = 0.1
    psi_bins: int = 10
    min_rows: int = 200
    max_rows: int = 200_000
    seed: int = 0
    gate_min_drifted_share: float | None = 0.3
    gate_min_drifted_features: int | None = None
    critical_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def fail(name: str, allowed: str) -> None:
            raise ValueError(
                f"DriftSettings.{name} must be {allowed}; got {getattr(self, name)!r}"
            )

        if self.numeric_method not in _NUMERIC_METHODS:
            fail("numeric_method", "one of " + ", ".join(map(repr, _NUMERIC_METHODS)))
        if self.categorical_method not in _CATEGORICAL_METHODS:
            fail("categorical_method", "one of " + ", ".join(map(repr, _CATEGORICAL_METHODS)))
        if self.correction not in _CORRECTIONS:
            fail("correction", "one of " + ", ".join(map(repr, _CORRECTIONS)))
        if not (_is_real(self.alpha) and 0.0 < self.alpha < 1.0):
            fail("alpha", "a number strictly between 0 and 1")
        if not (_is_real(self.ks_min_statistic) and 0.0 <= self.ks_min_statistic <= 1.0):
            fail("ks_min_statistic", "a number in [0, 1]")
        if not (_is_real(self.chi2_min_cramers_v) and 0.0 <= self.chi2_min_cramers_v <= 1.0):
            fail("chi2_min_cramers_v", "a number in [0, 1]")
        if not (_is_real(self.psi_threshold) and self.psi_threshold > 0.0):
            fail("psi_threshold", "a finite number > 0")
        if not (_is_real(self.wasserstein_threshold) and self.wasserstein_threshold > 0.0):
            fail("wasserstein_threshold", "a finite number > 0")
        if not (_is_int(self.psi_bins) and self.psi_bins >= 2):
            fail("psi_bins", "an integer >= 2")
        if not (_is_int(self.min_rows) and self.min_rows >= 1):
            fail("min_rows", "an integer >= 1")
        if not (_is_int(self.max_rows) and self.max_rows >= self.min_rows):
            fail("max_rows", f"an integer >= min_rows ({self.min_rows!r})")
        if not (_is_int(self.seed) and self.seed >= 0):
            fail("seed", "an integer >= 0")
        share = self.gate_min_drifted_share
        if share is not None and not (_is_real(share) and 0.0 < share <= 1.0):
            fail("gate_min_drifted_share", "None or a number in (0, 1]")
        count = self.gate_min_drifted_features
        if count is not None and not (_is_int(count) and count >= 1):
            fail("gate_min_drifted_features", "None or an integer >= 1")
        critical = self.critical_features
        if isinstance(critical, (str, bytes)) or not isinstance(critical, Iterable):
            fail("critical_features", "a tuple of column names (not a single string)")
        critical = tuple(critical)
        if not all(isinstance(c, str) for c in critical):
            fail("critical_features", "a tuple of column names (strings)")
        object.__setattr__(self, "critical_features", critical)
        if share is None and count is None and not critical:
            raise ValueError(
                "DriftSettings: at least one of gate_min_drifted_share, "
                "gate_min_drifted_features or critical_features must be set, "
                "otherwise the gate could never trip"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable copy (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["critical_features"] = list(self.critical_features)
        return out


def _json_float(value: Any) -> float | None:
    """Finite python float, or None for None/NaN/inf (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class FeatureDrift:
    """Drift verdict and statistics for one column.

    ``statistic`` is the quantity named by ``method`` (KS D, chi-square,
    PSI, or normalized Wasserstein).  ``threshold`` is what decides: for the
    p-value methods (ks, chi2) it is ``alpha``, compared with
    ``p_value_adjusted`` (the effect-size floor from the settings must also
    be met); for psi/wasserstein it is compared with ``statistic``.
    ``effect`` holds every statistic computed for the column.
    ``n_reference``/``n_current`` count the values compared (non-missing,
    after subsampling; for categorical columns missing values are a category
    and are included).
    """

    column: str
    kind: str
    method: str
    statistic: float
    p_value: float | None
    p_value_adjusted: float | None
    threshold: float
    drifted: bool
    effect: dict[str, float]
    n_reference: int
    n_current: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict; NaN/inf become None."""
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "statistic": _json_float(self.statistic),
            "p_value": _json_float(self.p_value),
            "p_value_adjusted": _json_float(self.p_value_adjusted),
            "threshold": _json_float(self.threshold),
            "drifted": bool(self.drifted),
            "effect": {str(k): _json_float(v) for k, v in self.effect.items()},
            "n_reference": int(self.n_reference),
            "n_current": int(self.n_current),
            "note": self.note,
        }


@dataclass
class DriftReport:
    """Outcome of :func:`detect_drift`: the gate, why, and per-feature detail."""

    gate: bool
    reason: str
    features: dict[str, FeatureDrift]
    drifted: list[str]
    n_reference: int
    n_current: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict (``json.dumps(..., allow_nan=False)`` works)."""
        return {
            "gate": bool(self.gate),
            "reason": self.reason,
            "features": {str(col): f.to_dict() for col, f in self.features.items()},
            "drifted": [str(c) for c in self.drifted],
            "n_reference": int(self.n_reference),
            "n_current": int(self.n_current),
            "settings": dict(self.settings),
        }


# --------------------------------------------------------------------------
# Numeric statistics (vectorized over columns)
# --------------------------------------------------------------------------


@dataclass
class _SortedColumns:
    """Both samples laid out column-major, sorted, NaN (and inf) at the end.

    ``ref``/``cur`` have shape (k, n); row j holds column j, its first
    ``n_ref[j]``/``n_cur[j]`` entries are the sorted finite values.
    """

    ref: np.ndarray
    cur: np.ndarray
    n_ref: np.ndarray
    n_cur: np.ndarray


def _columns_major(values: Any, name: str) -> np.ndarray:
    """(n, k) (or 1-D) array-like -> (k, n) float64 copy with non-finite as NaN."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 1-D or 2-D (rows, columns) array; got shape {arr.shape}")
    out = np.array(arr.T, dtype=np.float64, order="C", copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def _sort_columns(reference: Any, current: Any) -> _SortedColumns:
    ref = _columns_major(reference, "reference")
    cur = _columns_major(current, "current")
    if ref.shape[0] != cur.shape[0]:
        raise ValueError(
            f"reference has {ref.shape[0]} columns but current has {cur.shape[0]}; "
            "they must describe the same features in the same order"
        )
    n_ref = np.count_nonzero(~np.isnan(ref), axis=1)
    n_cur = np.count_nonzero(~np.isnan(cur), axis=1)
    ref.sort(axis=1)  # numpy sorts NaN to the end
    cur.sort(axis=1)
    return _SortedColumns(ref, cur, n_ref, n_cur)


def _merged_ks_wasserstein(s: _SortedColumns) -> tuple[np.ndarray, np.ndarray]:
    """KS D and Wasserstein-1 distance per column from one merge of both samples.

    The two sorted samples of each column are concatenated and merged with a
    stable argsort (two presorted runs: close to linear).  Cumulative counts
    of reference/current members along the merged order are the two ECDFs
    times their sizes; evaluated at the last element of each tie group they
    equal scipy's ``searchsorted(side='right')`` counts exactly, so D is
    bit-identical to ``scipy.stats.ks_2samp``.  The Wasserstein distance is
    ``sum |F_ref - F_cur| * gap`` over consecutive merged values (gaps inside
    tie groups are 0).  Columns are processed in blocks to bound memory.
    """
    k, n1 = s.ref.shape
    n2 = s.cur.shape[1]
    total = n1 + n2
    d = np.full(k, np.nan)
    w = np.full(k, np.nan)
    if k == 0 or total == 0:
        return d, w
    block = max(1, _MERGE_BLOCK_ELEMENTS // total)
    positions = np.arange(total)
    count_dtype = np.int32 if total < np.iinfo(np.int32).max else np.int64
    for start in range(0, k, block):
        sl = slice(start, min(k, start + block))
        nr = s.n_ref[sl]
        nc = s.n_cur[sl]
        ok = (nr > 0) & (nc > 0)
        if not ok.any():
            continue
        concat = np.concatenate([s.ref[sl], s.cur[sl]], axis=1)
        order = np.argsort(concat, axis=1, kind="stable")
        merged = np.take_along_axis(concat, order, axis=1)
        del concat
        # NaNs sort last, so the first n_valid merged entries are all finite.
        cum_ref = np.cumsum(order < n1, axis=1, dtype=count_dtype)
        del order
        cum_cur = (positions + 1).astype(count_dtype) - cum_ref
        n_valid = (nr + nc)[:, None]
        valid = positions < n_valid
        with np.errstate(divide="ignore", invalid="ignore"):
            cdf_diff = cum_ref / nr[:, None] - cum_cur / nc[:, None]
        del cum_ref, cum_cur
        tie_end = np.empty_like(valid)
        tie_end[:, :-1] = merged[:, 1:] != merged[:, :-1]
        tie_end[:, -1] = True
        tie_end &= valid
        max_s = np.max(np.where(tie_end, cdf_diff, -np.inf), axis=1)
        min_s = np.clip(-np.min(np.where(tie_end, cdf_diff, np.inf), axis=1), 0.0, 1.0)
        d_block = np.where(min_s > max_s, min_s, max_s)
        gaps = merged[:, 1:] - merged[:, :-1]
        terms = np.where(valid[:, 1:], np.abs(cdf_diff[:, :-1]) * gaps, 0.0)
        w_block = terms.sum(axis=1)
        d[sl] = np.where(ok, d_block, np.nan)
        w[sl] = np.where(ok, w_block, np.nan)
    return d, w


def _ks_pvalues(
    d: np.ndarray, s: _SortedColumns
) -> tuple[np.ndarray, np.ndarray]:
    """p-values the way ``scipy.stats.ks_2samp(method='auto')`` computes them.

    Exact distribution when both samples have <= 10,000 values (falling back to
    the asymptotic one when the exact recursion overflows, as scipy does);
    otherwise ``kstwo.sf(D, round(n1*n2/(n1+n2)))``.  In the exact branch scipy
    reports D rounded to a multiple of 1/lcm(n1, n2); the returned D does too.
    """
    from scipy.stats import distributions

    try:  # private, but it is precisely what ks_2samp calls
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:  # pragma: no cover - only if scipy reorganises
        _attempt_exact_2kssamp = None

    d_out = d.astype(np.float64, copy=True)
    p = np.full(d.shape, np.nan)
    asymp: list[int] = []
    for j in range(d.shape[0]):
        n1, n2 = int(s.n_ref[j]), int(s.n_cur[j])
        if n1 == 0 or n2 == 0 or not math.isfinite(d[j]):
            continue
        if max(n1, n2) <= _KS_MAX_EXACT_N:
            if _attempt_exact_2kssamp is None:  # pragma: no cover
                from scipy.stats import ks_2samp

                res = ks_2samp(s.ref[j, :n1], s.cur[j, :n2])
                d_out[j], p[j] = float(res.statistic), float(res.pvalue)
                continue
            success, d_exact, prob = _attempt_exact_2kssamp(
                n1, n2, math.gcd(n1, n2), float(d[j]), "two-sided"
            )
            if success:
                d_out[j], p[j] = d_exact, prob
                continue
            # scipy warns and switches to the asymptotic distribution here.
            d_out[j] = d_exact
        asymp.append(j)
    if asymp:
        idx = np.asarray(asymp)
        m = np.maximum(s.n_ref[idx], s.n_cur[idx]).astype(np.float64)
        n = np.minimum(s.n_ref[idx], s.n_cur[idx]).astype(np.float64)
        en = m * n / (m + n)
        p[idx] = distributions.kstwo.sf(d_out[idx], np.round(en))
    return d_out, np.clip(p, 0.0, 1.0)


def ks_2samp_columns(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample KS statistic and p-value for every column.

    ``reference`` (n1, k) and ``current`` (n2, k) are float arrays whose
    columns are paired; NaN and +/-inf are ignored per column.  Returns
    ``(D, p)``, each of shape (k,), equal to ``scipy.stats.ks_2samp`` on each
    column's finite values; NaN for a column with no finite values on a side.
    """
    s = _sort_columns(reference, current)
    d, _ = _merged_ks_wasserstein(s)
    return _ks_pvalues(d, s)


def wasserstein_columns(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Wasserstein-1 distance per column, equal to ``scipy.stats.wasserstein_distance``.

    Same layout and missing-value rule as :func:`ks_2samp_columns`.
    """
    _, w = _merged_ks_wasserstein(_sort_columns(reference, current))
    return w


def _psi_from_proportions(p_ref: np.ndarray, p_cur: np.ndarray) -> float:
    p_ref = np.maximum(p_ref, PSI_EPSILON)
    p_cur = np.maximum(p_cur, PSI_EPSILON)
    return float(np.sum((p_cur - p_ref) * np.log(p_cur / p_ref)))


def _psi_sorted(s: _SortedColumns, bins: int) -> np.ndarray:
    """PSI per column on already sorted samples (binning: module docstring).

    Per column this is one O(n) quantile and a few binary searches, so the
    python loop costs nothing next to the sort.
    """
    quantiles = np.arange(1, bins) / bins
    out = np.full(s.ref.shape[0], np.nan)
    for j in range(s.ref.shape[0]):
        n1, n2 = int(s.n_ref[j]), int(s.n_cur[j])
        if n1 == 0 or n2 == 0:
            continue
        ref = s.ref[j, :n1]
        cur = s.cur[j, :n2]
        edges = np.unique(np.quantile(ref, quantiles))
        ref_cum = np.concatenate(([0], np.searchsorted(ref, edges, side="right"), [n1]))
        cur_cum = np.concatenate(([0], np.searchsorted(cur, edges, side="right"), [n2]))
        out[j] = _psi_from_proportions(np.diff(ref_cum) / n1, np.diff(cur_cum) / n2)
    return out


def psi_columns(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> np.ndarray:
    """Population stability index per column on reference-quantile bins.

    Same layout and missing-value rule as :func:`ks_2samp_columns`; binning
    as in the module docstring.  NaN for a column with no finite values on a
    side.
    """
    if not (_is_int(bins) and bins >= 2):
        raise ValueError(f"bins must be an integer >= 2; got {bins!r}")
    return _psi_sorted(_sort_columns(reference, current), int(bins))


def psi_categorical(ref_counts: Any, cur_counts: Any) -> float:
    """PSI between two category-count vectors.

    Either two equal-length array-likes aligned by position, or two
    ``pandas.Series``/mappings keyed by category (aligned by key; a category
    missing from one side counts 0 there).  Proportions are floored at
    ``PSI_EPSILON`` like the numeric bins.
    """
    if isinstance(ref_counts, (pd.Series, Mapping)) or isinstance(cur_counts, (pd.Series, Mapping)):
        if not (isinstance(ref_counts, (pd.Series, Mapping)) and isinstance(cur_counts, (pd.Series, Mapping))):
            raise ValueError("psi_categorical: pass both counts keyed by category, or both as arrays")
        ref_s = pd.Series(ref_counts, dtype="float64")
        cur_s = pd.Series(cur_counts, dtype="float64")
        ref_s.index = ref_s.index.astype(object)
        cur_s.index = cur_s.index.astype(object)
        table = pd.concat([ref_s, cur_s], axis=1).fillna(0.0)
        ref = table.iloc[:, 0].to_numpy()
        cur = table.iloc[:, 1].to_numpy()
    else:
        ref = np.asarray(ref_counts, dtype=np.float64)
        cur = np.asarray(cur_counts, dtype=np.float64)
        if ref.ndim != 1 or ref.shape != cur.shape:
            raise ValueError(
                f"psi_categorical: counts must be 1-D and aligned; got shapes {ref.shape} and {cur.shape}"
            )
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(cur))) or (ref < 0).any() or (cur < 0).any():
        raise ValueError("psi_categorical: counts must be finite and non-negative")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("psi_categorical: each side needs a positive total count")
    return _psi_from_proportions(ref / ref.sum(), cur / cur.sum())


# --------------------------------------------------------------------------
# Categorical statistics
# --------------------------------------------------------------------------


@dataclass
class _CategoryTable:
    labels: list[Any]  # category values; NULL_CATEGORY for the missing row
    counts: np.ndarray  # (2, K) int64: row 0 reference, row 1 current


def _category_table(reference: pd.Series, current: pd.Series) -> _CategoryTable:
    """2 x K counts over the union of categories; missing values form a category.

    The null category is kept as its own column even when a real category
    happens to be spelled ``"__null__"``.
    """
    ref_vc = reference.value_counts(dropna=True, sort=False)
    cur_vc = current.value_counts(dropna=True, sort=False)
    ref_vc.index = pd.Index(ref_vc.index.astype(object), dtype=object)
    cur_vc.index = pd.Index(cur_vc.index.astype(object), dtype=object)
    both = pd.concat([ref_vc.rename("ref"), cur_vc.rename("cur")], axis=1).fillna(0)
    both = both[(both["ref"] > 0) | (both["cur"] > 0)]
    labels = list(both.index)
    counts = both.to_numpy(dtype=np.int64).T
    null_counts = np.array([[int(reference.isna().sum())], [int(current.isna().sum())]], dtype=np.int64)
    if null_counts.sum() > 0:
        labels.append(NULL_CATEGORY)
        counts = np.concatenate([counts, null_counts], axis=1)
    return _CategoryTable(labels, counts)


def _chi2_statistic(table: np.ndarray) -> tuple[float, int, float]:
    """(chi2 as scipy.stats.chi2_contingency, dof, Cramer's V) of a 2 x K table."""
    observed = np.asarray(table, dtype=np.float64)
    k = observed.shape[1]
    dof = k - 1
    n = observed.sum()
    if dof == 0 or n == 0:
        return 0.0, max(dof, 0), 0.0
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    uncorrected = float(np.sum((observed - expected) ** 2 / expected))
    cramers_v = math.sqrt(uncorrected / n)  # min(rows, cols) - 1 == 1 for 2 x K
    if dof == 1:
        # Yates' continuity correction exactly as scipy applies it.
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
        chi2 = float(np.sum((observed - expected) ** 2 / expected))
    else:
        chi2 = uncorrected
    return chi2, dof, cramers_v


def _chi2_pvalues(chi2: Sequence[float], dof: Sequence[int]) -> np.ndarray:
    from scipy.stats import chi2 as chi2_dist

    chi2_arr = np.asarray(chi2, dtype=np.float64)
    dof_arr = np.asarray(dof, dtype=np.float64)
    if chi2_arr.size == 0:
        return chi2_arr
    with np.errstate(invalid="ignore"):
        p = np.where(dof_arr > 0, chi2_dist.sf(chi2_arr, np.maximum(dof_arr, 1.0)), 1.0)
    return p


def chi2_columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Iterable[Any]
) -> list[tuple[float, float, int, float]]:
    """Chi-square test of homogeneity per categorical column.

    For each column returns ``(chi2, p, dof, cramers_v)`` where chi2/p/dof
    equal ``scipy.stats.chi2_contingency`` (default Yates correction at
    dof == 1) on the 2 x K table described in the module docstring (missing
    values are a category), and Cramer's V comes from the uncorrected chi2.
    """
    columns = list(columns)
    _check_columns_present(reference, current, columns)
    if len(reference) == 0 or len(current) == 0:
        raise ValueError(
            f"chi2_columns needs rows on both sides; got {len(reference)} reference and {len(current)} current rows"
        )
    stats = [_chi2_statistic(_category_table(reference[c], current[c]).counts) for c in columns]
    p = _chi2_pvalues([s[0] for s in stats], [s[1] for s in stats])
    return [(chi2, float(pj), dof, v) for (chi2, dof, v), pj in zip(stats, p)]


# --------------------------------------------------------------------------
# Multiple testing
# --------------------------------------------------------------------------


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values, equal to ``statsmodels ... multipletests(p, method=...)[1]``.

    ``method``: ``"holm"`` (step-down, family-wise error), ``"bonferroni"``,
    ``"fdr_bh"`` (Benjamini-Hochberg false discovery rate) or ``"none"``.
    """
    if method not in _CORRECTIONS:
        raise ValueError(f"correction method must be one of {', '.join(map(repr, _CORRECTIONS))}; got {method!r}")
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values must be 1-D; got shape {p.shape}")
    if not np.all((p >= 0.0) & (p <= 1.0)):  # also rejects NaN
        raise ValueError("p-values must lie in [0, 1] (NaN is not allowed)")
    n = p.size
    if n == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * n, 1.0)
    order = np.argsort(p)
    p_sorted = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(p_sorted * np.arange(n, 0, -1))
    else:  # fdr_bh
        adjusted = p_sorted / (np.arange(1, n + 1) / float(n))
        adjusted = np.minimum.accumulate(adjusted[::-1])[::-1]
    adjusted = np.minimum(adjusted, 1.0)
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


# --------------------------------------------------------------------------
# detect_drift
# --------------------------------------------------------------------------


def _check_columns_present(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[Any]) -> None:
    for frame, name in ((reference, "reference"), (current, "current")):
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"{name} must be a pandas DataFrame; got {type(frame).__name__}")
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"column(s) {', '.join(map(repr, missing))} missing from the {name} frame "
                f"(it has {len(frame.columns)} columns)"
            )


def _subsample(frame: pd.DataFrame, max_rows: int, seed: int, stream: int) -> pd.DataFrame:
    """Deterministic sample of ``max_rows`` rows (original order kept)."""
    if len(frame) <= max_rows:
        return frame
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    idx = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[idx]


def _fmt_p(p: float) -> str:
    return f"{p:.3g}"


def _fmt_share_vs(share: float, threshold: float, op: str) -> str:
    """'43% >= 30%', with one decimal when rounding would hide the difference."""
    a, b = f"{share:.0%}", f"{threshold:.0%}"
    if a == b and share != threshold:
        a, b = f"{share:.1%}", f"{threshold:.1%}"
    return f"{a} {op} {b}"


def _numeric_features(
    ref: pd.DataFrame, cur: pd.DataFrame, columns: list[Any], settings: DriftSettings
) -> dict[Any, dict[str, Any]]:
    """Statistics for numeric columns, as raw per-column entries for detect_drift."""
    info: dict[Any, dict[str, Any]] = {}
    if not columns:
        return info
    ref_values = ref[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    cur_values = cur[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    ref_inf = np.isinf(ref_values).sum(axis=0)
    cur_inf = np.isinf(cur_values).sum(axis=0)
    s = _sort_columns(ref_values, cur_values)
    del ref_values, cur_values
    d, w = _merged_ks_wasserstein(s)
    psi = _psi_sorted(s, settings.psi_bins)
    p = np.full(len(columns), np.nan)
    if settings.numeric_method == "ks":
        d, p = _ks_pvalues(d, s)
    # Population std of the finite reference values, for normalizing W.
    std = np.full(len(columns), np.nan)
    for j in range(len(columns)):
        if s.n_ref[j] > 0:
            std[j] = float(np.std(s.ref[j, : s.n_ref[j]]))
    n_ref_rows, n_cur_rows = s.ref.shape[1], s.cur.shape[1]
    for j, col in enumerate(columns):
        notes: list[str] = []
        n1, n2 = int(s.n_ref[j]), int(s.n_cur[j])
        if ref_inf[j] or cur_inf[j]:
            notes.append(
                f"{int(ref_inf[j])} reference and {int(cur_inf[j])} current infinite values treated as missing"
            )
        effect = {
            "null_rate_reference": 1.0 - n1 / n_ref_rows,
            "null_rate_current": 1.0 - n2 / n_cur_rows,
        }
        entry: dict[str, Any] = {
            "kind": "numeric",
            "n_reference": n1,
            "n_current": n2,
            "non_null": (n1, n2),
            "notes": notes,
            "effect": effect,
        }
        info[col] = entry
        if n1 == 0 or n2 == 0:
            continue
        if std[j] > 0:
            w_norm = w[j] / std[j]
        else:
            w_norm = 0.0 if w[j] == 0 else math.inf
            if w[j] != 0:
                notes.append("reference is constant: normalized Wasserstein is infinite")
        effect.update(
            {"ks": float(d[j]), "psi": float(psi[j]), "wasserstein": float(w[j]), "wasserstein_normalized": float(w_norm)}
        )
        method = settings.numeric_method
        if method == "ks":
            entry.update(statistic=float(d[j]), p_value=float(p[j]), threshold=float(settings.alpha))
        elif method == "psi":
            entry.update(statistic=float(psi[j]), p_value=None, threshold=float(settings.psi_threshold))
        else:
            entry.update(statistic=float(w_norm), p_value=None, threshold=float(settings.wasserstein_threshold))
    return info


def _describe_categories(labels: Sequence[Any]) -> str:
    shown = ", ".join(repr(x) for x in labels[:_MAX_LISTED_CATEGORIES])
    extra = len(labels) - _MAX_LISTED_CATEGORIES
    return shown + (f", ... (+{extra} more)" if extra > 0 else "")


def _categorical_features(
    ref: pd.DataFrame, cur: pd.DataFrame, columns: list[Any], settings: DriftSettings
) -> dict[Any, dict[str, Any]]:
    info: dict[Any, dict[str, Any]] = {}
    chi2_values: list[float] = []
    dofs: list[int] = []
    computed: list[Any] = []
    for col in columns:
        ref_col, cur_col = ref[col], cur[col]
        ref_null, cur_null = int(ref_col.isna().sum()), int(cur_col.isna().sum())
        effect = {
            "null_rate_reference": ref_null / len(ref_col),
            "null_rate_current": cur_null / len(cur_col),
        }
        entry: dict[str, Any] = {
            "kind": "categorical",
            "n_reference": len(ref_col) - ref_null,
            "n_current": len(cur_col) - cur_null,
            "non_null": (len(ref_col) - ref_null, len(cur_col) - cur_null),
            "notes": [],
            "effect": effect,
        }
        info[col] = entry
        if ref_null == len(ref_col) or cur_null == len(cur_col):
            continue  # all-null handling is shared with numeric columns
        entry["n_reference"], entry["n_current"] = len(ref_col), len(cur_col)
        table = _category_table(ref_col, cur_col)
        chi2, dof, v = _chi2_statistic(table.counts)
        psi = _psi_from_proportions(
            table.counts[0] / table.counts[0].sum(), table.counts[1] / table.counts[1].sum()
        )
        unseen = [lab for lab, (r, c) in zip(table.labels, table.counts.T) if r == 0 and c > 0]
        unseen_rows = int(sum(c for r, c in table.counts.T if r == 0))
        effect.update(
            {
                "chi2": chi2,
                "dof": float(dof),
                "cramers_v": v,
                "psi": psi,
                "unseen_category_share": unseen_rows / len(cur_col),
            }
        )
        if unseen:
            entry["notes"].append(
                f"{len(unseen)} categor{'y' if len(unseen) == 1 else 'ies'} unseen in reference "
                f"({unseen_rows / len(cur_col):.1%} of current rows): {_describe_categories(unseen)}"
            )
        if settings.categorical_method == "chi2":
            entry.update(statistic=chi2, threshold=float(settings.alpha))
            chi2_values.append(chi2)
            dofs.append(dof)
            computed.append(col)
        else:
            entry.update(statistic=psi, p_value=None, threshold=float(settings.psi_threshold))
    for col, pj in zip(computed, _chi2_pvalues(chi2_values, dofs)):
        info[col]["p_value"] = float(pj)
    return info


def _decide(entry: dict[str, Any], settings: DriftSettings) -> tuple[bool, list[str]]:
    """Drift verdict for one computed column (all-null columns are handled by the caller)."""
    notes: list[str] = []
    method = entry["method"]
    stat = entry["statistic"]
    if method in ("ks", "chi2"):
        p_adj = entry["p_value_adjusted"]
        if method == "ks":
            effect_name, effect_value, floor, floor_name = "KS D", stat, settings.ks_min_statistic, "ks_min_statistic"
        else:
            effect_name, effect_value = "Cramer's V", entry["effect"]["cramers_v"]
            floor, floor_name = settings.chi2_min_cramers_v, "chi2_min_cramers_v"
        significant = p_adj < settings.alpha
        large = effect_value >= floor
        if significant and not large:
            notes.append(
                f"significant (adjusted p={_fmt_p(p_adj)} < alpha={settings.alpha:g}) but "
                f"{effect_name}={effect_value:.4g} < {floor_name}={floor:g}: too small to count as drift"
            )
        return bool(significant and large), notes
    return bool(stat >= entry["threshold"]), notes


def _insufficient(n_ref: int, n_cur: int, settings: DriftSettings) -> str | None:
    parts = []
    if n_cur < settings.min_rows:
        parts.append(f"current batch has {n_cur} rows")
    if n_ref < settings.min_rows:
        parts.append(f"reference data has {n_ref} rows")
    if not parts:
        return None
    return f"insufficient data: {' and '.join(parts)}, need at least min_rows={settings.min_rows}; drift not assessed"


def _gate(features: dict[str, FeatureDrift], drifted: list[str], settings: DriftSettings) -> tuple[bool, str]:
    n = len(features)
    count = len(drifted)
    share = count / n if n else 0.0
    names = ", ".join(drifted)
    summary = f"{count} of {n} features drifted"
    critical = [c for c in settings.critical_features if c in drifted]
    if critical:
        label = "critical feature drifted" if len(critical) == 1 else "critical features drifted"
        reason = f"{label}: {', '.join(critical)}"
        others = [c for c in drifted if c not in critical]
        if others:
            reason += f" ({summary}: {names})"
        return True, reason
    tripped: list[str] = []
    held: list[str] = []
    if settings.gate_min_drifted_share is not None:
        thr = settings.gate_min_drifted_share
        if share >= thr:
            tripped.append(_fmt_share_vs(share, thr, ">="))
        else:
            held.append(_fmt_share_vs(share, thr, "<"))
    if settings.gate_min_drifted_features is not None:
        thr_n = settings.gate_min_drifted_features
        if count >= thr_n:
            tripped.append(f"{count} >= {thr_n} features")
        else:
            held.append(f"{count} < {thr_n} features")
    if tripped:
        return True, f"drift: {summary} ({', '.join(tripped)}): {names}"
    reason = f"no drift: {summary}"
    if held:
        reason += f" ({', '.join(held)})"
    elif settings.critical_features:
        reason += f" (no critical feature drifted: {', '.join(settings.critical_features)})"
    if drifted:
        reason += f": {names}"
    return False, reason


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    settings: DriftSettings = DriftSettings(),
) -> DriftReport:
    """Compare ``current`` with ``reference`` feature by feature and decide the gate.

    ``numeric`` columns must have a numeric (or boolean) dtype; ``categorical``
    columns may have any dtype.  See the module docstring for the statistics,
    the decision rule, missing-value handling and the gate.

    Raises ``ValueError`` for a column missing from either frame, listed
    twice or as both kinds, a non-numeric column listed as numeric, a
    critical feature that is not compared, or no columns at all.
    """
    if not isinstance(settings, DriftSettings):
        raise ValueError(f"settings must be a DriftSettings; got {type(settings).__name__}")
    if isinstance(numeric, str) or isinstance(categorical, str):
        raise ValueError("numeric and categorical must be sequences of column names, not a single string")
    numeric = list(numeric)
    categorical = list(categorical)
    all_columns = numeric + categorical
    if not all_columns:
        raise ValueError("detect_drift needs at least one numeric or categorical column")
    seen: set[Any] = set()
    for col in all_columns:
        if col in seen:
            where = "both numeric and categorical" if col in numeric and col in categorical else "twice"
            raise ValueError(f"column {col!r} is listed {where}")
        seen.add(col)
    _check_columns_present(reference, current, all_columns)
    names = [str(c) for c in all_columns]
    if len(set(names)) != len(names):
        raise ValueError("column names must be distinct once converted to strings")
    unknown_critical = [c for c in settings.critical_features if c not in names]
    if unknown_critical:
        raise ValueError(
            f"critical feature(s) {', '.join(map(repr, unknown_critical))} are not among the compared columns"
        )
    for col in numeric:
        for frame, name in ((reference, "reference"), (current, "current")):
            dtype = frame[col].dtype
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                raise ValueError(
                    f"column {col!r} is listed as numeric but has dtype {dtype} in the {name} frame; "
                    "list it as categorical or convert it"
                )

    n_ref_total, n_cur_total = len(reference), len(current)
    settings_dict = settings.to_dict()
    insufficient = _insufficient(n_ref_total, n_cur_total, settings)
    if insufficient:
        return DriftReport(False, insufficient, {}, [], n_ref_total, n_cur_total, settings_dict)

    ref = _subsample(reference[all_columns], settings.max_rows, settings.seed, 0)
    cur = _subsample(current[all_columns], settings.max_rows, settings.seed, 1)

    num_info = _numeric_features(ref, cur, numeric, settings)
    cat_info = _categorical_features(ref, cur, categorical, settings)
    info = {**num_info, **cat_info}
    for col in numeric:
        info[col]["method"] = settings.numeric_method
    for col in categorical:
        info[col]["method"] = settings.categorical_method

    # One multiple-testing family across all tested features.
    tested = [c for c in all_columns if info[c].get("p_value") is not None]
    if tested:
        adjusted = adjust_pvalues(np.array([info[c]["p_value"] for c in tested]), settings.correction)
        for col, pa in zip(tested, adjusted):
            info[col]["p_value_adjusted"] = float(pa)

    features: dict[str, FeatureDrift] = {}
    drifted: list[str] = []
    for col, name in zip(all_columns, names):
        entry = info[col]
        notes: list[str] = entry["notes"]
        ref_all_null = entry["non_null"][0] == 0
        cur_all_null = entry["non_null"][1] == 0
        if "statistic" not in entry:
            # Not computed: a side has no values at all.
            if ref_all_null and cur_all_null:
                notes.append("all values null in both reference and current batch; nothing to compare")
                is_drift = False
            elif cur_all_null:
                notes.append("all values null in current batch (feature vanished)")
                is_drift = True
            else:
                notes.append("all values null in reference data (feature appeared)")
                is_drift = True
            threshold = {
                "ks": settings.alpha,
                "chi2": settings.alpha,
                "psi": settings.psi_threshold,
                "wasserstein": settings.wasserstein_threshold,
            }[entry["method"]]
            feature = FeatureDrift(
                column=name, kind=entry["kind"], method=entry["method"], statistic=math.nan,
                p_value=None, p_value_adjusted=None, threshold=float(threshold), drifted=is_drift,
                effect=entry["effect"], n_reference=entry["n_reference"], n_current=entry["n_current"],
                note="; ".join(notes),
            )
        else:
            entry.setdefault("p_value_adjusted", None)
            is_drift, decision_notes = _decide(entry, settings)
            notes.extend(decision_notes)
            n_ref_non_null, n_cur_non_null = entry["non_null"]
            if n_cur_non_null < settings.min_rows or n_ref_non_null < settings.min_rows:
                notes.append(
                    f"only {n_ref_non_null} reference / {n_cur_non_null} current non-missing values "
                    f"(min_rows={settings.min_rows}): low power"
                )
            feature = FeatureDrift(
                column=name, kind=entry["kind"], method=entry["method"], statistic=float(entry["statistic"]),
                p_value=entry.get("p_value"), p_value_adjusted=entry["p_value_adjusted"],
                threshold=float(entry["threshold"]), drifted=is_drift, effect=entry["effect"],
                n_reference=int(entry["n_reference"]), n_current=int(entry["n_current"]),
                note="; ".join(notes) or None,
            )
        features[name] = feature
        if feature.drifted:
            drifted.append(name)

    gate, reason = _gate(features, drifted, settings)
    return DriftReport(gate, reason, features, drifted, n_ref_total, n_cur_total, settings_dict)
