"""Replay a stream one week at a time, deciding exactly as the DAG decides.

The DAG's steps call pure functions of ``include.retrainer.loop``; so does this replay:

* ``assess(spec, champion, batch, interval_end)`` - the gate on week ``t``'s rows;
* ``build_challenger(spec, window, interval_end)`` - train on the rows of the last
  ``training.window_weeks`` weeks ending at the interval end (as the DAG reads partitions);
  raises ``loop.InsufficientData``;
* ``judge(spec, champion, challenger)`` - promote or not.

Policies replayed on every stream:

* ``ours``: assess -> (if retrain) build_challenger -> judge -> promote if judged so, with the
  shipped defaults (no retrain cost stated: rule ``any``);
* ``ours@<ratio>``: the same with ``drift.gate.retrain_cost: <ratio>`` in the model YAML (a user
  who states what a retrain costs; the rule then defaults to ``cost``), one run per cost ratio;
* ``never``: the first model serves forever;
* ``always``: retrain every week and promote;
* ``always_if_better``: retrain every week, promote when the challenger's point estimate of
  the primary metric on the challenger's held-out rows beats the champion's on the same rows.

Cold start: every policy needs a first champion. Each tries ``build_challenger`` at the end
of weeks 0, 1, 2 ... on the window available so far and takes the first model it gets
(InsufficientData = wait a week with more data); "ours" goes through assess and judge with
no champion, as the DAG does. The week of the first model is recorded.

Models are deterministic functions of (spec, window, interval end) (the estimator is
seeded), so the model "trained at the end of week s" is built once and shared: the quality
matrix, the baselines and "ours" all use the very same object (see :class:`ModelBank`).

Figures per stream and policy: served quality (mean over weeks of the serving champion's
primary metric on the week it serves, i.e. the week FOLLOWING its decision), retrains
(challengers trained after the cold start, promoted or not), promotions (every move of the
champion, a reinstated earlier champion included), detection delay per change (weeks from the
change's first week until the champion is one put in office at or after that week: a model
trained since, or an earlier champion reinstated on post-change held-out rows; it serves from
the week after), weeks where "ours" was
unassessed (assess raised, or the gate had no usable signal) or stuck (it asked for a retrain
but no challenger could be trained, or it still has no champion after the others got one).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.optimum import COST_RATIOS, best_periodic, optimal_path, path_cost, regret_share, scored_weeks
from benchmarks.streams import Stream, auc_ovr_macro
from include.retrainer.config import PARTITION_COLUMN, ModelSpec, parse_spec

__all__ = [
    "POLICIES",
    "ModelBank",
    "PolicyRun",
    "StreamResult",
    "WeekRecord",
    "load_loop",
    "ours_at",
    "replay_stream",
    "score",
]

POLICIES: tuple[str, ...] = ("ours", "never", "always", "always_if_better")
#: Weeks after a change (beyond max(window, ramp)) over which its measured cost is averaged.
COST_HORIZON_WEEKS = 4
#: A change costs this much of the primary metric (the best post-change model's lead over the
#: pre-change model) from the week :func:`change_clocks` reports for it.
COSTLY_CHANGE = 0.02


def ours_at(ratio: float) -> str:
    """Name of "ours" replayed with ``drift.gate.retrain_cost`` set to ``ratio``."""
    return f"ours@{ratio:g}"


def with_retrain_cost(spec: dict, ratio: float) -> dict:
    """A copy of the model YAML (dict) stating ``drift.gate.retrain_cost: ratio`` and ``rule: cost``.

    The rule is the default one for a stated cost; it is set explicitly because a YAML that
    names another rule (``make add-model`` writes ``rule: any``) would otherwise keep it and the
    cost would decide nothing (found by a newcomer's replay: identical rows at every cost).
    """
    out = dict(spec)
    drift = dict(out.get("drift") or {})
    drift["gate"] = {**(drift.get("gate") or {}), "retrain_cost": float(ratio), "rule": "cost"}
    out["drift"] = drift
    return out


#: Gate fields that decide when to retrain, never how a model is trained.
AGE_FIELDS = ("max_champion_age_weeks", "staleness_rate")


def training_key(spec: dict) -> str:
    """The spec as canonical JSON without the gate's age fields: week models trained under one
    key are the models of any spec with that key (the staleness measurement changes only those)."""
    import json

    drift = dict(spec.get("drift") or {})
    drift["gate"] = {k: v for k, v in (drift.get("gate") or {}).items() if k not in AGE_FIELDS}
    return json.dumps({**spec, "drift": drift}, sort_keys=True, default=str)


def load_loop() -> tuple[Any, str]:
    """The product's decision loop, ``include.retrainer.loop``, and its name for the report."""
    return importlib.import_module("include.retrainer.loop"), "include.retrainer.loop"


# ------------------------------------------------------------------------------- scoring
def score(model: Any, frame: pd.DataFrame, spec: ModelSpec, classes: Sequence) -> float:
    """Quality of ``model`` on ``frame``: its primary metric, oriented so that higher is better.

    ROC AUC (macro one-vs-rest for multi-class): probability columns are aligned to the
    stream's classes; a class the model never saw gets probability 0 (so a champion that
    cannot predict a new class scores 0.5 on it). Other metrics are the product's own
    (``compare.compute_metrics``, scored as the comparison scores them); a lower-is-better
    metric (log_loss) is returned negated. Raises ValueError when the metric is undefined on
    the rows (e.g. a single class for ROC AUC).
    """
    value = score_weeks(model, [frame], spec, classes)[0]
    if isinstance(value, ValueError):
        raise value
    return value


def score_weeks(model: Any, frames: Sequence[pd.DataFrame], spec: ModelSpec, classes: Sequence) -> list[Any]:
    """:func:`score` of ``model`` on each of ``frames``, from one prediction over all of them.

    A float per frame, or the ValueError :func:`score` would raise on it. The model predicts row
    by row, so this equals scoring each frame alone; one call instead of one per week matters
    on a long file of small weeks (the quality matrix scores every model on every later week:
    on a 209-week file of 7 rows a week, the per-call overhead was half of the replay's time).
    A prediction that fails (e.g. on an infinite value in one week) falls back to scoring each
    week alone, so only that week is undefined.
    """
    if not frames:
        return []
    if len(frames) > 1:
        try:
            return _score_weeks_at_once(model, frames, spec, classes)
        except ValueError:
            # One week's rows the model cannot predict on (e.g. an infinite value) must fail that
            # week only, as scoring each week alone does.
            pass
    out: list[Any] = []
    for frame in frames:
        try:
            out.extend(_score_weeks_at_once(model, [frame], spec, classes))
        except ValueError as exc:
            out.append(exc)
    return out


def _score_weeks_at_once(model: Any, frames: Sequence[pd.DataFrame], spec: ModelSpec, classes: Sequence) -> list[Any]:
    """:func:`score_weeks` from one prediction; a ValueError of the prediction itself propagates."""
    from include.retrainer.training import prepare_features

    metric = spec.comparison.primary_metric
    sizes = [len(f) for f in frames]
    whole = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    X = prepare_features(whole, spec)
    y_all = whole[spec.features.target].to_numpy()
    bounds = np.cumsum([0, *sizes])
    parts = list(zip(bounds[:-1], bounds[1:], strict=True))
    out: list[Any] = []
    if metric != "roc_auc":
        from include.retrainer.compare import compute_metrics, greater_is_better

        proba_all = model.predict_proba(X) if hasattr(model, "predict_proba") else None
        pred_all = model.predict(X)
        for a, b in parts:
            try:
                values = compute_metrics(
                    y_all[a:b],
                    pred_all[a:b],
                    None if proba_all is None else proba_all[a:b],
                    classes=getattr(model, "classes_", None),
                    only=(metric,),
                )
            except ValueError as exc:
                out.append(exc)
                continue
            if metric not in values:
                out.append(ValueError(f"{metric} is undefined on these {b - a} rows"))
                continue
            out.append(float(values[metric]) if greater_is_better(metric) else -float(values[metric]))
        return out
    proba = np.asarray(model.predict_proba(X), dtype=float)
    model_classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    aligned = np.zeros((len(whole), len(classes)))
    for j, c in enumerate(model_classes):
        if c not in classes:
            return [ValueError(f"model predicts class {c!r} that the stream does not have ({list(classes)})")] * len(
                parts
            )
        aligned[:, list(classes).index(c)] = proba[:, j]
    for a, b in parts:
        try:
            if len(classes) == 2:
                out.append(auc_ovr_macro(y_all[a:b], aligned[a:b, 1], tuple(classes)))
            else:
                out.append(auc_ovr_macro(y_all[a:b], aligned[a:b], tuple(classes)))
        except ValueError as exc:
            out.append(exc)
    return out


def _finite_scores(values: Sequence[Any]) -> list[float]:
    """:func:`score_weeks`' values with every undefined one as NaN (left out for everyone)."""
    return [np.nan if isinstance(v, Exception) else v for v in values]


def no_model_quality(q: np.ndarray, metric: str) -> np.ndarray:
    """Per week, the quality credited to a policy that serves no model at all.

    ROC AUC: 0.5 (a constant scorer), or the worst model's when lower. Other metrics have no
    such constant, so the worst model scored on that week stands in (a policy without a
    champion is no better than any model).
    """
    T = q.shape[0]
    out = np.full(T, 0.5 if metric == "roc_auc" else np.nan)
    for t in range(1, T):
        col = q[:t, t]
        if np.isfinite(col).any():
            # Never better than the worst model (every model may score below chance after a
            # label flip): serving nothing must not cost less than serving something.
            out[t] = min(out[t], float(np.nanmin(col))) if metric == "roc_auc" else float(np.nanmin(col))
    return out


class ModelBank:
    """The model trained at the end of each week, built once by the loop's ``build_challenger``."""

    def __init__(self, loop: Any, spec: ModelSpec, stream: Stream):
        self.loop, self.spec, self.stream = loop, spec, stream
        self._models: dict[int, Any] = {}
        self._weeks: dict[int, int] = {}  # the window (weeks) each week's model was trained on
        #: Models trained on part of a window (since a change of the champion's errors, as the
        #: product's train step decides with its champion), keyed by (week, first day): their
        #: rows of the quality matrix come after the T regular ones (:meth:`quality_rows`).
        self._alt: dict[tuple[int, str], tuple[int, Any]] = {}
        self.fit_seconds = 0.0
        self.builds = 0

    def get(self, week: int) -> Any:
        """A ModelState, or the InsufficientData message (str) when none can be trained."""
        if week not in self._models:
            t0 = time.perf_counter()
            self._models[week] = self._build(week)
            self.fit_seconds += time.perf_counter() - t0
            self.builds += 1
        return self._models[week]

    def _build(self, week: int) -> Any:
        # As the DAG's train step does: the configured window, widened a week at a time up to
        # training.max_window_weeks while the loop says the data are insufficient.
        weeks = self.spec.training.window_weeks
        widest = (
            max(weeks, self.spec.training.max_window_weeks or weeks)
            if hasattr(self.spec.training, "max_window_weeks")
            else weeks
        )
        from include.retrainer.training import TrainingError

        while True:
            window = self.stream.window(week, weeks)
            self._weeks[week] = weeks
            try:
                return self.loop.build_challenger(self.spec, window, self.stream.interval_end(week))
            except self.loop.InsufficientData as exc:
                # Widest reached, or the window already reaches back to the first week of data (in
                # calendar weeks: with weeks without rows skipped, their count is not the span).
                holds_all = self.stream.week_start(week) - dt.timedelta(weeks=weeks - 1) <= self.stream.week_start(0)
                if weeks >= widest or holds_all:
                    from include.retrainer.training import short_of_rows_hint

                    first = dt.date.fromisoformat(str(window[PARTITION_COLUMN].min())) if len(window) else None
                    end = self.stream.interval_end(week).date()
                    hint = short_of_rows_hint(len(window), first, end, weeks, self.spec)
                    return f"InsufficientData: {exc}" + (f"; {hint}" if hint else "")
                weeks += 1
            except (TrainingError, ValueError) as exc:
                # E.g. one class in the window or in its held-out rows (a user's data): the DAG's
                # train step fails that week, and nothing changes.
                return f"{type(exc).__name__}: {exc}"

    def has(self, week: int) -> bool:
        return not isinstance(self.get(week), str)

    def get_for(self, week: int, champion: Any) -> tuple[Any, int]:
        """The challenger the product trains at ``week`` under ``champion``, and its quality row.

        As the train step does (``loop.train_on_regime``): the week's window, or its rows since
        a change of the champion's errors when their model is significantly better on the
        held-out rows. The whole window's model is the regular one (row ``week``).
        """
        base = self.get(week)
        if isinstance(base, str) or champion is None:
            return base, week
        window = self.stream.window(week, self._weeks[week])
        train, holdout, info = self.loop.select_holdout(window, self.spec)
        cand = self.loop.regime_candidate(self.spec, champion, window, info.get("holdout_from"))
        if not cand.get("from"):
            return base, week
        key = (week, str(cand["from"]))
        if key not in self._alt:
            t0 = time.perf_counter()
            entry: tuple[int, Any] = (week, base)
            try:
                rows, info, model = self.loop.train_on_regime(
                    self.spec, champion, window, train, holdout, info, whole_model=base.model, candidate=cand
                )
                if (info.get("regime") or {}).get("from"):
                    state = self.loop.fit_challenger(
                        self.spec, rows, holdout, info, self.stream.interval_end(week), model=model
                    )
                    T = self.stream.weeks
                    entry = (T + sum(1 for i, _ in self._alt.values() if i >= T), state)
                else:  # the whole window kept: the regular model, with what was tried on its card
                    regime = info.get("regime") or {}
                    entry = (week, dataclasses.replace(base, evaluation={**base.evaluation, "regime": regime}))
            except Exception:  # as the train step: the whole window
                entry = (week, base)
            self.fit_seconds += time.perf_counter() - t0
            self.builds += 1
            self._alt[key] = entry
        return self._alt[key][1], self._alt[key][0]

    def quality_rows(self, classes: Sequence) -> tuple[np.ndarray, list[int]]:
        """Rows of the quality matrix for the models of :meth:`get_for` (after the T regular
        ones), and the week each was trained at."""
        T = self.stream.weeks
        partial = {key: (idx, state) for key, (idx, state) in self._alt.items() if idx >= T}
        rows = np.full((len(partial), T), np.nan)
        weeks = [0] * len(partial)
        for (week, _), (idx, state) in partial.items():
            weeks[idx - T] = week
            if week + 1 < T:
                later = self.stream.frames[week + 1 : T]
                rows[idx - T, week + 1 : T] = _finite_scores(score_weeks(state.model, later, self.spec, classes))
        return rows, weeks


# ------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class WeekRecord:
    """What a policy did at the end of one week."""

    week: int
    champion_before: int | None  # week its champion was trained
    champion_after: int | None
    retrained: bool  # a challenger was trained (after the cold start)
    promoted: bool
    status: str  # ok | cold_start | waiting | unassessed | stuck
    reason: str = ""
    #: The gate signals that decided a retrain (``GateOutcome.trigger``); empty for the baselines.
    trigger: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**self.__dict__, "trigger": list(self.trigger)}


@dataclass(frozen=True)
class PolicyRun:
    policy: str
    records: tuple[WeekRecord, ...]
    serving: tuple[int | None, ...]  # model week serving weeks start+1 .. T-1
    served_quality: float
    retrains: int
    promotions: int
    detection_delays: tuple[int | None, ...]  # per change of the stream; None = never within the stream
    unassessed_weeks: int
    stuck_weeks: int
    stationary_weeks: int
    stationary_retrains: int
    #: The same delays counted from each change's clock (:func:`change_clocks`: the onset of a
    #: sudden change, the first week a gradual one measurably costs COSTLY_CHANGE), for the report.
    costly_delays: tuple[int | None, ...] = ()

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "records"}
        d["serving"] = list(self.serving)
        d["detection_delays"] = list(self.detection_delays)
        d["costly_delays"] = list(self.costly_delays)
        d["records"] = [r.to_dict() for r in self.records]
        return d


@dataclass(frozen=True)
class StreamResult:
    stream: str
    description: str
    weeks: int
    rows_per_week: int
    loop_module: str
    start: int  # cold-start week (first week a model could be trained)
    cold_start_notes: tuple[str, ...]
    quality: tuple[tuple[float, ...], ...]  # q[s][t], NaN where undefined
    changes: tuple[dict, ...]  # ChangePoint.to_dict() + measured_cost
    policies: dict[str, PolicyRun]
    costs: dict[float, dict[str, float]]  # retrain cost ratio -> policy (+ "optimum") -> cost
    optimum_retrains: dict[float, int]
    regret: dict[float, dict[str, float]]
    seconds: float
    fit_seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: Models the product trained on part of a window (since a change of its champion's errors):
    #: their index in a policy's records and serving (after the T regular ones) -> (week, first day).
    partial_models: dict[int, tuple[int, str]] = field(default_factory=dict)
    #: Retrain cost ratio -> period of the periodic reference (``costs``/``regret`` key "periodic");
    #: None when never retraining was the best schedule.
    periodic_weeks: dict[float, int | None] = field(default_factory=dict)
    #: Quality rows of the partial-window models (``partial_models``), indexed ``weeks + i``, and
    #: the week each was trained at: every cost counts them in the best available model of a week.
    extra_quality: tuple[tuple[float, ...], ...] = ()
    extra_weeks: tuple[int, ...] = ()

    def model_label(self, index: int | None) -> str:
        """``week 10`` for a regular model, ``week 10 (since 2025-03-13)`` for a partial one."""
        if index is None:
            return "-"
        if index in self.partial_models:
            week, since = self.partial_models[index]
            return f"week {week} (since {since})"
        return f"week {index}"

    def to_dict(self) -> dict:
        def clean(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else round(float(x), 5)

        return {
            "stream": self.stream,
            "description": self.description,
            "weeks": self.weeks,
            "rows_per_week": self.rows_per_week,
            "loop_module": self.loop_module,
            "start": self.start,
            "cold_start_notes": list(self.cold_start_notes),
            "quality": [[clean(v) for v in row] for row in self.quality],
            "changes": list(self.changes),
            "policies": {k: v.to_dict() for k, v in self.policies.items()},
            "costs": {str(r): {k: clean(v) for k, v in c.items()} for r, c in self.costs.items()},
            "optimum_retrains": {str(r): n for r, n in self.optimum_retrains.items()},
            "regret": {
                str(r): {k: (None if not math.isfinite(v) else round(v, 4)) for k, v in c.items()}
                for r, c in self.regret.items()
            },
            "seconds": round(self.seconds, 1),
            "fit_seconds": round(self.fit_seconds, 1),
            "notes": list(self.notes),
            "partial_models": {str(k): {"week": w, "since": d} for k, (w, d) in self.partial_models.items()},
            "periodic_weeks": {str(r): k for r, k in self.periodic_weeks.items()},
            "extra_quality": [[clean(v) for v in row] for row in self.extra_quality],
            "extra_weeks": list(self.extra_weeks),
        }


# ------------------------------------------------------------------------------- policies
def _unassessed(outcome: Any) -> str | None:
    """A reason when the gate had no usable signal at all (it could not assess the week)."""
    try:
        d = outcome.to_dict()
    except Exception:
        return None
    signals = d.get("signals") if isinstance(d, dict) else None
    if isinstance(signals, list) and signals:
        statuses = [s.get("status") for s in signals if isinstance(s, dict)]
        if statuses and all(s in ("insufficient", "disabled") for s in statuses) and not d.get("retrain"):
            return "no usable gate signal: " + ", ".join(f"{s.get('name')}={s.get('status')}" for s in signals)
    return None


def _earlier_keys(earlier: dict[int, Any], exclude: set, n: int, rows: Any) -> list[int]:
    """As ``earlier_champion_states`` picks them: newest tenure first, none trained on the rows."""
    from include.retrainer.steps.reinstate import first_day

    rows_from = first_day(rows)
    keys = [
        w
        for w in reversed(earlier)
        if w not in exclude and (rows_from is None or earlier[w].trained_through <= rows_from)
    ]
    return keys[:n]


def _run_ours(loop: Any, spec: ModelSpec, stream: Stream, bank: ModelBank, last: int) -> list[WeekRecord]:
    records: list[WeekRecord] = []
    champion, champ_week = None, None
    since = None  # the latest rejected challenger, newer than the champion (as the DAG tracks it)
    # Earlier champions as they left office (served history included), most recent tenure last:
    # the DAG reads them from the champion history (comparison.reinstate_earlier).
    earlier: dict[int, Any] = {}
    for t in range(last + 1):
        before = champ_week
        try:
            outcome = loop.assess(spec, champion, stream.frames[t], stream.interval_end(t), since=since)
        except Exception as exc:
            records.append(WeekRecord(t, before, before, False, False, "unassessed", f"assess raised {exc!r}"))
            continue
        served = getattr(outcome, "served", None)
        if champion is not None and served:
            # As the DAG stores it (<model>/served/v<version>/): the champion's metric on each
            # batch it served, which performance decay pools into its baseline.
            champion = dataclasses.replace(champion, served=(*champion.served, served))
        why = _unassessed(outcome) if champion is not None else None
        if not outcome.retrain:
            records.append(
                WeekRecord(t, before, before, False, False, "unassessed" if why else "ok", why or outcome.reason)
            )
            continue
        n_earlier = spec.comparison.reinstate_earlier if spec.promotion.approval != "required" else 0
        if champion is not None and n_earlier > 0 and loop.earlier_champions_before_training(outcome.trigger):
            # As the drift step does when the gate wants a retrain: an earlier champion that
            # serves this labelled batch better than the champion serves again, and nothing is trained.
            batch = stream.frames[t]
            keys = _earlier_keys(earlier, {champ_week}, n_earlier, batch)
            pre = (
                loop.reinstate_earlier_champion(
                    spec,
                    champion,
                    "champion",
                    [(w, earlier[w]) for w in keys],
                    batch,
                    loop.BATCH_ROWS,
                    interval_end=stream.interval_end(t),
                )
                if keys
                else None
            )
            if pre is not None and pre.key is not None:
                earlier.pop(champ_week, None)
                earlier[champ_week] = champion
                state = earlier.pop(pre.key)
                champion, champ_week = dataclasses.replace(state, trigger=(), trigger_drop={}), pre.key
                earlier[pre.key] = state
                # As the DAG reads it back (drift.reinstated_instead_of_retraining): change is
                # measured since this batch, as after a rejected challenger.
                since = loop.ModelState(
                    model=None,
                    train=batch,
                    holdout=batch,
                    trained_through=stream.interval_end(t),
                    baseline={},
                    importance={},
                    evaluation={"since": loop.REINSTATED_ON},
                    trigger=outcome.trigger,
                )
                records.append(WeekRecord(t, before, champ_week, False, True, "ok", f"{outcome.reason} | {pre.reason}"))
                continue
        challenger, challenger_key = bank.get_for(t, champion)
        if isinstance(challenger, str):
            status = "stuck" if champion is not None else "waiting"
            records.append(WeekRecord(t, before, before, False, False, status, f"{outcome.reason}; {challenger}"))
            continue
        judgement = loop.judge(spec, champion, challenger)
        reinstated = None
        if champion is not None and n_earlier > 0 and not judgement.stale:
            winner = challenger if judgement.promote else champion
            keys = _earlier_keys(earlier, {champ_week, challenger_key}, n_earlier, challenger.holdout)
            if keys:
                outcome_r = loop.reinstate_earlier_champion(
                    spec,
                    winner,
                    "challenger" if judgement.promote else "champion",
                    [(w, earlier[w]) for w in keys],
                    challenger.holdout,
                )
                reinstated = outcome_r.key
        if champion is not None and (judgement.promote or reinstated is not None):
            # The outgoing champion leaves office with its served history (a candidate later).
            earlier.pop(champ_week, None)
            earlier[champ_week] = champion
        if reinstated is not None:
            # As the DAG does it: the challenger is rejected (the gate measures change since its
            # data), the earlier version is champion again without a follow-up on its old trigger.
            state = earlier.pop(reinstated)
            champion, champ_week = dataclasses.replace(state, trigger=(), trigger_drop={}), reinstated
            earlier[reinstated] = state
            since = dataclasses.replace(challenger, trigger=outcome.trigger)
            records.append(
                WeekRecord(
                    t,
                    before,
                    champ_week,
                    True,
                    True,
                    "ok",
                    f"{outcome.reason} | " + "; ".join(map(str, judgement.reasons)) + f" | {outcome_r.reason}",
                    outcome.trigger,
                )
            )
            continue
        if judgement.promote:
            # As the DAG records them: which signals asked for this model (model card) and
            # what its promotion won (comparison.json).
            champion, champ_week, since = (
                dataclasses.replace(
                    challenger,
                    trigger=outcome.trigger,
                    trigger_drop=outcome.trigger_drop,
                    gain=loop.promotion_gain(judgement.to_dict()),
                ),
                challenger_key,
                None,
            )
        elif champion is not None:
            # As the DAG reads it back from the rejected version's model card: its trigger too.
            since = dataclasses.replace(challenger, trigger=outcome.trigger)
        status = "ok" if before is not None else "cold_start"
        # As the run summary says it: the new regime tried for this challenger, if any.
        tried = loop.regime_reason(challenger.evaluation) if champion is not None else None
        records.append(
            WeekRecord(
                t,
                before,
                champ_week,
                before is not None,
                bool(judgement.promote),
                status,
                f"{outcome.reason} | " + (f"{tried} | " if tried else "") + "; ".join(map(str, judgement.reasons)),
                outcome.trigger if before is not None else (),
            )
        )
    return records


def _run_baseline(policy: str, spec: ModelSpec, stream: Stream, bank: ModelBank, last: int) -> list[WeekRecord]:
    records: list[WeekRecord] = []
    champion, champ_week = None, None
    for t in range(last + 1):
        before = champ_week
        challenger = bank.get(t) if (champion is None or policy != "never") else None
        if champion is None:
            if isinstance(challenger, str):
                records.append(WeekRecord(t, None, None, False, False, "waiting", challenger))
            else:
                champion, champ_week = challenger, t
                records.append(WeekRecord(t, None, t, False, True, "cold_start", "first model"))
            continue
        if policy == "never":
            records.append(WeekRecord(t, before, before, False, False, "ok", "never retrain"))
            continue
        if isinstance(challenger, str):
            records.append(WeekRecord(t, before, before, False, False, "ok", challenger))
            continue
        if policy == "always":
            promote, reason = True, "always promote"
        else:
            h = challenger.holdout
            try:
                c_val, p_val = (
                    score(challenger.model, h, spec, stream.classes),
                    score(champion.model, h, spec, stream.classes),
                )
            except ValueError as exc:  # the metric is undefined on the held-out rows: keep the champion
                promote, reason = False, f"no comparison on {len(h)} held-out rows: {exc}"
            else:
                promote = c_val > p_val
                reason = f"challenger {c_val:.4f} vs champion {p_val:.4f} on {len(h)} held-out rows"
        if promote:
            champion, champ_week = challenger, t
        records.append(WeekRecord(t, before, champ_week, True, promote, "ok", reason))
    return records


# ------------------------------------------------------------------------------- figures
def _events(stream: Stream, start: int) -> list[tuple[int, int]]:
    """(first week, last week) of each period in which the data changes (cold start included)."""
    ev = [(start, start)]
    for c in stream.changes:
        ev.append((c.week, c.week + c.ramp_weeks))
    return ev


def stationary_weeks(stream: Stream, start: int, last: int, window_weeks: int) -> list[int]:
    """Decision weeks with no change (nor the cold start) in the preceding 2 x window weeks.

    Two windows: after a change a retrain is useful until the training window holds only
    post-change rows AND a model trained on it has had the chance to be promoted.
    """
    out = []
    for t in range(start + 1, last + 1):
        if all(not (e_first <= t and e_last > t - 2 * window_weeks) for e_first, e_last in _events(stream, start)):
            out.append(t)
    return out


def measured_change_cost(q: np.ndarray, start: int, stream: Stream, index: int, window_weeks: int) -> float:
    """Mean over post-change weeks of q[t-1, t] - q[pre, t]: a fresh model vs one trained before the change.

    Weeks: from max(window, ramp) weeks after the change (windows then hold post-change
    rows only) for COST_HORIZON_WEEKS weeks, stopping before the next change.
    """
    c = stream.changes[index]
    T = q.shape[0]
    nxt = stream.changes[index + 1].week if index + 1 < len(stream.changes) else T
    pre = max(c.week - 1, start)
    first = c.week + max(window_weeks, c.ramp_weeks)
    weeks = [t for t in range(first, min(first + COST_HORIZON_WEEKS, nxt, T)) if np.isfinite(q[t - 1, t])]
    if not weeks:
        weeks = [t for t in range(c.week + 1, min(nxt, T)) if np.isfinite(q[t - 1, t])]
    if not weeks:
        return float("nan")
    return float(np.mean([q[t - 1, t] - q[pre, t] for t in weeks]))


def change_clocks(q: np.ndarray, start: int, stream: Stream) -> list[int]:
    """The week from which each change measurably costs COSTLY_CHANGE (reported beside the delay).

    A sudden change: its onset. A gradual one costs little in its first weeks; its clock is
    the first week t of its ramp in which the best model trained since the change began
    (hindsight: max over s in [change week, t - 1] of q[s][t]) leads the last pre-change
    model q[pre][t] by at least COSTLY_CHANGE, at the latest the ramp's end. Weeks where either
    side has no quality are skipped. Information only: the detection target counts from the onset.
    """
    clocks = []
    T = q.shape[0]
    for c in stream.changes:
        if c.ramp_weeks <= 0:
            clocks.append(c.week)
            continue
        pre = max(c.week - 1, start)
        end = min(c.week + c.ramp_weeks, T - 1)
        clock = end
        for t in range(c.week + 1, end):
            since = q[c.week : t, t]
            if np.isfinite(q[pre, t]) and np.isfinite(since).any() and np.nanmax(since) - q[pre, t] >= COSTLY_CHANGE:
                clock = t
                break
        clocks.append(clock)
    return clocks


def retrain_values(result: StreamResult, policy: str, retrain_cost: float) -> list[dict]:
    """What each retrain of ``policy`` was worth on this stream, in metric-weeks, after the fact.

    For each week a challenger was trained (after the cold start): the signals that asked for it,
    whether the champion changed, and the value it won = the sum, over the weeks the new champion
    then served, of its quality minus that of the champion it replaced on the same weeks (q[s][t]
    of the quality matrix, partial-window models included); 0 when the champion stayed. ``net``
    = value - ``retrain_cost``. The counterfactual keeps the old champion for that tenure only
    (later decisions depend on the path, so this is an attribution, not a replay without it).
    """
    T = result.weeks
    # Every model's row, the partial-window ones after the T regular ones (as _policy_run stacks them).
    q = np.vstack(
        [np.asarray(result.quality, dtype=float), np.asarray(result.extra_quality, dtype=float).reshape(-1, T)]
    )
    run = result.policies[policy]
    serving = {r.week: r.champion_after for r in run.records}
    out = []
    for r in run.records:
        if not r.retrained:
            continue
        value = 0.0
        if r.champion_after != r.champion_before and r.champion_before is not None:
            t = r.week + 1
            while t < T and serving.get(t - 1) == r.champion_after:
                d = q[r.champion_after, t] - q[r.champion_before, t]
                if math.isfinite(d):
                    value += d
                t += 1
        out.append(
            {
                "week": r.week,
                "trigger": list(r.trigger),
                "changed": r.champion_after != r.champion_before,
                "value": value,
                "net": value - retrain_cost,
            }
        )
    return out


def _policy_run(
    policy: str,
    records: list[WeekRecord],
    q: np.ndarray,
    start: int,
    stream: Stream,
    stationary: list[int],
    clocks: Sequence[int] = (),
    no_model: np.ndarray | None = None,
    extra: np.ndarray | None = None,
) -> PolicyRun:
    T = q.shape[0]
    if extra is not None:  # the policy's own models (ModelBank.get_for) after the regular rows
        q = np.vstack([q, extra])
    after = {r.week: r.champion_after for r in records}
    serving = tuple(after.get(t - 1) for t in range(start + 1, T))
    floor = np.full(T, 0.5) if no_model is None else no_model
    scored = scored_weeks(q[:T])
    values = [
        floor[t] if s is None else q[s, t] for s, t in zip(serving, range(start + 1, T), strict=True) if scored[t]
    ]
    # The week each week's champion took office: its training week for a promotion, the week of
    # the decision for an earlier champion reinstated (chosen on that week's held-out rows).
    took_office: dict[int, int] = {}
    current = None
    for r in sorted(records, key=lambda r: r.week):
        if r.champion_after is not None and r.champion_after != r.champion_before:
            current = r.week
        took_office[r.week] = current if r.champion_after is not None else None
    delays: list[int | None] = []
    for c in stream.changes:
        hit = next(
            (t for t in range(c.week, T - 1) if took_office.get(t) is not None and took_office[t] >= c.week), None
        )
        delays.append(None if hit is None else hit - c.week)
    costly = [
        None if d is None else max(0, c.week + d - k) for c, d, k in zip(stream.changes, delays, clocks, strict=True)
    ]
    stuck = sum(r.status == "stuck" for r in records) + sum(
        1 for r in records if r.week >= start and r.champion_after is None and r.status != "stuck"
    )
    stat = set(stationary)
    return PolicyRun(
        policy=policy,
        records=tuple(records),
        serving=serving,
        served_quality=float(np.mean(values)) if values else float("nan"),
        retrains=sum(r.retrained for r in records),
        promotions=sum(r.promoted and r.champion_before is not None for r in records),
        detection_delays=tuple(delays),
        unassessed_weeks=sum(r.status == "unassessed" for r in records),
        stuck_weeks=stuck,
        stationary_weeks=len(stat),
        stationary_retrains=sum(r.retrained for r in records if r.week in stat),
        costly_delays=tuple(costly),
    )


def replay_stream(
    stream: Stream,
    loop: Any | None = None,
    loop_name: str | None = None,
    cost_ratios: Sequence[float] = COST_RATIOS,
    progress: Callable[[str], None] | None = None,
) -> StreamResult:
    """Replay every policy on ``stream`` and compute all figures (see the module docstring).

    ``progress``: called with a line at each stage (every week's model trained and scored, then
    each policy replayed), for a user waiting on a long file.
    """

    def say(line: str) -> None:
        if progress is not None:
            progress(f"[{time.perf_counter() - t_start:.0f} s] {line}")

    # Speed: on a shared, busy machine set OMP_NUM_THREADS=1 before sklearn loads (the
    # script and the tests do): HGB's OpenMP team otherwise spin-waits and runs many times
    # slower (measured: quick run 72 s with it, > 17 min without; threadpoolctl did not help).
    t_start = time.perf_counter()
    if loop is None:
        loop, loop_name = load_loop()
    spec = parse_spec(stream.spec, stream.spec_path or f"bench/{stream.name}.yaml")
    T = stream.weeks
    last = T - 2  # the decision at the end of the last week would serve a week beyond the data
    bank = ModelBank(loop, spec, stream)
    trained = stream.trained
    if trained is not None and trained.training_key == training_key(stream.spec):
        # Trained by the staleness measurement under the same settings: not trained again.
        bank._models, bank._weeks = dict(trained.models), dict(trained.window_weeks)
        bank.fit_seconds, bank.builds = trained.fit_seconds, trained.builds

    # Quality matrix: every week's model, scored on every later week.
    q = np.full((T, T), np.nan)
    notes: list[str] = []
    step = max(1, (last + 1) // 10)
    for s in range(last + 1):
        if s % step == 0 or s == last:
            say(f"week models: training and scoring week {s} of {last}")
        m = bank.get(s)
        if isinstance(m, str):
            continue
        if s + 1 < T:  # undefined on a week's rows (e.g. one class): NaN, left out for everyone
            q[s, s + 1 : T] = _finite_scores(score_weeks(m.model, stream.frames[s + 1 : T], spec, stream.classes))
    unscored = [t for t in range(1, T) if not scored_weeks(q)[t] and any(bank.has(s) for s in range(t))]
    if unscored:
        notes.append(
            f"weeks {unscored}: {spec.comparison.primary_metric} is undefined on their rows (e.g. a single "
            "class), so they count for no policy"
        )
    valid = [s for s in range(last + 1) if bank.has(s)]
    if not valid:
        raise RuntimeError(f"stream {stream.name}: no model could be trained in any week ({bank.get(last)})")
    start = valid[0]
    cold_notes = tuple(f"week {s}: {bank.get(s)}" for s in range(start))
    gaps = [s for s in range(start, last + 1) if not bank.has(s)]
    if gaps:
        notes.append(f"no model could be trained at weeks {gaps} after the cold start")

    window_weeks = spec.training.window_weeks
    stationary = stationary_weeks(stream, start, last, window_weeks)
    clocks = change_clocks(q, start, stream)
    floor = no_model_quality(q, spec.comparison.primary_metric)
    runs: dict[str, PolicyRun] = {}
    say(f"replaying the policy week by week: ours (your YAML), then at {len(cost_ratios)} retrain cost(s)")
    ours_records = {"ours": _run_ours(loop, spec, stream, bank, last)}
    # A user who states the retrain cost in the model YAML (drift.gate.retrain_cost): the same
    # product, configured with each cost ratio, replayed on the same models.
    for ratio in cost_ratios:
        spec_r = parse_spec(
            with_retrain_cost(stream.spec, ratio), stream.spec_path or f"bench/{stream.name}@{ratio}.yaml"
        )
        bank_r = ModelBank(loop, spec_r, stream)
        # Same training settings: the very same models.
        bank_r._models, bank_r._weeks, bank_r._alt = bank._models, bank._weeks, bank._alt
        say(f"replaying the policy with retrain_cost {ratio:g}")
        ours_records[ours_at(ratio)] = _run_ours(loop, spec_r, stream, bank_r, last)
        bank.fit_seconds += bank_r.fit_seconds
    say("baselines, the retrospective optimum and the report")
    # The product's challengers trained on part of a window are scored like every week's model.
    # The baselines train whole windows (the definitions); the optimum may also install a
    # partial-window model of any run above at its week, and the best available of a week counts
    # them, so the costs of every policy (baselines included) depend on the models ours built.
    # The optimum and every policy's cost count them too: a retrain at their week could have
    # installed them, and the best available model of a week may be one of them.
    extra, extra_weeks = (
        bank.quality_rows(stream.classes) if any(i >= T for i, _ in bank._alt.values()) else (None, None)
    )
    for name, records in ours_records.items():
        runs[name] = _policy_run(name, records, q, start, stream, stationary, clocks, floor, extra)
    for p in POLICIES[1:]:
        runs[p] = _policy_run(
            p, _run_baseline(p, spec, stream, bank, last), q, start, stream, stationary, clocks, floor
        )

    changes = []
    for i, c in enumerate(stream.changes):
        d = c.to_dict()
        cost = measured_change_cost(q, start, stream, i, window_weeks)
        d["measured_cost"] = round(cost, 4) if math.isfinite(cost) else None
        d["clock_week"] = clocks[i]
        changes.append(d)

    costs: dict[float, dict[str, float]] = {}
    regret: dict[float, dict[str, float]] = {}
    opt_retrains: dict[float, int] = {}
    periodic_weeks: dict[float, int | None] = {}
    below: dict[str, list[str]] = {}  # policy -> "cost < optimum at ratio" (a note per stream)
    for ratio in cost_ratios:
        opt = optimal_path(q, start, ratio, extra, extra_weeks)
        costs[ratio] = {
            p: path_cost(
                q, start, [(-1 if s is None else s) for s in r.serving], r.retrains, ratio, floor, extra, extra_weeks
            )
            for p, r in runs.items()
        }
        costs[ratio]["optimum"] = opt.cost
        opt_retrains[ratio] = opt.retrains
        regret[ratio] = {}
        for p in runs:
            if costs[ratio][p] < opt.cost - 1e-9:
                below.setdefault(p, []).append(f"{costs[ratio][p]:.3f} < {opt.cost:.3f} at {ratio:g}")
                regret[ratio][p] = 0.0
            else:
                regret[ratio][p] = regret_share(costs[ratio][p], opt.cost, costs[ratio]["never"])
        # Context, not a policy: retrain every k weeks, k the best period in hindsight.
        periodic = best_periodic(q, start, ratio, floor, extra, extra_weeks)
        costs[ratio]["periodic"] = periodic.cost
        regret[ratio]["periodic"] = regret_share(periodic.cost, opt.cost, costs[ratio]["never"])
        periodic_weeks[ratio] = periodic.period  # None: never retraining was the best
    for p, cells in below.items():
        # The optimum's paths keep a model or switch to one trained that week; a policy that
        # returned to an earlier model without a retrain (a reinstatement) can beat them.
        notes.append(
            f"{p} costs less than the optimum ({'; '.join(cells)}): it returned to an earlier model without a "
            "retrain, which the optimum's paths do not include; its regret share is reported as 0"
        )
    return StreamResult(
        stream=stream.name,
        description=stream.description,
        weeks=T,
        rows_per_week=stream.rows_per_week,
        loop_module=loop_name or getattr(loop, "__name__", "?"),
        start=start,
        cold_start_notes=cold_notes,
        quality=tuple(tuple(float(v) for v in row) for row in q),
        changes=tuple(changes),
        policies=runs,
        costs=costs,
        optimum_retrains=opt_retrains,
        regret=regret,
        seconds=time.perf_counter() - t_start,
        fit_seconds=bank.fit_seconds,
        notes=tuple(notes),
        partial_models={idx: key for key, (idx, _) in bank._alt.items() if idx >= T},
        periodic_weeks=periodic_weeks,
        extra_quality=() if extra is None else tuple(tuple(float(v) for v in row) for row in extra),
        extra_weeks=() if extra_weeks is None else tuple(int(w) for w in extra_weeks),
    )
