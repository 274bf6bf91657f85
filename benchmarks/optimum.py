"""Cost of a retraining policy and the retrospective optimum, by dynamic programming.

Quality matrix. ``q[s, t]`` is the primary metric, on the rows of week ``t``, of the model
trained at the end of week ``s`` (on the window ending there); defined for ``s < t`` and
NaN otherwise or when no model could be trained at ``s``. Every week's model is trained
once and scored on every later week.

Serving path. After the shared first model (trained at ``start``, the cold start) a policy
serves week ``t`` (``start < t < T``) with the model ``m[t]`` it holds after the decision of
week ``t - 1``; ``m[t] in {m[t-1], t-1}``.

Cost (in metric-weeks, lower is better)::

    cost = retrain_cost * retrains + sum_t (best[t] - q[m[t], t])
    best[t] = max_{s < t} q[s, t]

``best[t]`` is the best quality any model trainable up to that week would have had on it
(the upper envelope of the matrix's column, hindsight included); the second term is the
metric lost by serving something else. ``retrains`` counts trainings after the cold start
(the first model is paid by every policy alike, so it is left out); a retrain that is not
promoted still costs.

Optimum. The cheapest path, knowing the whole matrix in advance. A retrain that is not
promoted can only add cost, so the optimum is a set of switch weeks; the dynamic
programme's state is the week the serving model was trained:

    V[t][s] = min cost of weeks start+1..t with model s serving week t
    V[t+1][s] = V[t][s] + loss(s, t+1)                       (keep)
    V[t+1][t] = min_s V[t][s] + retrain_cost + loss(t, t+1)  (retrain at the end of week t)

O(T^2) time.

Periodic reference (``best_periodic``). What a blind schedule gets with one piece of
hindsight: retrain every ``k`` weeks and always promote, ``k`` the period whose mean cost over
its ``k`` phases (the week of the first retrain) is the lowest on this stream, never retraining
included as a candidate. Like an online rule, and unlike the optimum, it does not know which
weeks' models happen to fit well. It is a reference, not a bound: a rule that reacts to what
it measures (a retrain right after a change) can do better than any fixed period.

Design reference (``design_optimal_switches``, used by the seed spread). The retrain weeks
with the lowest total cost over OTHER random draws of the same stream (same changes, sizes
and training; other rows), applied to this draw and always promoted. It knows the stream's
design as well as those draws can show it, and nothing of this draw's own noise. Where even
it misses the regret target, the optimum's advantage on that draw comes mostly from that noise
(which weeks' models happened to fit the following weeks well), from models it does not
schedule (a policy's partial-window ones) or from the few draws it was fitted on. A rule that
measures sees some of that noise (a challenger's held-out score, a champion's served weeks), so
this too is a reference, not a bound. It schedules only models present on every other draw;
a week unscored on one of them costs nothing on that draw and still counts on the others.

Regret share of a policy = ``(cost - cost_opt) / (cost_never - cost_opt)``: 0 is
the optimum, 1 is no better than never retraining. When never retraining is itself optimal
the share is 0 for a policy at the optimum and infinite otherwise (``excess`` is reported too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COST_RATIOS",
    "OptimalPath",
    "PeriodicReference",
    "best_available",
    "best_periodic",
    "design_optimal_switches",
    "period_text",
    "optimal_path",
    "path_cost",
    "regret_share",
    "schedule_serving",
    "scored_weeks",
]

#: Retrain costs in metric-weeks (1 retrain = serving a model this much worse for one week).
#: 0.0025: compute is cheap and nobody reviews the retrain (optimum ~ retrain nearly every
#: time something better is available); 0.01: a typical automated retrain with a review of
#: its report; 0.04: an expensive one (large training job, sign-off), only changes costing a
#: few hundredths of the metric for several weeks are worth it. The spread of x16 covers the
#: regimes where the optimum goes from "retrain often" to "retrain only after real changes".
COST_RATIOS: tuple[float, ...] = (0.0025, 0.01, 0.04)


@dataclass(frozen=True)
class OptimalPath:
    cost: float
    retrains: int
    serving: tuple[int, ...]  # model week serving each week start+1..T-1
    switch_weeks: tuple[int, ...]  # weeks at whose end a model was trained and promoted


def _check(q: np.ndarray, start: int) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.ndim != 2 or q.shape[0] != q.shape[1]:
        raise ValueError(f"quality matrix must be square (T x T), got shape {q.shape}")
    if not 0 <= start < q.shape[0]:
        raise ValueError(f"start week {start} outside 0..{q.shape[0] - 1}")
    scored = scored_weeks(q)
    if not np.isfinite(q[start, start + 1 :][scored[start + 1 :]]).all():
        raise ValueError(f"the cold-start model (week {start}) must have a quality for every later week")
    return q


def scored_weeks(q: np.ndarray) -> np.ndarray:
    """Weeks on which some model has a quality (a week where the metric is undefined for every
    model, e.g. its rows hold a single class, costs nothing to anyone and is left out)."""
    q = np.asarray(q, dtype=float)
    T = q.shape[0]
    return np.array([t > 0 and bool(np.isfinite(q[:t, t]).any()) for t in range(T)], dtype=bool)


def _with_extra(
    q: np.ndarray, extra: np.ndarray | None, extra_weeks: Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Every model's quality row and its training week: the T regular ones, then ``extra``."""
    q = np.asarray(q, dtype=float)
    weeks = np.arange(q.shape[0])
    if extra is None or len(extra) == 0:
        return q, weeks
    extra = np.asarray(extra, dtype=float)
    if extra_weeks is None or len(extra_weeks) != len(extra):
        raise ValueError(f"extra has {len(extra)} row(s) but {0 if extra_weeks is None else len(extra_weeks)} week(s)")
    return np.vstack([q, extra]), np.concatenate([weeks, np.asarray(extra_weeks, dtype=int)])


def best_available(
    q: np.ndarray, extra: np.ndarray | None = None, extra_weeks: Sequence[int] | None = None
) -> np.ndarray:
    """``best[t] = max q[s, t]`` over models trained before week t (NaN when none exists).

    ``extra``/``extra_weeks``: further models (e.g. a policy's own, trained on part of a window)
    with the week each was trained at; they count like the regular ones.
    """
    Q, weeks = _with_extra(q, extra, extra_weeks)
    T = Q.shape[1]
    best = np.full(T, np.nan)
    for t in range(1, T):
        col = Q[weeks < t, t]
        if np.isfinite(col).any():
            best[t] = np.nanmax(col)
    return best


def path_cost(
    q: np.ndarray,
    start: int,
    serving: Sequence[int],
    retrains: int,
    retrain_cost: float,
    no_model: float | Sequence[float] = 0.5,
    extra: np.ndarray | None = None,
    extra_weeks: Sequence[int] | None = None,
) -> float:
    """Cost of serving ``serving[i]`` in week ``start + 1 + i``, plus the retrains.

    ``extra``: quality rows of further models (a policy's own, e.g. trained on part of a
    window; ``extra_weeks``: the week each was trained at), served as ``T + i``; they count
    in the best available week by week too.

    ``no_model``: the quality of a week served by no model (a policy that never got a first
    champion): a constant scorer's AUC, 0.5, by default; one value per week for other metrics.
    Weeks no model could be scored on (:func:`scored_weeks`) are left out.
    """
    q = _check(q, start)
    best = best_available(q, extra, extra_weeks if extra is not None else None)
    T = q.shape[0]
    if len(serving) != T - start - 1:
        raise ValueError(f"serving has {len(serving)} entries, expected {T - start - 1} (weeks {start + 1}..{T - 1})")
    lost = 0.0
    for i, s in enumerate(serving):
        t = start + 1 + i
        if not math.isfinite(best[t]):
            continue
        if s is None or s < 0:
            # No model served (policy never got a champion).
            value = float(no_model) if isinstance(no_model, int | float) else float(no_model[t])
        elif s >= T:
            if extra is None or s - T >= len(extra):
                raise ValueError(f"week {t} is served by model {s}, which has no quality row")
            value = float(extra[s - T, t])
            if not math.isfinite(value):
                raise ValueError(f"week {t} is served by model {s}, which has no quality (trained after it)")
        else:
            if not s < t:
                raise ValueError(f"week {t} is served by model {s}, which was trained after it")
            value = q[s, t]
            if not math.isfinite(value):
                raise ValueError(f"week {t} is served by model {s}, which has no quality (it was never trained)")
        lost += best[t] - value
    return float(retrain_cost * retrains + lost)


def optimal_path(
    q: np.ndarray,
    start: int,
    retrain_cost: float,
    extra: np.ndarray | None = None,
    extra_weeks: Sequence[int] | None = None,
) -> OptimalPath:
    """Retrospective optimum (see the module docstring).

    ``extra``/``extra_weeks``: further models trained at those weeks (e.g. a policy's own, on
    part of a window), indexed ``T + i`` in ``serving``: a retrain at week t may install any
    model trained at t, in hindsight the best for the weeks it then serves.
    """
    q = _check(q, start)
    if retrain_cost < 0:
        raise ValueError("retrain_cost must be >= 0")
    Q, weeks = _with_extra(q, extra, extra_weeks)
    best = best_available(q, extra, extra_weeks)
    T = q.shape[0]
    M = Q.shape[0]
    if start >= T - 1:
        return OptimalPath(0.0, 0, (), ())
    # A week no model could be scored on costs nothing; a model exists if it scored any week. A
    # model without a quality on a week some model scored cannot serve it (path_cost refuses it).
    with np.errstate(invalid="ignore"):
        lost = np.where(np.isfinite(best)[None, :], np.where(np.isfinite(Q), best[None, :] - Q, math.inf), 0.0)
    exists = np.array([bool(np.isfinite(Q[m, weeks[m] + 1 :]).any()) for m in range(M)], dtype=bool)
    INF = math.inf
    # V[m]: min cost so far with model m serving the current week; back[t][m] = model serving t-1.
    V = np.full(M, INF)
    n_retrains = np.zeros(M, dtype=int)
    back: list[dict[int, int]] = [dict() for _ in range(T)]
    t = start + 1
    V[start] = lost[start, t]
    for t in range(start + 1, T - 1):
        nxt = np.full(M, INF)
        nxt_r = np.zeros(M, dtype=int)
        for m in np.flatnonzero(V < INF):
            nxt[m] = V[m] + lost[m, t + 1]
            nxt_r[m] = n_retrains[m]
            back[t + 1][int(m)] = int(m)
        prev = int(np.argmin(V))
        for m in np.flatnonzero((weeks == t) & exists):
            nxt[m] = V[prev] + retrain_cost + lost[m, t + 1]
            nxt_r[m] = n_retrains[prev] + 1
            back[t + 1][int(m)] = prev
        V, n_retrains = nxt, nxt_r
    last = int(np.argmin(V))
    serving = [last]
    for t in range(T - 1, start + 1, -1):
        serving.append(back[t][serving[-1]])
    serving.reverse()
    switches = tuple(sorted({int(weeks[m]) for m in serving if m != start}))
    return OptimalPath(float(V[last]), int(n_retrains[last]), tuple(serving), switches)


@dataclass(frozen=True)
class PeriodicReference:
    period: int | None  # weeks between retrains, the best on this stream in hindsight; None: never
    cost: float  # mean over the period's phases
    phase_costs: tuple[float, ...]  # phase p: first retrain at the end of week start + 1 + p

    @property
    def label(self) -> str:
        return "never" if self.period is None else f"every {period_text(self.period)} wk"


def period_text(period: int | None) -> str:
    """A periodic reference's period as the reports print it: ``6`` or ``never``."""
    return "never" if period is None else str(period)


def periodic_serving(q: np.ndarray, start: int, period: int, phase: int) -> tuple[list[int], int]:
    """Serving path and retrains of "retrain every ``period`` weeks, always promote".

    Retrains at the end of weeks ``start + 1 + phase + i * period`` up to ``T - 2`` (a model
    trained at the last week would serve nothing); a week whose model could not be trained
    (no quality on any later week) is skipped and not counted.
    """
    q = _check(q, start)
    if period < 1 or not 0 <= phase < period:
        raise ValueError(f"need period >= 1 and 0 <= phase < period, got {period}, {phase}")
    return schedule_serving(q, start, range(start + 1 + phase, q.shape[0] - 1, period))


def best_periodic(
    q: np.ndarray,
    start: int,
    retrain_cost: float,
    no_model: float | Sequence[float] = 0.5,
    extra: np.ndarray | None = None,
    extra_weeks: Sequence[int] | None = None,
) -> PeriodicReference:
    """The periodic schedule whose period is best in hindsight (see the module docstring).

    Costs are :func:`path_cost`'s, against the same best available (``extra`` counted there,
    as for every policy); periods 1 .. the number of decision weeks, and never (``period``
    None) when no period costs less.
    """
    q = _check(q, start)
    T = q.shape[0]
    decisions = max(1, T - 2 - start)
    never = path_cost(q, start, [start] * (T - start - 1), 0, retrain_cost, no_model, extra, extra_weeks)
    best = PeriodicReference(None, never, (never,))
    for period in range(1, decisions + 1):
        costs = []
        for phase in range(period):
            serving, retrains = periodic_serving(q, start, period, phase)
            costs.append(path_cost(q, start, serving, retrains, retrain_cost, no_model, extra, extra_weeks))
        mean = float(np.mean(costs))
        if mean < best.cost - 1e-12:
            best = PeriodicReference(period, mean, tuple(costs))
    return best


def schedule_serving(q: np.ndarray, start: int, switch_weeks: Sequence[int]) -> tuple[list[int], int]:
    """Serving path and retrains of "retrain at the end of these weeks, always promote".

    A week whose model could not be trained on this matrix (no quality on any later week) is
    skipped and not counted; weeks at or before ``start`` and from ``T - 1`` on (a model
    trained then would serve nothing) are ignored.
    """
    q = _check(q, start)
    T = q.shape[0]
    switches = set(int(w) for w in switch_weeks)
    champion, serving, retrains = start, [], 0
    for t in range(start + 1, T):
        w = t - 1
        if w > start and w in switches and np.isfinite(q[w, t:]).any():
            champion, retrains = w, retrains + 1
        serving.append(champion)
    return serving, retrains


def design_optimal_switches(matrices: Sequence[np.ndarray], start: int, retrain_cost: float) -> tuple[int, ...]:
    """Retrain weeks with the lowest total cost over several quality matrices of one design.

    The matrices are other random draws of the same stream (the same weeks, changes, sizes and
    training; other rows). A schedule's total cost over them is ``n x retrain_cost x retrains``
    plus each draw's metric lost; a week's best available model differs per draw, but that is a
    constant of the week, not of the path, so among schedules of models present on every draw the
    cheapest is the retrospective optimum of the summed matrix at ``n x retrain_cost`` (regular
    models only: a policy's own partial ones are not part of the design). A model missing on one
    draw cannot be scheduled. A week no model could be scored on, on one draw, costs nothing on
    that draw (as in :func:`path_cost`) and still counts on the others.
    """
    if not matrices:
        raise ValueError("need at least one quality matrix")
    shapes = {np.asarray(m).shape for m in matrices}
    if len(shapes) != 1:
        raise ValueError(f"the matrices differ in shape: {sorted(shapes)}")
    # A model missing on any draw stays NaN in the sum (it cannot be scheduled).
    total = np.sum([_unscored_weeks_as_zero(m) for m in matrices], axis=0)
    return optimal_path(total, start, retrain_cost * len(matrices)).switch_weeks


def _unscored_weeks_as_zero(q: np.ndarray) -> np.ndarray:
    """``q`` with the weeks no model scored set to 0 for every model that exists.

    The same for every model that could serve such a week, so it adds the same to every path
    in a sum over draws: the week costs nothing on this draw, whatever the schedule.
    """
    q = np.array(q, dtype=float)
    T = q.shape[0]
    exists = np.array([bool(np.isfinite(q[s, s + 1 :]).any()) for s in range(T)], dtype=bool)
    for t in range(1, T):
        if not np.isfinite(q[:t, t]).any():
            q[:t, t][exists[:t]] = 0.0
    return q


def regret_share(cost: float, cost_opt: float, cost_never: float, tol: float = 1e-9) -> float:
    """``(cost - cost_opt) / (cost_never - cost_opt)``; see the module docstring for the 0/0 case."""
    excess = cost - cost_opt
    denom = cost_never - cost_opt
    if excess < -tol:
        raise ValueError(f"cost {cost:.6f} below the optimum {cost_opt:.6f}: the optimum is wrong")
    if denom <= tol:
        return 0.0 if excess <= tol else math.inf
    return max(0.0, excess) / denom
