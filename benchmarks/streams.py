"""Seeded synthetic weekly streams with KNOWN change points, for the policy replay.

Every stream draws rows from one generative model whose parameters move over time in a
documented way, so the benchmark knows when the world changed and what the change costs.

Features (same for every stream; unequal importance on purpose, so that drift in an
unimportant feature is benign):

* numeric ``x0``..``x7``: ``x0``, ``x1``, ``x2`` drive the label strongly, ``x3`` (correlated
  with ``x0``) and ``x4`` weakly, ``x5``, ``x6``, ``x7`` not at all (except in the
  multi-class stream once the new class appears, where ``x5`` defines it);
* categorical ``c0`` (4 levels, strong), ``c1`` (3 levels, weak), ``c2`` (5 levels, noise;
  defines the new class in the multi-class stream).

Concepts. Binary streams use ``logit = (1 - lam) * h_A(x) + lam * h_B(x)``: ``h_B`` flips the
sign of the ``x1`` effect, moves and flips the ``x2`` step and permutes the ``c0`` effects.
``lam`` (0..1) is the concept coordinate of the day; a covariate shift moves feature means
(in standard deviations) and category probabilities without touching ``h``, so P(y|x)
stays fixed. A reversal negates the logit (the label's meaning flips, as when its definition
is swapped upstream). The multi-class stream is a softmax over four classes of which ``fraud``
exists only from its change day on.

Each change records ``oracle_cost``: on a large sample from the post-change regime, the
primary metric (ROC AUC; macro one-vs-rest for multi-class) of the Bayes scorer of the
new regime minus that of the Bayes scorer of the regime just before the change. It is the
cost to an ideal model that is never retrained, independent of any learner (0 for a pure
covariate shift, by construction). The replay measures the cost to the real learner too.

Rows: each week's row count is spread over its 7 days with a weekday profile (fewer on
weekends); each day has its own generator derived from ``(seed, stream name, day)``, so a
stream is bit-identical on every run. Weeks run Sunday 00:00 to Sunday 00:00 UTC, the
``@weekly`` data interval of the DAG. Numpy and pandas only.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from include.retrainer.config import PARTITION_COLUMN

__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "TARGET",
    "TIMESTAMP",
    "ChangePoint",
    "Regime",
    "Stream",
    "StreamDesign",
    "auc_ovr_macro",
    "make_spec",
    "make_stream",
    "make_streams",
    "stream_designs",
]

NUMERIC: list[str] = [f"x{i}" for i in range(8)]
CATEGORICAL: list[str] = ["c0", "c1", "c2"]
TARGET = "y"
TIMESTAMP = "event_ts"

_C0 = np.array(["a", "b", "c", "d"], dtype=object)
_C0_P = np.array([0.4, 0.3, 0.2, 0.1])
_C1 = np.array(["u", "v", "w"], dtype=object)
_C1_P = np.array([0.5, 0.3, 0.2])
_C2 = np.array(["p", "q", "r", "s", "t"], dtype=object)
_C2_P = np.full(5, 0.2)
# c0 effects under concept A and B (B permutes them: the strong level changes sides).
_EA0 = np.array([0.0, 0.6, -0.5, 1.0])
_EB0 = np.array([0.8, -0.4, 0.6, -0.3])
_E1 = np.array([0.0, 0.2, -0.2])
MULTI_CLASSES: tuple[str, ...] = ("fraud", "high", "low", "mid")  # sorted, as sklearn's classes_

#: Weekday profile Sunday..Saturday: fewer rows at weekends, as in most business streams.
_WEEKDAY_WEIGHTS = np.array([0.7, 1.1, 1.1, 1.1, 1.1, 1.0, 0.8])
#: Weeks start on a Sunday (the @weekly data interval starts Sunday 00:00 UTC).
DEFAULT_START = dt.date(2025, 1, 5)
_MICROS_PER_DAY = 86_400 * 1_000_000
#: Rows of the post-change regime used to compute a change's oracle cost.
_ORACLE_ROWS = 60_000


@dataclass(frozen=True)
class Regime:
    """Generative parameters of one day."""

    concept: float = 0.0  # lam in [0, 1]: 0 = concept A, 1 = concept B
    mean_shift: tuple[float, ...] = (0.0,) * 8  # per numeric feature, in standard deviations
    c0_p: tuple[float, ...] = tuple(_C0_P)
    c2_p: tuple[float, ...] = tuple(_C2_P)
    new_class: bool = False  # multi-class stream: the class 'fraud' exists
    reversed: bool = False  # binary stream: the label's relation to the inputs is reversed


@dataclass(frozen=True)
class ChangePoint:
    """A known change: ``week`` is the first (0-based) week holding changed rows."""

    week: int
    day: str  # ISO date of the first changed day
    kind: str  # sudden | gradual | recurring | covariate | concept | new_class | straddle | reversal
    description: str
    ramp_weeks: int  # 0 for a sudden change; the ramp length of a gradual one
    oracle_cost: float  # see the module docstring

    def to_dict(self) -> dict:
        return {
            "week": self.week,
            "day": self.day,
            "kind": self.kind,
            "description": self.description,
            "ramp_weeks": self.ramp_weeks,
            "oracle_cost": round(self.oracle_cost, 4),
        }


@dataclass(frozen=True)
class _ChangeDef:
    day: int  # day index of the first changed day
    kind: str
    description: str
    ramp_days: int = 0


@dataclass(frozen=True)
class StreamDesign:
    """How to draw one stream: sizes, the regime of each day and the documented changes."""

    name: str
    description: str
    weeks: int
    rows_per_week: int
    multiclass: bool
    regime: Callable[[int], Regime]
    changes: tuple[_ChangeDef, ...] = ()
    seed: int = 20260101
    start: dt.date = DEFAULT_START


@dataclass(frozen=True)
class TrainedWeeks:
    """Week models trained on a stream, keyed by week as ``replay.ModelBank`` keeps them."""

    models: dict
    window_weeks: dict
    #: ``replay.training_key`` of the spec they were trained under.
    training_key: str
    fit_seconds: float
    builds: int


@dataclass(frozen=True)
class Stream:
    """A generated stream: one DataFrame per week plus what the benchmark needs to know."""

    name: str
    description: str
    start: dt.date
    frames: tuple[pd.DataFrame, ...]
    changes: tuple[ChangePoint, ...]
    spec: dict
    classes: tuple
    rows_per_week: int
    multiclass: bool = False
    _all: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    #: Where the model YAML came from (a user's file; None for a generated stream).
    spec_path: str | None = None
    #: First day of each week, when weeks are not consecutive (a user's data with weeks
    #: that hold no rows, which the replay skips); None = consecutive weeks from ``start``.
    week_starts: tuple[dt.date, ...] | None = None
    #: Week models already trained on this stream (by the staleness measurement of a user's
    #: file), reused by the replay while the spec's training-relevant part is unchanged.
    trained: TrainedWeeks | None = field(default=None, repr=False, compare=False)

    @property
    def weeks(self) -> int:
        return len(self.frames)

    def week_start(self, week: int) -> dt.date:
        """First day (a Sunday) of week ``week``'s data interval."""
        if self.week_starts is not None:
            return self.week_starts[week]
        return self.start + dt.timedelta(weeks=week)

    def interval_end(self, week: int) -> dt.datetime:
        """End of week ``week``'s data interval (Sunday 00:00 UTC after it)."""
        day = self.week_start(week) + dt.timedelta(weeks=1)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)

    def window(self, week: int, window_weeks: int) -> pd.DataFrame:
        """Rows of the ``window_weeks`` weeks ending with ``week`` (as the DAG reads partitions).

        At the start of a stream fewer weeks exist; the window holds what exists. With
        ``week_starts`` (weeks with no rows skipped) the window is still calendar weeks.
        """
        if self.week_starts is not None:
            since = self.week_start(week) - dt.timedelta(weeks=window_weeks - 1)
            keep = [i for i in range(week + 1) if self.week_starts[i] >= since]
            return pd.concat([self.frames[i] for i in keep], ignore_index=True)
        first = max(0, week - window_weeks + 1)
        return pd.concat(self.frames[first : week + 1], ignore_index=True)


# ------------------------------------------------------------------------------- helpers
def _rngs(seed: int, name: str, day: int, n: int, purpose: int = 0) -> list[np.random.Generator]:
    """Independent generators derived only from (seed, stream name, purpose, day)."""
    ss = np.random.SeedSequence([seed, zlib.crc32(name.encode()), purpose, day])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


def _draw_features(rng: np.random.Generator, regime: Regime, rows: int) -> dict[str, np.ndarray]:
    z = rng.standard_normal((rows, 8)) + np.asarray(regime.mean_shift)[None, :]
    x = {f"x{i}": z[:, i] for i in range(8)}
    # x3 shares information with x0 (importance is split between correlated features).
    x["x3"] = 0.6 * z[:, 0] + 0.8 * z[:, 3]
    x["c0"] = rng.choice(4, size=rows, p=np.asarray(regime.c0_p))
    x["c1"] = rng.choice(3, size=rows, p=_C1_P)
    x["c2"] = rng.choice(5, size=rows, p=np.asarray(regime.c2_p))
    return x


def _binary_logit(x: dict[str, np.ndarray], lam: float, reversed: bool = False) -> np.ndarray:
    common = 1.1 * x["x0"] + 0.5 * x["x0"] * x["x1"] + 0.35 * x["x3"] + 0.25 * x["x4"] + _E1[x["c1"]] - 0.3
    h_a = -0.8 * x["x1"] + 0.9 * np.tanh(1.5 * x["x2"]) + _EA0[x["c0"]]
    h_b = 0.8 * x["x1"] - 0.9 * np.tanh(1.5 * (x["x2"] - 0.5)) + _EB0[x["c0"]]
    logit = common + (1.0 - lam) * h_a + lam * h_b
    return -logit if reversed else logit


def _multi_proba(x: dict[str, np.ndarray], new_class: bool) -> np.ndarray:
    """Class probabilities in MULTI_CLASSES order (fraud, high, low, mid)."""
    sev = 1.0 * x["x0"] - 0.6 * x["x1"] + 0.8 * np.tanh(1.5 * x["x2"]) + _EA0[x["c0"]] + 0.2 * x["x3"]
    s_low = np.zeros_like(sev)
    s_mid = 0.2 + sev
    s_high = -1.4 + 2.0 * sev
    if new_class:
        s_fraud = -3.4 + 2.6 * (x["x5"] > 0.8) + 1.6 * (x["c2"] == 4) + 0.6 * x["x4"]
    else:
        s_fraud = np.full_like(sev, -np.inf)
    s = np.column_stack([s_fraud, s_high, s_low, s_mid])
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def _labels(rng: np.random.Generator, x: dict[str, np.ndarray], regime: Regime, multiclass: bool) -> np.ndarray:
    if multiclass:
        p = _multi_proba(x, regime.new_class)
        u = rng.random(p.shape[0])[:, None]
        idx = (u > np.cumsum(p, axis=1)).sum(axis=1)
        return np.asarray(MULTI_CLASSES, dtype=object)[np.minimum(idx, len(MULTI_CLASSES) - 1)]
    p = 1.0 / (1.0 + np.exp(-_binary_logit(x, regime.concept, regime.reversed)))
    return (rng.random(p.shape[0]) < p).astype(np.int64)


def _midranks(v: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse]


def auc_ovr_macro(y: np.ndarray, scores: np.ndarray, classes: tuple) -> float:
    """ROC AUC (Mann-Whitney with midranks); multi-class: macro one-vs-rest over classes in y.

    ``scores`` is 1-D (binary: score of the positive class ``classes[-1]``) or has one
    column per entry of ``classes``.
    """
    y = np.asarray(y)
    if scores.ndim == 1:
        cols = {classes[-1]: scores}
    else:
        cols = {c: scores[:, j] for j, c in enumerate(classes)}
    aucs = []
    for c, s in cols.items():
        pos = y == c
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        r = _midranks(np.asarray(s, dtype=float))
        aucs.append((r[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
    if not aucs:
        raise ValueError("AUC undefined: y holds a single class")
    return float(np.mean(aucs))


def _oracle_cost(design: StreamDesign, change: _ChangeDef) -> float:
    """Bayes AUC of the post-change regime minus that of the pre-change scorer, on post data."""
    before = design.regime(change.day - 1)
    after_day = change.day + change.ramp_days
    after = design.regime(after_day)
    (rng,) = _rngs(design.seed, design.name, after_day, 1, purpose=2)
    x = _draw_features(rng, after, _ORACLE_ROWS)
    y = _labels(rng, x, after, design.multiclass)
    if design.multiclass:
        return auc_ovr_macro(y, _multi_proba(x, after.new_class), MULTI_CLASSES) - auc_ovr_macro(
            y, _multi_proba(x, before.new_class), MULTI_CLASSES
        )
    classes = (0, 1)
    return auc_ovr_macro(y, _binary_logit(x, after.concept, after.reversed), classes) - auc_ovr_macro(
        y, _binary_logit(x, before.concept, before.reversed), classes
    )


def _day_frame(design: StreamDesign, day_index: int, rows: int) -> pd.DataFrame:
    regime = design.regime(day_index)
    feat_rng, label_rng, ts_rng = _rngs(design.seed, design.name, day_index, 3)
    x = _draw_features(feat_rng, regime, rows)
    y = _labels(label_rng, x, regime, design.multiclass)
    day = design.start + dt.timedelta(days=day_index)
    data: dict[str, object] = {c: np.round(x[c], 4) for c in NUMERIC}
    data["c0"] = pd.array(_C0[x["c0"]], dtype="str")
    data["c1"] = pd.array(_C1[x["c1"]], dtype="str")
    data["c2"] = pd.array(_C2[x["c2"]], dtype="str")
    data[TARGET] = pd.array(y, dtype="str") if design.multiclass else y
    micros = np.sort(ts_rng.integers(0, _MICROS_PER_DAY, size=rows, dtype=np.int64))
    midnight = pd.Timestamp(day.isoformat(), tz="UTC").as_unit("us")
    data[TIMESTAMP] = (midnight + pd.to_timedelta(micros, unit="us")).astype("datetime64[us, UTC]")
    data[PARTITION_COLUMN] = pd.array([day.isoformat()] * rows, dtype="str")
    return pd.DataFrame(data)


def _week_rows(design: StreamDesign, week: int) -> np.ndarray:
    (rng,) = _rngs(design.seed, design.name, week, 1, purpose=1)
    return rng.multinomial(design.rows_per_week, _WEEKDAY_WEIGHTS / _WEEKDAY_WEIGHTS.sum())


def make_spec(name: str) -> dict:
    """The model YAML (as a dict) for a benchmark stream, using the product's defaults.

    Only what a user must state is set: columns, the estimator's size (modest, so the
    benchmark stays fast), the 4-week window with a 2-day holdout and the primary metric.
    Drift, gate and comparison settings are the schema defaults, i.e. what "ours" ships.
    """
    return {
        "name": f"bench_{name}",
        "description": f"policy replay benchmark stream '{name}'",
        "data": {"bucket": "bench-data", "prefix": f"bench/{name}"},
        "features": {
            "target": TARGET,
            "numeric": list(NUMERIC),
            "categorical": list(CATEGORICAL),
            "timestamp": TIMESTAMP,
        },
        "training": {
            "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
            "params": {"max_iter": 60, "learning_rate": 0.1, "random_state": 0},
            "window_weeks": 4,
            "holdout_days": 2,
        },
        "comparison": {"primary_metric": "roc_auc"},
    }


def make_stream(design: StreamDesign) -> Stream:
    frames = []
    for week in range(design.weeks):
        counts = _week_rows(design, week)
        days = [_day_frame(design, week * 7 + d, int(n)) for d, n in enumerate(counts) if n > 0]
        frames.append(pd.concat(days, ignore_index=True))
    changes = []
    for c in design.changes:
        changes.append(
            ChangePoint(
                week=c.day // 7,
                day=(design.start + dt.timedelta(days=c.day)).isoformat(),
                kind=c.kind,
                description=c.description,
                ramp_weeks=c.ramp_days // 7,
                oracle_cost=_oracle_cost(design, c),
            )
        )
    classes = MULTI_CLASSES if design.multiclass else (0, 1)
    return Stream(
        name=design.name,
        description=design.description,
        start=design.start,
        frames=tuple(frames),
        changes=tuple(changes),
        spec=make_spec(design.name),
        classes=classes,
        rows_per_week=design.rows_per_week,
        multiclass=design.multiclass,
    )


# ------------------------------------------------------------------------------- designs
def _shift(**by_feature: float) -> tuple[float, ...]:
    return tuple(float(by_feature.get(f"x{i}", 0.0)) for i in range(8))


def stream_designs(quick: bool = False) -> list[StreamDesign]:
    """The benchmark's streams. ``quick`` keeps fewer, shorter, smaller ones (same mechanics)."""
    w = 7

    def sudden(d: int) -> Regime:
        post = d >= 10 * w
        return Regime(concept=0.45 if post else 0.0, mean_shift=_shift(x0=0.5, x5=1.0) if post else _shift())

    def gradual(d: int) -> Regime:
        lam = 0.5 * float(np.clip((d - 10 * w) / (6 * w), 0.0, 1.0))
        return Regime(concept=lam)

    def seasonal(d: int) -> Regime:
        # Concept alternates every 8 weeks (A, B, A, B ...); x0's mean follows a smooth
        # 16-week cycle (temperature-like) that does not change P(y|x).
        season_b = (d // (8 * w)) % 2 == 1
        return Regime(concept=0.4 if season_b else 0.0, mean_shift=_shift(x0=0.5 * np.sin(2 * np.pi * d / (16 * w))))

    def covariate(d: int) -> Regime:
        if d < 10 * w:
            return Regime()
        return Regime(
            mean_shift=_shift(x0=0.7, x1=-0.5, x5=1.5, x6=1.5, x7=-1.5),
            c2_p=(0.05, 0.05, 0.1, 0.3, 0.5),
        )

    def concept(d: int) -> Regime:
        # A small change (hard to see, cheap) then a large one; inputs never move.
        return Regime(concept=0.0 if d < 8 * w else 0.25 if d < 16 * w else 0.65)

    def stationary(d: int) -> Regime:
        return Regime()

    def small(d: int) -> Regime:
        return Regime(concept=0.6 if d >= 14 * w else 0.0, mean_shift=_shift(x1=0.4) if d >= 14 * w else _shift())

    def multiclass(d: int) -> Regime:
        return Regime(new_class=d >= 10 * w)

    def straddle(d: int) -> Regime:
        # Wednesday of week 12: the 4-week windows ending in weeks 12-15 straddle it.
        return Regime(concept=0.35 if d >= 12 * w + 3 else 0.0)

    def reversal(d: int) -> Regime:
        # The label's meaning flips (e.g. its definition was swapped upstream): a model trained
        # before scores below 0.5 after, and one trained across the change is poor at first.
        return Regime(reversed=d >= 10 * w + 4)

    def shifted(regime: Callable[[int], Regime], weeks: int) -> Callable[[int], Regime]:
        return lambda d: regime(d + weeks * w)

    if quick:
        # Same mechanics, changes at week 6 of 12 (the full streams' regimes shifted in time).
        return [
            StreamDesign(
                "sudden",
                "sudden concept + covariate change at week 6",
                12,
                1000,
                False,
                shifted(sudden, 4),
                (_ChangeDef(6 * w, "sudden", "lam 0 -> 0.45 and x0 +0.5 sd, x5 +1 sd"),),
            ),
            StreamDesign(
                "covariate_only",
                "inputs move at week 6, P(y|x) fixed",
                12,
                1000,
                False,
                shifted(covariate, 4),
                (_ChangeDef(6 * w, "covariate", "x0 +0.7, x1 -0.5, x5/x6 +1.5, x7 -1.5 sd; c2 tilted"),),
            ),
            StreamDesign(
                "small",
                "~150 rows a week, sudden change at week 6",
                12,
                150,
                False,
                shifted(small, 8),
                (_ChangeDef(6 * w, "sudden", "lam 0 -> 0.6 and x1 +0.4 sd"),),
            ),
            StreamDesign(
                "multiclass",
                "3 classes, a 4th ('fraud') appears at week 6",
                12,
                1000,
                True,
                shifted(multiclass, 4),
                (_ChangeDef(6 * w, "new_class", "class 'fraud' appears (x5 > 0.8, c2 = t)"),),
            ),
        ]
    return [
        StreamDesign("no_drift", "stationary: nothing changes", 24, 800, False, stationary),
        StreamDesign(
            "sudden",
            "sudden concept + covariate change at week 10",
            24,
            1500,
            False,
            sudden,
            (_ChangeDef(10 * w, "sudden", "lam 0 -> 0.45 and x0 +0.5 sd, x5 +1 sd"),),
        ),
        StreamDesign(
            "gradual",
            "concept drifts linearly from week 10 to week 16",
            26,
            1200,
            False,
            gradual,
            (_ChangeDef(10 * w, "gradual", "lam 0 -> 0.5 over 6 weeks", ramp_days=6 * w),),
        ),
        StreamDesign(
            "seasonal",
            "concept alternates every 8 weeks; x0 follows a 16-week cycle",
            28,
            800,
            False,
            seasonal,
            tuple(
                _ChangeDef(k * 8 * w, "recurring", f"season {'AB'[k % 2]} (lam {0.4 * (k % 2):.1f})") for k in (1, 2, 3)
            ),
        ),
        StreamDesign(
            "covariate_only",
            "inputs move at week 10, P(y|x) fixed",
            24,
            1500,
            False,
            covariate,
            (_ChangeDef(10 * w, "covariate", "x0 +0.7, x1 -0.5, x5/x6 +1.5, x7 -1.5 sd; c2 tilted"),),
        ),
        StreamDesign(
            "concept_only",
            "inputs fixed; small concept change at week 8, large at week 16",
            26,
            1000,
            False,
            concept,
            (_ChangeDef(8 * w, "concept", "lam 0 -> 0.25"), _ChangeDef(16 * w, "concept", "lam 0.25 -> 0.65")),
        ),
        StreamDesign(
            "small",
            "~150 rows a week, sudden change at week 14",
            28,
            150,
            False,
            small,
            (_ChangeDef(14 * w, "sudden", "lam 0 -> 0.6 and x1 +0.4 sd"),),
        ),
        StreamDesign(
            "multiclass",
            "3 classes, a 4th ('fraud') appears at week 10",
            24,
            2000,
            True,
            multiclass,
            (_ChangeDef(10 * w, "new_class", "class 'fraud' appears (x5 > 0.8, c2 = t)"),),
        ),
        StreamDesign(
            "straddle",
            "5,000 rows a week; concept change on the Wednesday of week 12",
            22,
            5000,
            False,
            straddle,
            (_ChangeDef(12 * w + 3, "straddle", "lam 0 -> 0.35 mid-week"),),
        ),
        StreamDesign(
            "reversal",
            "the label's relation to the inputs reverses on the Thursday of week 10",
            22,
            1000,
            False,
            reversal,
            (_ChangeDef(10 * w + 4, "reversal", "P(y|x) -> P(1-y|x) from Thursday: the old model scores below 0.5"),),
        ),
    ]


def make_streams(quick: bool = False) -> list[Stream]:
    return [make_stream(d) for d in stream_designs(quick)]
