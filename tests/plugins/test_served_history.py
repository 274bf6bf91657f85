"""The champion's served history through the real steps: written by detect_drift, read back by the gate.

Week 1: cold start (a champion is trained and promoted). Weeks 2 and 3: ``detect_drift`` measures
the champion's primary metric on each batch and stores it under ``<model>/served/v<version>/``;
``load_champion_state`` reads it back, and the performance-decay signal of week 3 pools week 2
into its baseline. A re-run of week 2 after week 3 decides as the first run did (only weeks
before the interval count) and overwrites its own record rather than adding one.
"""

from __future__ import annotations

import datetime as dt

import pytest

from include.demo import data as demo_data
from include.retrainer import loop, registry, steps
from include.retrainer.layout import ModelLayout
from include.retrainer.storage import split_uri

START = dt.datetime(2026, 6, 7, tzinfo=dt.UTC)  # a Sunday
WEEK = dt.timedelta(weeks=1)

pytestmark = pytest.mark.timeout(600)


def _ctx(spec, start: dt.datetime, run: str) -> steps.RunContext:
    return steps.RunContext(dag_id=spec.dag_id, run_id=run, interval_start=start, interval_end=start + WEEK)


def _decay(drift: steps.DriftResult, store) -> dict:
    report = store.get_json(drift.report_uri)
    return next(s for s in report["signals"] if s["name"] == "performance_decay")


def test_served_weeks_are_stored_per_champion_and_pooled_by_the_gate(mlflow_server, s3, store, churn_spec_factory):
    spec = churn_spec_factory(data__prefix="served")
    frames = demo_data.generate_churn(START.date(), days=21, rows_per_day=600)
    demo_data.write_partitions(s3, "raw-data", "served", frames)

    ctx1 = _ctx(spec, START, "w1")
    fetched = steps.fetch_batch(store, spec, ctx1)
    steps.detect_drift(store, mlflow_server, spec, ctx1, fetched.batch_uri)
    trained = steps.train_challenger(store, mlflow_server, spec, ctx1)
    comparison = steps.compare_models(store, mlflow_server, spec, ctx1, trained)
    assert comparison.decision == "promote"
    steps.promote_challenger(store, mlflow_server, spec, ctx1, comparison)
    client = registry.client_for(mlflow_server)
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    assert champion is not None

    drifts = {}
    for k, run in ((1, "w2"), (2, "w3")):
        ctx = _ctx(spec, START + k * WEEK, run)
        drifts[run] = steps.detect_drift(store, mlflow_server, spec, ctx, steps.fetch_batch(store, spec, ctx).batch_uri)

    bucket, prefix = split_uri(ModelLayout.of(spec).served_metrics(champion.version) + "/")
    records = [store.get_json(o.uri) for o in store.iter_objects(bucket, prefix)]
    assert [r["interval_end"] for r in records] == [(START + 2 * WEEK).isoformat(), (START + 3 * WEEK).isoformat()]
    assert all(r["version"] == str(champion.version) and r["metric"] == "roc_auc" and r["n"] > 0 for r in records)

    state, why_not = steps.load_champion_state(store, mlflow_server, spec, champion, client)
    assert why_not is None and [w["interval_end"] for w in state.served] == [r["interval_end"] for r in records]

    week2, week3 = _decay(drifts["w2"], store), _decay(drifts["w3"], store)
    assert week2["details"]["served_weeks"] == 0 and week3["details"]["served_weeks"] == 1
    # Week 3's single-week test: its baseline pools the held-out rows and week 2's batch.
    single = week3["details"]["tests"][0]
    assert single["baseline_rows"] == week2["details"]["tests"][0]["baseline_rows"] + records[0]["n"]
    assert single["recent_rows"] == records[1]["n"]

    # A re-run of week 2 now: week 3's record is later, so it is not used; week 2's is overwritten.
    ctx = _ctx(spec, START + WEEK, "w2-rerun")
    again = steps.detect_drift(store, mlflow_server, spec, ctx, steps.fetch_batch(store, spec, ctx).batch_uri)
    assert _decay(again, store)["details"]["served_weeks"] == 0
    assert _decay(again, store)["p_value"] == pytest.approx(week2["p_value"])
    assert len(list(store.iter_objects(bucket, prefix))) == 2

    # Records that are not this version's, or damaged, are left out; the gate still decides.
    layout = ModelLayout.of(spec)
    foreign = {**records[0], "run_id": "another-registry-run"}
    store.put_json(layout.served_week(champion.version, START + 3 * WEEK, START + 4 * WEEK), foreign)
    store.put_json(
        layout.served_week(champion.version, START + 4 * WEEK, START + 5 * WEEK), {**records[1], "value": "0.8"}
    )
    store.put_json(layout.served_week(champion.version, START + 5 * WEEK, START + 6 * WEEK), {**records[1], "n": -3})
    store.put_json(layout.served_week(champion.version, START + 6 * WEEK, START + 7 * WEEK), [1, 2])
    state, _ = steps.load_champion_state(store, mlflow_server, spec, champion, client)
    # The foreign run's record and the non-object are dropped when read; the damaged two are
    # read (they are this version's) and left out by the gate's history filter.
    assert len(state.served) == 4 and all(w.get("run_id") == champion.run_id for w in state.served)
    history = loop.served_history(state.served, START, START + 10 * WEEK, "roc_auc")
    assert [w["interval_end"] for w in history] == [r["interval_end"] for r in records]
