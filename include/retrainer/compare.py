"""Champion/challenger comparison: decide whether a freshly trained model replaces the champion.

Both models are scored on the SAME held-out rows, so every test here is paired: it uses
the row-by-row agreement of the two models, which is far more sensitive than comparing
two independent intervals. This docstring is the reference for the decision semantics.

Decision policies
-----------------
The settings are the model YAML's ``comparison:`` block itself
(:class:`include.retrainer.config.ComparisonSpec`, validated when the YAML is parsed).
The decision is driven by the PRIMARY METRIC (``ComparisonSpec.primary_metric``),
not by per-row correctness. Let ``effect`` be challenger minus champion on the primary
metric, sign-adjusted so that positive means "challenger better" (for ``log_loss``,
champion minus challenger). A paired test (:func:`include.retrainer.metric_tests.paired_metric_test`)
gives its one-sided lower bound at ``alpha`` (``L``; the lower end of a two-sided
``1 - 2*alpha`` interval). Methods: roc_auc -> paired DeLong; log_loss -> paired t on
per-row losses; accuracy -> paired difference of proportions; balanced_accuracy / f1 /
precision / recall -> seeded paired bootstrap.

* ``superiority``: promote iff
  1. floor: the challenger's primary metric reaches ``floor`` (a ceiling for log_loss;
     ``None`` disables it), on the point estimate;
  2. improvement: ``L > min_improvement`` -- the test rejects H0 ``effect <= min_improvement``
     at one-sided ``alpha``;
  3. McNemar guard: the challenger is NOT significantly more often wrong (rejected only if
     ``b > c`` and McNemar ``p < alpha``), unless the primary metric is ``roc_auc`` or
     ``log_loss`` and its paired test shows the challenger significantly better (``L > 0``;
     see "When the two tests disagree").
* ``expected_gain`` (the YAML's default): promote iff the floor holds, the point estimate ``effect >=
  min_improvement`` (the challenger is expected to serve at least as well: the decision a
  risk-neutral user makes when retraining has already been paid for) and the same McNemar
  guard holds. The interval, p-value and detectable effect are still reported.
* ``non_inferiority``: promote iff the floor holds, ``L > -non_inferiority_margin``
  (the data rule out that the challenger is worse by the margin or more) and the same
  McNemar guard holds. "Not significantly worse" is NOT enough: a challenger 2.4 points
  worse with a 1-point margin is rejected because its lower bound is below -0.01.

Every rule is evaluated (none short-circuits) and gives one reason sentence with the
numbers, e.g. "challenger roc_auc +0.028 (95% one-sided lower bound -0.004) does not
clear +0.000; with 300 held-out rows the smallest improvement this test detects at 80%
power is +0.061". ``checks`` mirrors the reasons (rule -> passed); the decision is
"promote" iff every check passed.

McNemar
-------
``b`` = rows the champion gets right and the challenger wrong, ``c`` = the reverse. The
p-value is two-sided and EXACT for every ``b + c`` (no switch to chi-square, hence no jump
at any ``b + c``): with ``k = min(b, c)`` and ``X ~ Binomial(b + c, 1/2)``,

* ``exact``: ``p = min(1, 2 P(X <= k))`` (equals ``scipy.stats.binomtest``);
* ``midp`` (default): ``p = 2 P(X <= k) - P(X = k)``, the exact p minus the point
  probability (Lancaster's mid-p; 1 when ``b == c``).

The default is mid-p because McNemar is now a GUARD against harm: the exact test is
conservative (its real type I error is well below alpha), which would let a challenger
that is more often wrong slip through; mid-p keeps the type I error close to alpha
(Fagerland, Lydersen & Laake, BMC Med Res Methodol 2013). ``b + c = 0`` gives ``p = 1``.

When the two tests disagree
---------------------------
McNemar counts errors at the predicted label (the argmax class, a 0.5 threshold for a
binary model); the primary metric may measure something else (ROC AUC measures ranking,
log loss calibration). Both can be significant in opposite directions: when a class
appears that the champion never saw, a challenger trained on a week of it ranks that
class (macro ROC AUC +0.053, 90% CI +0.030 to +0.076) while making more argmax errors on
the rest (b=54 > c=32, mid-p 0.018; measured by the policy replay on its multi-class
stream, where the veto left the champion 0.08 below the challenger for two weeks). Then the
primary metric, the one the model YAML says to decide on, decides: the guard passes and its
reason says that it was outvoted and by what. This holds for the metrics of the
probabilities, ``roc_auc`` and ``log_loss``, which no choice of predicted labels can game.
The label metrics (``accuracy``, ``balanced_accuracy``, ``f1``, ``precision``, ``recall``)
are computed from the same predicted labels McNemar counts, so a gain on them with
significantly more errors is a trade between kinds of error (recall bought by labelling every
row positive), and the guard keeps its veto. It also vetoes whenever the primary-metric gain
is not significant at the same ``alpha`` (a positive point estimate under ``expected_gain``,
a lower bound above ``-margin`` but not above 0 under ``non_inferiority``), and when the
caller asks for a strict guard (``metric_outvotes_mcnemar=False``: reinstating an earlier
champion).

Class sets and unseen classes
-----------------------------
Pass ``champion_classes`` / ``challenger_classes`` (each model's ``classes_``, aligned
with its probability columns) or one ``classes`` when both are equal. Probabilities are
re-indexed to the sorted union of both class sets and every label in ``y_true`` and the
predictions; a class a model never saw gets probability 0. So a class new in the holdout
is SCORED, not an error: roc_auc is the one-vs-rest macro average over the classes
present in ``y_true`` (a column of zeros ranks nothing: AUC 0.5 for that class), and
log_loss clips probabilities to ``[eps, 1 - eps]`` with ``eps`` the float64 machine
epsilon (as scikit-learn does), so a true class given probability 0 costs
``-log(eps) ~ 36`` for that row instead of infinity. Binary vs multi-class averaging is
decided by this union, identically for both models.

Degenerate inputs (``outcome_code``)
------------------------------------
* ``ok``: normal comparison.
* ``nan_scores``: a model produced NaN/inf probabilities or NaN predictions on some rows:
  reject, naming the model and the row count (a model that emits NaN is broken).
* ``single_class_holdout``: the primary metric is roc_auc and the held-out rows contain a
  single class, so AUC is undefined for both models: reject (no fallback metric is
  substituted silently; a label metric can be configured instead).
* ``constant_scores``: the primary metric is roc_auc and the challenger gives every row
  the same probabilities (AUC 0.5 by construction, no ranking): reject; the other rules
  are still evaluated and reported. A constant champion is compared normally.
* Two models that agree on every row's correctness (``b + c = 0``) give McNemar p = 1;
  identical scores give effect 0 with standard error 0, which is handled exactly (the
  interval is the point; superiority is not met, non-inferiority is met when the margin
  is positive).

Cold start (no champion): promote iff the floor holds, with the challenger's metric
reported with a standard error and a ``1 - 2*alpha`` interval
(:func:`include.retrainer.metric_tests.metric_estimate`); the degenerate outcomes above
apply as well.

This module is pure Python (no Airflow). Heavy libraries (scipy, scikit-learn) are
imported lazily inside the functions that need them so importing the module stays cheap
(DAG parsing imports it).
"""

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from include.retrainer.config import ComparisonSpec
from include.retrainer.metric_tests import (
    MetricEstimate,
    PairedTest,
    metric_estimate,
    paired_metric_test,
    per_row_log_loss,
)

__all__ = [
    "MCNEMAR_METHODS",
    "MCNEMAR_VERDICTS",
    "METRICS",
    "OUTCOME_CODES",
    "ComparisonResult",
    "McNemarResult",
    "compare_models",
    "compute_metrics",
    "evaluate_cold_start",
    "greater_is_better",
    "mcnemar_test",
    "mcnemar_verdict_of",
    "more_often_wrong",
]

METRICS: frozenset[str] = frozenset(
    {"accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss"}
)
"""Metrics known to :func:`compute_metrics`.

f1/precision/recall: binary problems use the positive class ``sorted(labels)[-1]``;
multiclass problems use the macro average. roc_auc for multiclass is one-vs-rest macro
over the classes present in y_true.
"""

MCNEMAR_METHODS: frozenset[str] = frozenset({"exact", "midp"})
#: The McNemar guard's verdict: ``not_worse`` (passes), ``worse`` (the challenger is significantly
#: more often wrong: a veto), ``outvoted`` (it is, but a significant gain on the probability
#: metric that is the primary metric passes it; the reason says so).
MCNEMAR_VERDICTS: frozenset[str] = frozenset({"not_worse", "worse", "outvoted"})
OUTCOME_CODES: frozenset[str] = frozenset({"ok", "nan_scores", "single_class_holdout", "constant_scores"})

_LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss"})
_PROBA_METRICS: frozenset[str] = frozenset({"roc_auc", "log_loss"})

# Absolute slack used when comparing a metric with the floor, so that e.g. 0.81 - 0.01
# rounding in binary floating point does not flip a decision that is exactly on the bar.
_TOLERANCE = 1e-12

# Tolerance for "probability rows sum to one".
_PROBA_SUM_ATOL = 1e-6


def _py(value: object) -> object:
    """A plain Python scalar: numpy scalars via .item(); object-array items are already plain."""
    return value.item() if isinstance(value, np.generic) else value


def greater_is_better(metric: str) -> bool:
    """Return True if larger values of ``metric`` mean a better model (False for log_loss)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRICS)}")
    return metric not in _LOWER_IS_BETTER


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemarResult:
    """Paired McNemar test on per-row correctness of champion vs challenger.

    Contingency table convention (rows = champion, columns = challenger)::

        [[both_right, b],
         [c,          both_wrong]]

    ``b``: champion right & challenger wrong; ``c``: champion wrong & challenger right.
    ``method`` is ``"exact"`` or ``"midp"`` (module docstring) with statistic
    ``min(b, c)`` (statsmodels' convention), or ``"none"`` when there are no
    disagreements (``b + c == 0``): statistic ``None`` and ``p_value`` 1.0.
    """

    b: int
    c: int
    statistic: float | None
    p_value: float
    method: str
    n: int
    both_right: int
    both_wrong: int

    def to_dict(self) -> dict:
        """JSON-safe dict (plain Python ints/floats, no NaN)."""
        return {
            "b": int(self.b),
            "c": int(self.c),
            "statistic": None if self.statistic is None else float(self.statistic),
            "p_value": float(self.p_value),
            "method": self.method,
            "n": int(self.n),
            "both_right": int(self.both_right),
            "both_wrong": int(self.both_wrong),
        }


def _as_correctness(values: npt.ArrayLike, name: str) -> np.ndarray:
    """Convert a boolean-like 1-D vector (bool, or numbers that are all 0/1) to bool."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; McNemar needs at least one row")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "iuf" or arr.dtype == object:
        try:
            numeric = arr.astype(float)
        except (TypeError, ValueError):
            numeric = None
        if numeric is not None and np.all((numeric == 0.0) | (numeric == 1.0)):
            return numeric.astype(bool)
    raise ValueError(f"{name} must be boolean-like (bool, or numbers that are all 0 or 1); got dtype {arr.dtype}")


def mcnemar_test(
    champion_correct: npt.ArrayLike,
    challenger_correct: npt.ArrayLike,
    method: str = "midp",
) -> McNemarResult:
    """Two-sided McNemar test on paired correctness vectors, exact binomial for every b + c.

    ``method="exact"``: ``min(1, 2 P(X <= k))``; ``"midp"``: ``2 P(X <= k) - P(X = k)``
    with ``k = min(b, c)``, ``X ~ Binomial(b + c, 1/2)``. No disagreements: ``p = 1``.
    """
    if method not in MCNEMAR_METHODS:
        raise ValueError(f"method={method!r} is not known; expected one of {sorted(MCNEMAR_METHODS)}")
    champ = _as_correctness(champion_correct, "champion_correct")
    chall = _as_correctness(challenger_correct, "challenger_correct")
    if champ.shape != chall.shape:
        raise ValueError(
            f"champion_correct has {champ.size} rows but challenger_correct has {chall.size}; "
            "McNemar needs predictions on the same rows"
        )

    b = int(np.count_nonzero(champ & ~chall))
    c = int(np.count_nonzero(~champ & chall))
    both_right = int(np.count_nonzero(champ & chall))
    both_wrong = int(np.count_nonzero(~champ & ~chall))
    discordant = b + c

    statistic: float | None
    if discordant == 0:
        statistic, p_value, used = None, 1.0, "none"
    else:
        from scipy.stats import binom

        k = min(b, c)
        statistic = float(k)
        # Both tails at once: the distribution is symmetric, so P(X >= n-k) = P(X <= k).
        doubled = 2.0 * float(binom.cdf(k, discordant, 0.5))
        if method == "exact":
            p_value = min(1.0, doubled)
        else:
            p_value = doubled - float(binom.pmf(k, discordant, 0.5))
        used = method

    return McNemarResult(
        b=b,
        c=c,
        statistic=statistic,
        p_value=float(min(1.0, max(0.0, p_value))),
        method=used,
        n=int(champ.size),
        both_right=both_right,
        both_wrong=both_wrong,
    )


# --------------------------------------------------------------------------------------
# Labels, probabilities and metrics
# --------------------------------------------------------------------------------------


def _as_labels(values: npt.ArrayLike, name: str) -> np.ndarray:
    """1-D label vector; a single-column 2-D array is flattened, NaN labels are rejected."""
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN labels")
    return arr


def _model_classes(classes: npt.ArrayLike | None, name: str) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(sorted classes, permutation from the caller's column order), or None."""
    if classes is None:
        return None
    given = _as_labels(classes, name)
    if given.size == 0:
        raise ValueError(f"{name} is empty")
    if np.unique(given).size != given.size:
        raise ValueError(f"{name} contains duplicates: {given.tolist()}")
    order = np.argsort(given, kind="stable")
    return given[order], order


def _union_labels(*vectors: np.ndarray) -> np.ndarray:
    try:
        return np.unique(np.concatenate(vectors))
    except TypeError as exc:  # e.g. int classes vs str labels
        raise ValueError(
            "labels and classes mix incomparable types "
            f"({sorted({str(v.dtype) for v in vectors})}); check the target column"
        ) from exc


def _aligned_proba(
    proba: npt.ArrayLike,
    n_rows: int,
    model: tuple[np.ndarray, np.ndarray | None],
    labels: np.ndarray,
    name: str,
) -> np.ndarray:
    """Validate a model's probabilities and re-index them to ``labels`` (zeros elsewhere).

    ``model`` = (sorted model classes, permutation of the caller's column order or None).
    A 1-D vector is accepted for a two-class model as P(its last sorted class).
    """
    classes, order = model
    arr = np.asarray(proba, dtype=float)
    if arr.ndim == 1 and classes.size == 2:
        if arr.shape[0] != n_rows:
            raise ValueError(f"{name} has {arr.shape[0]} rows but y_true has {n_rows}")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{name} must contain probabilities in [0, 1]")
        arr, order = np.column_stack([1.0 - arr, arr]), None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (n_rows, n_classes), got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows but y_true has {n_rows}")
    if arr.shape[1] != classes.size:
        raise ValueError(
            f"{name} has {arr.shape[1]} columns but there are {classes.size} classes; pass "
            "the model's classes (e.g. model.classes_) aligned with the probability columns"
        )
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must contain probabilities in [0, 1]")
    if not np.allclose(arr.sum(axis=1), 1.0, rtol=0.0, atol=_PROBA_SUM_ATOL):
        raise ValueError(f"{name} rows must sum to 1 (they are class probabilities)")
    if order is not None:
        arr = arr[:, order]
    out = np.zeros((n_rows, labels.size))
    out[:, np.searchsorted(labels, classes)] = arr
    return out


def _nonfinite_rows(pred: npt.ArrayLike, proba: npt.ArrayLike | None) -> int:
    """Rows where a model's prediction is NaN or any of its probabilities is NaN/inf."""
    p = np.asarray(pred)
    bad = np.zeros(p.shape[0] if p.ndim else 0, dtype=bool)
    if p.dtype.kind == "f":
        bad |= np.isnan(p.reshape(p.shape[0], -1)).any(axis=1)
    elif p.dtype == object and p.ndim == 1:
        # e.g. labels from a pandas object column: a missing prediction is None or NaN.
        bad |= np.fromiter((v is None or (isinstance(v, float) and v != v) for v in p), bool, p.size)
    if proba is not None:
        q = np.asarray(proba, dtype=float)
        if q.ndim >= 1 and q.shape[0] == bad.size:
            bad |= ~np.isfinite(q.reshape(q.shape[0], -1)).all(axis=1)
    return int(np.count_nonzero(bad))


def _auc(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> float | None:
    """Binary AUC (positive = labels[-1]) or OvR macro over classes present; None if undefined."""
    from sklearn.metrics import roc_auc_score

    present = np.unique(y_true)
    if present.size < 2:
        return None
    if labels.size == 2:
        return float(roc_auc_score(y_true == labels[-1], proba[:, 1]))
    cols = np.searchsorted(labels, present)
    return float(np.mean([roc_auc_score(y_true == labels[j], proba[:, j]) for j in cols]))


def _metrics_aligned(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    labels: np.ndarray,
    only: Collection[str] | None = None,
) -> dict[str, float]:
    """Every computable metric (or those in ``only``); ``proba`` already re-indexed to ``labels``."""
    import warnings

    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_score,
        recall_score,
    )

    def wanted(name: str) -> bool:
        return only is None or name in only

    metrics: dict[str, float] = {}
    with warnings.catch_warnings():
        # e.g. "y_pred contains classes not in y_true" from balanced_accuracy: expected on
        # small holdouts, and the returned value is still well defined.
        warnings.simplefilter("ignore")
        if wanted("accuracy"):
            metrics["accuracy"] = float(accuracy_score(y_true, y_pred))
        if wanted("balanced_accuracy"):
            metrics["balanced_accuracy"] = float(balanced_accuracy_score(y_true, y_pred))
        if labels.size == 2:
            kwargs: dict = {"average": "binary", "pos_label": _py(labels[-1])}
        else:
            kwargs = {"average": "macro"}
        if wanted("precision"):
            metrics["precision"] = float(precision_score(y_true, y_pred, zero_division=0, **kwargs))
        if wanted("recall"):
            metrics["recall"] = float(recall_score(y_true, y_pred, zero_division=0, **kwargs))
        if wanted("f1"):
            metrics["f1"] = float(f1_score(y_true, y_pred, zero_division=0, **kwargs))
    if proba is not None:
        auc = _auc(y_true, proba, labels) if wanted("roc_auc") else None
        if auc is not None:
            metrics["roc_auc"] = auc
        if wanted("log_loss"):
            y_idx = np.searchsorted(labels, y_true)
            metrics["log_loss"] = float(per_row_log_loss(y_idx, proba).mean())
    return {name: value for name, value in metrics.items() if math.isfinite(value)}


def _check_pred_in_classes(pred: np.ndarray, model: tuple[np.ndarray, np.ndarray | None] | None, role: str) -> None:
    if model is None:
        return
    unknown = np.setdiff1d(np.unique(pred), model[0])
    if unknown.size:
        raise ValueError(
            f"{role} predictions contain labels {unknown.tolist()} that are not in classes "
            f"{model[0].tolist()} (the probability columns); pass the model's classes_"
        )


def compute_metrics(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    proba: npt.ArrayLike | None = None,
    classes: npt.ArrayLike | None = None,
    only: Collection[str] | None = None,
) -> dict[str, float]:
    """Every metric in :data:`METRICS` that can be computed (or those in ``only``); never NaN.

    ``classes`` is the model's label space (e.g. ``model.classes_``); if omitted it is
    inferred as the sorted union of ``y_true`` and ``y_pred``. ``proba`` has shape
    ``(n, len(classes))`` with columns aligned to ``classes`` (any order); it is needed for
    roc_auc and log_loss. A label in y_true that is not in ``classes`` (a class the model
    never saw) is scored with probability 0 (log_loss clipped at machine epsilon, see the
    module docstring). roc_auc is omitted when y_true holds a single class.

    Binary vs multiclass is decided by the union of ``classes`` and the observed labels:
    with two labels, precision/recall/f1 use the positive class ``sorted(labels)[-1]``;
    otherwise macro averages over the labels present in y_true or y_pred (sklearn's
    default label set). Multiclass roc_auc is one-vs-rest macro over the classes present.
    """
    yt = _as_labels(y_true, "y_true")
    yp = _as_labels(y_pred, "y_pred")
    if yt.size == 0:
        raise ValueError("y_true is empty; cannot compute metrics on an empty holdout")
    if yp.size != yt.size:
        raise ValueError(f"y_true has {yt.size} rows but y_pred has {yp.size}")
    model = _model_classes(classes, "classes")
    labels = _union_labels(yt, yp, *(() if model is None else (model[0],)))
    aligned = None
    if proba is not None:
        if model is None:
            model = (labels, None)
        aligned = _aligned_proba(proba, yt.size, model, labels, "proba")
        _check_pred_in_classes(yp, model, "proba")
    if isinstance(only, str):  # one name, not its characters (or a substring match)
        only = (only,)
    return _metrics_aligned(yt, yp, aligned, labels, only)


# --------------------------------------------------------------------------------------
# Decision
# --------------------------------------------------------------------------------------


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class ComparisonResult:
    """Outcome of a champion/challenger comparison.

    ``reasons`` has one sentence per rule checked, whether it passed or not, so the
    decision can be audited from logs/MLflow tags alone; ``checks`` maps rule -> passed.
    ``outcome_code`` is ``"ok"`` or names a degenerate input (module docstring).
    ``paired_test`` is the primary-metric test (None for cold start or when it could not
    run); ``challenger_estimate`` is the challenger's metric with its interval (cold start).
    ``mcnemar_verdict`` is the guard's verdict (``MCNEMAR_VERDICTS``; None without McNemar), so
    a reader of ``mcnemar`` alone (b > c, p < alpha) can tell a veto from an outvoted guard.
    """

    decision: str
    reasons: list[str]
    primary_metric: str
    metrics: dict
    mcnemar: McNemarResult | None
    policy: str
    cold_start: bool
    checks: dict[str, bool] = field(default_factory=dict)
    paired_test: PairedTest | None = None
    outcome_code: str = "ok"
    challenger_estimate: MetricEstimate | None = None
    mcnemar_verdict: str | None = None

    @property
    def promote(self) -> bool:
        """True if the decision is to promote the challenger."""
        return self.decision == "promote"

    def to_dict(self) -> dict:
        """JSON-safe representation (no NaN/inf, plain Python scalars)."""
        return {
            "decision": self.decision,
            "outcome_code": self.outcome_code,
            "reasons": list(self.reasons),
            "primary_metric": self.primary_metric,
            "metrics": {
                role: {name: _json_float(value) for name, value in values.items()}
                for role, values in self.metrics.items()
            },
            "mcnemar": None if self.mcnemar is None else self.mcnemar.to_dict(),
            "mcnemar_verdict": self.mcnemar_verdict,
            "paired_test": None if self.paired_test is None else self.paired_test.to_dict(),
            "challenger_estimate": (None if self.challenger_estimate is None else self.challenger_estimate.to_dict()),
            "policy": self.policy,
            "cold_start": bool(self.cold_start),
            "checks": {name: bool(ok) for name, ok in self.checks.items()},
        }


def _p(p_value: float) -> str:
    # "p=0.0000" would read as impossible; below the printed resolution say so.
    return "p<0.0001" if p_value < 1e-4 else f"p={p_value:.4f}"


def _pct(confidence: float | None) -> str:
    if confidence is None:
        return "?"
    return f"{round(confidence * 100, 4):g}%"


def _floor_check(settings: ComparisonSpec, value: float, detail: str = "") -> tuple[bool, str]:
    metric = settings.primary_metric
    if settings.floor is None:
        return True, f"challenger {metric} {value:.3f}{detail}: no floor configured"
    if greater_is_better(metric):
        ok = value >= settings.floor - _TOLERANCE
        op = ">=" if ok else "<"
        return ok, f"challenger {metric} {value:.3f}{detail} {op} floor {settings.floor:.3f}"
    ok = value <= settings.floor + _TOLERANCE
    op = "<=" if ok else ">"
    return ok, f"challenger {metric} {value:.3f}{detail} {op} ceiling {settings.floor:.3f}"


def _rows(values: npt.ArrayLike | None) -> int | None:
    if values is None:
        return None
    return int(np.shape(values)[0]) if np.ndim(values) >= 1 else 0


def _check_rows(y_rows: int, named: dict[str, npt.ArrayLike | None]) -> None:
    for name, values in named.items():
        rows = _rows(values)
        if rows is not None and rows != y_rows:
            raise ValueError(
                f"y_true has {y_rows} rows but {name} has {rows}; both models must be scored on the same held-out rows"
            )


def _holdout(y_true: npt.ArrayLike) -> np.ndarray:
    yt = _as_labels(y_true, "y_true")
    if yt.size == 0:
        raise ValueError("y_true is empty; cannot compare models on an empty holdout")
    return yt


def _require_proba(metric: str, proba: npt.ArrayLike | None, proba_name: str) -> None:
    if metric in _PROBA_METRICS and proba is None:
        raise ValueError(f"primary metric {metric} requires probabilities but {proba_name} is None")


def _nan_reason(role: str, bad: int, n: int) -> str:
    return (
        f"{role} produced non-finite scores (NaN/inf probabilities or NaN predictions) on "
        f"{bad} of {n} held-out rows; a comparison needs finite scores: not promoting"
    )


def _single_class_reason(yt: np.ndarray) -> str:
    return (
        f"held-out rows contain a single class ({_py(yt[0])!r}, {yt.size} rows): roc_auc "
        "is undefined, so the models cannot be ranked: not promoting (configure a label "
        "metric as primary_metric if single-class holdouts are expected)"
    )


def _constant(proba: np.ndarray | None) -> bool:
    """All rows scored alike (None: no probabilities, nothing to rank)."""
    return proba is not None and bool(np.all(proba == proba[:1]))


def _constant_reason(n: int) -> str:
    return (
        f"challenger gives all {n} held-out rows the same probabilities: its roc_auc is 0.5 "
        "by construction (it ranks nothing): not promoting"
    )


def _mcnemar_reason(mc: McNemarResult, alpha: float, pt: PairedTest | None = None) -> tuple[str, str]:
    """The guard's verdict (a ``MCNEMAR_VERDICTS`` value) and its reason; ``pt``, the paired test of a
    probability metric, may outvote it (module docstring)."""
    name = "McNemar (mid-p)" if mc.method == "midp" else "McNemar (exact)"
    if mc.method == "none":
        return "not_worse", (
            "McNemar: no held-out row where exactly one model is right (b=c=0), p=1: challenger not more often wrong"
        )
    worse = mc.p_value < alpha and mc.b > mc.c
    # NaN-safe: a bound that is not a number never outvotes the guard.
    if worse and pt is not None and pt.metric in _PROBA_METRICS and pt.ci_low > _TOLERANCE:
        return "outvoted", (
            f"{name} {_p(mc.p_value)} < alpha {alpha:g} with b={mc.b} > c={mc.c}: challenger more often "
            f"wrong at its predicted labels, but significantly better on {pt.metric}, the primary metric "
            f"({_pct(1.0 - alpha)} one-sided lower bound {pt.ci_low:+.3f} > 0): the primary metric decides"
        )
    if worse:
        return "worse", (
            f"{name} {_p(mc.p_value)} < alpha {alpha:g} with b={mc.b} > c={mc.c}: "
            "challenger significantly more often wrong than the champion"
        )
    return "not_worse", (
        f"{name} {_p(mc.p_value)} (b={mc.b} champion-only right, c={mc.c} challenger-only "
        f"right): challenger not significantly more often wrong at alpha {alpha:g}"
    )


def more_often_wrong(mcnemar: Mapping[str, Any], alpha: float) -> bool:
    """A stored McNemar result (``McNemarResult.to_dict``) says the challenger is significantly
    more often wrong: b > c and a finite p below ``alpha`` (the guard's veto, before any outvote)."""
    p = mcnemar.get("p_value")
    if not (isinstance(p, (int, float)) and math.isfinite(p)):
        return False
    return (mcnemar.get("b") or 0) > (mcnemar.get("c") or 0) and p < alpha


def mcnemar_verdict_of(comparison: Mapping[str, Any], alpha: float) -> str | None:
    """The McNemar guard's verdict of a stored comparison (``ComparisonResult.to_dict`` form).

    Its ``mcnemar_verdict`` when it has one; one stored before the field existed gets it from its
    ``mcnemar`` (b, c, p) and ``checks.mcnemar``: more often wrong at ``alpha`` and yet passed
    means outvoted. None without a McNemar result.
    """
    if "mcnemar_verdict" in comparison:
        return comparison["mcnemar_verdict"]
    mc = comparison.get("mcnemar")
    if not isinstance(mc, Mapping) or mc.get("b") is None or mc.get("c") is None:
        return None
    if not more_often_wrong(mc, alpha):
        return "not_worse"
    passed = (comparison.get("checks") or {}).get("mcnemar")
    return "outvoted" if passed is True else "worse"


def _effect_reason(pt: PairedTest, settings: ComparisonSpec) -> tuple[bool, str]:
    metric = settings.primary_metric
    conf = _pct(1.0 - settings.alpha)
    sign_note = " (sign-adjusted: positive = lower log_loss)" if metric in _LOWER_IS_BETTER else ""
    values = f"{metric}: challenger {pt.challenger:.3f} vs champion {pt.champion:.3f}, {pt.method} {_p(pt.p_value)}"
    head = f"challenger {metric} {pt.effect:+.3f}{sign_note} ({conf} one-sided lower bound {pt.ci_low:+.3f})"
    ok = pt.clears_null
    if settings.policy == "expected_gain":
        # Decide on the point estimate (the expected effect), as a risk-neutral user would:
        # the interval, p-value and detectable effect are reported, not required.
        ok = pt.effect >= pt.null_value - _TOLERANCE
        interval = f"{_pct(1.0 - 2 * settings.alpha)} CI {pt.ci_low:+.3f} to {pt.ci_high:+.3f}"
        head = f"challenger {metric} {pt.effect:+.3f}{sign_note} ({interval})"
        if ok:
            return True, (
                # Worded as this check's verdict only: the floor or the McNemar guard may still reject.
                f"{head} >= {pt.null_value:+.3f}: expected to serve at least as well, on the point "
                f"estimate (a significant improvement would need {pt.null_value + pt.mde:+.3f} with "
                f"{pt.n} held-out rows) ({values})"
            )
        return False, f"{head} < {pt.null_value:+.3f}: expected to serve worse than the champion ({values})"
    if settings.policy == "superiority":
        if ok:
            return True, f"{head} clears {pt.null_value:+.3f} ({values})"
        return False, (
            f"{head} does not clear {pt.null_value:+.3f}; with {pt.n} held-out rows the "
            f"smallest improvement this test detects at 80% power is "
            f"{pt.null_value + pt.mde:+.3f} ({values})"
        )
    margin = settings.non_inferiority_margin
    if ok:
        return True, (
            f"{head} is above {pt.null_value:+.3f}: challenger not worse than the champion by "
            f"the margin {margin:.3f} or more ({values})"
        )
    return False, (
        f"{head} is not above {pt.null_value:+.3f}: the data do not rule out that the "
        f"challenger is worse than the champion by the margin {margin:.3f} or more; with "
        f"{pt.n} held-out rows, a challenger exactly as good as the champion passes with 80% "
        f"power only if the margin is at least {pt.mde:.3f} ({values})"
    )


def _result(settings: ComparisonSpec, **kwargs: Any) -> ComparisonResult:
    checks = kwargs["checks"]
    return ComparisonResult(
        decision="promote" if checks and all(checks.values()) else "reject",
        primary_metric=settings.primary_metric,
        policy=settings.policy,
        **kwargs,
    )


def compare_models(
    y_true: npt.ArrayLike,
    champion_pred: npt.ArrayLike,
    challenger_pred: npt.ArrayLike,
    settings: ComparisonSpec,
    champion_proba: npt.ArrayLike | None = None,
    challenger_proba: npt.ArrayLike | None = None,
    classes: npt.ArrayLike | None = None,
    *,
    champion_classes: npt.ArrayLike | None = None,
    challenger_classes: npt.ArrayLike | None = None,
    metric_outvotes_mcnemar: bool = True,
) -> ComparisonResult:
    """Decide whether the challenger replaces the champion (see module docstring).

    ``metric_outvotes_mcnemar=False`` keeps the McNemar guard a veto even when a probability
    metric shows the challenger significantly better (module docstring, "When the two tests
    disagree").

    ``champion_classes``/``challenger_classes`` are the models' ``classes_`` aligned with
    their probability columns; ``classes`` is used for a model whose own classes are not
    given (and, if nothing is given, the classes are the sorted observed labels). All
    rules are evaluated so ``reasons`` documents every check. Degenerate inputs give a
    "reject" with an ``outcome_code``; ValueError is raised only for caller errors:
    mismatched lengths, an empty holdout, malformed probabilities, or a probability metric
    without probabilities.
    """
    if not isinstance(settings, ComparisonSpec):
        raise TypeError(f"settings must be a ComparisonSpec, got {type(settings).__name__}")
    yt = _holdout(y_true)
    n = int(yt.size)
    _check_rows(
        n,
        {
            "champion_pred": champion_pred,
            "challenger_pred": challenger_pred,
            "champion_proba": champion_proba,
            "challenger_proba": challenger_proba,
        },
    )
    metric = settings.primary_metric
    _require_proba(metric, champion_proba, "champion_proba")
    _require_proba(metric, challenger_proba, "challenger_proba")

    bad = {
        "champion": _nonfinite_rows(champion_pred, champion_proba),
        "challenger": _nonfinite_rows(challenger_pred, challenger_proba),
    }
    if any(bad.values()):
        return _result(
            settings,
            reasons=[
                _nan_reason(role, count, n) if count else f"{role} scores are finite on all {n} held-out rows"
                for role, count in bad.items()
            ],
            metrics={"champion": {}, "challenger": {}},
            mcnemar=None,
            cold_start=False,
            checks={f"{role}_finite_scores": not count for role, count in bad.items()},
            outcome_code="nan_scores",
        )

    champ_pred = _as_labels(champion_pred, "champion_pred")
    chall_pred = _as_labels(challenger_pred, "challenger_pred")
    champ_model = _model_classes(champion_classes if champion_classes is not None else classes, "champion_classes")
    chall_model = _model_classes(
        challenger_classes if challenger_classes is not None else classes, "challenger_classes"
    )
    # One label space for both models: the same binary-vs-macro averaging and positive
    # class for champion and challenger, and probability columns for every label.
    labels = _union_labels(yt, champ_pred, chall_pred, *(m[0] for m in (champ_model, chall_model) if m is not None))
    probas: dict[str, np.ndarray | None] = {}
    for role, pred, proba, model in (
        ("champion", champ_pred, champion_proba, champ_model),
        ("challenger", chall_pred, challenger_proba, chall_model),
    ):
        if proba is None:
            probas[role] = None
            continue
        model = model if model is not None else (labels, None)
        _check_pred_in_classes(pred, model, role)
        probas[role] = _aligned_proba(proba, n, model, labels, f"{role}_proba")

    metrics = {
        "champion": _metrics_aligned(yt, champ_pred, probas["champion"], labels),
        "challenger": _metrics_aligned(yt, chall_pred, probas["challenger"], labels),
    }
    mc = mcnemar_test(champ_pred == yt, chall_pred == yt, settings.mcnemar_method)
    verdict, guard_reason = _mcnemar_reason(mc, settings.alpha)

    if metric == "roc_auc" and np.unique(yt).size < 2:
        return _result(
            settings,
            reasons=[_single_class_reason(yt), guard_reason],
            metrics=metrics,
            mcnemar=mc,
            cold_start=False,
            checks={"primary_metric_defined": False, "mcnemar": verdict != "worse"},
            outcome_code="single_class_holdout",
            mcnemar_verdict=verdict,
        )

    pt = paired_metric_test(
        metric,
        yt,
        champ_pred,
        chall_pred,
        probas["champion"],
        probas["challenger"],
        labels,
        settings.alpha,
        settings.null_value,
        settings.bootstrap_resamples,
        settings.seed,
    )
    reasons: list[str] = []
    checks: dict[str, bool] = {}
    outcome = "ok"
    if metric == "roc_auc" and _constant(probas["challenger"]):
        checks["informative_scores"] = False
        reasons.append(_constant_reason(n))
        outcome = "constant_scores"

    # The floor uses the reported metric (scikit-learn), the same number as in ``metrics``.
    ok, reason = _floor_check(settings, metrics["challenger"][metric])
    checks["floor"] = ok
    reasons.append(reason)

    ok, reason = _effect_reason(pt, settings)
    checks[
        {"superiority": "improvement", "expected_gain": "expected_gain"}.get(settings.policy, "non_inferiority_margin")
    ] = ok
    reasons.append(reason)

    verdict, guard_reason = _mcnemar_reason(mc, settings.alpha, pt if metric_outvotes_mcnemar else None)
    checks["mcnemar"] = verdict != "worse"
    reasons.append(guard_reason)

    return _result(
        settings,
        reasons=reasons,
        metrics=metrics,
        mcnemar=mc,
        cold_start=False,
        checks=checks,
        paired_test=pt,
        outcome_code=outcome,
        mcnemar_verdict=verdict,
    )


def evaluate_cold_start(
    y_true: npt.ArrayLike,
    challenger_pred: npt.ArrayLike,
    settings: ComparisonSpec,
    challenger_proba: npt.ArrayLike | None = None,
    classes: npt.ArrayLike | None = None,
) -> ComparisonResult:
    """Decide promotion when there is no champion yet: promote iff the floor is met.

    The challenger's primary metric is reported with its standard error and a
    ``1 - 2*alpha`` interval. The primary metric must still be computable, so a
    misconfigured metric fails on the first run rather than on the second; degenerate
    inputs give the same outcome codes as :func:`compare_models`.
    """
    if not isinstance(settings, ComparisonSpec):
        raise TypeError(f"settings must be a ComparisonSpec, got {type(settings).__name__}")
    yt = _holdout(y_true)
    n = int(yt.size)
    _check_rows(n, {"challenger_pred": challenger_pred, "challenger_proba": challenger_proba})
    metric = settings.primary_metric
    _require_proba(metric, challenger_proba, "challenger_proba")
    base = {"mcnemar": None, "cold_start": True}

    bad = _nonfinite_rows(challenger_pred, challenger_proba)
    if bad:
        return _result(
            settings,
            reasons=["cold start: no champion", _nan_reason("challenger", bad, n)],
            metrics={"champion": {}, "challenger": {}},
            checks={"challenger_finite_scores": False},
            outcome_code="nan_scores",
            **base,
        )
    pred = _as_labels(challenger_pred, "challenger_pred")
    model = _model_classes(classes, "classes")
    labels = _union_labels(yt, pred, *(() if model is None else (model[0],)))
    proba = None
    if challenger_proba is not None:
        model = model if model is not None else (labels, None)
        _check_pred_in_classes(pred, model, "challenger")
        proba = _aligned_proba(challenger_proba, n, model, labels, "challenger_proba")
    metrics = {"champion": {}, "challenger": _metrics_aligned(yt, pred, proba, labels)}

    if metric == "roc_auc" and np.unique(yt).size < 2:
        return _result(
            settings,
            reasons=["cold start: no champion", _single_class_reason(yt)],
            metrics=metrics,
            checks={"primary_metric_defined": False},
            outcome_code="single_class_holdout",
            **base,
        )
    est = metric_estimate(
        metric,
        yt,
        pred,
        proba,
        labels,
        confidence=1.0 - 2.0 * settings.alpha,
        bootstrap_resamples=settings.bootstrap_resamples,
        seed=settings.seed,
    )
    detail = f" ({_pct(est.confidence)} CI {est.ci_low:.3f} to {est.ci_high:.3f}, {est.method}, n={n})"
    reasons = ["cold start: no champion"]
    checks: dict[str, bool] = {}
    outcome = "ok"
    if metric == "roc_auc" and _constant(proba):
        checks["informative_scores"] = False
        reasons.append(_constant_reason(n))
        outcome = "constant_scores"
    ok, reason = _floor_check(settings, est.value, detail)
    checks["floor"] = ok
    reasons.append(reason)
    return _result(
        settings,
        reasons=reasons,
        metrics=metrics,
        checks=checks,
        outcome_code=outcome,
        challenger_estimate=est,
        **base,
    )


def aligned_scores(
    y_true: npt.ArrayLike,
    predictions: dict[str, npt.ArrayLike],
    probas: dict[str, npt.ArrayLike | None],
    classes: dict[str, npt.ArrayLike | None],
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray | None], np.ndarray]:
    """Labels, predictions and probabilities of several models on one label space.

    The same alignment :func:`compare_models` does (sorted union of every model's classes and
    every observed label; a class a model never saw gets probability 0), for callers that cut
    the held-out rows into slices and need each slice scored exactly as the whole was.
    Returns ``(y_true, {role: pred}, {role: proba re-indexed to labels or None}, labels)``.
    """
    yt = _holdout(y_true)
    preds = {role: _as_labels(p, f"{role}_pred") for role, p in predictions.items()}
    models = {role: _model_classes(classes.get(role), f"{role}_classes") for role in predictions}
    labels = _union_labels(yt, *preds.values(), *(m[0] for m in models.values() if m is not None))
    aligned: dict[str, np.ndarray | None] = {}
    for role, pred in preds.items():
        proba = probas.get(role)
        if proba is None:
            aligned[role] = None
            continue
        model = models[role] or (labels, None)
        _check_pred_in_classes(pred, model, role)
        aligned[role] = _aligned_proba(proba, yt.size, model, labels, f"{role}_proba")
    return yt, preds, aligned, labels
