"""Where the champion's errors changed inside a training window: train on the new regime.

A challenger trained right after a change of the label's relation to the inputs (concept
change) learns mostly the old regime: its window holds weeks of pre-change rows and a few
days of new ones, and it scores little better than the champion it should replace. This module
finds the day the champion's errors changed, so that the train step can try the rows since.

The signal is the champion's *excess Brier loss* per row: the observed Brier loss minus the
loss its own probabilities expect, ``2 * (sum_k p_k^2 - p_true)`` (0 in expectation for a
calibrated model, whatever the mix of inputs). So a covariate shift to inputs the champion
still scores calibrated does not move it, while a change of P(y|x) does. A model without
probabilities uses its 0/1 error instead (which a harder population also raises). Labels are
aligned to the model's classes as the comparison aligns them (a class it never saw: p = 0).

Rows: only those of days the champion was not fitted on (from its first held-out day; those
rows chose it, so its loss there is a little optimistic, which the caller's second test, a model
since the day significantly better than one on the whole window, guards). Every day boundary with >= 2 days before it that
leaves ``min_train_rows`` rows between it and the window's held-out days (the rows a model
since the boundary would train on) is a candidate; the statistic is the largest two-sample t of
(after - before) over the candidates, and its p-value comes from permuting whole days
(``drift.null_resamples`` permutations, seeded by ``drift.seed``): exact under exchangeable
days, whatever the rows' distribution (0/1 errors included), with day-to-day variation and the
choice among candidates accounted for. Pure: no Airflow, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from include.retrainer.config import PARTITION_COLUMN, ModelSpec

#: Fewest days before a boundary (a permutation test over fewer units cannot reach alpha).
MIN_DAYS_BEFORE = 2


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
    permutations: int = 0
    before_mean: float | None = None
    after_mean: float | None = None
    rows_before: int = 0
    rows_after: int = 0
    days: int = 0
    dropped_rows: int = 0
    loss: str = "excess_brier"

    def to_dict(self) -> dict:
        return asdict(self)


def excess_loss(model: Any, frame: Any, spec: ModelSpec) -> tuple[Any, str]:
    """Per row: the model's Brier loss minus what its probabilities expect, and the loss's name.

    ``2 * (sum_k p_k^2 - p_true)`` (``"excess_brier"``), or the 0/1 error (``"error_rate"``) for a
    model without ``predict_proba``. Labels and probability columns are aligned as the comparison
    aligns them (``compare.aligned_scores``); a label the model never saw has ``p_true = 0``.
    Rows with a non-finite probability give NaN.
    """
    import numpy as np

    from include.retrainer import compare, training

    y = frame[spec.features.target].to_numpy()
    pred, proba = training.predict(model, frame, spec)
    yt, preds, probas, labels = compare.aligned_scores(
        y, {"m": pred}, {"m": proba}, {"m": list(getattr(model, "classes_", []))}
    )
    aligned = probas["m"]
    if aligned is None:
        return (np.asarray(preds["m"]) != yt).astype(float), "error_rate"
    p = np.asarray(aligned, dtype=float)
    index = {v: j for j, v in enumerate(labels.tolist())}
    cols = np.array([index[v] for v in yt.tolist()])
    p_true = p[np.arange(len(yt)), cols]
    return 2.0 * ((p**2).sum(axis=1) - p_true), "excess_brier"


def _cuts(counts: Any, end: int, min_rows: int) -> Any:
    """Cut positions c (days[:c] before, days[c:] after) with >= MIN_DAYS_BEFORE days before and
    >= ``min_rows`` rows on days c .. end - 1 (those before the held-out days)."""
    import numpy as np

    upto = np.concatenate([[0], np.cumsum(counts)])  # rows before position i
    c = np.arange(MIN_DAYS_BEFORE, end)
    return c[(upto[end] - upto[c]) >= min_rows] if len(c) else c


def _max_t(sums: Any, sumsq: Any, counts: Any, cuts: Any) -> tuple[float, int]:
    """Largest pooled-variance t of mean(after) - mean(before) over the cut positions, and its cut."""
    import numpy as np

    cs, cq, cn = np.cumsum(sums), np.cumsum(sumsq), np.cumsum(counts)
    total_s, total_q, total_n = cs[-1], cq[-1], cn[-1]
    nb = cn[cuts - 1]
    na = total_n - nb
    sb, sa = cs[cuts - 1], total_s - cs[cuts - 1]
    mb, ma = sb / nb, sa / na
    ssw = (total_q - sb * mb - sa * ma).clip(min=0.0)  # within-segment sum of squares
    var = ssw / np.maximum(total_n - 2, 1)
    se = np.sqrt(var * (1.0 / nb + 1.0 / na))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, (ma - mb) / se, np.where(ma > mb, np.inf, 0.0))
    k = int(np.argmax(t))
    return float(t[k]), int(cuts[k])


def locate_change(
    spec: ModelSpec, model: Any, after_day: str | None, window: Any, holdout_from: str | None
) -> RegimeChange:
    """The first day of a new regime of the champion's errors in ``window``, if there is one.

    ``model``: the champion's fitted pipeline; ``after_day``: the first day of rows it was not
    fitted on (ISO date; earlier rows are left out);
    ``holdout_from``: the first held-out day of the window (as ``loop.select_holdout`` chose it,
    widening included; a candidate must leave ``min_train_rows`` rows before it); ``window``: the training window's rows with the partition column.
    """
    import numpy as np

    t = spec.training
    alpha = spec.drift.alpha
    if window is None or len(window) == 0:
        return RegimeChange(False, "no rows in the window")
    days_all = window[PARTITION_COLUMN].astype(str)
    rows = window[days_all >= after_day] if after_day else window
    day = rows[PARTITION_COLUMN].astype(str).to_numpy()
    n_days = len(np.unique(day)) if len(day) else 0
    if n_days < MIN_DAYS_BEFORE + 1 or len(rows) < t.min_train_rows + 2:
        return RegimeChange(
            False,
            f"{len(rows)} row(s) on {n_days} day(s) since the champion's training window; a new regime "
            f"needs >= {MIN_DAYS_BEFORE} days before it and training.min_train_rows={t.min_train_rows} rows "
            "since it before the held-out days",
            days=n_days,
        )
    try:
        loss, loss_name = excess_loss(model, rows, spec)
    except Exception as exc:  # an unscorable window never blocks training: the whole window is used
        return RegimeChange(False, f"the champion could not score the window: {exc}")
    finite = np.isfinite(loss)
    dropped = int((~finite).sum())
    day, loss = day[finite], loss[finite]
    order = np.argsort(day, kind="stable")
    day, loss = day[order], loss[order]
    days, starts, counts = np.unique(day, return_index=True, return_counts=True)
    centred = loss - loss.mean() if len(loss) else loss  # t is shift-invariant; sums of squares stay exact
    sums = np.add.reduceat(centred, starts) if len(loss) else np.zeros(0)
    sumsq = np.add.reduceat(centred**2, starts) if len(loss) else np.zeros(0)
    # A cut at position c: days[:c] before, days[c:] after (the new regime's first day is days[c]).
    # The held-out days count as evidence (they are rows of the new regime too), but the rows a
    # model since the cut would train on are those before them.
    end = int(np.searchsorted(days, holdout_from)) if holdout_from else len(days)
    cuts = _cuts(counts, end, t.min_train_rows)
    dropped_note = f"; {dropped} row(s) without a finite score left out" if dropped else ""
    if len(cuts) == 0:
        return RegimeChange(
            False,
            f"no day boundary leaves training.min_train_rows={t.min_train_rows} rows before the held-out days "
            f"with >= {MIN_DAYS_BEFORE} days before it ({len(day)} rows on {len(days)} day(s)){dropped_note}",
            days=int(len(days)),
            dropped_rows=dropped,
            loss=loss_name,
        )
    stat, cut = _max_t(sums, sumsq, counts, cuts)
    # Null: the days are exchangeable. Permute whole days (sizes move with them; the held-out
    # days are permuted too, as evidence) and take the same statistic over the cuts eligible for
    # that order: the max handles the choice among candidates.
    B = spec.drift.null_resamples
    rng = np.random.default_rng(spec.drift.seed)
    exceed = 0
    for _ in range(B):
        perm = rng.permutation(len(days))
        cuts_b = _cuts(counts[perm], end, t.min_train_rows)
        if len(cuts_b):
            s_b, _ = _max_t(sums[perm], sumsq[perm], counts[perm], cuts_b)
            exceed += s_b >= stat - 1e-12
    p = (exceed + 1) / (B + 1)
    found = bool(p < alpha)
    s = int(starts[cut])
    before, after = float(loss[:s].mean()), float(loss[s:].mean())
    label = "excess loss" if loss_name == "excess_brier" else "error rate"
    held = int(len(day) - (int(starts[end]) if end < len(days) else len(day)))
    since = f"{len(day) - s} rows since, {held} of them held out" if held else f"{len(day) - s} rows since"
    reason = (
        f"{'changed' if found else 'no change'}: the champion's {label} {before:+.3f} ({s} rows before "
        f"{days[cut]}) -> {after:+.3f} ({since}), t={stat:.2f}, p={p:.3g} "
        f"{'<' if found else '>='} {alpha} (max over {len(cuts)} day boundaries, {B} permutations of "
        f"{len(days)} days){dropped_note}"
    )
    return RegimeChange(
        found=found,
        reason=reason,
        day=str(days[cut]) if found else None,
        statistic=round(stat, 4) if math.isfinite(stat) else None,
        p_value=float(p),
        alpha=alpha,
        candidates=int(len(cuts)),
        permutations=B,
        before_mean=round(before, 5),
        after_mean=round(after, 5),
        rows_before=s,
        rows_after=int(len(day) - s),
        days=int(len(days)),
        dropped_rows=dropped,
        loss=loss_name,
    )
