"""Training window, time-based holdout and the scikit-learn pipeline.

The fitted artefact is one sklearn ``Pipeline``: impute + one-hot encode, then the
configured estimator. Inputs are cleaned by :func:`prepare_features` (numeric columns to
float with +-inf as missing, categoricals to strings) both at training and at scoring time.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import math
from typing import Any

from include.retrainer.config import PARTITION_COLUMN, ModelSpec
from include.retrainer.errors import PermanentError

MISSING_CATEGORY = "__missing__"


class TrainingError(PermanentError, RuntimeError):
    """Training cannot proceed (bad estimator, too little data, a single class...)."""


def training_window(interval_end: dt.datetime, window_weeks: int) -> tuple[dt.datetime, dt.datetime]:
    """[end - window_weeks, end): a bounded window ending at the data interval's end."""
    return interval_end - dt.timedelta(weeks=window_weeks), interval_end


#: How much wider than the rows' mean rate says a window must be, for weeks that vary.
WIDEN_MARGIN = 1.25
#: The widest window `training.max_window_weeks` allows (ten years of weeks).
WIDEST_WINDOW_WEEKS = 520


def window_weeks_for_rows(rows: int, weeks: float, needed: int) -> int | None:
    """Weeks of data a window needs to hold ``needed`` rows at the rate of ``rows`` in ``weeks``.

    With a margin for weeks that vary (:data:`WIDEN_MARGIN`); None when there are no rows to
    measure a rate from. A model with a few rows a week can only get a first champion by
    accumulating weeks, so this is how wide its window must be allowed to grow.
    """
    if rows <= 0 or weeks <= 0:
        return None
    per_week = rows / weeks
    return max(1, math.ceil(WIDEN_MARGIN * needed / per_week))


def rows_needed(training: Any) -> int:
    """Rows a window must hold for a model: ``min_train_rows`` + ``min_holdout_rows`` of a TrainingSpec."""
    return int(training.min_train_rows + training.min_holdout_rows)


def short_of_rows_hint(
    rows: int, first_day: dt.date | None, end_day: dt.date, window_weeks: int, spec: ModelSpec
) -> str | None:
    """:func:`widening_hint` for a window of ``window_weeks`` ending ``end_day`` whose labelled
    ``rows`` begin on ``first_day``; None when the rows are enough (then they are badly spread,
    not too few, and no rate says how long to wait). The rate is over the weeks since the first
    day with rows, as the train step and the replay both measure it."""
    if rows >= rows_needed(spec.training):
        return None
    span = (
        float(window_weeks) if first_day is None else min(float(window_weeks), max(1, (end_day - first_day).days) / 7)
    )
    return widening_hint(rows, span, spec)


def widening_hint(rows: int, span_weeks: float, spec: ModelSpec) -> str:
    """What to change when even the widest window has too few rows, in numbers.

    ``span_weeks``: the weeks the window's rows span (from its first day with data to its end,
    not its width: a new model's wide window is mostly weeks before its first data); when the
    widest window will hold them at that rate, it says to wait. E.g. "at 84
    rows over 12.0 weeks of data (~7.0 a week) the 300 rows a model needs
    (training.min_train_rows 200 + min_holdout_rows 100) take ~43 weeks: set
    training.max_window_weeks to at least 54 (a margin for weeks that vary), or lower those
    minimums".
    """
    needed = rows_needed(spec.training)
    wide = window_weeks_for_rows(rows, span_weeks, needed)
    if wide is None:
        return f"no rows over {span_weeks:.1f} week(s)"
    rate = f"at {rows} rows over {span_weeks:.1f} weeks of data (~{rows / span_weeks:.1f} a week) the {needed} rows "
    rate += f"a model needs (training.min_train_rows {spec.training.min_train_rows} + min_holdout_rows "
    rate += f"{spec.training.min_holdout_rows}) take ~{math.ceil(needed * span_weeks / rows)} weeks"
    if wide > WIDEST_WINDOW_WEEKS:
        return f"{rate}: with a margin for weeks that vary, wider than any window may be ({WIDEST_WINDOW_WEEKS} weeks): lower those minimums"
    if spec.training.max_window_weeks:
        widest, up_to = spec.training.max_window_weeks, "the window widens up to training.max_window_weeks"
    else:
        widest, up_to = spec.training.window_weeks, "the window is training.window_weeks"
    if wide <= widest:  # only too few weeks of data yet: the window will hold them
        return f"{rate}; {up_to}={widest}: wait for more weeks"
    return f"{rate}: set training.max_window_weeks to at least {wide} (a margin for weeks that vary), or lower those minimums"


def holdout_start(interval_end: dt.datetime, holdout_days: int) -> dt.date:
    """First day of the holdout: the last ``holdout_days`` days before the interval end."""
    end = interval_end.astimezone(dt.UTC) if interval_end.tzinfo else interval_end
    last_day = (end - dt.timedelta(microseconds=1)).date()
    return last_day - dt.timedelta(days=holdout_days - 1)


def split_holdout(frame: Any, interval_end: dt.datetime, holdout_days: int) -> tuple[Any, Any, str]:
    """Time-based split on the partition date: rows of the last N days are held out."""
    first = holdout_start(interval_end, holdout_days).isoformat()
    is_holdout = frame[PARTITION_COLUMN].astype(str) >= first
    return frame[~is_holdout].reset_index(drop=True), frame[is_holdout].reset_index(drop=True), first


def prepare_features(frame: Any, spec: ModelSpec) -> Any:
    """Select feature columns in a fixed order and coerce their types for the pipeline."""
    import numpy as np
    import pandas as pd

    feats = spec.features
    missing = [c for c in feats.feature_columns if c not in frame.columns]
    if missing:
        raise TrainingError(f"feature column(s) missing from data: {', '.join(missing)}")
    out = pd.DataFrame(index=frame.index)
    for col in feats.numeric:
        values = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        out[col] = values.replace([np.inf, -np.inf], np.nan)
    for col in feats.categorical:
        s = frame[col]
        out[col] = s.astype(object).where(s.notna(), MISSING_CATEGORY).astype(str).astype(object)
    return out


def import_estimator(path: str) -> type:
    module_name, _, cls_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, cls_name)
    except (ImportError, AttributeError) as exc:
        raise TrainingError(f"training.estimator: cannot import '{path}': {exc}") from None
    from sklearn.base import is_classifier

    if not inspect.isclass(cls) or not hasattr(cls, "fit") or not hasattr(cls, "predict"):
        raise TrainingError(f"training.estimator: '{path}' is not a scikit-learn estimator class")
    try:
        probe = cls()
    except TypeError as exc:
        raise TrainingError(f"training.estimator: '{path}' cannot be built without arguments: {exc}") from None
    if not is_classifier(probe):
        raise TrainingError(f"training.estimator: '{path}' is not a classifier (only classifiers are supported)")
    return cls


def build_pipeline(spec: ModelSpec) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    cls = import_estimator(spec.training.estimator)
    params = dict(spec.training.params)
    accepted = inspect.signature(cls).parameters  # the constructor's parameters
    unknown = [p for p in params if p not in accepted]
    if unknown:
        raise TrainingError(f"training.params: {cls.__name__} has no parameter(s) {', '.join(unknown)}")
    # Deterministic fits keep re-runs of the same interval identical.
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = 0
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"training.params: {exc}") from None
    transformers = []
    if spec.features.numeric:
        transformers.append(
            ("numeric", SimpleImputer(strategy="median", keep_empty_features=True), spec.features.numeric)
        )
    if spec.features.categorical:
        cat = Pipeline(
            [
                ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=5)),
            ]
        )
        transformers.append(("categorical", cat, spec.features.categorical))
    pre = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("preprocess", pre), ("model", estimator)])


def fit_pipeline(spec: ModelSpec, train: Any) -> Any:
    """Fit the configured pipeline; clear errors for too little data or a single class."""
    target = spec.features.target
    y = train[target]
    if y.isna().any():
        raise TrainingError(
            f"target column '{target}' has {int(y.isna().sum())} missing value(s) in the training window"
        )
    if len(train) < spec.training.min_train_rows:
        raise TrainingError(
            f"only {len(train)} training rows in the window (training.min_train_rows={spec.training.min_train_rows})"
        )
    classes = sorted(y.unique().tolist(), key=str)
    if len(classes) < 2:
        raise TrainingError(f"target column '{target}' has a single class ({classes[0]!r}) in the training window")
    pipeline = build_pipeline(spec)
    pipeline.fit(prepare_features(train, spec), y.to_numpy())
    return pipeline


def predict(pipeline: Any, frame: Any, spec: ModelSpec) -> tuple[Any, Any | None]:
    """Predicted labels and class probabilities (None when the estimator has no predict_proba)."""
    X = prepare_features(frame, spec)
    pred = pipeline.predict(X)
    proba = pipeline.predict_proba(X) if hasattr(pipeline, "predict_proba") else None
    return pred, proba
