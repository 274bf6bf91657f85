"""Champion rollback and history, against a real moto S3 and a real MLflow server.

Each test registers its own model ``rbtest_<uuid>`` whose versions point at one tiny
run artefact (rollback never loads a model, so a real sklearn model would only add
seconds). Versions 1-3 carry ``retrain.validated=true``, version 4 does not; v3 is
champion and replaced v2, which replaced v1, as promotions would have tagged them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.retrainer import history
from include.retrainer.config import ModelSpec, load_spec
from include.retrainer.rollback import RollbackError, plan_rollback, rollback
from include.retrainer.storage import ObjectStore, split_uri

ROOT = Path(__file__).resolve().parents[2]
CHURN_YAML = ROOT / "include" / "models" / "churn.yaml"
CHURN_SUITE = ROOT / "include" / "suites" / "churn.json"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def client(mlflow_server: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


@pytest.fixture(scope="module")
def store(s3: Any) -> ObjectStore:
    return ObjectStore(s3)


@pytest.fixture(scope="module")
def source_run(client: Any) -> Any:
    """One finished run with a tiny artefact that every test version points at."""
    exp_id = client.create_experiment(f"rbtest_{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp_id)
    client.log_text(run.info.run_id, "placeholder model for rollback tests", "model/README.txt")
    client.set_terminated(run.info.run_id)
    return run


def write_spec(folder: Path, name: str) -> Path:
    raw = yaml.safe_load(CHURN_YAML.read_text(encoding="utf-8"))
    raw["name"] = name
    raw["validation"]["suite"] = str(CHURN_SUITE)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def make_model(
    client: Any,
    run: Any,
    folder: Path,
    *,
    versions: int = 4,
    validated: tuple[int, ...] = (1, 2, 3),
    champion: int | None = 3,
    replaced: dict[int, int] | None = None,
) -> ModelSpec:
    """A registered model ``rbtest_<uuid>`` in the state a few promotions leave behind."""
    name = f"rbtest_{uuid.uuid4().hex[:10]}"
    replaced = {2: 1, 3: 2} if replaced is None else replaced
    client.create_registered_model(name)
    for v in range(1, versions + 1):
        tags = {"retrain.validated": "true"} if v in validated else {}
        if v in replaced:
            tags["retrain.replaced_version"] = str(replaced[v])
        mv = client.create_model_version(
            name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags
        )
        assert str(mv.version) == str(v)
    if champion is not None:
        client.set_registered_model_alias(name, "champion", str(champion))
    return load_spec(write_spec(folder, name))


def champion_of(client: Any, name: str) -> str:
    return str(client.get_model_version_by_alias(name, "champion").version)


def tags_of(client: Any, name: str, version: str) -> dict[str, str]:
    return dict(client.get_model_version(name, version).tags)


@pytest.fixture
def model(client: Any, source_run: Any, tmp_path: Path) -> ModelSpec:
    return make_model(client, source_run, tmp_path)


# -- the pure rollback against real services ----------------------------------------


def test_rollback_without_target_restores_the_replaced_version(client, store, model) -> None:
    result = rollback(client, store, model, None, "v3 mislabels new customers", "manual__r1", "rollback_x")

    assert champion_of(client, model.name) == "2"
    assert result["champion_before"] == "3" and result["champion_after"] == "2"
    assert result["reason"] == "v3 mislabels new customers"
    assert result["source"] == "tag retrain.replaced_version of v3"
    assert store.exists(result["history_uri"])

    target, demoted = tags_of(client, model.name, "2"), tags_of(client, model.name, "3")
    assert target["retrain.decision"] == "rollback_target"
    assert target["retrain.rollback_reason"] == "v3 mislabels new customers"
    assert target["retrain.rolled_back_at"]
    assert demoted["retrain.rolled_back_from_at"] == target["retrain.rolled_back_at"]
    assert demoted["retrain.rolled_back_to"] == "2"

    moves = history.list_history(store, model)
    assert len(moves) == 1
    move = moves[0]
    assert (move["action"], move["from_version"], move["to_version"]) == ("rollback", "3", "2")
    assert move["reason"] == "v3 mislabels new customers"
    assert move["dag_run_id"] == "manual__r1" and move["dag_id"] == "rollback_x"
    assert move["model"] == model.name and move["at"] == target["retrain.rolled_back_at"]
    assert store.get_json(result["history_uri"]) == move


def test_consecutive_rollbacks_walk_back_the_lineage(client, store, model) -> None:
    rollback(client, store, model, None, "first rollback", "manual__a", "rollback_x")
    second = rollback(client, store, model, None, "second rollback", "manual__b", "rollback_x")

    assert (second["champion_before"], second["champion_after"]) == ("2", "1")
    assert champion_of(client, model.name) == "1"
    moves = history.list_history(store, model)
    assert [(m["from_version"], m["to_version"], m["dag_run_id"]) for m in moves] == [
        ("3", "2", "manual__a"),
        ("2", "1", "manual__b"),
    ]
    # v1 was the first champion: it replaced nothing and the history has nothing earlier.
    with pytest.raises(RollbackError, match=r"champion v1 .* replaced no earlier version"):
        rollback(client, store, model, None, "third rollback", "manual__c", "rollback_x")
    assert champion_of(client, model.name) == "1"


def test_explicit_target(client, store, model) -> None:
    result = rollback(client, store, model, "1", "back to the January model", "manual__t", "rollback_x")
    assert (result["champion_before"], result["champion_after"], result["source"]) == ("3", "1", "param")
    assert champion_of(client, model.name) == "1"
    assert [(m["from_version"], m["to_version"]) for m in history.list_history(store, model)] == [("3", "1")]


@pytest.mark.parametrize(
    ("target", "reason", "message"),
    [
        ("99", "bad model", r"version 99 of model 'rbtest_\w+' does not exist"),
        ("4", "bad model", r"version 4 of model 'rbtest_\w+' was never validated"),
        ("3", "bad model", r"version 3 is already the champion"),
        ("abc", "bad model", r"target_version must be a model version number such as '3', got 'abc'"),
        (None, "   ", r"a reason is required"),
    ],
    ids=["nonexistent", "unvalidated", "current-champion", "not-a-number", "no-reason"],
)
def test_refusals_leave_everything_untouched(client, store, model, target, reason, message) -> None:
    before = {v: tags_of(client, model.name, v) for v in ("2", "3", "4")}

    with pytest.raises(RollbackError, match=message):
        rollback(client, store, model, target, reason, "manual__refused", "rollback_x")

    assert champion_of(client, model.name) == "3"
    assert {v: tags_of(client, model.name, v) for v in ("2", "3", "4")} == before
    assert history.list_history(store, model) == []


def test_plan_changes_nothing(client, store, model) -> None:
    plan = plan_rollback(client, store, model, None)
    assert plan == {
        "model": model.name,
        "champion_before": "3",
        "target_version": "2",
        "source": "tag retrain.replaced_version of v3",
        "target_decision": None,
    }
    assert champion_of(client, model.name) == "3"
    assert "retrain.decision" not in tags_of(client, model.name, "2")


def test_history_is_the_fallback_without_replaced_tag(client, store, source_run, tmp_path) -> None:
    """v3 set without the tag (as by hand); history: None->1, 1->3. The previous champion is
    1 (from the history), not 2 (the numerically previous version)."""
    spec = make_model(client, source_run, tmp_path, replaced={})
    history.record_move(
        store, spec, {"action": "promote", "from_version": None, "to_version": "1", "at": "2026-01-11T00:00:00+00:00"}
    )
    history.record_move(
        store, spec, {"action": "promote", "from_version": "1", "to_version": "3", "at": "2026-01-18T00:00:00+00:00"}
    )

    result = rollback(client, store, spec, None, "restore the January model", "manual__h", "rollback_x")

    assert (result["champion_after"], result["source"]) == ("1", "champion history")
    assert champion_of(client, spec.name) == "1"
    assert [m["action"] for m in history.list_history(store, spec)] == ["promote", "promote", "rollback"]


def test_defaulted_target_is_checked_too(client, store, source_run, tmp_path) -> None:
    """The replaced version was never validated: refused although nobody named it."""
    spec = make_model(client, source_run, tmp_path, validated=(1, 3))
    with pytest.raises(RollbackError, match=r"version 2 of model .* was never validated .*replaced_version"):
        rollback(client, store, spec, None, "bad model", "manual__d", "rollback_x")
    assert champion_of(client, spec.name) == "3"


def test_no_champion_is_refused(client, store, source_run, tmp_path) -> None:
    spec = make_model(client, source_run, tmp_path, champion=None)
    with pytest.raises(RollbackError, match=r"has no champion"):
        rollback(client, store, spec, "1", "bad model", "manual__n", "rollback_x")


def test_retry_of_the_same_run_does_not_roll_back_twice(client, store, model) -> None:
    """An Airflow retry after the alias moved finishes the records; it never goes one further back."""
    first = rollback(client, store, model, None, "flaky registry", "manual__retry", "rollback_x")
    again = rollback(client, store, model, None, "flaky registry", "manual__retry", "rollback_x")

    assert champion_of(client, model.name) == "2"
    assert (again["champion_before"], again["champion_after"]) == ("3", "2")
    assert again["history_uri"] == first["history_uri"]
    assert len(history.list_history(store, model)) == 1


def test_retry_after_a_crash_between_move_and_record(client, store, model) -> None:
    """The alias moved and the target was marked, then the task died: the retry writes the record."""
    client.set_model_version_tag(model.name, "2", "retrain.rolled_back_by_run", "manual__crash")
    client.set_model_version_tag(model.name, "2", "retrain.rolled_back_from_version", "3")
    client.set_registered_model_alias(model.name, "champion", "2")

    result = rollback(client, store, model, None, "crashed once", "manual__crash", "rollback_x")

    assert champion_of(client, model.name) == "2"
    assert (result["champion_before"], result["champion_after"]) == ("3", "2")
    [move] = history.list_history(store, model)
    assert (move["from_version"], move["to_version"], move["dag_run_id"]) == ("3", "2", "manual__crash")


def test_rollback_waits_for_the_champion_lock(client, store, model) -> None:
    """A promotion holding the shared champion lock blocks the rollback until it releases."""
    import threading
    import time

    from include.retrainer.champion import champion_lock

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = rollback(client, store, model, "1", "during a promotion", "manual__lock", "rollback_x")
        except Exception as exc:  # surfaced by the assertions below
            outcome["error"] = exc

    with champion_lock(store, model, owner="retrain_x/promotion"):
        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(1.5)  # the rollback is running, and must be waiting on the lock
        assert champion_of(client, model.name) == "3"
        assert history.list_history(store, model) == []
        assert not outcome
    worker.join(timeout=120)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"]["champion_after"] == "1" == champion_of(client, model.name)


@pytest.mark.parametrize(
    ("moves", "current", "expected"),
    [
        ([("promote", None, "1"), ("promote", "1", "3")], "3", "1"),
        # After a rollback 3->2 the default goes on to 1, never back to the rolled-away 3.
        ([("promote", None, "1"), ("promote", "1", "2"), ("promote", "2", "3"), ("rollback", "3", "2")], "2", "1"),
        ([("rollback", "3", "2"), ("rollback", "2", "1")], "1", None),
        # The history starts with the move to the current champion: its from_version.
        ([("promote", "4", "5")], "5", "4"),
        # Alias moved by hand to 7: the latest recorded champion.
        ([("promote", None, "1"), ("promote", "1", "2")], "7", "2"),
        ([("promote", None, "1")], "1", None),
        ([], "1", None),
    ],
)
def test_previous_champion_from_history(moves, current, expected) -> None:
    from include.retrainer.rollback import _previous_from_history

    records = [{"action": a, "from_version": f, "to_version": t} for a, f, t in moves]
    assert _previous_from_history(records, current) == expected


# -- the DAG and the history CLI --------------------------------------------------------


def run_cli(spec: ModelSpec, endpoint: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "champion_history.py"),
            "--model",
            spec.name,
            "--models-dir",
            str(Path(spec.source_path).parent),
            "--s3-endpoint",
            endpoint,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        cwd=str(ROOT),
    )


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_rollback_dag_moves_champion_and_the_cli_lists_it(
    airflow_db, mlflow_server, moto_server, client, store, source_run, tmp_path, monkeypatch
) -> None:
    from retrain_ops.rollback_factory import build_rollback_dag

    spec = make_model(client, source_run, tmp_path)
    # dag.test() serializes the DAGs of the dags/ folder: it must find this model's spec there.
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(tmp_path))
    dag = build_rollback_dag(spec)
    assert dag.dag_id == f"rollback_{spec.name}"
    assert dag.get_task("rollback_champion").pool == "model_promotion"

    # A refused target fails at once (no retry) and leaves the champion where it was.
    refused = dag.test(run_conf={"target_version": "99", "reason": "try a missing version"})
    assert str(refused.state) == "failed"
    assert task_states(refused) == {"rollback_champion": "failed"}
    assert champion_of(client, spec.name) == "3"

    run = dag.test(run_conf={"target_version": "1", "reason": "v3 and v2 both regress on region=west"})
    assert str(run.state) == "success", task_states(run)
    assert champion_of(client, spec.name) == "1"
    [move] = history.list_history(store, spec)
    assert (move["action"], move["from_version"], move["to_version"]) == ("rollback", "3", "1")
    assert move["dag_id"] == dag.dag_id and move["dag_run_id"] == run.run_id

    listed = run_cli(spec, moto_server)
    assert listed.returncode == 0, listed.stderr
    assert f"champion history of '{spec.name}' (1 move(s)" in listed.stdout
    assert "rollback" in listed.stdout and "v3 -> v1" in listed.stdout
    assert run.run_id in listed.stdout
    assert "v3 and v2 both regress on region=west" in listed.stdout

    as_json = run_cli(spec, moto_server, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [move]


def test_cli_on_a_model_without_history_and_an_unknown_model(moto_server, client, source_run, tmp_path) -> None:
    spec = make_model(client, source_run, tmp_path)
    empty = run_cli(spec, moto_server)
    assert empty.returncode == 0, empty.stderr
    bucket, _ = split_uri(history.history_prefix(spec))
    assert f"no champion moves recorded for model '{spec.name}'" in empty.stdout and bucket in empty.stdout

    unknown = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "champion_history.py"),
            "--model",
            "nosuchmodel",
            "--models-dir",
            str(tmp_path),
            "--s3-endpoint",
            moto_server,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2
    assert "no spec for model 'nosuchmodel'" in unknown.stderr


def test_rollback_by_a_holder_paused_past_its_ttl_moves_nothing(client, store, model, moto_server, monkeypatch) -> None:
    """The rolling-back worker freezes longer than the lease TTL (no heartbeat runs in a frozen
    process) and another worker takes the lease over: on waking it raises LeaseLost (retryable)
    and the champion stays where it was. A normal rollback tags the target with its fence."""
    import time

    from include.retrainer import champion, registry
    from include.retrainer.locking import LeaseLost
    from scripts import services

    real_lock = champion.champion_lock
    monkeypatch.setattr(
        champion,
        "champion_lock",
        lambda store_, spec_, owner: real_lock(store_, spec_, owner, ttl_seconds=1, heartbeat=False),
    )
    taken: list[Any] = []
    real_set_tags = registry.set_tags

    def pause_then_tag(*args: Any, **kwargs: Any) -> Any:
        if not taken:  # the first tag write is the one right before the alias move
            time.sleep(2.6)  # > ttl + 1 s of server-clock granularity
            other = real_lock(
                ObjectStore(services.s3_client(moto_server)),
                model,
                "other-worker",
                ttl_seconds=60,
                wait_seconds=5,
                poll_seconds=0.1,
            )
            other.acquire()
            taken.append(other)
        return real_set_tags(*args, **kwargs)

    monkeypatch.setattr(registry, "set_tags", pause_then_tag)
    with pytest.raises(LeaseLost, match="other-worker"):
        rollback(client, store, model, "1", "frozen worker", "manual__frozen", "rollback_x")
    assert champion_of(client, model.name) == "3"
    assert history.list_history(store, model) == []
    taken[0].release()

    monkeypatch.setattr(registry, "set_tags", real_set_tags)
    result = rollback(client, store, model, "1", "after the retry", "manual__frozen", "rollback_x")
    assert result["champion_after"] == "1" == champion_of(client, model.name)
    fence = real_lock(store, model, "probe").current().fence
    assert tags_of(client, model.name, "1")["retrain.rollback_fencing_token"] == str(fence) == "3"


def test_rollback_and_promotion_share_one_champion_registry() -> None:
    """Rollback moves the champion through ChampionRegistry, as promotion does, not through steps."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "include" / "retrainer"
    promotion = root / "steps" / "promote.py" if (root / "steps").is_dir() else root / "steps.py"

    def parsed(path: Path) -> tuple[set[str | None], set[str]]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        return imported, calls

    rollback_imports, rollback_calls = parsed(root / "rollback.py")
    promotion_imports, promotion_calls = parsed(promotion)
    assert "include.retrainer.champion" in rollback_imports and "include.retrainer.champion" in promotion_imports
    assert not {"move_alias", "record_move"} & rollback_calls
    assert "record_move" not in promotion_calls
    assert not any(m and m.startswith("include.retrainer.steps") for m in rollback_imports)
