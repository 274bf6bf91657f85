"""How many weeks of data a model should train on, measured on a file's own history when it is added.

``training.window_weeks`` trades two things a file decides, not the product: more weeks give
the model more rows (a learning curve), fewer weeks keep it closer to the present (staleness).
The default of 4 weeks is right for neither a small stationary file nor a fast-changing one:
on a real file of Minneapolis police stops (~800 labelled rows a week) models trained on 16
weeks scored +0.040 ROC AUC above 4-week ones on the week after (``docs/real-data.md``). At onboarding the whole history is there, so ``make add-model`` trains
the model of a week on each candidate window as the DAG would and scores it on the next week.

The choice, from the paired differences ``d_W(t)`` = the metric of the model trained on ``W``
weeks ending with week ``t - 1``, minus that of the default-window model of the same week, on
week ``t`` (the same rows; only weeks where both windows lie wholly inside the data):

* per candidate, the mean lead with a batch-means standard error: the ``n`` weeks in order are
  cut into ``k = n // b`` batches of ``b = max(2, floor(sqrt(n)))`` consecutive weeks (the
  earliest ``n - k b`` left out of the error, not of the mean), and the error is that of the
  mean of the batch means, read on Student's t with ``k - 1`` degrees of freedom. Neighbouring
  weeks' windows overlap, so their leads may be correlated; a Newey-West error from 10-30 such
  weeks was biased low (simulated with AR(1) leads, correlation 0.4: a change of window on no
  evidence in 15-22% of files against the 5% meant; batch means: 5-7%,
  ``tests/unit/test_window.py``). With a correlation of 0.7 batch means too run above (one
  candidate: 5-8% against 1.7%); on a stationary synthetic file the leads of neighbouring
  weeks were negatively correlated (-0.1 to -0.5), so that case is the pessimistic one;
* its one-sided lower confidence bound at ``alpha`` / (number of candidates) (Bonferroni:
  the best of several is chosen);
* the candidate with the highest lower bound is chosen if that bound is above 0; otherwise
  the default stays. A window is changed only on evidence that the change serves better;
  a candidate measured on fewer than ``MIN_WEEKS`` weeks is not judged.

Pure Python and numpy; the training and scoring are the caller's (``benchmarks/user_data.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CANDIDATE_WEEKS", "MIN_WEEKS", "WindowChoice", "WindowLead", "batch_means", "choose_window", "kept_default"]

#: Windows tried besides the default (weeks): half, twice and four times the default of 4.
CANDIDATE_WEEKS = (2, 8, 16)
#: Fewest paired weeks on which a candidate is judged.
MIN_WEEKS = 8
#: One-sided level of the lower bound (before the Bonferroni split over the candidates).
ALPHA = 0.05


@dataclass(frozen=True)
class WindowLead:
    """One candidate window against the default, on the weeks both could be compared."""

    weeks: int
    lead: float  # mean of the candidate's metric minus the default's, on the week after
    se: float  # batch-means standard error of that mean
    n: int  # paired weeks
    lower: float  # one-sided lower confidence bound of the lead (nan when not judged)


@dataclass(frozen=True)
class WindowChoice:
    """The window written to the YAML and the measurement behind it."""

    weeks: int
    default: int
    leads: tuple[WindowLead, ...] = ()
    why_default: str | None = None  # why the default stayed (None when a candidate won)

    @property
    def measured(self) -> bool:
        return bool(self.leads)

    def summary(self, metric: str = "roc_auc") -> str:
        """One sentence for the YAML comment and the console."""
        parts = [
            f"{lead.weeks} weeks {lead.lead:+.4f} +/- {lead.se:.4f} ({lead.n} weeks; lower bound {lead.lower:+.4f})"
            if math.isfinite(lead.lower)
            else f"{lead.weeks} weeks: {lead.n} paired weeks (< {MIN_WEEKS}), not judged"
            for lead in self.leads
        ]
        against = f"{metric} on the week after, against {self.default} weeks: " + "; ".join(parts) if parts else ""
        if self.weeks != self.default:
            return f"{self.weeks} weeks (the highest lower confidence bound of the lead, above 0: {against})"
        reason = self.why_default or "no candidate window scored significantly higher"
        return f"{self.default} weeks, the default ({reason}{': ' + against if against else ''})"


def kept_default(why: str, default: int = 4) -> WindowChoice:
    """The default window, unmeasured, with the reason (a short file, a failed measurement)."""
    return WindowChoice(weeks=default, default=default, why_default=why)


def batch_means(values: np.ndarray) -> tuple[float, float, int]:
    """(mean, its batch-means standard error, degrees of freedom) of ``values`` in their order."""
    n = len(values)
    size = max(2, math.floor(math.sqrt(n)))
    k = n // size
    if k < 2:
        raise ValueError(f"batch means need at least {2 * size} values, got {n}")
    batches = values[n - k * size :].reshape(k, size).mean(axis=1)
    return float(values.mean()), float(batches.std(ddof=1) / math.sqrt(k)), k - 1


def choose_window(
    diffs: Mapping[int, Sequence[float]],
    default: int = 4,
    *,
    alpha: float = ALPHA,
    min_weeks: int = MIN_WEEKS,
) -> WindowChoice:
    """The window to train on, from each candidate's paired leads over the default (module docstring).

    ``diffs[W]``: per compared week, the candidate ``W``'s metric minus the default window's
    (NaN entries, weeks a model could not be scored, are left out).
    """
    from scipy import stats  # here: onboarding imports this module for its types

    leads: list[WindowLead] = []
    judged = [w for w, d in diffs.items() if w != default and np.isfinite(np.asarray(d, float)).sum() >= min_weeks]
    level = alpha / max(1, len(judged))
    for w in sorted(diffs):
        if w == default:
            continue
        d = np.asarray(diffs[w], float)
        d = d[np.isfinite(d)]
        n = len(d)
        if n < min_weeks:
            leads.append(WindowLead(w, float(d.mean()) if n else math.nan, math.nan, n, math.nan))
            continue
        mean, se, df = batch_means(d)
        lower = mean - float(stats.t.ppf(1 - level, df)) * se
        leads.append(WindowLead(w, float(mean), float(se), n, float(lower)))
    if not judged:
        return WindowChoice(
            weeks=default,
            default=default,
            leads=tuple(leads),
            why_default=f"too few weeks to compare windows on (at least {min_weeks} with every window inside the data)",
        )
    best = max((lead for lead in leads if lead.n >= min_weeks), key=lambda lead: lead.lower)
    if best.lower > 0:
        return WindowChoice(weeks=best.weeks, default=default, leads=tuple(leads))
    return WindowChoice(weeks=default, default=default, leads=tuple(leads))
