"""The life-cycle signals through the real steps: what training records, what the gate reads back.

Week 1 (data began that week): cold start. The train step records on the model card the
trigger (none: a cold start), the window's first day with data and, since the window is short,
what doubling the data won. Week 2 (same distribution): the drift step loads the champion with
that card and the data-growth signal fires (14 days of data, 2x the 7 it was trained on), so the
challenger trained now is recorded as triggered by ``data_growth``; the user has meanwhile set a
floor no model reaches, so it is rejected, and the gate of the week after reads it back as the
rejected attempt, with its trigger (the retry signal reads it: a retry is not retried), also
after the challenger alias has moved on. The champion's
promotion gain is read back from its run's ``comparison.json``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from include.demo import data as demo_data
from include.retrainer import registry, steps
from include.retrainer.layout import RunLayout

START = dt.datetime(2026, 6, 7, tzinfo=dt.UTC)  # a Sunday
WEEK = dt.timedelta(weeks=1)

pytestmark = pytest.mark.timeout(600)


def _ctx(spec, start: dt.datetime, run: str) -> steps.RunContext:
    return steps.RunContext(dag_id=spec.dag_id, run_id=run, interval_start=start, interval_end=start + WEEK)


def _week(store, tracking, spec, start: dt.datetime, run: str) -> tuple[steps.DriftResult, steps.TrainResult, dict]:
    ctx = _ctx(spec, start, run)
    fetched = steps.fetch_batch(store, spec, ctx)
    drift = steps.detect_drift(store, tracking, spec, ctx, fetched.batch_uri)
    trained = steps.train_challenger(store, tracking, spec, ctx)
    comparison = steps.compare_models(store, tracking, spec, ctx, trained)
    if comparison.decision == "promote":
        steps.promote_challenger(store, tracking, spec, ctx, comparison)
    else:
        steps.reject_challenger(tracking, spec, ctx, comparison)
    card = store.get_json_or_none(trained.model_card_uri) if trained.model_card_uri else None
    return drift, trained, card


def test_growth_is_recorded_at_training_and_read_back_by_the_gate(mlflow_server, s3, store, churn_spec_factory):
    spec = churn_spec_factory(data__prefix="lifecycle")
    frames = demo_data.generate_churn(START.date(), days=14, rows_per_day=1000)
    demo_data.write_partitions(s3, "raw-data", "lifecycle", frames)

    drift1, trained1, card1 = _week(store, mlflow_server, spec, START, "w1")
    assert drift1.cold_start and trained1.challenger_version
    assert card1["trigger"] == [] and card1["trigger_drop"] == {}
    assert card1["evaluation"]["data_from"] == START.date().isoformat()
    gain = card1["evaluation"]["data_gain"]  # a 7-day window of a 4-week spec: growth possible
    assert gain["half_rows"] < gain["rows"] and gain["se"] > 0
    client = registry.client_for(mlflow_server)
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    assert champion is not None and champion.version == trained1.challenger_version

    state, why_not = steps.load_champion_state(store, mlflow_server, spec, champion, client)
    assert why_not is None
    assert state.evaluation["data_from"] == START.date().isoformat() and state.trigger == ()
    assert state.gain == {}  # a cold start's comparison has no paired test
    assert state.trigger_drop == {}
    # What a card records of the drop that asked for a model is what the gate reads back.
    card_uri = champion.lineage_tag(client, "model_card_uri")
    asked = {"signal": "retrain_cost", "drop": 0.042, "se": 0.011}
    store.put_json(card_uri, {**card1, "trigger": ["retrain_cost"], "trigger_drop": asked})
    changed, _ = steps.load_champion_state(store, mlflow_server, spec, champion, client)
    assert changed.trigger == ("retrain_cost",) and changed.trigger_drop == asked
    # A version a person restored by a rollback gets no follow-up on the change it once answered.
    registry.set_tags(client, spec.name, champion.version, {registry.TAG + "decision": "rollback_target"})
    restored, _ = steps.load_champion_state(
        store, mlflow_server, spec, registry.get_version(client, spec.name, champion.version), client
    )
    assert restored.trigger == () and restored.trigger_drop == {}
    registry.set_tags(client, spec.name, champion.version, {registry.TAG + "decision": champion.tag("decision")})
    store.put_json(card_uri, card1)

    # The user sets a floor no model reaches: this week's challenger is rejected.
    strict = spec.model_copy(update={"comparison": spec.comparison.model_copy(update={"floor": 0.9999})})
    drift2, trained2, card2 = _week(store, mlflow_server, strict, START + WEEK, "w2")
    growth = next(s for s in drift2.signals if s["name"] == "data_growth")
    assert growth["status"] == "fired" and growth["statistic"] == pytest.approx(2.0), growth
    assert drift2.gate and "data growth" in drift2.reason
    assert card2["trigger"] == ["data_growth"] and card2["trigger_drop"] == {}  # growth measures no drop
    # 14 days of a 28-day window: it can still double once, so its learning gain is measured too.
    assert card2["evaluation"]["data_from"] == START.date().isoformat() and card2["evaluation"]["data_days"] == 14
    assert card2["evaluation"]["data_gain"]["rows"] > gain["rows"]

    # Whatever the comparison decided, the gate reads the gain back from that run's comparison.json.
    version = registry.get_version(client, spec.name, trained2.challenger_version)
    loaded, _ = steps.load_champion_state(store, mlflow_server, spec, version, client)
    comparison = store.get_json_or_none(RunLayout.of(spec, START + WEEK, START + 2 * WEEK).comparison)
    assert loaded.gain == {"effect": comparison["paired_test"]["effect"], "se": comparison["paired_test"]["se"]}
    assert loaded.trigger == ("data_growth",)
    # The week after, the gate finds that rejected challenger as the latest attempt, its trigger too.
    assert comparison["decision"] == "reject"
    since = steps.load_rejected_since(store, mlflow_server, spec, _ctx(spec, START + 2 * WEEK, "w3"), champion, state)
    assert since is not None and since.trained_through == START + 2 * WEEK
    assert since.trigger == ("data_growth",) and len(since.holdout) > 0
    # Found by its decision tag, not through the challenger alias: after the alias has moved on
    # (newer weeks trained other challengers), a re-run of week 3 still finds the same attempt ...
    registry.move_alias(client, spec.name, registry.CHALLENGER, champion.version)
    again = steps.load_rejected_since(
        store, mlflow_server, spec, _ctx(spec, START + 2 * WEEK, "w3-rerun"), champion, state
    )
    assert again is not None and again.trained_through == since.trained_through
    # ... and a re-run of week 2 itself does not count the attempt that week made.
    assert (
        steps.load_rejected_since(store, mlflow_server, spec, _ctx(spec, START + WEEK, "w2-rerun"), champion, state)
        is None
    )
    # A forced re-run of that interval overwrites comparison.json with another version's: not its gain.
    uri = RunLayout.of(spec, START + WEEK, START + 2 * WEEK).comparison
    store.put_json(uri, {**comparison, "challenger_version": "999"})
    assert steps.load_champion_state(store, mlflow_server, spec, version, client)[0].gain == {}


def test_the_train_step_records_the_drop_that_asked_for_the_model(s3, store):
    from include.retrainer.steps.train import gate_trigger

    uri = "s3://retrain-artifacts/trigger-drop/drift.json"
    signals = [
        {"name": "retrain_cost", "status": "fired", "details": {"drop": 0.05, "drop_se": 0.01}},
        {"name": "performance_decay", "status": "fired", "details": {"drop": 0.07, "se": 0.01}},
        {"name": "data_drift", "status": "fired", "details": {}},
    ]
    store.put_json(uri, {"rule": "cost", "signals": signals})
    # Under rule cost the decay signal is advice: the cost signal's drop is what asked.
    assert gate_trigger(store, uri) == {
        "trigger": ["retrain_cost"],
        "trigger_drop": {"signal": "retrain_cost", "drop": 0.05, "se": 0.01},
    }
    store.put_json(uri, {"rule": "any", "signals": signals})
    assert gate_trigger(store, uri)["trigger_drop"] == {"signal": "performance_decay", "drop": 0.07, "se": 0.01}
    # No drift report (a forced run that skipped the gate, a lost file): nothing recorded.
    assert gate_trigger(store, "s3://retrain-artifacts/trigger-drop/none.json") == {"trigger": [], "trigger_drop": {}}
