"""TEMPORARY stand-in for ``include.retrainer.loop`` until the lead's module lands on main.

It wires today's building blocks (drift gate, training, McNemar comparison) behind the
agreed signatures so the harness can run end to end. Delete it once ``loop.py`` exists:
:func:`benchmarks.replay.load_loop` prefers the real module and says which one it used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from include.retrainer import training
from include.retrainer.compare import compare_models, compute_metrics, evaluate_cold_start
from include.retrainer.drift import detect_drift


class InsufficientData(RuntimeError):
    """Too little data to train or evaluate."""


@dataclass(frozen=True)
class ModelState:
    model: Any
    train: pd.DataFrame
    holdout: pd.DataFrame
    trained_through: dt.datetime
    baseline: dict
    importance: dict


@dataclass(frozen=True)
class GateOutcome:
    retrain: bool
    reason: str

    def to_dict(self) -> dict:
        return {"retrain": self.retrain, "reason": self.reason}


@dataclass(frozen=True)
class Judgement:
    promote: bool
    reasons: list

    def to_dict(self) -> dict:
        return {"promote": self.promote, "reasons": list(self.reasons)}


def assess(spec, champion: ModelState | None, batch: pd.DataFrame, interval_end: dt.datetime) -> GateOutcome:
    if champion is None:
        return GateOutcome(True, "no champion yet")
    from include.retrainer.steps import drift_settings

    report = detect_drift(champion.train, batch, spec.features.numeric, spec.features.categorical, drift_settings(spec))
    return GateOutcome(bool(report.gate), report.reason)


def build_challenger(spec, window: pd.DataFrame, interval_end: dt.datetime) -> ModelState:
    train, holdout, _ = training.split_holdout(window, interval_end, spec.training.holdout_days)
    if len(train) < spec.training.min_train_rows or len(holdout) < spec.training.min_holdout_rows:
        raise InsufficientData(f"{len(train)} training / {len(holdout)} holdout rows")
    try:
        model = training.fit_pipeline(spec, train)
    except training.TrainingError as exc:
        raise InsufficientData(str(exc)) from None
    pred, proba = training.predict(model, holdout, spec)
    m = compute_metrics(holdout[spec.features.target].to_numpy(), pred, proba, model.classes_)
    metric = spec.comparison.primary_metric
    feats = spec.features.feature_columns
    return ModelState(model, train, holdout, interval_end,
                      {"metric": metric, "value": m.get(metric), "se": None, "n": len(holdout)},
                      {f: 1.0 / len(feats) for f in feats})


def judge(spec, champion: ModelState | None, challenger: ModelState) -> Judgement:
    from include.retrainer.steps import comparison_settings

    settings = comparison_settings(spec)
    h = challenger.holdout
    y = h[spec.features.target].to_numpy()
    c_pred, c_proba = training.predict(challenger.model, h, spec)
    if champion is None:
        r = evaluate_cold_start(y, c_pred, settings, c_proba, challenger.model.classes_)
        return Judgement(r.promote, list(r.reasons))
    if list(champion.model.classes_) != list(challenger.model.classes_):
        return Judgement(False, ["champion and challenger classes differ"])
    p_pred, p_proba = training.predict(champion.model, h, spec)
    r = compare_models(y, p_pred, c_pred, settings, p_proba, c_proba, challenger.model.classes_)
    return Judgement(r.promote, list(r.reasons))
