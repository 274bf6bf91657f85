"""Where the champion's errors changed inside a training window: train on the new regime.

A challenger trained right after a change of the label's relation to the inputs (concept
change) learns mostly the old regime: its window holds weeks of pre-change rows and a few
days of new ones, and it scores little better than the champion it should replace. This module
finds the day the champion's errors changed and lets the train step fit on the rows since.

The signal is the champion's *excess Brier loss* per row: the observed Brier loss minus the
loss its own probabilities expect, ``2 * (sum_k p_k^2 - p_true)`` (0 in expectation for a
calibrated model, whatever the mix of inputs). So a covariate shift to inputs the champion
still scores calibrated does not move it, while a change of P(y|x) does: the rows since such a
change say something the earlier rows do not. A model without probabilities uses its 0/1
error instead (which a harder population also raises).

Only rows the champion never trained on count (from its first held-out day on). Every day
boundary that leaves enough rows after it to train and evaluate a model
(``min_train_rows + min_holdout_rows``) is a candidate; the largest Welch t of (after - before)
is tested at ``alpha / candidates`` (Bonferroni: conservative, since neighbouring splits are
correlated). Pure: no Airflow, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from include.retrainer.config import PARTITION_COLUMN, ModelSpec


@dataclass(frozen=True)
class RegimeChange:
    """The outcome of :func:`locate_change`; ``day`` is set only when a change was found."""

    found: bool
    reason: str
    day: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    alpha: float | None = None
    candidates: int = 0
    before_mean: float | None = None
    after_mean: float | None = None
    rows_before: int = 0
    rows_after: int = 0
    loss: str = "excess_brier"

    def to_dict(self) -> dict:
        return asdict(self)


def excess_loss(model: Any, frame: Any, spec: ModelSpec) -> Any:
    """Per row: the champion's Brier loss minus what its probabilities expect (0/1 error without them).

    ``2 * (sum_k p_k^2 - p_true)``, with ``p_true = 0`` for a label the model never saw.
    """
    import numpy as np

    from include.retrainer import training

    y = frame[spec.features.target].to_numpy()
    pred, proba = training.predict(model, frame, spec)
    if proba is None:
        return (np.asarray(pred).astype(str) != y.astype(str)).astype(float)
    proba = np.asarray(proba, dtype=float)
    classes = [str(c) for c in getattr(model, "classes_", [])]
    index = {c: j for j, c in enumerate(classes)}
    cols = np.array([index.get(str(v), -1) for v in y])
    p_true = np.where(cols >= 0, proba[np.arange(len(y)), np.maximum(cols, 0)], 0.0)
    return 2.0 * ((proba**2).sum(axis=1) - p_true)


def _welch(a: Any, b: Any) -> tuple[float, float]:
    """One-sided Welch t of mean(b) > mean(a) and its p-value (normal tail beyond 30 df)."""
    from scipy import stats

    va, vb = float(a.var(ddof=1)) / len(a), float(b.var(ddof=1)) / len(b)
    se = math.sqrt(va + vb)
    diff = float(b.mean() - a.mean())
    if se == 0.0:
        return (math.inf if diff > 0 else 0.0), (0.0 if diff > 0 else 1.0)
    t = diff / se
    df = (
        (va + vb) ** 2 / ((va**2) / (len(a) - 1) + (vb**2) / (len(b) - 1)) if va > 0 and vb > 0 else len(a) + len(b) - 2
    )
    return t, float(stats.t.sf(t, df))


def locate_change(spec: ModelSpec, model: Any, out_of_sample_from: str | None, window: Any) -> RegimeChange:
    """The first day of a new regime of the champion's errors in ``window``, if there is one.

    ``model``: the champion's fitted pipeline; ``out_of_sample_from``: its first held-out day
    (ISO date; rows before it may be its training rows and are left out); ``window``: the
    training window's rows with the partition column.
    """
    import numpy as np

    t = spec.training
    need_after = t.min_train_rows + t.min_holdout_rows
    alpha = spec.drift.alpha
    if window is None or len(window) == 0:
        return RegimeChange(False, "no rows in the window")
    days_all = window[PARTITION_COLUMN].astype(str)
    rows = window[days_all >= out_of_sample_from] if out_of_sample_from else window
    if len(rows) < need_after + 2:
        return RegimeChange(
            False,
            f"{len(rows)} row(s) the champion did not train on; a new regime needs {need_after} "
            "(training.min_train_rows + training.min_holdout_rows) after its first day",
        )
    day = rows[PARTITION_COLUMN].astype(str).to_numpy()
    try:
        loss = excess_loss(model, rows, spec)
    except Exception as exc:  # an unscorable window never blocks training: the whole window is used
        return RegimeChange(False, f"the champion could not score the window: {exc}")
    order = np.argsort(day, kind="stable")
    day, loss = day[order], loss[order]
    days, starts = np.unique(day, return_index=True)
    # A candidate must leave a window the train step can split as usual: the last
    # ``holdout_days`` days held out (>= min_holdout_rows) and >= min_train_rows before them.
    n_held = min(t.holdout_days, len(days) - 1)
    held_start = starts[len(days) - n_held] if n_held > 0 else len(day)
    held_rows = len(day) - held_start
    candidates = [
        i
        for i in range(1, len(days) - n_held)
        if held_start - starts[i] >= t.min_train_rows and held_rows >= t.min_holdout_rows and starts[i] >= 2
    ]
    if not candidates:
        return RegimeChange(
            False,
            f"no day boundary leaves training.min_train_rows={t.min_train_rows} rows before the last "
            f"{n_held} held-out day(s) ({held_rows} rows; training.min_holdout_rows={t.min_holdout_rows}) "
            f"and rows before it ({len(day)} rows the champion did not train on, {len(days)} day(s))",
        )
    best = None
    for i in candidates:
        s = starts[i]
        stat, p = _welch(loss[:s], loss[s:])
        if best is None or stat > best[1]:
            best = (i, stat, p)
    assert best is not None
    i, stat, p = best
    s = starts[i]
    level = alpha / len(candidates)
    found = bool(p < level)
    before, after = float(loss[:s].mean()), float(loss[s:].mean())
    verdict = "changed" if found else "no change"
    reason = (
        f"{verdict}: the champion's excess loss {before:+.3f} ({s} rows before {days[i]}) -> {after:+.3f} "
        f"({len(day) - s} rows since), t={stat:.2f}, p={p:.3g} {'<' if found else '>='} {level:.3g} "
        f"(alpha {alpha} / {len(candidates)} day boundaries)"
    )
    return RegimeChange(
        found=found,
        reason=reason,
        day=str(days[i]) if found else None,
        statistic=round(float(stat), 4) if math.isfinite(stat) else None,
        p_value=float(p),
        alpha=level,
        candidates=len(candidates),
        before_mean=round(before, 5),
        after_mean=round(after, 5),
        rows_before=int(s),
        rows_after=int(len(day) - s),
    )
