"""Uncertainty of holdout metrics: one model's estimate, and paired champion/challenger tests.

Two questions are answered here, both on a finite sample of held-out rows:

* :func:`metric_estimate`: how precisely is ONE model's metric known on this sample
  (value, standard error, confidence interval)? Used by cold start and by signals that
  compare a champion's metric on a new batch with its baseline.
* :func:`paired_metric_test`: is the challenger better (or not worse) than the champion
  on the SAME rows? Paired methods use the row-by-row correlation of the two models,
  which makes them far more sensitive than comparing two independent intervals.

Conventions
-----------
* ``effect`` is sign-adjusted: challenger minus champion for higher-is-better metrics,
  champion minus challenger for ``log_loss``; positive always means "challenger better".
* ``p_value`` is ONE-sided for H0: ``effect <= null_value``. The reported interval is
  two-sided at confidence ``1 - 2*alpha``, so its lower bound is the one-sided lower
  bound at ``alpha``: ``ci_low > null_value`` if and only if ``p_value < alpha`` (up to
  floating point; the decision code uses ``ci_low``).
* ``mde`` is the distance ABOVE ``null_value`` that a true effect must have to be
  detected with 80% power at one-sided ``alpha`` (normal approximation,
  ``(z_{1-alpha} + z_{0.8}) * se``). The smallest detectable true effect is
  ``null_value + mde``.
* A standard error of 0 (e.g. two identical models, or constant scores) is a valid
  outcome: the interval collapses to the point, ``p_value`` is 0 if the effect exceeds
  the null boundary and 1 otherwise, and ``mde`` is 0.

Methods per metric
------------------
* ``roc_auc``: DeLong et al. (1988) in the O(n log n) midrank form of Sun & Xu (2014).
  Binary: positive class = the last of the sorted labels. Multi-class: one-vs-rest macro
  average over the classes present in ``y_true`` (absent classes have no AUC). Its
  variance comes from per-row influence values: for each class ``k`` a row contributes
  ``(V10 - AUC_k)/m_k`` if it is of class ``k`` (V10 = its placement among the ``n_k``
  others) or ``(V01 - AUC_k)/n_k`` otherwise (V01 = its placement among the ``m_k`` rows
  of class ``k``); a row's influence on the macro average is the mean of these over the
  classes. Summing the squared influences (with the ``c/(c-1)`` small-sample factor per
  true class, ``c`` rows in the class; factor 1 for a single-row class) includes every
  cross-class covariance and reduces exactly to DeLong's ``S10/m + S01/n`` in the binary
  case. Influences are not centred within a class, so the variation of the class mix
  among the one-vs-rest negatives counts, as it does in a bootstrap of rows. The paired
  variance is the same sum over the per-row difference of the two models' influences.
* ``accuracy``: one model, binomial SE ``sqrt(p(1-p)/n)``. Paired: difference of the
  correlated proportions ``(c - b)/n`` (``b``: champion right and challenger wrong,
  ``c``: the reverse, the same counts as McNemar) with SE
  ``sqrt(b + c - (c - b)^2/n) / n`` (Agresti, Categorical Data Analysis, 10.1); normal
  interval and p-value (method ``binomial_diff``).
* ``log_loss``: per-row losses ``-log(clip(p_true, eps, 1 - eps))`` with ``eps`` the
  float64 machine epsilon (:data:`LOG_LOSS_EPS`, what scikit-learn's ``log_loss`` uses), so
  a probability of 0 for the true class (a class the model never saw) costs
  ``-log(eps) ~ 36.0`` rather than infinity. One model: SE of the mean per-row loss.
  Paired: t-test on the per-row loss differences (``n - 1`` degrees of freedom, t
  quantiles for the interval; ``mde`` still uses the normal approximation).
* ``balanced_accuracy``, ``f1``, ``precision``, ``recall``: seeded bootstrap of rows
  (default ``B = 2000`` resamples, ``seed = 0``; :data:`DEFAULT_BOOTSTRAP_RESAMPLES`,
  :data:`DEFAULT_SEED`). Paired: the same resampled rows for both models; SE = standard
  deviation of the resampled effects, percentile interval (``inverted_cdf`` quantiles),
  ``p_value`` = share of resampled effects ``<= null_value`` (resolution ``1/B``; 0 means
  "below 1/B"). These metrics depend on the rows only through the counts of
  ``(true label, prediction[, other prediction])`` cells, so resampling rows is done
  EXACTLY by drawing multinomial cell counts: cost ``O(B * cells)``, independent of the
  number of rows (100k-row holdouts cost the same as 300-row ones), computed in chunks of
  at most :data:`_BOOTSTRAP_CHUNK_ELEMENTS` numbers to bound memory. Label averaging
  follows :func:`include.retrainer.compare.compute_metrics` (binary with the positive
  class ``labels[-1]`` when the label space has two labels, otherwise macro over the
  labels present in ``y_true`` or the model's predictions).

Pure numpy/scipy; scipy is imported lazily so importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_BOOTSTRAP_RESAMPLES",
    "DEFAULT_SEED",
    "LOG_LOSS_EPS",
    "DeLongPaired",
    "MetricEstimate",
    "PairedTest",
    "delong_auc",
    "delong_paired",
    "label_metric_from_confusion",
    "metric_estimate",
    "paired_metric_test",
    "per_row_log_loss",
]

#: Probabilities are clipped to [eps, 1 - eps] before the log (scikit-learn's choice).
LOG_LOSS_EPS: float = float(np.finfo(np.float64).eps)
DEFAULT_BOOTSTRAP_RESAMPLES = 2000
DEFAULT_SEED = 0
#: Upper bound on numbers held at once by the bootstrap (resamples x cells).
_BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000
#: Power used for the minimum detectable effect.
_POWER = 0.8
#: Slack for "effect exceeds the null boundary" when the SE is exactly 0, so that
#: 0.57 - 0.56 (= 0.0099999...) counts as meeting a 0.01 boundary, not as missing it.
_TOLERANCE = 1e-12

_LABEL_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1", "precision", "recall"})
_BOOTSTRAP_METRICS = frozenset({"balanced_accuracy", "f1", "precision", "recall"})
_ALL_METRICS = _LABEL_METRICS | {"roc_auc", "log_loss"}


def _py(value: object) -> object:
    """A plain Python scalar: numpy scalars via .item(); object-array items are already plain."""
    return value.item() if isinstance(value, np.generic) else value


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricEstimate:
    """One model's metric on one sample with its standard error.

    ``method``: ``delong`` (roc_auc), ``binomial`` (accuracy), ``per_row_mean``
    (log_loss: SE of the mean per-row loss), ``bootstrap`` (other label metrics).
    ``ci_low``/``ci_high`` form a two-sided interval at ``confidence`` (normal
    approximation clipped to the metric's range, percentile interval for bootstrap).
    """

    metric: str
    value: float
    se: float
    n: int
    method: str
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None

    def to_dict(self) -> dict:
        """JSON-safe dict (plain floats; a non-finite number becomes None)."""
        return {
            "metric": self.metric,
            "value": _finite_or_none(self.value),
            "se": _finite_or_none(self.se),
            "n": int(self.n),
            "method": self.method,
            "ci_low": _finite_or_none(self.ci_low),
            "ci_high": _finite_or_none(self.ci_high),
            "confidence": _finite_or_none(self.confidence),
        }


@dataclass(frozen=True)
class PairedTest:
    """Paired comparison of champion and challenger on the same rows (see module doc).

    ``champion``/``challenger``: each model's metric value; ``effect``: sign-adjusted
    challenger minus champion (positive = challenger better, also for log_loss);
    ``[ci_low, ci_high]``: two-sided interval at ``confidence = 1 - 2*alpha``;
    ``null_value``: the boundary tested (``+min_improvement`` for superiority,
    ``-margin`` for non-inferiority); ``p_value``: one-sided, H0 ``effect <= null_value``;
    ``mde``: distance above ``null_value`` detectable with 80% power at one-sided alpha.
    """

    metric: str
    method: str
    champion: float
    challenger: float
    effect: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    null_value: float
    p_value: float
    mde: float
    n: int

    @property
    def alpha(self) -> float:
        """The one-sided level the interval was built for."""
        return (1.0 - self.confidence) / 2.0

    @property
    def clears_null(self) -> bool:
        """True if the one-sided lower bound lies above the null boundary (H0 rejected)."""
        return self.ci_low > self.null_value + _TOLERANCE

    def to_dict(self) -> dict:
        """JSON-safe dict (plain floats; a non-finite number becomes None)."""
        return {
            "metric": self.metric,
            "method": self.method,
            "champion": _finite_or_none(self.champion),
            "challenger": _finite_or_none(self.challenger),
            "effect": _finite_or_none(self.effect),
            "se": _finite_or_none(self.se),
            "ci_low": _finite_or_none(self.ci_low),
            "ci_high": _finite_or_none(self.ci_high),
            "confidence": float(self.confidence),
            "null_value": float(self.null_value),
            "p_value": _finite_or_none(self.p_value),
            "mde": _finite_or_none(self.mde),
            "n": int(self.n),
            "clears_null": bool(self.clears_null),
        }


@dataclass(frozen=True)
class DeLongPaired:
    """Two correlated AUCs on the same rows: values, standard errors and covariance."""

    auc_a: float
    auc_b: float
    se_a: float
    se_b: float
    covariance: float
    se_diff: float
    n: int
    classes: tuple
    """Classes whose AUC entered the value (the positive class, or every class present)."""


# --------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------


def _labels(values: npt.ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN labels")
    return arr


def _label_space(classes: npt.ArrayLike | None, *vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(sorted union of classes and observed labels, permutation sorting ``classes``)."""
    observed = np.unique(np.concatenate(vectors))
    if classes is None:
        return observed, None
    given = _labels(classes, "classes")
    if np.unique(given).size != given.size:
        raise ValueError(f"classes contains duplicates: {given.tolist()}")
    order = np.argsort(given, kind="stable")
    return np.union1d(given, observed), order


def _proba_matrix(
    proba: npt.ArrayLike, n_rows: int, classes: np.ndarray, order: np.ndarray | None, name: str
) -> np.ndarray:
    """(n, len(labels)) probabilities with columns in sorted-class order.

    A 1-D vector is P(last sorted class) of a binary problem.
    """
    arr = np.asarray(proba, dtype=float)
    if arr.ndim == 1:
        if classes.size != 2:
            raise ValueError(f"{name} is 1-D but there are {classes.size} classes; pass (n, n_classes)")
        arr = np.column_stack([1.0 - arr, arr])
        order = None  # a 1-D vector already refers to the sorted positive class
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise ValueError(f"{name} must have shape ({n_rows}, {classes.size}), got {arr.shape}")
    if arr.shape[1] != classes.size:
        raise ValueError(f"{name} has {arr.shape[1]} columns but there are {classes.size} classes")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
        raise ValueError(f"{name} has non-finite (NaN/inf) scores in {bad} of {n_rows} rows")
    if order is not None:
        arr = arr[:, order]
    return arr


def _sorted_classes(yt: np.ndarray, classes: npt.ArrayLike | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(sorted classes, permutation sorting ``classes``; None when inferred from ``y_true``)."""
    if classes is None:
        return np.unique(yt), None
    given = _labels(classes, "classes")
    if np.unique(given).size != given.size:
        raise ValueError(f"classes contains duplicates: {given.tolist()}")
    order = np.argsort(given, kind="stable")
    return given[order], order


def _proba_classes(yt: np.ndarray, classes: npt.ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(class index of each true label, sorted classes, permutation sorting ``classes``).

    Every label in ``y_true`` must be a class: the probability columns have to cover it.
    """
    cls, order = _sorted_classes(yt, classes)
    unknown = np.setdiff1d(np.unique(yt), cls)
    if unknown.size:
        raise ValueError(
            f"y_true contains labels {unknown.tolist()} not in classes {cls.tolist()}; align the "
            "probability columns to every label first (a class a model never saw scores 0)"
        )
    return np.searchsorted(cls, yt), cls, order


def _align_unseen(yt: np.ndarray, proba: npt.ArrayLike, classes: npt.ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities re-indexed to the sorted union of classes and y_true labels, that union).

    Columns for labels the model never saw are 0.
    """
    cls, order = _sorted_classes(yt, classes)
    mat = _proba_matrix(proba, yt.size, cls, order, "proba")
    labels = np.union1d(cls, yt)
    out = np.zeros((yt.size, labels.size))
    out[:, np.searchsorted(labels, cls)] = mat
    return out, labels


def _resolve_scores(
    y_true: npt.ArrayLike, score_list: list[npt.ArrayLike], classes: npt.ArrayLike | None
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, list[int]]:
    """Validate AUC inputs: (class index per row, score matrices, classes, columns to average).

    Scores are 1-D (binary: score of the positive class ``sorted(classes)[-1]``) or
    ``(n, n_classes)`` with columns aligned to ``classes`` (any order).
    """
    yt = _labels(y_true, "y_true")
    y_idx, cls, order = _proba_classes(yt, classes)
    present = np.unique(y_idx)
    if present.size < 2:
        raise ValueError(
            f"roc_auc is undefined: y_true contains a single class ({_py(cls[present[0]])!r}, {yt.size} rows)"
        )
    mats = [_proba_matrix(s, yt.size, cls, order, f"scores[{i}]") for i, s in enumerate(score_list)]
    columns = [cls.size - 1] if cls.size == 2 else present.tolist()
    return y_idx, mats, cls, columns


# --------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------


def _auc_influence(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUC and per-row influence for k score vectors (shape (k, n)) at once.

    Sun & Xu (2014): with midranks Tz in the pooled sample, Tx among positives and Ty
    among negatives, a positive's placement V10 = (Tz - Tx)/n is the share of negatives
    it outscores (ties count 1/2) and a negative's V01 = 1 - (Tz - Ty)/m the share of
    positives that outscore it. AUC = mean(V10) = mean(V01).
    """
    from scipy.stats import rankdata

    m = int(np.count_nonzero(positive))
    n = positive.size - m
    tz = rankdata(scores, axis=1)
    tx = rankdata(scores[:, positive], axis=1)
    ty = rankdata(scores[:, ~positive], axis=1)
    v10 = (tz[:, positive] - tx) / n
    v01 = 1.0 - (tz[:, ~positive] - ty) / m
    auc = v10.mean(axis=1)
    psi = np.empty_like(scores, dtype=float)
    psi[:, positive] = (v10 - auc[:, None]) / m
    psi[:, ~positive] = (v01 - auc[:, None]) / n
    return auc, psi


def _auc_and_influence(y_idx: np.ndarray, mats: list[np.ndarray], columns: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(AUC per model, influence per model and row) for the binary or macro-OvR AUC."""
    k = len(mats)
    auc = np.zeros(k)
    psi = np.zeros((k, y_idx.size))
    for col in columns:
        scores = np.stack([mat[:, col] for mat in mats])
        a, p = _auc_influence(y_idx == col, scores)
        auc += a
        psi += p
    return auc / len(columns), psi / len(columns)


def _stratified_sum(values: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Sum over rows of ``values`` (shape (..., n)) with factor c/(c-1) per stratum of c rows."""
    counts = np.bincount(strata)
    factor = np.where(counts > 1, counts / np.maximum(counts - 1, 1), 1.0)
    return values @ factor[strata]


def delong_auc(y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: npt.ArrayLike | None = None) -> MetricEstimate:
    """ROC AUC with DeLong's standard error (binary, or one-vs-rest macro; see module doc).

    Raises ValueError when AUC is undefined (a single class in ``y_true``) or scores are
    not finite.
    """
    y_idx, (mat,), _, columns = _resolve_scores(y_true, [scores], classes)
    auc, psi = _auc_and_influence(y_idx, [mat], columns)
    var = float(_stratified_sum(psi[0] ** 2, y_idx))
    return MetricEstimate("roc_auc", float(auc[0]), math.sqrt(max(var, 0.0)), int(y_idx.size), "delong")


def delong_paired(
    y_true: npt.ArrayLike,
    scores_a: npt.ArrayLike,
    scores_b: npt.ArrayLike,
    classes: npt.ArrayLike | None = None,
) -> DeLongPaired:
    """Two AUCs on the same rows with DeLong variances and their covariance."""
    y_idx, mats, cls, columns = _resolve_scores(y_true, [scores_a, scores_b], classes)
    auc, psi = _auc_and_influence(y_idx, mats, columns)
    var_a = float(_stratified_sum(psi[0] ** 2, y_idx))
    var_b = float(_stratified_sum(psi[1] ** 2, y_idx))
    cov = float(_stratified_sum(psi[0] * psi[1], y_idx))
    var_diff = float(_stratified_sum((psi[0] - psi[1]) ** 2, y_idx))
    return DeLongPaired(
        auc_a=float(auc[0]),
        auc_b=float(auc[1]),
        se_a=math.sqrt(max(var_a, 0.0)),
        se_b=math.sqrt(max(var_b, 0.0)),
        covariance=cov,
        se_diff=math.sqrt(max(var_diff, 0.0)),
        n=int(y_idx.size),
        classes=tuple(_py(cls[c]) for c in columns),
    )


# --------------------------------------------------------------------------------------
# Label metrics from confusion matrices (vectorised over bootstrap resamples)
# --------------------------------------------------------------------------------------


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0 where den == 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def label_metric_from_confusion(metric: str, cm: np.ndarray, binary: bool) -> np.ndarray:
    """Metric from confusion matrices ``cm`` of shape (..., K, K) (rows true, columns predicted).

    Follows scikit-learn with ``zero_division=0``: binary problems (``binary=True``, K=2)
    use the positive class index 1; otherwise macro over the labels present in the true
    or predicted labels of each matrix. balanced_accuracy averages recall over the
    classes present in the true labels.
    """
    cm = np.asarray(cm, dtype=float)
    diag = np.diagonal(cm, axis1=-2, axis2=-1)
    true_n = cm.sum(axis=-1)
    pred_n = cm.sum(axis=-2)
    total = true_n.sum(axis=-1)
    if metric == "accuracy":
        return _safe_div(diag.sum(axis=-1), total)
    if metric == "balanced_accuracy":
        present = true_n > 0
        recall = _safe_div(diag, true_n)
        return _safe_div((recall * present).sum(axis=-1), present.sum(axis=-1))
    if metric == "precision":
        per_class = _safe_div(diag, pred_n)
    elif metric == "recall":
        per_class = _safe_div(diag, true_n)
    elif metric == "f1":
        per_class = _safe_div(2.0 * diag, true_n + pred_n)
    else:
        raise ValueError(f"{metric!r} is not a label metric")
    if binary:
        return per_class[..., 1]
    present = (true_n + pred_n) > 0
    return _safe_div((per_class * present).sum(axis=-1), present.sum(axis=-1))


def _bootstrap_cell_counts(cells: np.ndarray, resamples: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (unique cell codes, chunk of multinomial cell counts) for a row bootstrap.

    Drawing n rows with replacement is the same as drawing Multinomial(n, cell shares)
    counts of the distinct cells, so this is an exact bootstrap at O(B * cells) cost.
    """
    codes, counts = np.unique(cells, return_counts=True)
    n = int(counts.sum())
    shares = counts / n
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // max(codes.size, 1))
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        yield codes, rng.multinomial(n, shares, size=size)
        done += size


def _confusions(draws: np.ndarray, true_idx: np.ndarray, pred_idx: np.ndarray, k: int) -> np.ndarray:
    """(B, k, k) confusion matrices from cell draws; the cells map to (true, pred) pairs."""
    pair = true_idx * k + pred_idx
    out = np.zeros((draws.shape[0], k * k))
    # Sum the draws of all cells that share a (true, pred) pair: one pass over the columns.
    order = np.argsort(pair, kind="stable")
    sorted_pair = pair[order]
    starts = np.flatnonzero(np.r_[True, sorted_pair[1:] != sorted_pair[:-1]])
    out[:, sorted_pair[starts]] = np.add.reduceat(draws[:, order], starts, axis=1)
    return out.reshape(-1, k, k)


# --------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------


def per_row_log_loss(y_idx: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """-log p(true class) per row, clipped to [LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]."""
    p = proba[np.arange(y_idx.size), y_idx]
    return -np.log(np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS))


def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _bounded_interval(metric: str, value: float, half: float) -> tuple[float, float]:
    low, high = value - half, value + half
    if metric == "log_loss":
        return max(low, 0.0), high
    return max(low, 0.0), min(high, 1.0)


def metric_estimate(
    metric: str,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike | None,
    proba: npt.ArrayLike | None,
    classes: npt.ArrayLike | None,
    *,
    confidence: float = 0.95,
    bootstrap_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricEstimate:
    """One model's ``metric`` on one sample, with SE and a two-sided ``confidence`` interval.

    ``proba`` columns align with ``classes`` (needed for roc_auc/log_loss); ``y_pred`` is
    needed for label metrics. Methods as in the module docstring. A label in ``y_true``
    that is not in ``classes`` (a class the model never saw, e.g. new in this batch) is
    scored with probability 0, as in ``compare.compare_models``: it lowers the model's
    roc_auc and costs ``-log(LOG_LOSS_EPS)`` per row in log_loss.
    """
    if metric not in _ALL_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(_ALL_METRICS)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must be in (0, 1)")
    yt = _labels(y_true, "y_true")
    n = int(yt.size)
    z = _z(0.5 + confidence / 2.0)
    if metric in ("roc_auc", "log_loss"):
        if proba is None:
            raise ValueError(f"{metric} needs probabilities (proba is None)")
        aligned, labels = _align_unseen(yt, proba, classes)
        if metric == "roc_auc":
            est = delong_auc(yt, aligned, labels)
            value, se, method = est.value, est.se, "delong"
        else:
            losses = per_row_log_loss(np.searchsorted(labels, yt), aligned)
            value = float(losses.mean())
            se = float(losses.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
            method = "per_row_mean"
        low, high = _bounded_interval(metric, value, z * se)
        return MetricEstimate(metric, value, se, n, method, low, high, confidence)

    if y_pred is None:
        raise ValueError(f"{metric} needs predicted labels (y_pred is None)")
    yp = _labels(y_pred, "y_pred")
    if yp.size != n:
        raise ValueError(f"y_true has {n} rows but y_pred has {yp.size}")
    labels, _ = _label_space(classes, yt, yp)
    k = labels.size
    t_idx, p_idx = np.searchsorted(labels, yt), np.searchsorted(labels, yp)
    cm = np.zeros((k, k))
    np.add.at(cm, (t_idx, p_idx), 1)
    binary = k == 2
    value = float(label_metric_from_confusion(metric, cm, binary))
    if metric == "accuracy":
        se = math.sqrt(value * (1.0 - value) / n)
        low, high = _bounded_interval(metric, value, z * se)
        return MetricEstimate(metric, value, se, n, "binomial", low, high, confidence)
    _check_resamples(bootstrap_resamples)
    samples = []
    for codes, draws in _bootstrap_cell_counts(t_idx * k + p_idx, bootstrap_resamples, seed):
        samples.append(label_metric_from_confusion(metric, _confusions(draws, codes // k, codes % k, k), binary))
    boot = np.concatenate(samples)
    alpha = (1.0 - confidence) / 2.0
    low = float(np.quantile(boot, alpha, method="inverted_cdf"))
    high = float(np.quantile(boot, 1.0 - alpha, method="inverted_cdf"))
    return MetricEstimate(metric, value, float(boot.std(ddof=1)), n, "bootstrap", low, high, confidence)


def _check_resamples(resamples: int) -> None:
    if not isinstance(resamples, (int, np.integer)) or isinstance(resamples, bool) or resamples < 100:
        raise ValueError(f"bootstrap_resamples={resamples!r} must be an integer >= 100")


# --------------------------------------------------------------------------------------
# Paired tests
# --------------------------------------------------------------------------------------


def _normal_test(
    effect: float, se: float, null_value: float, alpha: float, df: int | None = None
) -> tuple[float, float, float]:
    """(ci_low, ci_high, one-sided p) from a normal (or t with ``df``) approximation."""
    if se <= 0.0 or not math.isfinite(se):
        p = 0.0 if effect > null_value + _TOLERANCE else 1.0
        return effect, effect, p
    if df is None:
        from scipy.stats import norm

        q = float(norm.ppf(1.0 - alpha))
        p = float(norm.sf((effect - null_value) / se))
    else:
        from scipy.stats import t

        q = float(t.ppf(1.0 - alpha, df))
        p = float(t.sf((effect - null_value) / se, df))
    return effect - q * se, effect + q * se, p


def paired_metric_test(
    metric: str,
    y_true: npt.ArrayLike,
    champ_pred: npt.ArrayLike | None,
    chall_pred: npt.ArrayLike | None,
    champ_proba: npt.ArrayLike | None,
    chall_proba: npt.ArrayLike | None,
    classes: npt.ArrayLike | None,
    alpha: float,
    null_value: float,
    bootstrap_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedTest:
    """Paired test of challenger vs champion on the same rows (methods: module docstring).

    ``classes`` is the label space; probability columns align with it (any order). For
    roc_auc/log_loss every label in ``y_true`` must have a column (align first: a class
    a model never saw gets probability 0).
    """
    if metric not in _ALL_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(_ALL_METRICS)}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha={alpha!r} must be in (0, 0.5) for a one-sided test")
    if not math.isfinite(null_value):
        raise ValueError(f"null_value={null_value!r} must be finite")
    yt = _labels(y_true, "y_true")
    n = int(yt.size)
    confidence = 1.0 - 2.0 * alpha
    mde_factor = _z(1.0 - alpha) + _z(_POWER)

    def finish(
        method: str, champ: float, chall: float, effect: float, se: float, low: float, high: float, p: float
    ) -> PairedTest:
        return PairedTest(
            metric=metric,
            method=method,
            champion=float(champ),
            challenger=float(chall),
            effect=float(effect),
            se=float(se),
            ci_low=float(low),
            ci_high=float(high),
            confidence=confidence,
            null_value=float(null_value),
            p_value=float(min(1.0, max(0.0, p))),
            mde=float(mde_factor * se),
            n=n,
        )

    if metric == "roc_auc":
        if champ_proba is None or chall_proba is None:
            raise ValueError("roc_auc needs probabilities from both models")
        d = delong_paired(yt, champ_proba, chall_proba, classes)
        effect = d.auc_b - d.auc_a
        low, high, p = _normal_test(effect, d.se_diff, null_value, alpha)
        return finish("delong", d.auc_a, d.auc_b, effect, d.se_diff, low, high, p)

    if metric == "log_loss":
        if champ_proba is None or chall_proba is None:
            raise ValueError("log_loss needs probabilities from both models")
        if n < 2:
            raise ValueError("a paired t-test on per-row log loss needs at least 2 rows")
        y_idx, cls, order = _proba_classes(yt, classes)
        l_champ = per_row_log_loss(y_idx, _proba_matrix(champ_proba, n, cls, order, "champion_proba"))
        l_chall = per_row_log_loss(y_idx, _proba_matrix(chall_proba, n, cls, order, "challenger_proba"))
        diff = l_champ - l_chall  # positive = challenger has the lower loss
        effect = float(diff.mean())
        se = float(diff.std(ddof=1) / math.sqrt(n))
        low, high, p = _normal_test(effect, se, null_value, alpha, df=n - 1)
        return finish("paired_t", l_champ.mean(), l_chall.mean(), effect, se, low, high, p)

    if champ_pred is None or chall_pred is None:
        raise ValueError(f"{metric} needs predicted labels from both models")
    y1 = _labels(champ_pred, "champion_pred")
    y2 = _labels(chall_pred, "challenger_pred")
    if y1.size != n or y2.size != n:
        raise ValueError(f"y_true has {n} rows but the predictions have {y1.size} and {y2.size}")

    if metric == "accuracy":
        right1, right2 = y1 == yt, y2 == yt
        b = int(np.count_nonzero(right1 & ~right2))
        c = int(np.count_nonzero(~right1 & right2))
        effect = (c - b) / n
        se = math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n
        low, high, p = _normal_test(effect, se, null_value, alpha)
        return finish("binomial_diff", right1.mean(), right2.mean(), effect, se, low, high, p)

    _check_resamples(bootstrap_resamples)
    labels, _ = _label_space(classes, yt, y1, y2)
    k = labels.size
    binary = k == 2
    t_idx, p1, p2 = (np.searchsorted(labels, v) for v in (yt, y1, y2))
    cm1 = np.zeros((k, k))
    cm2 = np.zeros((k, k))
    np.add.at(cm1, (t_idx, p1), 1)
    np.add.at(cm2, (t_idx, p2), 1)
    champ = float(label_metric_from_confusion(metric, cm1, binary))
    chall = float(label_metric_from_confusion(metric, cm2, binary))
    effect = chall - champ
    effects = []
    for codes, draws in _bootstrap_cell_counts((t_idx * k + p1) * k + p2, bootstrap_resamples, seed):
        t_c, p1_c, p2_c = codes // (k * k), (codes // k) % k, codes % k
        m1 = label_metric_from_confusion(metric, _confusions(draws, t_c, p1_c, k), binary)
        m2 = label_metric_from_confusion(metric, _confusions(draws, t_c, p2_c, k), binary)
        effects.append(m2 - m1)
    boot = np.concatenate(effects)
    se = float(boot.std(ddof=1))
    # inverted_cdf quantiles make "ci_low > null" equivalent to "p < alpha" exactly.
    low = float(np.quantile(boot, alpha, method="inverted_cdf"))
    high = float(np.quantile(boot, 1.0 - alpha, method="inverted_cdf"))
    p = float(np.mean(boot <= null_value + _TOLERANCE))
    return finish("bootstrap", champ, chall, effect, se, low, high, p)
