"""Champion/challenger comparison: decide whether a freshly trained model replaces the champion.

Both models are scored on the SAME held-out rows, which is what makes a paired test
(McNemar) valid: it looks only at the rows where the two models disagree about
correctness, so it is far more sensitive than comparing two accuracies as if they were
independent samples.

Decision policies
-----------------
* ``superiority`` (default): promote only if the challenger clears the floor, beats the
  champion's primary metric by at least ``min_improvement`` AND is significantly more
  often right on the disagreement rows (McNemar ``p < alpha`` with ``c > b``).
* ``non_inferiority``: promote if the challenger clears the floor, is not worse than the
  champion's primary metric by more than ``non_inferiority_margin`` and is NOT
  significantly worse by McNemar. Used when fresher models are preferred unless worse.

This module is pure Python (no Airflow). Heavy libraries (scipy, scikit-learn) are
imported lazily inside the functions that need them so importing the module stays cheap
(DAG parsing imports it).
"""

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "METRICS",
    "ComparisonResult",
    "ComparisonSettings",
    "McNemarResult",
    "compare_models",
    "compute_metrics",
    "evaluate_cold_start",
    "greater_is_better",
    "mcnemar_test",
]

METRICS: frozenset[str] = frozenset(
    {"accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss"}
)
"""Metrics known to :func:`compute_metrics`.

f1/precision/recall: binary problems use the positive class ``sorted(classes)[-1]``;
multiclass problems use the macro average. roc_auc for multiclass is one-vs-rest macro.
"""

_LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss"})
_PROBA_METRICS: frozenset[str] = frozenset({"roc_auc", "log_loss"})
_POLICIES: frozenset[str] = frozenset({"superiority", "non_inferiority"})

# Absolute slack used when comparing metric differences against thresholds, so that
# e.g. 0.81 - 0.80 (= 0.010000000000000009 or 0.009999999999999981 in binary floating
# point) is treated as exactly meeting a 0.01 requirement.
_TOLERANCE = 1e-12

# Tolerance for "probability rows sum to one".
_PROBA_SUM_ATOL = 1e-6


def greater_is_better(metric: str) -> bool:
    """Return True if larger values of ``metric`` mean a better model (False for log_loss)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRICS)}")
    return metric not in _LOWER_IS_BETTER


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


def _is_real_number(value: object) -> bool:
    """True for int/float (incl. numpy scalars) but not bool, which is an int subclass."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


@dataclass(frozen=True)
class ComparisonSettings:
    """Thresholds and policy for the champion/challenger decision.

    ``floor`` is an absolute quality bar on the challenger's primary metric: a minimum
    for higher-is-better metrics, a maximum (ceiling) for ``log_loss``. ``None`` disables
    it. The default is ``None`` because no single number is a sensible bar for every
    metric (0.0 would be a no-op for roc_auc but would reject every model for log_loss).

    All differences are "sign-adjusted": for ``log_loss`` an improvement is a decrease.
    """

    primary_metric: str = "roc_auc"
    floor: float | None = None
    min_improvement: float = 0.0
    alpha: float = 0.05
    policy: str = "superiority"
    non_inferiority_margin: float = 0.01
    exact_threshold: int = 25

    def __post_init__(self) -> None:
        if self.primary_metric not in METRICS:
            raise ValueError(
                f"primary_metric={self.primary_metric!r} is not a known metric; "
                f"expected one of {sorted(METRICS)}"
            )
        if self.policy not in _POLICIES:
            raise ValueError(
                f"policy={self.policy!r} is not a known policy; expected one of {sorted(_POLICIES)}"
            )
        if not _is_real_number(self.alpha) or not (0.0 < float(self.alpha) < 1.0):
            raise ValueError(f"alpha={self.alpha!r} must be a number in the open interval (0, 1)")
        if (
            not _is_real_number(self.min_improvement)
            or not math.isfinite(float(self.min_improvement))
            or self.min_improvement < 0
        ):
            raise ValueError(
                f"min_improvement={self.min_improvement!r} must be a finite number >= 0 "
                "(it is the required sign-adjusted gain of challenger over champion)"
            )
        if (
            not _is_real_number(self.non_inferiority_margin)
            or not math.isfinite(float(self.non_inferiority_margin))
            or self.non_inferiority_margin < 0
        ):
            raise ValueError(
                f"non_inferiority_margin={self.non_inferiority_margin!r} must be a finite "
                "number >= 0"
            )
        if (
            not isinstance(self.exact_threshold, (int, np.integer))
            or isinstance(self.exact_threshold, (bool, np.bool_))
            or self.exact_threshold < 0
        ):
            raise ValueError(
                f"exact_threshold={self.exact_threshold!r} must be an integer >= 0 "
                "(exact binomial McNemar is used when b + c < exact_threshold)"
            )
        if self.floor is not None:
            if not _is_real_number(self.floor) or not math.isfinite(float(self.floor)):
                raise ValueError(f"floor={self.floor!r} must be a finite number or None")
            if greater_is_better(self.primary_metric):
                if not (0.0 <= self.floor <= 1.0):
                    raise ValueError(
                        f"floor={self.floor!r} must be in [0, 1] for {self.primary_metric} "
                        "(a minimum on a metric bounded by [0, 1]), or None to disable"
                    )
            elif self.floor <= 0:
                raise ValueError(
                    f"floor={self.floor!r} must be > 0 for {self.primary_metric}: it is a "
                    "ceiling on a lower-is-better metric that is always > 0, so a value <= 0 "
                    "would reject every model; use None to disable"
                )


# --------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------


@dataclass
class McNemarResult:
    """Paired McNemar test on per-row correctness of champion vs challenger.

    Contingency table convention (rows = champion, columns = challenger)::

        [[both_right, b],
         [c,          both_wrong]]

    ``b``: champion right & challenger wrong; ``c``: champion wrong & challenger right.
    For ``method == "exact"`` the statistic is ``min(b, c)`` (statsmodels' convention);
    for ``"chi2_corrected"`` it is ``(|b - c| - 1)^2 / (b + c)``; for ``"none"`` (no
    disagreements, ``b + c == 0``) it is ``None`` and ``p_value`` is 1.0.
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
    raise ValueError(
        f"{name} must be boolean-like (bool, or numbers that are all 0 or 1); "
        f"got dtype {arr.dtype}"
    )


def mcnemar_test(
    champion_correct: npt.ArrayLike,
    challenger_correct: npt.ArrayLike,
    exact_threshold: int = 25,
) -> McNemarResult:
    """Two-sided McNemar test on paired correctness vectors.

    Uses the exact binomial test (``Binomial(b + c, 0.5)``, two-sided) when
    ``b + c < exact_threshold`` because the chi-square approximation is poor for few
    discordant pairs; otherwise the continuity-corrected chi-square with 1 dof. When
    there are no discordant pairs the models are indistinguishable: ``p = 1`` (the
    continuity-corrected formula is undefined there and some libraries return 0).
    """
    if (
        not isinstance(exact_threshold, (int, np.integer))
        or isinstance(exact_threshold, (bool, np.bool_))
        or exact_threshold < 0
    ):
        raise ValueError(f"exact_threshold={exact_threshold!r} must be an integer >= 0")
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
        statistic, p_value, method = None, 1.0, "none"
    elif discordant < exact_threshold:
        from scipy.stats import binom

        statistic = float(min(b, c))
        p_value = min(1.0, 2.0 * float(binom.cdf(min(b, c), discordant, 0.5)))
        method = "exact"
    else:
        from scipy.stats import chi2

        statistic = (abs(b - c) - 1.0) ** 2 / discordant
        p_value = float(chi2.sf(statistic, 1))
        method = "chi2_corrected"

    return McNemarResult(
        b=b,
        c=c,
        statistic=statistic,
        p_value=float(min(1.0, max(0.0, p_value))),
        method=method,
        n=int(champ.size),
        both_right=both_right,
        both_wrong=both_wrong,
    )


# --------------------------------------------------------------------------------------
# Metrics
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


@dataclass(frozen=True)
class _LabelSpace:
    """Label bookkeeping shared by every model scored on one holdout.

    ``labels`` (sorted union of ``classes`` and every observed label) decides binary vs
    multiclass averaging and the binary positive class, identically for champion and
    challenger. ``proba_classes`` (sorted) are the classes the probability columns refer
    to, and ``order`` permutes the caller's column order into that sorted order (None
    when the classes were inferred and are therefore already sorted).
    """

    labels: np.ndarray
    proba_classes: np.ndarray
    order: np.ndarray | None


def _label_space(classes: npt.ArrayLike | None, *label_vectors: np.ndarray) -> _LabelSpace:
    observed = np.unique(np.concatenate(label_vectors))
    if classes is None:
        return _LabelSpace(labels=observed, proba_classes=observed, order=None)
    given = _as_labels(classes, "classes")
    if given.size == 0:
        raise ValueError("classes is empty")
    if np.unique(given).size != given.size:
        raise ValueError(f"classes contains duplicates: {given.tolist()}")
    order = np.argsort(given, kind="stable")
    sorted_classes = given[order]
    return _LabelSpace(
        labels=np.union1d(sorted_classes, observed), proba_classes=sorted_classes, order=order
    )


def _as_proba(
    proba: npt.ArrayLike, n_rows: int, n_classes: int, order: np.ndarray | None, name: str
) -> np.ndarray:
    """Validate probabilities and reorder their columns to the sorted class order.

    A 1-D vector is accepted for binary problems as P(positive class = sorted(classes)[-1]).
    """
    arr = np.asarray(proba, dtype=float)
    if arr.ndim == 1 and n_classes == 2:
        if arr.shape[0] != n_rows:
            raise ValueError(f"{name} has {arr.shape[0]} rows but y_true has {n_rows}")
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{name} must contain finite probabilities in [0, 1]")
        return np.column_stack([1.0 - arr, arr])
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (n_rows, n_classes), got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows but y_true has {n_rows}")
    if arr.shape[1] != n_classes:
        raise ValueError(
            f"{name} has {arr.shape[1]} columns but there are {n_classes} classes; pass "
            "`classes` (e.g. model.classes_) aligned with the probability columns"
        )
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must contain finite probabilities in [0, 1]")
    if not np.allclose(arr.sum(axis=1), 1.0, rtol=0.0, atol=_PROBA_SUM_ATOL):
        raise ValueError(f"{name} rows must sum to 1 (they are class probabilities)")
    if order is not None:
        arr = arr[:, order]
    return arr


def _ovr_macro_auc(
    y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, columns: list[int]
) -> float:
    """Mean one-vs-rest ROC AUC of ``classes[j]`` scored by ``proba[:, j]`` for j in columns.

    Only classes present in y_true contribute. With all columns of a multiclass problem
    this equals sklearn's ``roc_auc_score(multi_class="ovr", average="macro")`` when every
    class is present; unlike sklearn it stays finite (no NaN) when some class is absent
    from the holdout, by averaging only over classes for which AUC is defined. With the
    single positive column of a binary problem it is the ordinary binary ROC AUC.
    """
    from sklearn.metrics import roc_auc_score

    present = set(np.unique(y_true).tolist())
    scores = [
        float(roc_auc_score(y_true == classes[j], proba[:, j]))
        for j in columns
        if classes[j].item() in present
    ]
    return float(np.mean(scores))


def _compute_metrics_checked(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: npt.ArrayLike | None,
    space: _LabelSpace,
    proba_name: str = "proba",
) -> dict[str, float]:
    """compute_metrics on already-validated label vectors and a resolved label space."""
    import warnings

    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
    )

    metrics: dict[str, float] = {}
    with warnings.catch_warnings():
        # e.g. "y_pred contains classes not in y_true" from balanced_accuracy: expected on
        # small holdouts, and the returned value is still well defined.
        warnings.simplefilter("ignore")
        metrics["accuracy"] = float(accuracy_score(y_true, y_pred))
        metrics["balanced_accuracy"] = float(balanced_accuracy_score(y_true, y_pred))
        if space.labels.size == 2:
            kwargs: dict = {"average": "binary", "pos_label": space.labels[-1].item()}
        else:
            kwargs = {"average": "macro"}
        metrics["precision"] = float(precision_score(y_true, y_pred, zero_division=0, **kwargs))
        metrics["recall"] = float(recall_score(y_true, y_pred, zero_division=0, **kwargs))
        metrics["f1"] = float(f1_score(y_true, y_pred, zero_division=0, **kwargs))

        if proba is not None:
            classes = space.proba_classes
            p = _as_proba(proba, y_true.size, classes.size, space.order, proba_name)
            unknown_pred = np.setdiff1d(np.unique(y_pred), classes)
            if unknown_pred.size:
                raise ValueError(
                    f"{proba_name.removesuffix('_proba')} predictions contain labels "
                    f"{unknown_pred.tolist()} that are not in classes {classes.tolist()} "
                    "(the probability columns); pass the model's classes_"
                )
            # Probability metrics need every true label to have a column; a label the
            # model never saw (e.g. a class new in this holdout) makes them undefined.
            if classes.size >= 2 and np.isin(y_true, classes).all():
                if np.unique(y_true).size >= 2:
                    columns = [1] if classes.size == 2 else list(range(classes.size))
                    metrics["roc_auc"] = _ovr_macro_auc(y_true, p, classes, columns)
                metrics["log_loss"] = float(log_loss(y_true, p, labels=classes))

    return {name: value for name, value in metrics.items() if math.isfinite(value)}


def compute_metrics(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    proba: npt.ArrayLike | None = None,
    classes: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """Every metric in :data:`METRICS` that can be computed; never NaN.

    ``classes`` is the model's label space (e.g. ``model.classes_``); if omitted it is
    inferred as the sorted union of ``y_true`` and ``y_pred``. ``proba`` has shape
    ``(n, len(classes))`` with columns aligned to ``classes`` (any order; reordered
    internally); it is needed for roc_auc and log_loss, which are omitted when they are
    undefined: roc_auc when y_true holds a single class, both when y_true holds a label
    that is not in ``classes`` (a class the model never saw).

    Binary vs multiclass is decided by the union of ``classes`` and the observed labels:
    with two labels, precision/recall/f1 use the positive class ``sorted(labels)[-1]``;
    otherwise macro averages over the labels present in y_true or y_pred (sklearn's
    default label set). Multiclass roc_auc is one-vs-rest macro.
    """
    yt = _as_labels(y_true, "y_true")
    yp = _as_labels(y_pred, "y_pred")
    if yt.size == 0:
        raise ValueError("y_true is empty; cannot compute metrics on an empty holdout")
    if yp.size != yt.size:
        raise ValueError(f"y_true has {yt.size} rows but y_pred has {yp.size}")
    return _compute_metrics_checked(yt, yp, proba, _label_space(classes, yt, yp))


# --------------------------------------------------------------------------------------
# Decision
# --------------------------------------------------------------------------------------


@dataclass
class ComparisonResult:
    """Outcome of a champion/challenger comparison.

    ``reasons`` has one human-readable line per rule checked, whether it passed or not,
    so the decision can be audited from logs/MLflow tags alone.
    """

    decision: str
    reasons: list[str]
    primary_metric: str
    metrics: dict
    mcnemar: McNemarResult | None
    policy: str
    cold_start: bool
    checks: dict[str, bool] = field(default_factory=dict)
    """Rule name -> passed, mirroring ``reasons`` in machine-readable form."""

    @property
    def promote(self) -> bool:
        """True if the decision is to promote the challenger."""
        return self.decision == "promote"

    def to_dict(self) -> dict:
        """JSON-safe representation (no NaN, plain Python scalars)."""
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "primary_metric": self.primary_metric,
            "metrics": {
                role: {name: float(value) for name, value in values.items()}
                for role, values in self.metrics.items()
            },
            "mcnemar": None if self.mcnemar is None else self.mcnemar.to_dict(),
            "policy": self.policy,
            "cold_start": bool(self.cold_start),
            "checks": {name: bool(ok) for name, ok in self.checks.items()},
        }


def _missing_metric_reason(
    metric: str,
    proba: npt.ArrayLike | None,
    y_true: np.ndarray,
    space: _LabelSpace,
    proba_name: str,
) -> str:
    """Explain why the primary metric could not be computed."""
    if metric in _PROBA_METRICS:
        if proba is None:
            return f"primary metric {metric} requires probabilities but {proba_name} is None"
        unseen = np.setdiff1d(np.unique(y_true), space.proba_classes)
        if unseen.size:
            return (
                f"primary metric {metric} is undefined: y_true contains labels "
                f"{unseen.tolist()} not in classes {space.proba_classes.tolist()}"
            )
        if space.proba_classes.size < 2:
            return f"primary metric {metric} is undefined with a single class"
    if metric == "roc_auc" and np.unique(y_true).size < 2:
        return "primary metric roc_auc is undefined: y_true contains a single class"
    return f"primary metric {metric} could not be computed for {proba_name.removesuffix('_proba')}"


def _floor_check(settings: ComparisonSettings, value: float) -> tuple[bool, str]:
    metric = settings.primary_metric
    if settings.floor is None:
        return True, f"challenger {metric} {value:.3f}: no floor configured"
    if greater_is_better(metric):
        ok = value >= settings.floor - _TOLERANCE
        op = ">=" if ok else "<"
        return ok, f"challenger {metric} {value:.3f} {op} floor {settings.floor:.3f}"
    ok = value <= settings.floor + _TOLERANCE
    op = "<=" if ok else ">"
    return ok, f"challenger {metric} {value:.3f} {op} ceiling {settings.floor:.3f}"


def _validate_holdout(
    y_true: npt.ArrayLike, preds: dict[str, npt.ArrayLike], probas: dict[str, npt.ArrayLike | None]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    yt = _as_labels(y_true, "y_true")
    if yt.size == 0:
        raise ValueError("y_true is empty; cannot compare models on an empty holdout")
    out = {}
    for name, values in preds.items():
        arr = _as_labels(values, name)
        if arr.size != yt.size:
            raise ValueError(
                f"y_true has {yt.size} rows but {name} has {arr.size}; both models must be "
                "scored on the same held-out rows"
            )
        out[name] = arr
    for name, proba in probas.items():
        if proba is not None:
            rows = np.shape(proba)[0] if np.ndim(proba) >= 1 else 0
            if rows != yt.size:
                raise ValueError(f"y_true has {yt.size} rows but {name} has {rows}")
    return yt, out


def _primary(
    metrics: dict[str, float],
    settings: ComparisonSettings,
    proba: npt.ArrayLike | None,
    y_true: np.ndarray,
    space: _LabelSpace,
    proba_name: str,
) -> float:
    metric = settings.primary_metric
    if metric not in metrics:
        raise ValueError(_missing_metric_reason(metric, proba, y_true, space, proba_name))
    return metrics[metric]


def compare_models(
    y_true: npt.ArrayLike,
    champion_pred: npt.ArrayLike,
    challenger_pred: npt.ArrayLike,
    settings: ComparisonSettings,
    champion_proba: npt.ArrayLike | None = None,
    challenger_proba: npt.ArrayLike | None = None,
    classes: npt.ArrayLike | None = None,
) -> ComparisonResult:
    """Decide whether the challenger replaces the champion (see module docstring).

    All rules are evaluated (none short-circuits) so ``reasons`` documents every check.
    Raises ValueError for mismatched lengths, an empty holdout, or a primary metric that
    cannot be computed for either model (e.g. roc_auc without probabilities).
    """
    if not isinstance(settings, ComparisonSettings):
        raise TypeError(f"settings must be ComparisonSettings, got {type(settings).__name__}")
    yt, preds = _validate_holdout(
        y_true,
        {"champion_pred": champion_pred, "challenger_pred": challenger_pred},
        {"champion_proba": champion_proba, "challenger_proba": challenger_proba},
    )
    champ_pred, chall_pred = preds["champion_pred"], preds["challenger_pred"]
    metric = settings.primary_metric

    # One label space for both models so that binary-vs-macro averaging and the positive
    # class are the same for champion and challenger.
    space = _label_space(classes, yt, champ_pred, chall_pred)
    champ_metrics = _compute_metrics_checked(
        yt, champ_pred, champion_proba, space, proba_name="champion_proba"
    )
    chall_metrics = _compute_metrics_checked(
        yt, chall_pred, challenger_proba, space, proba_name="challenger_proba"
    )
    champ_value = _primary(champ_metrics, settings, champion_proba, yt, space, "champion_proba")
    chall_value = _primary(
        chall_metrics, settings, challenger_proba, yt, space, "challenger_proba"
    )

    mc = mcnemar_test(champ_pred == yt, chall_pred == yt, settings.exact_threshold)

    # Sign-adjusted gain of challenger over champion: positive = challenger better.
    gain = chall_value - champ_value
    if not greater_is_better(metric):
        gain = -gain

    reasons: list[str] = []
    checks: dict[str, bool] = {}

    ok, reason = _floor_check(settings, chall_value)
    checks["floor"] = ok
    reasons.append(reason)

    significant = mc.p_value < settings.alpha
    p_text = f"McNemar p={mc.p_value:.4f}"
    if settings.policy == "superiority":
        ok = gain >= settings.min_improvement - _TOLERANCE
        op = ">=" if ok else "<"
        checks["improvement"] = ok
        reasons.append(
            f"improvement {gain:+.3f} {op} minimum {settings.min_improvement:.3f} "
            f"({metric}: challenger {chall_value:.3f} vs champion {champ_value:.3f})"
        )
        ok = significant and mc.c > mc.b
        checks["mcnemar"] = ok
        if ok:
            reasons.append(
                f"{p_text} < alpha {settings.alpha:g} with c={mc.c} > b={mc.b}"
            )
        elif not significant:
            reasons.append(
                f"{p_text} >= alpha {settings.alpha:g} (b={mc.b}, c={mc.c}): "
                "challenger not significantly better"
            )
        else:
            reasons.append(
                f"{p_text} < alpha {settings.alpha:g} but c={mc.c} <= b={mc.b}: "
                "challenger not more often right"
            )
    else:
        deficit = -gain
        margin = settings.non_inferiority_margin
        ok = deficit <= margin + _TOLERANCE
        op = "<=" if ok else ">"
        checks["non_inferiority_margin"] = ok
        reasons.append(
            f"deficit {deficit:+.3f} {op} margin {margin:.3f} "
            f"({metric}: challenger {chall_value:.3f} vs champion {champ_value:.3f})"
        )
        worse = significant and mc.b > mc.c
        checks["mcnemar"] = not worse
        if worse:
            reasons.append(
                f"{p_text} < alpha {settings.alpha:g} with b={mc.b} > c={mc.c}: "
                "challenger significantly worse"
            )
        else:
            reasons.append(
                f"{p_text} (b={mc.b}, c={mc.c}): challenger not significantly worse "
                f"at alpha {settings.alpha:g}"
            )

    return ComparisonResult(
        decision="promote" if all(checks.values()) else "reject",
        reasons=reasons,
        primary_metric=metric,
        metrics={"champion": champ_metrics, "challenger": chall_metrics},
        mcnemar=mc,
        policy=settings.policy,
        cold_start=False,
        checks=checks,
    )


def evaluate_cold_start(
    y_true: npt.ArrayLike,
    challenger_pred: npt.ArrayLike,
    settings: ComparisonSettings,
    challenger_proba: npt.ArrayLike | None = None,
    classes: npt.ArrayLike | None = None,
) -> ComparisonResult:
    """Decide promotion when there is no champion yet: promote iff the floor is met.

    The primary metric must still be computable, so a misconfigured metric fails on the
    first run rather than on the second.
    """
    if not isinstance(settings, ComparisonSettings):
        raise TypeError(f"settings must be ComparisonSettings, got {type(settings).__name__}")
    yt, preds = _validate_holdout(
        y_true, {"challenger_pred": challenger_pred}, {"challenger_proba": challenger_proba}
    )
    space = _label_space(classes, yt, preds["challenger_pred"])
    chall_metrics = _compute_metrics_checked(
        yt, preds["challenger_pred"], challenger_proba, space, proba_name="challenger_proba"
    )
    value = _primary(chall_metrics, settings, challenger_proba, yt, space, "challenger_proba")
    ok, reason = _floor_check(settings, value)
    return ComparisonResult(
        decision="promote" if ok else "reject",
        reasons=["cold start: no champion", reason],
        primary_metric=settings.primary_metric,
        metrics={"champion": {}, "challenger": chall_metrics},
        mcnemar=None,
        policy=settings.policy,
        cold_start=True,
        checks={"floor": ok},
    )
