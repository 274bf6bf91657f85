"""Reinstating an earlier champion through the real steps (MLflow server, moto S3).

Week 1 is clean: v1 is the first champion. Week 2's labels are shuffled; v2, trained on them,
is put in office by hand (a bad promotion is what a recurring regime looks like to a model
trained for the other season). Week 3's first five days are shuffled too, its last two (the
held-out rows) clean again: v3 learns nothing, the champion v2 knows nothing either, and the
earlier champion v1 serves those rows far better. The comparison says so with numbers, the
promote step moves the alias back to v1 and rejects v3, and a re-run of the week changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from include.demo import data as demo_data
from include.retrainer import history, registry, steps
from include.retrainer.layout import RunLayout
from include.retrainer.tasks import RunParam

START = dt.datetime(2026, 6, 7, tzinfo=dt.UTC)  # a Sunday
WEEK = dt.timedelta(weeks=1)

pytestmark = pytest.mark.timeout(600)


def _ctx(spec, week: int, run: str) -> steps.RunContext:
    start = START + week * WEEK
    return steps.RunContext(dag_id=spec.dag_id, run_id=run, interval_start=start, interval_end=start + WEEK)


def _train(store, tracking, spec, ctx) -> steps.TrainResult:
    fetched = steps.fetch_batch(store, spec, ctx)
    steps.detect_drift(store, tracking, spec, ctx, fetched.batch_uri)
    return steps.train_challenger(store, tracking, spec, ctx)


def test_an_earlier_champion_that_serves_the_week_better_is_reinstated(mlflow_server, s3, store, churn_spec_factory):
    overrides = {
        "data__prefix": "reinstate",
        "training__window_weeks": 1,
        "training__max_window_weeks": 1,
    }
    spec = churn_spec_factory(**overrides)
    day0 = START.date()
    shuffled = [day0 + dt.timedelta(days=d) for d in (*range(7, 14), *range(14, 19))]
    frames = demo_data.generate_churn(day0, days=21, rows_per_day=400, shuffle_label_days=shuffled)
    demo_data.write_partitions(s3, "raw-data", "reinstate", frames)
    client = registry.client_for(mlflow_server)

    ctx1 = _ctx(spec, 0, "w1")
    t1 = _train(store, mlflow_server, spec, ctx1)
    c1 = steps.compare_models(store, mlflow_server, spec, ctx1, t1)
    assert c1.decision == "promote" and c1.cold_start
    steps.promote_challenger(store, mlflow_server, spec, ctx1, c1)
    v1 = str(t1.challenger_version)

    ctx2 = _ctx(spec, 1, "w2")
    t2 = _train(store, mlflow_server, spec, ctx2)
    v2 = str(t2.challenger_version)
    forced = steps.ComparisonResult(
        decision="promote", challenger_version=v2, champion_version=v1, reasons=["put in office for the test"]
    )
    assert steps.promote_challenger(store, mlflow_server, spec, ctx2, forced).champion_after == v2

    ctx3 = _ctx(spec, 2, "w3")
    t3 = _train(store, mlflow_server, spec, ctx3)
    v3 = str(t3.challenger_version)

    # Under promotion.approval: required a person decides every move: nothing is reinstated.
    gated = churn_spec_factory(name=spec.name, promotion__approval="required", **overrides)
    assert steps.compare_models(store, mlflow_server, gated, ctx3, t3).reinstatement is None

    c3 = steps.compare_models(store, mlflow_server, spec, ctx3, t3)
    assert c3.decision == "reinstate" and c3.reinstated_version == v1, c3.reasons
    assert c3.champion_version == v2 and c3.challenger_version == v3
    assert (
        c3.reasons[0].startswith(f"earlier champion {v1} serves these ")
        and "better than the champion: roc_auc +" in c3.reasons[0]
    )
    judged = {c["key"]: c for c in c3.reinstatement["candidates"]}
    assert set(judged) == {v1}  # the champion and the challenger are not candidates
    assert judged[v1]["passed"] and judged[v1]["ci_low"] > 0.1
    stored = store.get_json(RunLayout.of(spec, ctx3.interval_start, ctx3.interval_end).comparison)
    assert stored["decision"] == "reinstate" and stored["reinstated_version"] == v1

    # With promotion disabled for the run nothing moves, and the challenger is rejected.
    off = steps.promote_challenger(store, mlflow_server, spec, ctx3, c3, allow_promotion=False)
    assert not off.promoted and off.champion_after == v2 and "allow_promotion=false" in off.reasons[-1]
    assert registry.get_alias(client, spec.name, registry.CHAMPION).version == v2

    done = steps.promote_challenger(store, mlflow_server, spec, ctx3, c3)
    assert done.promoted and (done.champion_before, done.champion_after) == (v2, v1)
    assert registry.get_alias(client, spec.name, registry.CHAMPION).version == v1
    back = registry.get_version(client, spec.name, v1)
    assert back.tag("decision") == "reinstated" and back.tag("reinstated_instead_of") == v3
    assert back.tag("reinstated_replacing") == v2  # what a rollback returns to
    assert back.tag("replaced_version") in (None, "")  # its first promotion's lineage (a cold start) is kept
    assert registry.get_version(client, spec.name, v3).tag("decision") == "rejected"
    assert registry.get_version(client, spec.name, v2).tag("replaced_by") == v1
    moves = history.list_history(store, spec)
    assert [(m["action"], m["from_version"], m["to_version"]) for m in moves][-1] == ("reinstate", v2, v1)

    # A re-run (or a retry) of the week reaches the same end state and records nothing twice.
    again = steps.compare_models(store, mlflow_server, spec, ctx3, t3)
    assert again.decision == "reinstate" and again.reinstated_version == v1 and again.already_champion
    assert steps.promote_challenger(store, mlflow_server, spec, ctx3, again).champion_after == v1
    assert len(history.list_history(store, spec)) == len(moves)

    # The run summary names it: decision promoted (the champion moved), code reinstated.
    results = steps.RunResults(
        fetch=None,
        validation=None,
        drift=None,
        decision=None,
        trained=t3,
        comparison=c3,
        promoted=done,
        rejected=None,
    )
    summary = steps.build_summary(spec, ctx3, results=results, failed_tasks={}, champion_after=v1)
    assert summary["decision"] == "promoted" and summary["decision_code"] == "reinstated"
    assert summary["reinstated_version"] == v1 and summary["challenger_version"] == v3
    assert summary["headline"].startswith("Reinstated an earlier champion (retrained): earlier champion")
    assert summary["reinstatement"]["reinstated"] == v1
    assert summary["reinstatement"]["comparison"]["paired_test"]["effect"] > 0.1

    # A default rollback returns to the version the reinstatement replaced.
    from include.retrainer import rollback

    undone = rollback.rollback(client, store, spec, None, "test: undo the reinstatement", "rb1", "rollback_x")
    assert (undone["champion_before"], undone["champion_after"]) == (v1, v2)
    assert "reinstated_replacing" in undone["source"]
    # A person makes v1 champion by a rollback: replaying week 3's promote step must not claim
    # that move as its reinstatement (nor move anything).
    rollback.rollback(client, store, spec, v1, "test: a person restores v1", "rb2", "rollback_x")
    n_moves = len(history.list_history(store, spec))
    late = steps.promote_challenger(store, mlflow_server, spec, ctx3, c3)
    assert not late.promoted and "by another move" in late.reasons[-1]
    assert len(history.list_history(store, spec)) == n_moves
    assert history.list_history(store, spec)[-1]["action"] == "rollback"


def test_when_the_gate_wants_a_retrain_an_earlier_champion_serving_the_batch_better_comes_back_untrained(
    mlflow_server, s3, store, churn_spec_factory
):
    """Week 2 is the other season (the demo's drift event), v2 is trained on it and put in office;
    week 3 is the first season again, so data drift asks for a retrain: the drift step judges the
    earlier champion v1 on the labelled batch, v1 serves it far better than v2, so nothing is
    trained and v1 is champion again; week 4's gate measures change since week 3's batch."""
    spec = churn_spec_factory(
        data__prefix="reinstate_pre",
        training__window_weeks=1,
        training__max_window_weeks=1,
    )
    day0 = START.date()
    frames = demo_data.generate_churn(day0, days=28, rows_per_day=400)
    for d in range(7, 14):  # week 2: the other season
        frames[day0 + dt.timedelta(days=d)] = demo_data.generate_churn_day(day0 + dt.timedelta(days=d), 400, 42, True)
    demo_data.write_partitions(s3, "raw-data", "reinstate_pre", frames)
    client = registry.client_for(mlflow_server)

    ctx1 = _ctx(spec, 0, "w1")
    t1 = _train(store, mlflow_server, spec, ctx1)
    steps.promote_challenger(
        store, mlflow_server, spec, ctx1, steps.compare_models(store, mlflow_server, spec, ctx1, t1)
    )
    v1 = str(t1.challenger_version)
    ctx2 = _ctx(spec, 1, "w2")
    t2 = _train(store, mlflow_server, spec, ctx2)
    v2 = str(t2.challenger_version)
    forced = steps.ComparisonResult(decision="promote", challenger_version=v2, champion_version=v1, reasons=["test"])
    steps.promote_challenger(store, mlflow_server, spec, ctx2, forced)

    ctx3 = _ctx(spec, 2, "w3")
    fetched = steps.fetch_batch(store, spec, ctx3)
    # A forced run asked for a new model: no earlier champion is judged instead.
    forced_ctx = dataclasses.replace(ctx3, run_id="w3_forced", params={RunParam.FORCE_RETRAIN: True})
    assert steps.detect_drift(store, mlflow_server, spec, forced_ctx, fetched.batch_uri).reinstatement is None
    drift = steps.detect_drift(store, mlflow_server, spec, ctx3, fetched.batch_uri)
    assert drift.gate and drift.reinstatement is not None
    assert drift.reinstatement["reinstated"] == v1 and drift.reinstatement["judged_on"] == "batch"
    assert drift.reinstatement["champion_version"] == v2 and "data_drift" in drift.reinstatement["trigger"]
    assert drift.reinstatement["candidates"][0]["ci_low"] > 0  # better, beyond its noise
    # Judged on the batch, v1 also serves it at its own level (its model card's baseline is read).
    level = drift.reinstatement["candidates"][0]["own_level"]
    assert level["status"] == "quiet" and "held-out rows" in level["summary"], level
    trained = steps.train_challenger(store, mlflow_server, spec, ctx3)
    assert trained.challenger_version is None and trained.reinstated_version == v1
    assert registry.find_versions(client, spec.name, data_interval_end=ctx3.interval_end.isoformat()) == []
    compared = steps.compare_models(store, mlflow_server, spec, ctx3, trained)
    assert compared.decision == "reinstate" and compared.reinstated_version == v1

    def summary_of(promoted):
        return steps.build_summary(
            spec,
            ctx3,
            results=steps.RunResults(
                fetch=fetched,
                validation=None,
                drift=drift,
                decision=steps.decide_retrain(drift, False),
                trained=trained,
                comparison=compared,
                promoted=promoted,
                rejected=None,
            ),
            failed_tasks={},
            champion_after=registry.get_alias(client, spec.name, registry.CHAMPION).version,
        )

    # A dry run (allow_promotion=false) moves nothing and says so.
    dry = steps.promote_challenger(store, mlflow_server, spec, ctx3, compared, allow_promotion=False)
    assert not dry.promoted and dry.champion_after == v2
    assert (summary_of(dry)["decision"], summary_of(dry)["decision_code"]) == ("rejected", "reinstatement_refused")
    done = steps.promote_challenger(store, mlflow_server, spec, ctx3, compared)
    assert (done.promoted, done.champion_before, done.champion_after) == (True, v2, v1)
    back = registry.get_version(client, spec.name, v1)
    assert back.tag("reinstated_batch_uri") == fetched.batch_uri and back.tag("reinstated_instead_of") == ""
    assert back.tag("reinstated_for_interval_end") == ctx3.interval_end.isoformat()
    assert history.list_history(store, spec)[-1]["action"] == "reinstate"

    summary = summary_of(done)
    assert (summary["decision"], summary["decision_code"]) == ("promoted", "reinstated")
    assert summary["challenger_version"] is None and summary["training_window"] is None
    assert summary["reasons"][0].startswith("retrain wanted, none trained: ")
    assert summary["drift"]["reinstatement"]["reinstated"] == v1

    # A re-run of week 3 judges the batch against v2 again and reaches the same end state.
    again = steps.detect_drift(store, mlflow_server, spec, ctx3, fetched.batch_uri)
    assert again.champion_version == v2 and again.reinstatement["reinstated"] == v1
    n_moves = len(history.list_history(store, spec))
    rerun = steps.compare_models(
        store, mlflow_server, spec, ctx3, steps.train_challenger(store, mlflow_server, spec, ctx3)
    )
    assert steps.promote_challenger(store, mlflow_server, spec, ctx3, rerun).champion_after == v1
    assert len(history.list_history(store, spec)) == n_moves

    # Week 4: change is measured since week 3's batch, and the age counts from it.
    ctx4 = _ctx(spec, 3, "w4")
    week4 = steps.detect_drift(store, mlflow_server, spec, ctx4, steps.fetch_batch(store, spec, ctx4).batch_uri)
    assert week4.champion_version == v1
    report = store.get_json(week4.report_uri)
    assert report["reference"].startswith("the batch of the week ending ")
    assert "reinstated instead of a retrain" in report["reference"]
    age = next(s for s in report["signals"] if s["name"] == "age")
    assert age["statistic"] == pytest.approx(1.0) and "since it was reinstated" in age["summary"]

    # A backfill of week 2 (older than the week v1 was reinstated for) never replaces it.
    old = steps.detect_drift(store, mlflow_server, spec, ctx2, steps.fetch_batch(store, spec, ctx2).batch_uri)
    assert old.gate and old.champion_version == v1 and old.reinstatement is None
