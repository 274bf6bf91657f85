"""The train step cuts its window at a change of the champion's errors (real S3 and MLflow).

Week 1: cold start on the demo churn data. From the Wednesday of week 2 the label's meaning
flips (``churned`` becomes ``1 - churned``, as when an upstream definition is inverted). The
week-2 train step loads the champion, finds the day its excess loss jumps, fits on the rows
since and on the whole window, and keeps the rows since (their model is significantly better on
the held-out rows): the training Parquet, the model card and the summary's line say so. Week 3: nothing
changes inside its window, but the champion (the week-2 model) was trained from that day, so
the successor keeps the start instead of relearning the old regime from weeks 0-1.
"""

from __future__ import annotations

import datetime as dt

import pytest

from include.demo import data as demo_data
from include.retrainer import steps
from include.retrainer.config import PARTITION_COLUMN
from include.retrainer.steps.summary import trained_since

START = dt.datetime(2026, 8, 2, tzinfo=dt.UTC)  # a Sunday
WEEK = dt.timedelta(weeks=1)
FLIP = (START + dt.timedelta(days=10)).date()  # Wednesday of week 2

pytestmark = pytest.mark.timeout(600)


def _write_flipped(s3, prefix: str, days: int, rows_per_day: int) -> None:
    """Demo churn partitions from START whose label is inverted from FLIP on."""
    frames = demo_data.generate_churn(START.date(), days=days, rows_per_day=rows_per_day)
    for day, frame in frames.items():
        if day >= FLIP:
            frame["churned"] = 1 - frame["churned"]
    demo_data.write_partitions(s3, "raw-data", prefix, frames)


def _run_week(store, tracking, spec, start: dt.datetime, run: str):
    ctx = steps.RunContext(dag_id=spec.dag_id, run_id=run, interval_start=start, interval_end=start + WEEK)
    fetched = steps.fetch_batch(store, spec, ctx)
    steps.detect_drift(store, tracking, spec, ctx, fetched.batch_uri)
    trained = steps.train_challenger(store, tracking, spec, ctx)
    comparison = steps.compare_models(store, tracking, spec, ctx, trained)
    if comparison.decision == "promote":
        steps.promote_challenger(store, tracking, spec, ctx, comparison)
    else:
        steps.reject_challenger(tracking, spec, ctx, comparison)
    return trained, comparison


def test_the_window_is_cut_at_a_label_flip_and_the_successor_keeps_the_cut(
    mlflow_server, s3, store, churn_spec_factory
):
    spec = churn_spec_factory(data__prefix="sincechange", comparison__floor=None)
    _write_flipped(s3, "sincechange", days=21, rows_per_day=800)

    trained1, _ = _run_week(store, mlflow_server, spec, START, "w1")
    assert trained1.challenger_version and "regime" not in (trained1.evaluation or {})  # no champion yet

    trained2, comparison2 = _run_week(store, mlflow_server, spec, START + WEEK, "w2")
    regime = trained2.evaluation["regime"]
    assert regime["from"] == FLIP.isoformat() and regime["source"] == "detected", regime
    assert regime["champion_version"] == trained1.challenger_version
    detection = regime["detection"]
    assert detection["found"] and detection["after_mean"] > detection["before_mean"]
    assert detection["p_value"] < detection["alpha"]
    train = store.read_parquet(trained2.train_uri)
    assert str(train[PARTITION_COLUMN].astype(str).min()) == FLIP.isoformat()
    card = store.get_json_or_none(trained2.model_card_uri)
    assert card["evaluation"]["regime"]["from"] == FLIP.isoformat()
    assert card["evaluation"]["data_from"] == FLIP.isoformat()
    line = trained_since(trained2)
    assert line and line.startswith(f"trained on the window's rows since {FLIP.isoformat()} (changed: ")
    test = regime["test"]  # the rows since the flip trained the better model on the held-out rows
    assert test["since"] > test["whole"] and test["p_value"] < test["alpha"]
    assert f"vs {test['whole']:.3f} for all {test['rows_whole']}" in line
    # Trained on the new regime, it beats the flipped champion on the same held-out rows.
    assert comparison2.decision == "promote", comparison2.reasons

    trained3, _ = _run_week(store, mlflow_server, spec, START + 2 * WEEK, "w3")
    regime3 = trained3.evaluation["regime"]
    assert regime3["from"] == FLIP.isoformat() and regime3["source"] == "champion", regime3
    assert not regime3["detection"]["found"]
    train3 = store.read_parquet(trained3.train_uri)
    assert str(train3[PARTITION_COLUMN].astype(str).min()) == FLIP.isoformat()


def test_a_champion_that_cannot_be_loaded_leaves_the_whole_window(
    mlflow_server, s3, store, churn_spec_factory, monkeypatch
):
    """Loading the champion is an optional refinement: a failure trains on the whole window and says why."""
    from include.retrainer import registry

    spec = churn_spec_factory(data__prefix="sincechange_unreadable", comparison__floor=None)
    _write_flipped(s3, "sincechange_unreadable", days=14, rows_per_day=400)
    trained1, _ = _run_week(store, mlflow_server, spec, START, "w1")

    def unreadable(*args, **kwargs):
        raise OSError("artifact store unreachable")

    monkeypatch.setattr(registry, "load_model", unreadable)
    ctx = steps.RunContext(dag_id=spec.dag_id, run_id="w2", interval_start=START + WEEK, interval_end=START + 2 * WEEK)
    trained2 = steps.train_challenger(store, mlflow_server, spec, ctx)
    assert trained2.challenger_version and trained2.challenger_version != trained1.challenger_version
    regime = trained2.evaluation["regime"]
    assert regime["from"] is None
    assert regime["kept"] == (
        f"whole window: champion v{trained1.challenger_version} could not be read (OSError: artifact store unreachable)"
    )
    train = store.read_parquet(trained2.train_uri)
    assert str(train[PARTITION_COLUMN].astype(str).min()) == START.date().isoformat()  # the whole window
    assert trained_since(trained2) == f"new regime not looked for: {regime['kept']}"
