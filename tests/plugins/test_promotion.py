"""Race-safe promotion: compare-and-set under a lease lock, on real MLflow and moto S3."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from mlflow import MlflowClient

from include.retrainer import champion as champion_moves
from include.retrainer import history, registry, steps
from include.retrainer.locking import LeaseLock, LeaseLost, LockTimeout
from include.retrainer.storage import ObjectStore
from scripts import services


def _versions(client: MlflowClient, name: str, n: int) -> list[str]:
    """n registered versions pointing at a tiny run artefact (no model needed to move aliases)."""
    client.create_registered_model(name)
    exp = client.create_experiment(f"exp_{name}")
    out = []
    for _ in range(n):
        run = client.create_run(exp)
        client.log_text(run.info.run_id, "x", "model/placeholder.txt")
        client.set_terminated(run.info.run_id)
        mv = client.create_model_version(
            name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags={"retrain.validated": "true"}
        )
        out.append(str(mv.version))
    return out


def _ctx(run_id: str) -> steps.RunContext:
    start = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    return steps.RunContext(
        dag_id="retrain_x", run_id=run_id, interval_start=start, interval_end=start + dt.timedelta(weeks=1)
    )


def test_two_racing_promotions_only_one_wins(mlflow_server, store, churn_spec_factory):
    spec = churn_spec_factory()
    client = MlflowClient(mlflow_server)
    v1, v2, v3 = _versions(client, spec.name, 3)
    client.set_registered_model_alias(spec.name, "champion", v1)

    barrier = threading.Barrier(2)
    results: dict[str, steps.PromotionResult] = {}

    def promote(version: str) -> None:
        comparison = steps.ComparisonResult(
            challenger_version=version, champion_version=v1, reasons=[f"v{version} better"]
        )
        barrier.wait()
        results[version] = steps.promote_challenger(store, mlflow_server, spec, _ctx(f"run_{version}"), comparison)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (v2, v3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    promoted = [v for v, r in results.items() if r.promoted]
    assert len(promoted) == 1, results
    winner = promoted[0]
    loser = v3 if winner == v2 else v2
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == winner
    assert any("champion changed during evaluation" in r for r in results[loser].reasons)
    assert client.get_model_version(spec.name, loser).tags["retrain.decision"] == "rejected"
    moves = history.list_history(store, spec)
    assert [(m["from_version"], m["to_version"]) for m in moves] == [(v1, winner)]


def test_promotion_refused_when_champion_moved_since_comparison(mlflow_server, store, churn_spec_factory):
    spec = churn_spec_factory()
    client = MlflowClient(mlflow_server)
    v1, v2, v3 = _versions(client, spec.name, 3)
    client.set_registered_model_alias(spec.name, "champion", v3)  # moved after v2 was compared with v1
    out = steps.promote_challenger(
        store,
        mlflow_server,
        spec,
        _ctx("r"),
        steps.ComparisonResult(challenger_version=v2, champion_version=v1, reasons=[]),
    )
    assert out.promoted is False
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == v3


def test_promotion_retry_after_alias_moved_is_a_no_op(mlflow_server, store, churn_spec_factory):
    spec = churn_spec_factory()
    client = MlflowClient(mlflow_server)
    v1, v2 = _versions(client, spec.name, 2)
    client.set_registered_model_alias(spec.name, "champion", v1)
    comparison = steps.ComparisonResult(challenger_version=v2, champion_version=v1, reasons=["better"])
    first = steps.promote_challenger(store, mlflow_server, spec, _ctx("r"), comparison)
    again = steps.promote_challenger(store, mlflow_server, spec, _ctx("r"), comparison)
    assert first.promoted and again.promoted
    assert len(history.list_history(store, spec)) == 1
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == v2


def test_allow_promotion_false_keeps_the_champion(mlflow_server, store, churn_spec_factory):
    spec = churn_spec_factory()
    client = MlflowClient(mlflow_server)
    v1, v2 = _versions(client, spec.name, 2)
    client.set_registered_model_alias(spec.name, "champion", v1)
    out = steps.promote_challenger(
        store,
        mlflow_server,
        spec,
        _ctx("r"),
        steps.ComparisonResult(challenger_version=v2, champion_version=v1, reasons=[]),
        allow_promotion=False,
    )
    assert out.promoted is False and any("allow_promotion=false" in r for r in out.reasons)
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == v1


def test_lease_lock_excludes_and_expires(store):
    uri = "s3://retrain-artifacts/tests/locks/l1.lock"
    holder = LeaseLock(store, uri, "holder", ttl_seconds=60)
    holder.acquire()
    with pytest.raises(LockTimeout, match="held by holder"):
        LeaseLock(store, uri, "other", wait_seconds=1, poll_seconds=0.2).acquire()
    holder.release()
    with LeaseLock(store, uri, "other", wait_seconds=1):
        assert store.get_json(uri)["owner"] == "other"
    assert store.get_json(uri)["state"] == "released"
    # A holder that died (no heartbeat any more): its expired lease is taken over by the next owner.
    LeaseLock(store, uri, "dead", ttl_seconds=0, heartbeat=False).acquire()
    with LeaseLock(store, uri, "next", wait_seconds=5, poll_seconds=0.2):
        assert store.get_json(uri)["owner"] == "next"


def test_promoted_version_carries_the_fencing_token(mlflow_server, store, churn_spec_factory):
    spec = churn_spec_factory()
    client = MlflowClient(mlflow_server)
    v1, v2, v3 = _versions(client, spec.name, 3)
    client.set_registered_model_alias(spec.name, "champion", v1)
    steps.promote_challenger(
        store,
        mlflow_server,
        spec,
        _ctx("a"),
        steps.ComparisonResult(challenger_version=v2, champion_version=v1, reasons=[]),
    )
    steps.promote_challenger(
        store,
        mlflow_server,
        spec,
        _ctx("b"),
        steps.ComparisonResult(challenger_version=v3, champion_version=v2, reasons=[]),
    )
    lock = champion_moves.champion_lock(store, spec, "probe").current()
    assert lock.state == "released" and lock.fence == 2
    tokens = [int(client.get_model_version(spec.name, v).tags["retrain.fencing_token"]) for v in (v2, v3)]
    assert tokens == [1, 2]  # one per acquisition, increasing


@pytest.mark.parametrize("pause_in", ["get_alias", "set_tags"])
def test_holder_paused_past_its_ttl_cannot_promote(
    mlflow_server, moto_server, store, churn_spec_factory, monkeypatch, pause_in
):
    """The promoting worker freezes (no heartbeat either) longer than the TTL; another worker
    takes the lease over meanwhile. The frozen one must not move the alias when it wakes up:
    paused before the checks (get_alias) or between tagging and the move (set_tags)."""
    spec = churn_spec_factory()
    client = MlflowClient(mlflow_server)
    v1, v2 = _versions(client, spec.name, 2)
    client.set_registered_model_alias(spec.name, "champion", v1)
    real_champion_lock = champion_moves.champion_lock

    def frozen_lock(store_, spec_, owner):
        return real_champion_lock(store_, spec_, owner, ttl_seconds=1, heartbeat=False)

    monkeypatch.setattr(champion_moves, "champion_lock", frozen_lock)
    takeover: list[LeaseLock] = []
    original = getattr(registry, pause_in)

    def pause_then_call(*args, **kwargs):
        if not takeover:
            time.sleep(2.6)  # > ttl + 1 s of server-clock granularity
            other = real_champion_lock(
                ObjectStore(services.s3_client(moto_server)),
                spec,
                "other-worker",
                ttl_seconds=60,
                wait_seconds=5,
                poll_seconds=0.1,
            )
            other.acquire()
            takeover.append(other)
        return original(*args, **kwargs)

    monkeypatch.setattr(registry, pause_in, pause_then_call)
    with pytest.raises(LeaseLost, match="other-worker"):
        steps.promote_challenger(
            store,
            mlflow_server,
            spec,
            _ctx("frozen"),
            steps.ComparisonResult(challenger_version=v2, champion_version=v1, reasons=["better"]),
        )
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == v1
    assert history.list_history(store, spec) == []
    assert store.get_json(takeover[0].uri)["owner"] == "other-worker"  # the frozen worker released nothing
    takeover[0].release()
