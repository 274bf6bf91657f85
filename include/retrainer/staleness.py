"""How fast a model goes stale on a file's own history, measured when the model is added.

``max_champion_age_weeks`` (refresh an older champion even without drift) and, under rule
``cost``, ``staleness_rate`` (the cost-optimal refresh interval) both rest on how much a
champion falls behind a fresh model per week of age. The defaults assume 0.0025 of the
primary metric a week (0.01 behind after 4 weeks). Streams differ by an order of magnitude:
on a real file of bikeshare hours a model 4 weeks older trailed by 0.08 in spring
(``docs/real-data.md``), on others it trails by almost nothing. Learning the rate online from
a champion's own comparisons was tried and not kept (one promotion's lead on ~120 held-out
rows is mostly noise and the learning curve, ``docs/benchmarks.md``). At onboarding the whole
history is there: ``make add-model`` trains the model of every week as the DAG would and
scores it on the weeks after it, which measures the rate from many weeks at once.

The estimate, from ``quality[s][t]`` (the primary metric, higher is better, of the model
trained at the end of week ``s`` on week ``t``):

* for each week ``t``, the freshest model (``s = t - 1``) leads the model ``k`` weeks old
  (``s = t - k``) by ``d_k(t)``, for ``k = 2 .. max_age``: a paired difference on the same
  rows. Only models whose window is as long as the freshest one's and lies wholly inside the
  data count, so a model trained on less data (the start of the file: a learning curve, not
  staleness) never enters;
* per week, the slope through the origin of ``d_k(t)`` on ``k - 1`` (metric per week of age);
* the rate is the mean over weeks, with a Newey-West standard error (Bartlett kernel, lag
  ``max_age - 1``: neighbouring weeks share models, so their slopes are correlated);
* the rate used is the posterior mean of the rate given that mean and its standard error
  under a log-normal prior: mean 0.0025, log-sd 1 (rates an order of magnitude apart are
  both plausible a priori, as the real files show). The likelihood is Student's t with
  ``n - max_age`` degrees of freedom and the standard error inflated by ``sqrt(n / (n -
  max_age))`` (a Newey-West error from a few correlated weeks is biased low and itself
  noisy; on a long file both vanish). A precise measurement decides on its
  own, however far from 0.0025; a noisy one stays near the prior; a precise one at or below
  zero backs off to rates many times smaller (the age limit then reaches its longest). A
  file too short to measure keeps the prior: at least ``MIN_WEEKS`` weeks whose oldest
  model's window lies inside the data, i.e. about ``window + max_age + MIN_WEEKS - 1``
  weeks with rows (15 for a 4-week window);
* the refresh age is the number of weeks after which a champion is expected to be
  at most ``tolerance`` (0.01) behind a fresh model, ``floor(tolerance / rate)``, between 1 and
  ``longest_refresh_weeks`` (at the prior: 4 weeks, today's default). Under rule ``any`` (no
  retrain cost stated) this keeps a champion's expected lag behind a fresh model, averaged
  over its life, near ``tolerance / 2``: the 0.005 the policy benchmark holds served quality
  to. Rule ``cost`` prices the refresh with the rate instead (``config.GateSpec``).

Ages are calendar weeks (``measure_staleness`` lays weeks without rows out as gaps).

The measurement reads the same history the user then backfills, so a replay of that file
(``make replay``) judges it in-sample in this one respect; ``docs/real-data.md`` also reports
the real files replayed with the rate measured on their first half only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_STALENESS_RATE",
    "LONGEST_REFRESH_WEEKS",
    "TOLERANCE",
    "StalenessEstimate",
    "estimate_staleness",
    "newey_west_mean",
    "posterior_rate",
    "prior_only",
    "refresh_weeks_for",
]

#: The prior of ``drift.gate.staleness_rate`` (config.GateSpec's default).
DEFAULT_STALENESS_RATE = 0.0025
#: Fewest weeks whose slopes measure the rate; fewer keep the prior.
MIN_WEEKS = 8
#: Rule any refreshes a champion once it is expected to be this far behind a fresh model.
TOLERANCE = 0.01
#: Longest age limit the rate can set (weeks).
LONGEST_REFRESH_WEEKS = 12


@dataclass(frozen=True)
class StalenessEstimate:
    """What the file says about staleness: the rate the YAML states, and the age limit it sets."""

    #: Mean slope (metric per week of age), or None when the file could not measure it.
    measured: float | None
    #: Its Newey-West standard error.
    se: float | None
    #: Weeks whose slopes entered the mean.
    weeks: int
    #: Oldest model age compared with the freshest (weeks).
    max_age: int
    #: Mean lead of the freshest model over the one k weeks old, for k = 2 .. max_age.
    lead_by_age: tuple[tuple[int, float], ...]
    prior: float
    #: The rate the YAML states (``drift.gate.staleness_rate``): measured, shrunk to the prior.
    rate: float
    #: The age limit of rule any that follows from ``rate`` (``config.GateSpec.refresh_age_weeks``).
    refresh_weeks: int
    #: Why the prior was kept (None when measured).
    why_not: str | None = None

    def summary(self, metric: str) -> str:
        """One line for the user and the YAML comment."""
        if self.measured is None:
            return f"staleness not measured ({self.why_not}): the prior {self.prior:g} a week is kept"
        if self.measured <= 0.0:
            found = f"an older model did not fall behind a fresh one ({self.measured:+.4f} {metric} a week "
        else:
            found = f"a model falls {self.measured:+.4f} {metric} a week behind a fresh one ("
        return (
            f"on this file {found}+/- {self.se:.4f}, {self.weeks} weeks, ages 1-{self.max_age}); weighed with the "
            f"prior {self.prior:g}: {self.rate:.4f}"
        )


def newey_west_mean(values: Sequence[float], lags: int) -> tuple[float, float]:
    """Mean of ``values`` and its Newey-West (Bartlett kernel) standard error with ``lags`` lags.

    Equal to statsmodels' OLS on a constant with ``cov_type="HAC"`` and
    ``use_correction=False`` (tests/unit/test_staleness.py).
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        raise ValueError(f"a standard error needs at least 2 values, got {n}")
    m = float(x.mean())
    e = x - m
    s = float(e @ e) / n
    for lag in range(1, min(lags, n - 1) + 1):
        w = 1.0 - lag / (lags + 1.0)
        s += 2.0 * w * float(e[lag:] @ e[:-lag]) / n
    return m, math.sqrt(max(s, 0.0) / n)


def refresh_weeks_for(rate: float, tolerance: float = TOLERANCE, longest: int = LONGEST_REFRESH_WEEKS) -> int:
    """Whole weeks until a champion is expected to be ``tolerance`` behind a fresh model."""
    # The last whole week at which the expected lag is still within the tolerance (quality
    # first: rule any states no cost); 1e-9 so that 0.01 / 0.0025 is 4, not 3.999...
    return int(min(longest, max(1, math.floor(tolerance / rate + 1e-9))))


#: Log-sd of the prior on the rate (a factor e per sd).
PRIOR_LOG_SD = 1.0


def posterior_rate(measured: float, se: float, prior: float = DEFAULT_STALENESS_RATE, df: float | None = None) -> float:
    """Posterior mean of the rate: log-normal prior (mean ``prior``, log-sd ``PRIOR_LOG_SD``),
    likelihood of the measured mean with standard error ``se``: Student's t with ``df`` degrees
    of freedom (None: the normal), on a grid over log rate."""
    # Median below ``prior`` so that the prior's mean is ``prior``: a measurement that says
    # nothing returns the default rate, hence the default age limit.
    centre = math.log(prior) - PRIOR_LOG_SD**2 / 2
    log_r = np.linspace(centre - 6 * PRIOR_LOG_SD, centre + 6 * PRIOR_LOG_SD, 4001)
    r = np.exp(log_r)
    log_w = -0.5 * ((log_r - centre) / PRIOR_LOG_SD) ** 2
    if se > 0.0 and df is not None:
        log_w = log_w - (df + 1.0) / 2.0 * np.log1p(((measured - r) / se) ** 2 / df)
    elif se > 0.0:
        log_w = log_w - 0.5 * ((measured - r) / se) ** 2
    else:  # identical slopes every week: the measurement is exact (the grid's nearest rate)
        log_w = np.where(np.abs(r - measured) == np.abs(r - measured).min(), 0.0, -np.inf)
    w = np.exp(log_w - log_w.max())
    return float((w * r).sum() / w.sum())


def prior_only(why: str, prior: float = DEFAULT_STALENESS_RATE, max_age: int = 4) -> StalenessEstimate:
    """The estimate of a file that could not measure staleness: the prior, and why."""
    return StalenessEstimate(None, None, 0, max_age, (), prior, prior, refresh_weeks_for(prior), why)


def estimate_staleness(
    quality: np.ndarray,
    comparable: Sequence[Sequence[bool]] | np.ndarray,
    *,
    max_age: int = 4,
    prior: float = DEFAULT_STALENESS_RATE,
    tolerance: float = TOLERANCE,
    longest_refresh_weeks: int = LONGEST_REFRESH_WEEKS,
) -> StalenessEstimate:
    """The staleness rate of a file from its models' quality by age (module docstring).

    ``quality[s][t]``: the model trained at the end of week ``s`` scored on week ``t``
    (NaN when there is no model or the metric is undefined on the week). ``comparable[s][u]``:
    the model of week ``s`` may be compared with the fresher model of week ``u`` (trained on a
    window as long, inside the data).
    """
    if max_age < 2:
        raise ValueError(f"max_age must be at least 2 (the freshest model against an older one), got {max_age}")
    q = np.asarray(quality, dtype=float)
    ok = np.asarray(comparable, dtype=bool)
    T = q.shape[1]
    ages = range(2, max_age + 1)
    den = float(sum((k - 1) ** 2 for k in ages))
    slopes: list[float] = []
    leads: dict[int, list[float]] = {k: [] for k in ages}
    for t in range(max_age, T):
        fresh = t - 1
        d = {}
        for k in ages:
            old = t - k
            if ok[old, fresh] and np.isfinite(q[fresh, t]) and np.isfinite(q[old, t]):
                d[k] = float(q[fresh, t] - q[old, t])
        if len(d) < len(ages):  # every age, so each week's slope has the same design
            continue
        slopes.append(sum(d[k] * (k - 1) for k in ages) / den)
        for k in ages:
            leads[k].append(d[k])
    lead_by_age = tuple((k, float(np.mean(v))) for k, v in leads.items() if v)
    keep = refresh_weeks_for(prior, tolerance, longest_refresh_weeks)
    if len(slopes) < MIN_WEEKS:
        why = (
            f"{len(slopes)} week(s) where the freshest model and the ones up to {max_age} weeks older, "
            f"trained on as long a window, could all be scored; {MIN_WEEKS} needed"
        )
        return StalenessEstimate(None, None, len(slopes), max_age, lead_by_age, prior, prior, keep, why)
    mean, se = newey_west_mean(slopes, lags=max_age - 1)
    # A Newey-West error from a few correlated weeks is biased low and itself noisy: inflated by
    # n / (n - max_age) in variance and read on Student's t with n - max_age degrees of freedom
    # (n >= MIN_WEEKS > max_age). A long file's measurement is then as good as the normal's.
    n = len(slopes)
    dof = max(1, n - max_age)
    rate = posterior_rate(mean, se * math.sqrt(n / dof), prior, df=dof)
    return StalenessEstimate(
        measured=mean,
        se=se,
        weeks=len(slopes),
        max_age=max_age,
        lead_by_age=lead_by_age,
        prior=prior,
        rate=float(rate),
        refresh_weeks=refresh_weeks_for(rate, tolerance, longest_refresh_weeks),
    )
