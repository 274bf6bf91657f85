"""Drift judged against the training rows' natural variation, through the real steps (moto S3,
MLflow server): the train step records the day-to-day variation of the champion's scores in its
model card, and the next week's detect_drift judges prediction drift against it and each
feature against the training weeks (the cached reference summary carries their variation).
"""

from __future__ import annotations

import datetime as dt

import pytest

from include.demo import data as demo_data
from include.retrainer import registry, steps

START = dt.datetime(2026, 6, 7, tzinfo=dt.UTC)  # a Sunday
WEEK = dt.timedelta(weeks=1)

pytestmark = pytest.mark.timeout(600)


def _ctx(spec, start: dt.datetime, run: str) -> steps.RunContext:
    return steps.RunContext(dag_id=spec.dag_id, run_id=run, interval_start=start, interval_end=start + WEEK)


def test_the_champion_card_records_its_score_variation_and_the_gate_judges_against_it(
    mlflow_server, s3, store, churn_spec_factory
):
    spec = churn_spec_factory(data__prefix="natural")
    assert spec.training.window_weeks == 4 and spec.drift.natural_variation
    frames = demo_data.generate_churn(START.date(), days=35, rows_per_day=300)
    demo_data.write_partitions(s3, "raw-data", "natural", frames)

    # Cold start on the fourth week: a 4-week window, 26 training days (2 held out).
    ctx = _ctx(spec, START + 3 * WEEK, "w4")
    steps.detect_drift(store, mlflow_server, spec, ctx, steps.fetch_batch(store, spec, ctx).batch_uri)
    trained = steps.train_challenger(store, mlflow_server, spec, ctx)
    comparison = steps.compare_models(store, mlflow_server, spec, ctx, trained)
    steps.promote_challenger(store, mlflow_server, spec, ctx, comparison)
    client = registry.client_for(mlflow_server)
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    card = store.get_json(champion.lineage_tag(client, "model_card_uri"))
    (variation,) = card["score_variation"]
    # One block per training day; each day's sampling dof from the permutation null (~5 for KS).
    assert variation["blocks"] == 26 and 2 * 26 < variation["dof"] < 8 * 26 and 0 <= variation["lag1"] <= 0.95

    state, why_not = steps.load_champion_state(store, mlflow_server, spec, champion, client)
    assert why_not is None and state.score_variation[0].blocks == 26

    ctx = _ctx(spec, START + 4 * WEEK, "w5")
    drift = steps.detect_drift(store, mlflow_server, spec, ctx, steps.fetch_batch(store, spec, ctx).batch_uri)
    report = store.get_json(drift.report_uri)
    prediction = next(s for s in report["signals"] if s["name"] == "prediction_drift")
    assert prediction["details"]["reference_days"] == 2 and prediction["details"]["current_days"] == 7
    assert prediction["details"]["design_effect"][0] is not None
    assert "day-to-day variation of its scores (2 vs 7 days" in prediction["summary"]
    features = report["features"]
    # The training rows span 26 days: 3 full weeks, each feature judged against them.
    tested = [f for f in features.values() if f["status"] == "tested"]
    assert tested and all(f["effect"].get("reference_weeks") == 3 for f in tested)
