"""The retraining gate: several signals, each a calibrated test, combined by a rule.

Pure functions over plain numbers and arrays (no Airflow, no MLflow): the
DAG computes the inputs, this module decides.

Signals (each returns a :class:`SignalResult`)
---------------------------------------------
* :func:`data_drift_signal` - the input distribution moved
  (:func:`include.retrainer.drift.detect_drift`: per-feature calibrated tests,
  Holm across features, importance-weighted verdict).
* :func:`prediction_drift_signal` - the champion's *scores* moved: two-sample
  KS of its scores on the new batch against its scores on its own held-out
  rows.  Binary: pass P(positive) as a 1-D array (one test); multi-class: a
  2-D (rows, classes) array, one KS per class column, Bonferroni over the
  columns (conservative: the columns sum to 1).  Needs no labels.  Given the
  day-to-day variation of the champion's scores on its training rows
  (:func:`include.retrainer.drift.score_variation`, recorded at training) and
  the days on each side, each D is judged against it: a batch's days differ
  from the held-out days by more than sampling noise (weather, weekday), so
  the KS is deflated by the design effect ``1 + n_eff * excess * (1/days_ref +
  1/days_cur)`` and read on an F distribution (drift.py, "Week-to-week
  variation").
* :func:`performance_decay_signal` - the champion's primary metric on the new
  labelled batch dropped: one-sided z test of ``drop > min_decay`` with
  ``drop = baseline - current`` (``current - baseline`` for losses) and
  ``se = sqrt(se_baseline**2 + se_current**2)`` (independent samples).  The
  reported (1 - 2 alpha) confidence interval of the drop excludes
  ``min_decay`` exactly when ``p < alpha``.  The SEs are inputs, so this module
  does not care how they were obtained (DeLong, bootstrap, binomial).
  :func:`served_decay_signal` is the form the loop uses: the baseline is pooled
  (inverse variance, :func:`pool_estimates`) over the champion's held-out rows
  and the weeks it has served, and the latest 1..k weeks are pooled and tested
  against what came before them, Bonferroni over the k windows; by default the
  pool is random-effects (:func:`between_week_variance`), so benign week-to-week
  spread is not read as decay.
* :func:`age_signal` - the champion is at least ``max_age_weeks`` old, so a
  champion that never drifts is still refreshed.  Deterministic: no p-value.

Statuses: ``"fired"``, ``"quiet"``, ``"insufficient"`` (too few rows, NaN
scores, no labels: the signal cannot decide and says why, the others decide)
and ``"disabled"`` (not configured).

False alarms
------------
Each p-value signal fires with probability ``<= its alpha`` when nothing
changed.  :func:`allocate_alpha` splits the gate's ``alpha`` over the enabled
p-value signals (Bonferroni: ``alpha / k`` each), so by the union bound the
probability that *any* of them fires on stationary data - the false-alarm
rate of the ``"any"`` rule, the most permissive one - is ``<= alpha``, with
no assumption about how the signals depend on each other ("all" and
"majority" fire on subsets of that event, so they are bounded too).  The age
signal is a schedule, not a test; it is not part of the error budget.

:func:`combine_signals` applies the rule and writes a one-sentence reason
naming every fired signal with its numbers and listing disabled/insufficient
ones, e.g. ``"retrain: performance decay (roc_auc 0.842 -> 0.801, drop 0.041
> 0, p=0.003) and data drift (2 of 8 features, 46% of importance); not
assessed: prediction drift (insufficient: 12 rows < min_rows=30)"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from include.retrainer.drift import BlockVariation, DriftReport, adjust_pvalues, ks_2samp_columns, ks_pvalue_judged

__all__ = [
    "GATE_RULES",
    "PVALUE_SIGNALS",
    "SIGNAL_STATUSES",
    "GateDecision",
    "SignalResult",
    "age_signal",
    "allocate_alpha",
    "combine_signals",
    "data_drift_signal",
    "performance_decay_signal",
    "pool_estimates",
    "prediction_drift_signal",
    "served_decay_signal",
    "vote_passes",
]

SIGNAL_STATUSES = ("fired", "quiet", "insufficient", "disabled")
#: Signals that are statistical tests and share the gate's alpha.
PVALUE_SIGNALS = ("data_drift", "prediction_drift", "performance_decay")
GATE_RULES = ("any", "all", "majority")
_LABELS = {
    "data_drift": "data drift",
    "prediction_drift": "prediction drift",
    "performance_decay": "performance decay",
    "age": "champion age",
    "data_growth": "data growth",
    "follow_up": "follow-up after a change",
    "retry": "retry after a rejection on fallen rows",
}
#: Default minimum rows for the prediction-drift KS (the exact KS is valid there; see drift.py).
DEFAULT_MIN_ROWS = 30


def _json_value(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars/arrays -> python, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _check_alpha(alpha: Any, name: str = "alpha") -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {alpha!r}")
    alpha = float(alpha)
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {alpha!r}")
    return alpha


def _fmt_p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3g}"


def _decay_verdict(fired: bool, drop: float, min_decay: float, p: float, alpha: float) -> str:
    """``> 0, p=0.004 < 0.0167``, ``not significantly > 0, p=0.0172 >= 0.0167`` or ``not > 0, p=0.98 ...``.

    A drop above ``min_decay`` but within its noise must not read as "drop 0.060 not > 0".
    """
    digits = 3
    while digits < 8 and f"{p:.{digits}g}" == f"{alpha:.{digits}g}" and p != alpha:
        digits += 1  # e.g. p=0.01671 vs alpha 0.01667 would both print 0.0167
    ps, al = f"{p:.{digits}g}", f"{alpha:.{digits}g}"
    if fired:
        return f"> {min_decay:g}, p={ps} < {al}"
    said = "not significantly >" if drop > min_decay else "not >"
    return f"{said} {min_decay:g}, p={ps} >= {al}"


@dataclass(frozen=True)
class SignalResult:
    """One signal's verdict.

    ``statistic`` is compared with ``threshold`` for deterministic signals
    (age) and reported for the others; ``p_value`` is compared with ``alpha``
    for the test signals.  ``summary`` is the short phrase used in the gate's
    reason; ``details`` holds everything else (JSON-safe after ``to_dict``).
    """

    name: str
    status: str
    statistic: float | None
    threshold: float | None
    p_value: float | None
    alpha: float | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in SIGNAL_STATUSES:
            raise ValueError(f"SignalResult.status must be one of {SIGNAL_STATUSES}; got {self.status!r}")

    @property
    def label(self) -> str:
        return _LABELS.get(self.name, self.name.replace("_", " "))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict (``json.dumps(..., allow_nan=False)`` works)."""
        return {
            "name": self.name,
            "status": self.status,
            "statistic": _json_value(self.statistic),
            "threshold": _json_value(self.threshold),
            "p_value": _json_value(self.p_value),
            "alpha": _json_value(self.alpha),
            "summary": self.summary,
            "details": _json_value(self.details),
        }


@dataclass(frozen=True)
class GateDecision:
    """The gate's decision: retrain or not, why, under which rule, from which signals."""

    retrain: bool
    reason: str
    rule: str
    signals: tuple[SignalResult, ...]

    @property
    def fired(self) -> list[str]:
        return [s.name for s in self.signals if s.status == "fired"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "retrain": bool(self.retrain),
            "reason": self.reason,
            "rule": self.rule,
            "fired": self.fired,
            "signals": [s.to_dict() for s in self.signals],
        }


# --------------------------------------------------------------------------
# alpha budget
# --------------------------------------------------------------------------


def allocate_alpha(alpha: float, signals_enabled: Iterable[str] | Mapping[str, bool]) -> dict[str, float]:
    """Bonferroni split of the gate's ``alpha`` over the enabled p-value signals.

    ``signals_enabled`` lists signal names (or maps names to enabled flags).
    Returns ``{name: alpha / k}`` for the k enabled signals among
    ``PVALUE_SIGNALS``; ``"age"`` may be listed but gets no share (it is
    deterministic).  By the union bound the chance that any of them fires on
    stationary data is ``<= alpha``.  An unknown name raises ``ValueError``.
    """
    alpha = _check_alpha(alpha)
    if isinstance(signals_enabled, Mapping):
        names = [str(k) for k, on in signals_enabled.items() if on]
    elif isinstance(signals_enabled, (str, bytes)):
        raise ValueError("signals_enabled must be a collection of signal names, not a single string")
    else:
        names = [str(n) for n in signals_enabled]
    unknown = [n for n in names if n not in PVALUE_SIGNALS and n != "age"]
    if unknown:
        raise ValueError(
            f"unknown signal(s) {', '.join(map(repr, unknown))}; known: {', '.join(PVALUE_SIGNALS + ('age',))}"
        )
    tests = [n for n in PVALUE_SIGNALS if n in names]
    return {n: alpha / len(tests) for n in tests}


# --------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------


def data_drift_signal(report: DriftReport, alpha: float) -> SignalResult:
    """Wrap a :class:`DriftReport` as a signal, re-deciding the features at ``alpha``.

    Holm/Bonferroni/BH-adjusted p-values do not depend on alpha, so the
    report's features are re-thresholded at the ``alpha`` given here (e.g.
    the share from :func:`allocate_alpha`) with the report's own gate rule
    (importance share >= ``min_importance_share`` or a critical feature).
    Schema outcomes (a column absent from a frame) count as drifted as in the
    report.  ``p_value`` is the smallest adjusted p-value: the test of "no
    feature drifted".
    """
    alpha = _check_alpha(alpha)
    if not isinstance(report, DriftReport):
        raise ValueError(f"report must be a DriftReport; got {type(report).__name__}")
    settings = report.settings
    threshold = float(settings.get("min_importance_share", 0.2))
    if report.status == "insufficient":
        return SignalResult(
            "data_drift",
            "insufficient",
            None,
            threshold,
            None,
            alpha,
            f"insufficient: {report.reason.removeprefix('insufficient data: ')}",
            {"reason": report.reason},
        )
    drifted = [
        name
        for name, f in report.features.items()
        if f.status in ("missing_reference", "missing_current")
        or (f.p_value_adjusted is not None and f.p_value_adjusted < alpha)
    ]
    share = float(sum(report.features[n].importance for n in drifted))
    critical = [c for c in settings.get("critical_features", []) if c in drifted]
    fired = bool(critical) or (bool(drifted) and share >= threshold - 1e-12)
    adjusted = [f.p_value_adjusted for f in report.features.values() if f.p_value_adjusted is not None]
    p_min = min(adjusted) if adjusted else None
    weight = "of importance" if report.importance_source == "importance" else "of features"
    summary = f"{len(drifted)} of {len(report.features)} features, {share:.0%} {weight}"
    if critical:
        summary += f", critical: {', '.join(critical)}"
    if drifted:
        summary += f": {', '.join(drifted[:5])}" + (f" (+{len(drifted) - 5} more)" if len(drifted) > 5 else "")
    details = {
        "drifted": drifted,
        "drifted_importance": share,
        "critical_drifted": critical,
        "importance_source": report.importance_source,
        "report_alpha": settings.get("alpha"),
        "report_reason": report.reason,
        "detectable_effect": {n: f.detectable_effect for n, f in report.features.items()},
    }
    return SignalResult("data_drift", "fired" if fired else "quiet", share, threshold, p_min, alpha, summary, details)


def _as_scores(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must be a 1-D array of P(positive) or a 2-D (rows, classes) array; got shape {np.shape(values)}"
        )
    return arr


def prediction_drift_signal(
    reference_scores: Any,
    current_scores: Any,
    alpha: float,
    min_rows: int = DEFAULT_MIN_ROWS,
    variation: Sequence[BlockVariation | None] | None = None,
    days: tuple[int, int] | None = None,
) -> SignalResult:
    """KS test(s) of the champion's scores on the new batch vs on its own held-out rows.

    1-D arrays: one two-sample KS (equal to ``scipy.stats.ks_2samp``, exact at
    small n).  2-D (rows, classes): one KS per class column, p-values
    Bonferroni-adjusted over the columns; the signal's p-value is the
    smallest adjusted one and its statistic the largest D.  Fewer than
    ``min_rows`` rows on a side, or any NaN/inf score, gives status
    ``"insufficient"`` naming the problem and its count (NaN scores mean the
    model or its inputs are broken: no test is run on them).  A column count
    mismatch raises ``ValueError``.  ``variation`` (one per score column, None where unknown)
    and ``days`` (distinct days of the reference and current rows) judge each D against the
    scores' day-to-day variation (module docstring); without them, the plain KS.
    """
    alpha = _check_alpha(alpha)
    if isinstance(min_rows, bool) or not isinstance(min_rows, (int, np.integer)) or min_rows < 1:
        raise ValueError(f"min_rows must be an integer >= 1; got {min_rows!r}")
    ref = _as_scores(reference_scores, "reference_scores")
    cur = _as_scores(current_scores, "current_scores")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference_scores has {ref.shape[1]} class columns but current_scores has {cur.shape[1]}")
    bad_ref = int(np.count_nonzero(~np.isfinite(ref).all(axis=1)))
    bad_cur = int(np.count_nonzero(~np.isfinite(cur).all(axis=1)))
    base = {"n_reference": int(ref.shape[0]), "n_current": int(cur.shape[0]), "classes": int(ref.shape[1])}
    if bad_ref or bad_cur:
        return SignalResult(
            "prediction_drift",
            "insufficient",
            None,
            alpha,
            None,
            alpha,
            f"insufficient: non-finite scores in {bad_ref} reference and {bad_cur} current rows",
            {**base, "error": "non_finite_scores", "non_finite_reference": bad_ref, "non_finite_current": bad_cur},
        )
    if ref.shape[0] < min_rows or cur.shape[0] < min_rows:
        return SignalResult(
            "prediction_drift",
            "insufficient",
            None,
            alpha,
            None,
            alpha,
            f"insufficient: {ref.shape[0]} reference / {cur.shape[0]} current rows, need min_rows={min_rows}",
            {**base, "error": "too_few_rows", "min_rows": int(min_rows)},
        )
    d, p = ks_2samp_columns(ref, cur)
    judged: list[float | None] = [None] * p.size
    if variation is not None and days is not None and min(days) >= 1:
        if len(variation) != p.size:
            raise ValueError(f"variation has {len(variation)} entries for {p.size} score columns")
        n1, n2 = ref.shape[0], cur.shape[0]
        n_eff = n1 * n2 / (n1 + n2)
        for k, v in enumerate(variation):
            if v is not None:
                deff = v.design_effect(n_eff, days[0], days[1])
                judged[k] = deff
                p[k] = ks_pvalue_judged(n1, n2, float(d[k]), v, deff)
    p_adj = adjust_pvalues(p, "bonferroni") if p.size > 1 else p
    j = int(np.argmin(p_adj))
    p_min = float(p_adj[j])
    fired = p_min < alpha
    where = "" if p.size == 1 else f" (class column {j}, Bonferroni over {p.size})"
    against = ""
    if judged[j] is not None and days is not None:
        against = (
            f"; judged against the day-to-day variation of its scores ({days[0]} vs {days[1]} days: "
            f"design effect {judged[j]:.3g})"
        )
    summary = f"KS D={float(np.max(d)):.3f}, p={_fmt_p(p_min)}{where}{against}"
    details = {**base, "ks_d": d.tolist(), "p_values": p.tolist(), "p_values_adjusted": p_adj.tolist()}
    if any(x is not None for x in judged) and days is not None:
        details.update(design_effect=judged, reference_days=int(days[0]), current_days=int(days[1]))
    return SignalResult(
        "prediction_drift", "fired" if fired else "quiet", float(np.max(d)), alpha, p_min, alpha, summary, details
    )


def _row_count(value: Any) -> int | None:
    """A row count: an integer >= 0 (None or missing counts as 0); None when it is not one."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    if not math.isfinite(float(value)) or float(value) < 0 or float(value) != int(value):
        return None
    return int(value)


def se_or_floor(se: float, n: Any) -> float:
    """``se``, or 0.5 / sqrt(n) (a proportion's largest SE) when it is 0 and ``n`` >= 1 rows are known.

    A metric measured with no spread (e.g. AUC 1.0 on few rows) is not known exactly: pooling
    and every drop read it with the noise its row count allows.
    """
    if se > 0:
        return se
    try:
        rows = float(n)
    except (TypeError, ValueError):
        return se
    return 0.5 / math.sqrt(rows) if math.isfinite(rows) and rows >= 1 else se


def usable_estimate(e: Mapping[str, Any] | None) -> bool:
    """Whether ``e`` can pool (:func:`pool_estimates`): finite value, se >= 0, a row count
    (and n >= 1 when se is 0). Stored records that fail this are skipped, not fatal."""
    if not isinstance(e, Mapping):
        return False
    try:
        value, se = _finite_number(e.get("value"), "value"), _finite_number(e.get("se"), "se")
    except ValueError:
        return False
    n = _row_count(e.get("n"))
    return value is not None and se is not None and se >= 0 and n is not None and (se > 0 or n >= 1)


def _finite_number(value: Any, name: str) -> float | None:
    """float(value), None for None/NaN (the caller reports 'insufficient'); ValueError for non-numbers."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number; got {value!r}")
    value = float(value)
    return value if math.isfinite(value) else None


def performance_decay_signal(
    baseline_value: float | None,
    baseline_se: float | None,
    current_value: float | None,
    current_se: float | None,
    greater_is_better: bool,
    alpha: float,
    min_decay: float = 0.0,
    metric: str = "metric",
) -> SignalResult:
    """One-sided z test that the metric dropped by more than ``min_decay`` (module docstring).

    ``p = 1 - Phi((drop - min_decay) / se)``; fires when ``p < alpha``.  The
    details hold ``drop``, ``se``, ``z`` and the (1 - 2 alpha) interval
    ``drop +/- z_(1-alpha) se``.  A missing or non-finite value or SE (e.g. no
    labelled rows yet) gives ``"insufficient"``; a negative SE or a negative
    ``min_decay`` raises ``ValueError``.  With ``se == 0`` the test is
    deterministic (p = 0 if the drop exceeds ``min_decay``, else 1).
    """
    from scipy.stats import norm

    alpha = _check_alpha(alpha)
    md = _finite_number(min_decay, "min_decay")
    if md is None or md < 0:
        raise ValueError(f"min_decay must be a finite number >= 0; got {min_decay!r}")
    values = {
        "baseline_value": _finite_number(baseline_value, "baseline_value"),
        "baseline_se": _finite_number(baseline_se, "baseline_se"),
        "current_value": _finite_number(current_value, "current_value"),
        "current_se": _finite_number(current_se, "current_se"),
    }
    for key in ("baseline_se", "current_se"):
        given = values[key]
        if given is not None and given < 0:
            raise ValueError(f"{key} must be >= 0; got {given!r}")
    missing = [k for k, v in values.items() if v is None]
    details: dict[str, Any] = {
        "metric": metric,
        "greater_is_better": bool(greater_is_better),
        "min_decay": md,
        **values,
    }
    if missing:
        return SignalResult(
            "performance_decay",
            "insufficient",
            None,
            md,
            None,
            alpha,
            f"insufficient: {metric} {', '.join(missing)} not available",
            details,
        )
    # All four are finite numbers here (the missing ones returned above).
    b, c = cast(float, values["baseline_value"]), cast(float, values["current_value"])
    drop = (b - c) if greater_is_better else (c - b)
    se = math.hypot(cast(float, values["baseline_se"]), cast(float, values["current_se"]))
    if se > 0:
        z = (drop - md) / se
        p = float(norm.sf(z))
    else:
        z = math.inf if drop > md else -math.inf
        p = 0.0 if drop > md else 1.0
    half = float(norm.isf(alpha)) * se
    details.update(drop=drop, se=se, z=z, ci_level=1 - 2 * alpha, ci_low=drop - half, ci_high=drop + half)
    fired = p < alpha
    summary = f"{metric} {b:.3f} -> {c:.3f}, drop {drop:.3f} {_decay_verdict(fired, drop, md, p, alpha)}"
    return SignalResult("performance_decay", "fired" if fired else "quiet", drop, md, p, alpha, summary, details)


def pool_estimates(estimates: Sequence[Mapping[str, Any]], tau2: float = 0.0) -> dict[str, Any]:
    """Inverse-variance pooled estimate of one metric measured on independent samples.

    Each estimate is ``{"value", "se", "n"}``; the pooled value is
    ``sum(v_i / se_i^2) / sum(1 / se_i^2)`` with ``se = 1 / sqrt(sum(1 / se_i^2))``, the
    minimum-variance unbiased combination when every sample measures the same quantity.
    A standard error of 0 (e.g. a perfect AUC on a small week) is replaced by ``0.5 / sqrt(n)``,
    the largest SE of a proportion measured on n rows: a degenerate week gets a modest weight,
    never an infinite or dominating one (an estimate with SE 0 and no row count is an error).
    ``tau2`` (default 0, the fixed-effect pool): a variance of the true level between the
    samples, added to each one's (random-effects weights ``1 / (se_i^2 + tau2)``, see
    :func:`between_week_variance`); the pooled SE then includes it.
    Returns ``{"value", "se", "n", "parts"}``.
    """
    if not estimates:
        raise ValueError("pool_estimates needs at least one estimate")
    if not (isinstance(tau2, (int, float, np.floating)) and math.isfinite(tau2) and tau2 >= 0):
        raise ValueError(f"tau2 must be a finite number >= 0; got {tau2!r}")
    weights, values, rows = [], [], 0
    for e in estimates:
        value, se = _finite_number(e.get("value"), "value"), _finite_number(e.get("se"), "se")
        n = _row_count(e.get("n"))
        if value is None or se is None or se < 0 or n is None:
            raise ValueError(f"each estimate needs a finite value, se >= 0 and a row count; got {dict(e)!r}")
        if se == 0 and n < 1:
            raise ValueError(f"an estimate with se 0 needs its row count n >= 1; got {dict(e)!r}")
        se = se_or_floor(se, n)
        weights.append(1.0 / (se * se + tau2))
        values.append(value)
        rows += n
    total = float(sum(weights))
    return {
        "value": float(sum(w * v for w, v in zip(weights, values)) / total),
        "se": float(1.0 / math.sqrt(total)),
        "n": rows,
        "parts": len(values),
    }


def between_week_variance(estimates: Sequence[Mapping[str, Any]]) -> float:
    """DerSimonian-Laird estimate of the variance of the true level between samples (tau^2).

    ``tau^2 = max(0, (Q - (k - 1)) / (S1 - S2 / S1))`` with inverse-variance weights
    ``w_i = 1 / se_i^2`` (an SE of 0 read as by :func:`pool_estimates`), ``S1 = sum w_i``,
    ``S2 = sum w_i^2`` and Cochran's ``Q = sum w_i (v_i - v_fixed)^2``. 0 with fewer than 3
    estimates (too few to tell benign week-to-week variation from noise).
    """
    if len(estimates) < 3:
        return 0.0
    parts = [pool_estimates([e]) for e in estimates]  # validates, and reads an SE of 0 as 0.5/sqrt(n)
    w = np.array([1.0 / (p["se"] ** 2) for p in parts])
    v = np.array([p["value"] for p in parts])
    fixed = float((w * v).sum() / w.sum())
    q = float((w * (v - fixed) ** 2).sum())
    c = float(w.sum() - (w * w).sum() / w.sum())
    return max(0.0, (q - (len(parts) - 1)) / c) if c > 0 else 0.0


def tau2_df(variance: float, fixed_variance: float, parts_df: int) -> float | None:
    """Welch-Satterthwaite degrees of freedom of a variance whose between-week part is estimated.

    ``variance`` (random effects) = ``fixed_variance`` (known: the samples' own SEs) + ``b``, the
    part tau^2 adds, estimated from ``parts_df`` = parts - 1 degrees of freedom:
    ``df = parts_df * (variance / b)^2``. None (the normal) when ``b`` is 0, so the reading is
    continuous in tau^2: t(parts - 1) when tau^2 dominates, the normal as it vanishes.
    """
    b = variance - fixed_variance
    if not b > 0 or parts_df < 1:
        return None
    df = parts_df * (variance / b) ** 2
    return df if df < 1e6 else None


def pooled_comparison(
    before_parts: Sequence[Mapping[str, Any]], recent_parts: Sequence[Mapping[str, Any]], pool: str = "random"
) -> dict[str, Any]:
    """Both sides of a "has the level moved?" test, pooled as ``pool`` says.

    ``random`` with at least 3 baseline parts: tau^2 is estimated from them
    (:func:`between_week_variance`) and added to every part on both sides, and ``df`` is the
    Welch-Satterthwaite degrees of freedom of the difference's variance (:func:`tau2_df`; None
    when tau^2 adds nothing). Otherwise (``fixed``, or too few parts): tau^2 = 0, ``df`` None.
    Returns ``{"before", "recent"}`` (:func:`pool_estimates` results), ``se`` of their
    difference (independent samples), ``tau2`` and ``df``.
    """
    estimated = pool == "random" and len(before_parts) >= 3
    tau2 = between_week_variance(before_parts) if estimated else 0.0
    before, recent = pool_estimates(before_parts, tau2), pool_estimates(recent_parts, tau2)
    se = math.hypot(before["se"], recent["se"])
    df = None
    if estimated:
        fixed = pool_estimates(before_parts)["se"] ** 2 + pool_estimates(recent_parts)["se"] ** 2
        df = tau2_df(se * se, fixed, len(before_parts) - 1)
    return {"before": before, "recent": recent, "se": se, "tau2": tau2, "df": df}


def upper_tail(z: float, df: float | None) -> float:
    """One-sided p of ``z``: Student's t with ``df`` degrees of freedom, the normal when None."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    return float(student_t.sf(z, df)) if df else float(norm.sf(z))


def served_decay_signal(
    reference: Mapping[str, Any] | None,
    served: Sequence[Mapping[str, Any]],
    current: Mapping[str, Any] | None,
    greater_is_better: bool,
    alpha: float,
    min_decay: float = 0.0,
    metric: str = "metric",
    recent_weeks: int = 2,
    pool: str = "random",
) -> SignalResult:
    """Performance decay against a baseline pooled over the weeks the champion has served.

    ``reference`` is the champion's metric on its own held-out rows (``{"value", "se", "n"}``),
    ``served`` its metric on each labelled batch it has served since (oldest first, same keys)
    and ``current`` its metric on this week's batch. For each ``m`` in ``1 .. k`` with
    ``k = min(recent_weeks, len(served) + 1)`` the latest ``m`` weeks (this one included) are
    pooled (:func:`pool_estimates`) and compared with the pool of everything before them (the
    held-out rows and the older served weeks): a one-sided z test of ``drop > min_decay``,
    ``se = sqrt(se_before^2 + se_recent^2)`` (disjoint rows). The baseline's error shrinks as
    the champion serves, and pooling the latest weeks catches a drop that builds up gradually.
    The ``k`` tests are Bonferroni-corrected (each at ``alpha / k``), so on stationary data the
    signal fires with probability ``<= alpha``; its ``p_value`` is ``min(1, k x smallest p)``
    and its statistic the drop of that test. With no served week this is the test of
    :func:`performance_decay_signal` (this week against the held-out rows).

    ``pool="random"`` (the default): the weeks' true levels may differ for benign reasons
    (seasonality, mix), so each test first estimates that between-week variance from the
    baseline's own parts (:func:`between_week_variance`, DerSimonian-Laird; 0 with fewer than
    3 parts or when the parts agree within their SEs) and adds it to every part's variance on
    both sides: the baseline stops being over-confident and a week inside the usual spread is
    not a decay; since tau^2 comes from few weeks the z statistic is read on Student's t with
    Welch-Satterthwaite degrees of freedom (:func:`tau2_df`: (baseline parts - 1) when tau^2
    dominates the variance, towards the normal as it vanishes, so p does not jump at 0). A window whose baseline has fewer than 3 parts (the held-out rows and at most one
    served week) cannot estimate tau^2: it is left out when another window can (``k`` counts
    the windows tested), and tested as the fixed-effect pool on the normal when none can (a
    champion's first weeks).
    ``pool="fixed"``: tau^2 = 0 and the normal test always (the behaviour before random effects).
    """
    from scipy.stats import norm
    from scipy.stats import t as student_t

    alpha = _check_alpha(alpha)
    md = _finite_number(min_decay, "min_decay")
    if md is None or md < 0:
        raise ValueError(f"min_decay must be a finite number >= 0; got {min_decay!r}")
    if isinstance(recent_weeks, bool) or not isinstance(recent_weeks, (int, np.integer)) or recent_weeks < 1:
        raise ValueError(f"recent_weeks must be an integer >= 1; got {recent_weeks!r}")
    if pool not in ("random", "fixed"):
        raise ValueError(f"pool must be 'random' or 'fixed'; got {pool!r}")
    details: dict[str, Any] = {
        "metric": metric,
        "greater_is_better": bool(greater_is_better),
        "min_decay": md,
        "recent_weeks": int(recent_weeks),
        "served_weeks": len(served),
        "pool": pool,
    }
    missing = [name for name, e in (("baseline", reference), ("current", current)) if not usable_estimate(e)]
    if missing:
        return SignalResult(
            "performance_decay",
            "insufficient",
            None,
            md,
            None,
            alpha,
            f"insufficient: {metric} {' and '.join(missing)} not available",
            details,
        )
    assert reference is not None and current is not None
    weeks = [dict(e) for e in served] + [dict(current)]
    windows = list(range(1, min(int(recent_weeks), len(weeks)) + 1))
    if pool == "random" and any(len(weeks) - m + 1 >= 3 for m in windows):
        # Under random effects a window whose baseline cannot estimate tau^2 (< 3 parts) would be
        # the over-confident fixed-effect test again: drop it when another window can.
        windows = [m for m in windows if len(weeks) - m + 1 >= 3]
    k = len(windows)
    tests = []
    for m in windows:
        pooled = pooled_comparison([dict(reference), *weeks[: len(weeks) - m]], weeks[len(weeks) - m :], pool)
        before, recent, se, tau2, df = (pooled[key] for key in ("before", "recent", "se", "tau2", "df"))
        drop = (before["value"] - recent["value"]) if greater_is_better else (recent["value"] - before["value"])
        if se > 0:
            z = (drop - md) / se
            # tau^2 estimated from a few weeks is itself uncertain: Student's t (see tau2_df).
            p = upper_tail(z, df)
        else:
            z = math.inf if drop > md else -math.inf
            p = 0.0 if drop > md else 1.0
        tests.append(
            {
                "recent_weeks": m,
                "recent_value": recent["value"],
                "recent_se": recent["se"],
                "recent_rows": recent["n"],
                "baseline_value": before["value"],
                "baseline_se": before["se"],
                "baseline_rows": before["n"],
                "baseline_served_weeks": len(weeks) - m,
                "between_weeks_sd": math.sqrt(tau2),
                "reference": f"t({df:.3g})" if df else "normal",
                "df": df,
                "drop": drop,
                "se": se,
                "z": z,
                "p_value": p,
            }
        )
    best = min(tests, key=lambda t: t["p_value"])
    p_adj = min(1.0, k * best["p_value"])
    quantile = student_t.isf(alpha / k, best["df"]) if best["df"] else norm.isf(alpha / k)
    half = float(quantile) * best["se"]
    fired = best["p_value"] < alpha / k
    details.update(
        tests=tests,
        tests_run=k,
        test_alpha=alpha / k,
        deciding_recent_weeks=best["recent_weeks"],
        # The deciding comparison (baseline_value - recent_value = drop, sign-adjusted), and
        # this week's own value, under the names the signal has always reported.
        baseline_value=best["baseline_value"],
        baseline_se=best["baseline_se"],
        between_weeks_sd=best["between_weeks_sd"],
        recent_value=best["recent_value"],
        recent_se=best["recent_se"],
        current_value=float(current["value"]),
        current_se=float(current["se"]),
        drop=best["drop"],
        se=best["se"],
        z=best["z"],
        ci_level=1 - 2 * alpha / k,
        ci_low=best["drop"] - half,
        ci_high=best["drop"] + half,
    )
    m = best["recent_weeks"]
    span = "this week" if m == 1 else f"last {m} weeks ({best['recent_rows']} rows)"
    base_txt = "held-out rows" + (
        f" + {best['baseline_served_weeks']} served week(s)" if best["baseline_served_weeks"] else ""
    )
    if best["between_weeks_sd"] > 0:
        base_txt += f", between-week sd {best['between_weeks_sd']:.3f}"
    summary = (
        f"{metric} {best['baseline_value']:.3f} ({base_txt}, {best['baseline_rows']} rows) -> "
        f"{best['recent_value']:.3f} ({span}), drop {best['drop']:.3f} {_decay_verdict(fired, best['drop'], md, p_adj, alpha)}"
        + (f" (Bonferroni over {k} windows)" if k > 1 else "")
    )
    return SignalResult(
        "performance_decay", "fired" if fired else "quiet", best["drop"], md, p_adj, alpha, summary, details
    )


def age_signal(age_weeks: float, max_age_weeks: float | None, basis: str | None = None) -> SignalResult:
    """Fires when the champion is at least ``max_age_weeks`` old; ``None`` disables it.

    ``max_age_weeks`` is ``max_champion_age_weeks`` or, under the cost rule, the cost-optimal
    refresh interval (a real number of weeks >= 1); ``basis`` says where it comes from and is
    appended to the summary.
    """
    age = _finite_number(age_weeks, "age_weeks")
    if age is None or age < 0:
        raise ValueError(f"age_weeks must be a finite number >= 0; got {age_weeks!r}")
    if max_age_weeks is None:
        return SignalResult(
            "age", "disabled", age, None, None, None, f"{age:.1f} weeks, no maximum age set", {"age_weeks": age}
        )
    limit = _finite_number(max_age_weeks, "max_age_weeks")
    if limit is None or limit < 1:
        raise ValueError(f"max_age_weeks must be None or a number >= 1; got {max_age_weeks!r}")
    fired = age >= limit - 1e-9
    op = ">=" if fired else "<"
    summary = f"{age:.1f} {op} {limit:.3g} weeks" + (f" ({basis})" if basis else "")
    details: dict[str, Any] = {"age_weeks": age, "max_age_weeks": limit}
    if basis:
        details["basis"] = basis
    return SignalResult("age", "fired" if fired else "quiet", age, limit, None, None, summary, details)


# --------------------------------------------------------------------------
# combination
# --------------------------------------------------------------------------


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 2:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def vote_passes(rule: str, fired: int, assessed: int) -> bool:
    """Whether ``fired`` of ``assessed`` signals (status fired or quiet) retrain under ``rule``."""
    if rule not in GATE_RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, GATE_RULES))}; got {rule!r}")
    if rule == "any":
        return fired > 0
    if rule == "all":
        return assessed > 0 and fired == assessed
    return 2 * fired > assessed


def combine_signals(signals: Iterable[SignalResult], rule: str = "any") -> GateDecision:
    """Decide retrain from the signals.

    ``rule``: ``"any"`` (retrain if any signal fired), ``"all"`` (every
    assessed signal fired, and at least one was assessed) or ``"majority"``
    (more than half of the assessed signals fired).  *Assessed* means status
    fired or quiet; disabled and insufficient signals do not vote, and are
    listed as such in the reason.  Signal names must be distinct.
    """
    if rule not in GATE_RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, GATE_RULES))}; got {rule!r}")
    signals = tuple(signals)
    for s in signals:
        if not isinstance(s, SignalResult):
            raise ValueError(f"signals must be SignalResult objects; got {type(s).__name__}")
    names = [s.name for s in signals]
    if len(set(names)) != len(names):
        raise ValueError(f"signal names must be distinct; got {names}")
    fired = [s for s in signals if s.status == "fired"]
    quiet = [s for s in signals if s.status == "quiet"]
    assessed = len(fired) + len(quiet)
    retrain = vote_passes(rule, len(fired), assessed)
    fired_text = _join([f"{s.label} ({s.summary})" for s in fired])
    quiet_text = _join([f"{s.label} ({s.summary})" for s in quiet])
    if retrain:
        reason = f"retrain: {fired_text}"
        if rule != "any":
            reason += f" [{rule}: {len(fired)} of {assessed} assessed signals fired]"
    elif fired:
        reason = (
            f"no retrain: rule '{rule}' needs more signals, only {fired_text} fired "
            f"({len(fired)} of {assessed} assessed)"
        )
        if quiet_text:
            reason += f"; quiet: {quiet_text}"
    elif assessed:
        reason = f"no retrain: no signal fired ({quiet_text})"
    else:
        reason = "no retrain: no signal could be assessed"
    not_assessed = [f"{s.label} ({s.summary})" for s in signals if s.status == "insufficient"]
    disabled = [s.label for s in signals if s.status == "disabled"]
    if not_assessed:
        reason += f"; not assessed: {_join(not_assessed)}"
    if disabled:
        reason += f"; disabled: {_join(disabled)}"
    return GateDecision(bool(retrain), reason, rule, signals)
