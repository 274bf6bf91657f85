"""Slice gate: is the challenger significantly worse than the champion on any part of the data?

A model can win on average and lose badly on a segment (a region, a contract type, a range of
tenure). This module cuts the held-out rows (the same rows the overall comparison uses) by the
columns named in ``comparison.slices.columns`` and, per slice, measures the PRIMARY METRIC of
both models with a confidence interval and tests whether the challenger is worse.

Slices
------
One slice per distinct value of a column; missing values (None/NaN) form their own slice,
labelled ``(missing)``, judged like any other (never dropped). Numeric features, and any other
numeric column with more than ``max_slices_per_column`` distinct values, are cut into
``numeric_bins`` quantile bins of the held-out rows (``[low, high)``, the last bin closed; equal
quantiles merge). A column absent from the held-out rows, or a categorical column with more
than ``max_slices_per_column`` values, is a named column outcome (``column_missing``,
``too_many_values``) that blocks promotion: a configured gate that cannot run does not pass.

Per slice
---------
* ``rows`` < ``min_rows``: status ``too_small`` ("too small to judge"): reported with its
  counts and listed in the gate's reason, never counted as passed or failed.
* roc_auc and a single class among the slice's rows: status ``single_class`` (AUC undefined);
  roc_auc and a class with fewer than ``min_class_rows`` rows: ``too_small`` as well (DeLong's
  variance from a handful of positives is unreliable and would block by chance).
* a metric that cannot be computed on the slice: status ``undefined`` with the error.
* otherwise ``judged``: each model's metric with a two-sided ``1 - alpha`` interval
  (:func:`include.retrainer.metric_tests.metric_estimate`: DeLong for roc_auc, binomial for
  accuracy, per-row mean for log_loss, bootstrap for the other label metrics) and a paired
  one-sided test (:func:`include.retrainer.metric_tests.paired_metric_test` with the roles
  swapped) of H0 "the challenger is worse by at most ``tolerance``" against H1 "worse by more".
  ``effect`` is challenger minus champion, sign-adjusted (negative = challenger worse; for
  log_loss a higher loss is worse) with its ``1 - 2*alpha`` interval.

Multiplicity
------------
Many slices mean many tests: at ``alpha`` per slice a challenger identical to the champion
would be blocked somewhere most weeks. The raw one-sided p-values of all judged slices (all
columns together) are adjusted with Holm's step-down procedure, which controls the
family-wise error rate at ``alpha`` under any dependence between the tests (slices of
different columns overlap). A slice blocks when its Holm-adjusted p-value is below ``alpha``.
The reported intervals are per slice and NOT adjusted for multiplicity (they describe the slice;
the decision uses the adjusted p-values).

Pure numpy/scipy; no Airflow, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

MISSING = "(missing)"
CORRECTION = "holm"
#: Slices named in one reason sentence; the rest are counted (every slice is in the report).
MAX_LISTED = 10

__all__ = ["MISSING", "SliceReport", "SliceResult", "group_labels", "holm_adjust", "evaluate_slices"]


def _f(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def group_labels(values: Any, *, bin_numeric: bool, bins: int, max_groups: int) -> tuple[np.ndarray | None, str]:
    """One string label per row (``(missing)`` for None/NaN), or (None, why) when unusable.

    ``bin_numeric``: cut into ``bins`` quantile bins. A numeric column with more than
    ``max_groups`` distinct values is binned too; any other column with more is refused.
    Returns ``(labels, how)`` where ``how`` is ``values``, ``quantile_bins`` or the refusal.
    """
    import pandas as pd

    s = pd.Series(values)
    missing = s.isna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    present = s[~missing]
    distinct = int(present.nunique())
    if numeric and (bin_numeric or distinct > max_groups):
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        finite = ~missing & np.isfinite(x)
        missing = ~finite
        out = np.full(x.size, MISSING, dtype=object)
        if finite.any():
            edges = np.unique(np.quantile(x[finite], np.linspace(0.0, 1.0, bins + 1)))
            if edges.size < 2:
                out[finite] = f"= {_fmt(edges[0])}"
            else:
                idx = np.clip(np.searchsorted(edges, x[finite], side="right") - 1, 0, edges.size - 2)
                names = [
                    f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])}{']' if i == edges.size - 2 else ')'}"
                    for i in range(edges.size - 1)
                ]
                out[finite] = np.asarray(names, dtype=object)[idx]
        return out, "quantile_bins"
    if distinct > max_groups:
        return None, f"{distinct} distinct values (max_slices_per_column={max_groups})"
    out = np.asarray([MISSING if m else str(v) for v, m in zip(s.tolist(), missing, strict=True)], dtype=object)
    return out, "values"


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given): max_{j<=i} min(1, (m-j+1) p_(j))."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return [float(v) for v in out]


@dataclass(frozen=True)
class SliceResult:
    """One slice: its rows, both models' metric with intervals, and the paired test."""

    column: str
    value: str
    rows: int
    class_counts: dict
    status: str  # judged | too_small | single_class | undefined
    champion: dict | None = None  # MetricEstimate.to_dict()
    challenger: dict | None = None
    effect: float | None = None  # challenger - champion, sign-adjusted (negative = worse)
    effect_ci_low: float | None = None
    effect_ci_high: float | None = None
    method: str | None = None
    p_worse: float | None = None  # raw one-sided p of "worse by more than tolerance"
    p_adjusted: float | None = None  # Holm
    worse: bool = False
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.column}={self.value}"

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "value": self.value,
            "rows": int(self.rows),
            "class_counts": {str(k): int(v) for k, v in self.class_counts.items()},
            "status": self.status,
            "champion": self.champion,
            "challenger": self.challenger,
            "effect": _f(self.effect),
            "effect_ci_low": _f(self.effect_ci_low),
            "effect_ci_high": _f(self.effect_ci_high),
            "method": self.method,
            "p_worse": _f(self.p_worse),
            "p_adjusted": _f(self.p_adjusted),
            "worse": bool(self.worse),
            "note": self.note,
        }


@dataclass(frozen=True)
class SliceReport:
    """Every slice of every column, the gate's verdict and one reason sentence per finding."""

    metric: str
    alpha: float
    tolerance: float
    min_rows: int
    min_class_rows: int
    correction: str
    slices: tuple[SliceResult, ...]
    #: column -> {"status": ok | column_missing | too_many_values, "binning": ..., "note": ...}
    columns: dict
    cold_start: bool
    reasons: tuple[str, ...]
    passed: bool

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "alpha": self.alpha,
            "tolerance": self.tolerance,
            "min_rows": self.min_rows,
            "min_class_rows": self.min_class_rows,
            "correction": self.correction,
            "cold_start": self.cold_start,
            "passed": bool(self.passed),
            "reasons": list(self.reasons),
            "columns": dict(self.columns),
            "judged": sum(s.status == "judged" for s in self.slices),
            "too_small": sum(s.status == "too_small" for s in self.slices),
            "worse": [s.label for s in self.slices if s.worse],
            "slices": [s.to_dict() for s in self.slices],
        }


@dataclass
class _Settings:
    metric: str
    alpha: float
    tolerance: float
    min_rows: int
    min_class_rows: int
    bootstrap_resamples: int
    seed: int


def _class_counts(y: np.ndarray) -> dict:
    values, counts = np.unique(y, return_counts=True)
    return {(v.item() if isinstance(v, np.generic) else v): int(c) for v, c in zip(values, counts, strict=True)}


def _one_slice(
    column: str,
    value: str,
    mask: np.ndarray,
    y: np.ndarray,
    preds: dict,
    probas: dict,
    labels: np.ndarray,
    st: _Settings,
) -> SliceResult:
    from include.retrainer.metric_tests import metric_estimate, paired_metric_test

    ys = y[mask]
    n = int(ys.size)
    counts = _class_counts(ys)
    base: dict[str, Any] = {"column": column, "value": value, "rows": n, "class_counts": counts}
    if n < st.min_rows:
        return SliceResult(
            **base, status="too_small", note=f"{n} rows < comparison.slices.min_rows={st.min_rows}: too small to judge"
        )
    if st.metric == "roc_auc" and len(counts) < 2:
        only = next(iter(counts))
        return SliceResult(
            **base,
            status="single_class",
            note=f"all {n} rows are of class {only!r}: roc_auc is undefined on this slice",
        )
    rare = {k: v for k, v in counts.items() if v < st.min_class_rows}
    if st.metric == "roc_auc" and rare:
        return SliceResult(
            **base,
            status="too_small",
            note=(
                "class rows "
                + ", ".join(f"{k!r}: {v}" for k, v in rare.items())
                + f" < comparison.slices.min_class_rows={st.min_class_rows}: too small to judge"
            ),
        )
    conf = 1.0 - st.alpha
    est = {}
    try:
        for role in preds:
            proba = probas[role][mask] if probas[role] is not None else None
            est[role] = metric_estimate(
                st.metric,
                ys,
                preds[role][mask],
                proba,
                labels,
                confidence=conf,
                bootstrap_resamples=st.bootstrap_resamples,
                seed=st.seed,
            ).to_dict()
        if "champion" not in preds:
            return SliceResult(
                **base, status="judged", challenger=est["challenger"], note="no champion: reported, not tested"
            )
        # Roles swapped: H0 "champion - challenger <= tolerance" (sign-adjusted); a small p
        # means the challenger is worse on this slice by more than the tolerance.
        pt = paired_metric_test(
            st.metric,
            ys,
            preds["challenger"][mask],
            preds["champion"][mask],
            None if probas["challenger"] is None else probas["challenger"][mask],
            None if probas["champion"] is None else probas["champion"][mask],
            labels,
            st.alpha,
            st.tolerance,
            st.bootstrap_resamples,
            st.seed,
        )
    except ValueError as exc:
        return SliceResult(
            **base,
            status="undefined",
            champion=est.get("champion"),
            challenger=est.get("challenger"),
            note=f"{st.metric} not computable: {exc}",
        )
    return SliceResult(
        **base,
        status="judged",
        champion=est["champion"],
        challenger=est["challenger"],
        effect=-pt.effect,
        effect_ci_low=-pt.ci_high,
        effect_ci_high=-pt.ci_low,
        method=pt.method,
        p_worse=pt.p_value,
    )


def _p(p: float) -> str:
    return "p<0.0001" if p < 1e-4 else f"p={p:.4f}"


def _blocking_reason(s: SliceResult, st: _Settings) -> str:
    ch, cp = s.challenger or {}, s.champion or {}
    assert s.p_worse is not None and s.p_adjusted is not None  # only tested slices block
    tol = f" by more than the tolerance {st.tolerance:g}" if st.tolerance else ""
    return (
        f"slice {s.label} ({s.rows} rows): challenger {st.metric} {ch.get('value', float('nan')):.3f} vs champion "
        f"{cp.get('value', float('nan')):.3f} ({s.effect:+.3f}, {round((1 - 2 * st.alpha) * 100, 4):g}% CI "
        f"{s.effect_ci_low:+.3f} to {s.effect_ci_high:+.3f}), {s.method} {_p(s.p_worse)}, Holm-adjusted "
        f"{_p(s.p_adjusted)} < {st.alpha:g}: challenger significantly worse{tol} on this slice: not promoting"
    )


def evaluate_slices(
    frame: Any,
    columns: Sequence[str],
    y_true: np.ndarray,
    predictions: dict[str, np.ndarray],
    probas: dict[str, np.ndarray | None],
    labels: np.ndarray,
    *,
    metric: str,
    alpha: float = 0.05,
    tolerance: float = 0.0,
    min_rows: int = 100,
    min_class_rows: int = 10,
    numeric_columns: Sequence[str] = (),
    numeric_bins: int = 4,
    max_slices_per_column: int = 50,
    bootstrap_resamples: int = 2000,
    seed: int = 0,
) -> SliceReport:
    """Judge every slice of ``columns`` (module docstring). Never raises on content.

    ``frame``: the held-out rows (a DataFrame holding the slice columns), row-aligned with
    ``y_true`` and the already aligned ``predictions``/``probas`` (roles ``challenger`` and,
    unless cold start, ``champion``; see :func:`include.retrainer.compare.aligned_scores`).
    """
    st = _Settings(metric, alpha, tolerance, min_rows, min_class_rows, bootstrap_resamples, seed)
    cold = "champion" not in predictions
    results: list[SliceResult] = []
    col_info: dict[str, dict] = {}
    for column in columns:
        if column not in frame.columns:
            col_info[column] = {"status": "column_missing", "note": f"column '{column}' is not in the held-out rows"}
            continue
        groups, how = group_labels(
            frame[column].to_numpy(),
            bin_numeric=column in numeric_columns,
            bins=numeric_bins,
            max_groups=max_slices_per_column,
        )
        if groups is None:
            col_info[column] = {"status": "too_many_values", "note": f"column '{column}' has {how}"}
            continue
        col_info[column] = {"status": "ok", "binning": how}
        for value in sorted(set(groups.tolist()), key=lambda v: (v == MISSING, v)):
            results.append(_one_slice(column, value, groups == value, y_true, predictions, probas, labels, st))

    raw = [(i, s.p_worse) for i, s in enumerate(results) if s.p_worse is not None]
    tested = [i for i, _ in raw]
    adjusted = holm_adjust([p for _, p in raw])
    for i, p_adj in zip(tested, adjusted, strict=True):
        results[i] = replace(results[i], p_adjusted=p_adj, worse=p_adj < alpha)

    reasons: list[str] = []
    blocked = False
    for column, info in col_info.items():
        if info["status"] != "ok":
            blocked = True
            reasons.append(
                f"slice column '{column}' cannot be judged ({info['status']}): {info['note']}: not promoting"
            )
    worse = [s for s in results if s.worse]
    for s in worse:
        blocked = True
        reasons.append(_blocking_reason(s, st))
    unjudged = [s for s in results if s.status != "judged"]
    unjudged_text = ""
    if unjudged:
        # At most MAX_LISTED named in the sentence (it also goes into an MLflow tag); all are in ``slices``.
        unjudged_text = (
            "; not judged: "
            + ", ".join(
                f"{s.label} ({s.rows} rows, {'too small to judge' if s.status == 'too_small' else s.status.replace('_', ' ')})"
                for s in unjudged[:MAX_LISTED]
            )
            + (f" and {len(unjudged) - MAX_LISTED} more" if len(unjudged) > MAX_LISTED else "")
        )
    judged = [s for s in results if s.status == "judged"]
    if cold:
        reasons.append(
            f"slices: no champion, {len(judged)} slice(s) of {', '.join(columns)} reported "
            f"(challenger {metric} per slice), nothing to compare{unjudged_text}"
        )
    elif not worse:
        drops = [(s.effect, s.label, s.p_adjusted) for s in judged if s.effect is not None and s.p_adjusted is not None]
        drop = min(drops) if drops else None
        detail = (
            f"; largest drop {drop[1]} {drop[0]:+.3f} (Holm-adjusted {_p(drop[2])})"
            if drop is not None and drop[0] < 0
            else ""
        )
        reasons.append(
            f"slices: challenger not significantly worse on any of {len(judged)} judged slice(s) of "
            f"{', '.join(columns)} (paired {metric} tests, Holm at {alpha:g}){detail}{unjudged_text}"
        )
    elif unjudged_text:
        reasons.append("slices" + unjudged_text)
    return SliceReport(
        metric=metric,
        alpha=alpha,
        tolerance=tolerance,
        min_rows=min_rows,
        min_class_rows=min_class_rows,
        correction=CORRECTION,
        slices=tuple(results),
        columns=col_info,
        cold_start=cold,
        reasons=tuple(reasons),
        passed=not blocked,
    )
