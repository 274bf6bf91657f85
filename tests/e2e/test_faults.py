"""Faults: the S3 endpoint, the MLflow server and the Airflow metadata DB going away mid-run.

Every case ends in a documented state (docs/reliability-faults.md): a failed run says why in
one line a user understands, or the run converges once the service is back; raw partitions
are never touched (same keys, same ETags), the champion moves only when a run legitimately
promotes, and a retry never registers a second model version.

Faults mean stopping servers, so this module runs its OWN moto and MLflow servers on free
ports (stopping the session's would break every other test) and points the Airflow
connections at them for the module only.

moto keeps objects in memory, so a stopped moto would come back empty, unlike a real S3
endpoint whose disks survive an outage. The module's moto therefore records every request
(``MOTO_ENABLE_RECORDING``) and a restart replays the recording before anything else talks
to it: the endpoint comes back with exactly the objects it had (ETags included). MLflow's
SQLite backend file survives its server, so a restart with the same file keeps the registry.
Faults are timed with task callbacks (``on_execute_callback`` / ``on_retry_callback`` run
in-process by ``dag.test()``) or by calling the step functions directly, never by sleeping.

The metadata-DB case runs Airflow on a private database of the local PostgreSQL (skipped
when none answers) and simulates the restart inside that database only.

A worker killed mid-training is covered by
tests/plugins/test_train_idempotency.py::test_worker_killed_mid_training_then_retry_converges.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient
from retrain_ops.hooks import ObjectStoreHook

from include.demo import data as demo_data
from include.retrainer import champion as champion_moves
from include.retrainer import history, registry, steps
from include.retrainer.config import ModelSpec, load_spec
from include.retrainer.layout import RunLayout
from include.retrainer.storage import ObjectStore, split_uri
from include.retrainer.tasks import TaskId
from scripts import services
from tests.e2e.conftest import DagRunner, week

ROOT = Path(__file__).resolve().parents[2]
W1 = dt.date(2026, 2, 1)  # a Sunday: @weekly intervals run Sunday to Sunday
W2 = W1 + dt.timedelta(weeks=1)  # the demo's drift event starts here
PREFIX = "faults"
RETRIES = 2  # every spec here: 3 tries per task
S3_CLIENT_CONFIG = {"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 2}
MLFLOW_CLIENT_RETRIES = "1"

pytestmark = pytest.mark.timeout(900)


# --------------------------------------------------------------------------------------
# the module's own services
# --------------------------------------------------------------------------------------
class FaultyServices:
    """moto (durable through a request recording) and MLflow, each stoppable and restartable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.moto_port = services.free_port()
        self.mlflow_port = services.free_port()
        self.recording = root / "moto-recording.jsonl"
        self.mlflow_db = root / "mlflow" / "mlflow.db"
        self._moto: subprocess.Popen | None = None
        self._mlflow: subprocess.Popen | None = None

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def s3(self) -> Any:
        return services.s3_client(self.s3_endpoint)

    @property
    def store(self) -> ObjectStore:
        return ObjectStore(self.s3)

    @property
    def mlflow(self) -> MlflowClient:
        return MlflowClient(self.mlflow_uri)

    # -- S3 ---------------------------------------------------------------------------
    def start_s3(self) -> None:
        """Start moto; when a recording exists, replay it so every object is back first."""
        replay = self.recording.exists() and self.recording.stat().st_size > 0
        with pytest.MonkeyPatch.context() as env:  # only moto's own environment records
            env.setenv("MOTO_ENABLE_RECORDING", "true")
            env.setenv("MOTO_RECORDER_FILEPATH", str(self.recording))
            self._moto = services.start_moto(self.moto_port, self.root / "logs" / "moto.log")
        if replay:
            req = urllib.request.Request(f"{self.s3_endpoint}/moto-api/recorder/replay-recording", method="POST")
            with urllib.request.urlopen(req, timeout=300) as r:
                assert r.status == 200, "moto did not replay its recording"
        else:
            services.create_buckets(self.s3_endpoint)

    def stop_s3(self) -> None:
        if self._moto is not None:
            services.stop_group(self._moto.pid, grace=4)
            self._moto = None
        assert not services.port_open(self.moto_port), "the S3 endpoint still answers after stopping moto"

    @property
    def s3_up(self) -> bool:
        return self._moto is not None

    # -- MLflow -----------------------------------------------------------------------
    def start_mlflow(self) -> None:
        self._mlflow = services.start_mlflow(
            self.mlflow_port, self.mlflow_db, self.s3_endpoint, self.root / "logs" / "mlflow.log"
        )

    def stop_mlflow(self) -> None:
        if self._mlflow is not None:
            services.stop_group(self._mlflow.pid, grace=6)
            self._mlflow = None
        assert not services.port_open(self.mlflow_port), "MLflow still answers after stopping it"

    @property
    def mlflow_up(self) -> bool:
        return self._mlflow is not None

    def stop_all(self) -> None:
        for stop in (self.stop_mlflow, self.stop_s3):
            try:
                stop()
            except AssertionError:
                pass

    # -- state checks -----------------------------------------------------------------
    def raw_etags(self) -> dict[str, str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket="raw-data", Prefix=f"{PREFIX}/")
        return {o["Key"]: o["ETag"] for p in pages for o in p.get("Contents", [])}

    def keys_under(self, uri: str) -> list[str]:
        bucket, key = split_uri(uri.rstrip("/") + "/")
        return [o.key for o in self.store.iter_objects(bucket, key)]

    def versions(self, model: str) -> list[str]:
        return sorted(str(v.version) for v in self.mlflow.search_model_versions(f"name='{model}'"))

    def champion(self, model: str) -> str | None:
        found = registry.get_alias(registry.client_for(self.mlflow_uri), model, registry.CHAMPION)
        return found.version if found else None


@pytest.fixture(scope="module")
def faults(tmp_path_factory, airflow_db) -> Iterator[FaultyServices]:
    """The module's moto + MLflow, seeded with two weeks of churn data (drift from W2).

    Airflow's connections and the DAG folder's model specs point here for this module only.
    """
    svc = FaultyServices(tmp_path_factory.mktemp("faults"))
    mp = pytest.MonkeyPatch()
    try:
        svc.start_s3()
        svc.start_mlflow()
        # Client-level retries kept short so a dead service costs seconds per try, not minutes;
        # what is under test is the task-level behaviour (retries, records, convergence).
        mp.setenv(
            "AIRFLOW_CONN_S3_DATA",
            json.dumps(
                {
                    "conn_type": "aws",
                    "login": "test",
                    "password": "test",
                    "extra": {
                        "endpoint_url": svc.s3_endpoint,
                        "region_name": "us-east-1",
                        "config_kwargs": S3_CLIENT_CONFIG,
                    },
                }
            ),
        )
        mp.setenv(
            "AIRFLOW_CONN_MLFLOW_DEFAULT",
            json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": svc.mlflow_port, "schema": "http"}),
        )
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", MLFLOW_CLIENT_RETRIES)
        models = svc.root / "models"
        models.mkdir()
        mp.setenv("RETRAIN_MODELS_DIR", str(models))  # dag.test() syncs the DAGs parsed from dags/
        frames = demo_data.generate_churn(W1, days=14, rows_per_day=500, drift_start=W2)
        demo_data.write_partitions(svc.s3, "raw-data", PREFIX, frames)
        yield svc
    finally:
        mp.undo()
        svc.stop_all()


@pytest.fixture(autouse=True)
def services_up(request) -> None:
    """Every test starts with both services up, whatever an earlier failed test left behind."""
    if "faults" not in request.fixturenames:
        return
    faults = request.getfixturevalue("faults")
    if not faults.s3_up:
        faults.start_s3()
    if not faults.mlflow_up:
        faults.start_mlflow()


@pytest.fixture
def make_spec(faults) -> Callable[[str], ModelSpec]:
    """A churn spec copy under a unique name in the module's models folder.

    Quick retries (2 retries, 0.02 min = 1.2 s base delay, exponential) and a one-week
    training window over the small seeded data.
    """

    def make(purpose: str) -> ModelSpec:
        raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
        name = f"f_{purpose}_{uuid.uuid4().hex[:6]}"
        raw.update(name=name, retries=RETRIES, retry_delay_minutes=0.02)
        raw["data"]["prefix"] = PREFIX
        raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
        raw["training"]["window_weeks"] = 1
        path = faults.root / "models" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_spec(path)

    return make


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
class TaskErrors:
    """Collects the exception each failed try of a task ended with (what its log ends with)."""

    def __init__(self) -> None:
        self.by_try: dict[int, str] = {}

    def record(self, context: dict) -> None:
        self.by_try[context["ti"].try_number] = f"{type(context['exception']).__name__}: {context['exception']}"


def watch_failures(runner: DagRunner, task_id: str) -> TaskErrors:
    errors = TaskErrors()
    task = runner.dag.task_dict[task_id]
    task.on_retry_callback = [errors.record]
    task.on_failure_callback = [errors.record]
    return errors


def ti_of(dag_run, task_id: str):
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == task_id)


def one_line(text: str) -> bool:
    return bool(text) and "\n" not in text and len(text) < 2000


def run_week(runner: DagRunner, start: dt.date, **conf):
    return runner.dag.test(logical_date=week(start)[1], run_conf=conf or None)


def ctx_for(spec: ModelSpec, start: dt.date, run_id: str) -> steps.RunContext:
    s, e = week(start)
    return steps.RunContext(dag_id=spec.dag_id, run_id=run_id, interval_start=s, interval_end=e)


# --------------------------------------------------------------------------------------
# 1. S3 endpoint down during fetch
# --------------------------------------------------------------------------------------
def test_s3_down_for_the_whole_run_fails_after_retries_with_a_clear_error(faults, make_spec, capfd):
    spec = make_spec("s3down")
    runner = DagRunner(Path(spec.source_path), faults.s3)
    raw_before = faults.raw_etags()
    fetch_errors = watch_failures(runner, TaskId.FETCH_BATCH)

    faults.stop_s3()
    try:
        run = run_week(runner, W1)
    finally:
        faults.start_s3()

    states = runner.task_states(run)
    assert str(run.state) == "failed", states
    assert states[TaskId.FETCH_BATCH] == "failed"
    # The connection's botocore settings reached the client (ObjectStoreHook merges them).
    retries = ObjectStoreHook(aws_conn_id=spec.data.conn_id).store.client.meta.config.retries
    assert retries["total_max_attempts"] == 1 + S3_CLIENT_CONFIG["retries"]["max_attempts"]
    assert ti_of(run, TaskId.FETCH_BATCH).try_number == 1 + RETRIES  # retried with backoff, then failed
    assert {states[t] for t in (TaskId.VALIDATE_BATCH, TaskId.DETECT_DRIFT, TaskId.TRAIN_CHALLENGER)} == {
        "upstream_failed"
    }
    assert states[TaskId.SUMMARIZE_RUN] == "failed"  # the summary cannot be written while S3 is down
    # Every try ends with the same one-line, self-explaining error naming the endpoint.
    assert sorted(fetch_errors.by_try) == [1, 2, 3]
    for message in fetch_errors.by_try.values():
        assert one_line(message), message
        assert "Could not connect to the endpoint URL" in message and faults.s3_endpoint in message
    task_log = capfd.readouterr().out
    assert task_log.count("fetch_batch failed: EndpointConnectionError: Could not connect to the endpoint URL") == 3

    # S3 is back (same objects): raw data untouched, nothing half-written for the interval,
    # nothing registered, no champion.
    assert faults.raw_etags() == raw_before
    assert faults.keys_under(RunLayout.of(spec, *week(W1)).base) == []
    assert faults.versions(spec.name) == [] and faults.champion(spec.name) is None


def test_s3_back_before_the_retry_converges(faults, make_spec):
    spec = make_spec("s3back")
    runner = DagRunner(Path(spec.source_path), faults.s3)
    raw_before = faults.raw_etags()
    fetch_errors = watch_failures(runner, TaskId.FETCH_BATCH)
    restored: list[int] = []

    def bring_s3_back(context: dict) -> None:
        fetch_errors.record(context)
        if not faults.s3_up:  # the endpoint returns during the retry delay
            faults.start_s3()
            restored.append(context["ti"].try_number)

    runner.dag.task_dict[TaskId.FETCH_BATCH].on_retry_callback = [bring_s3_back]
    faults.stop_s3()
    try:
        run, summary = runner.run(W1)
    finally:
        if not faults.s3_up:
            faults.start_s3()

    states = runner.task_states(run)
    assert restored == [1], "S3 must come back right after the first failed fetch"
    assert str(run.state) == "success", states
    assert ti_of(run, TaskId.FETCH_BATCH).try_number == 2
    assert "Could not connect to the endpoint URL" in fetch_errors.by_try[1]
    # A cold start that meets the floor is a legitimate promotion: exactly one version, champion.
    assert summary["decision"] == "promoted", summary["reasons"]
    assert summary["rows"] == 7 * 500
    assert faults.versions(spec.name) == [summary["challenger_version"]]
    assert faults.champion(spec.name) == summary["challenger_version"] == summary["champion_version_after"]
    assert faults.raw_etags() == raw_before
    assert len(history.list_history(faults.store, spec)) == 1


# --------------------------------------------------------------------------------------
# 2. MLflow down during training / promotion
# --------------------------------------------------------------------------------------
def test_mlflow_down_during_training_fails_clearly_then_rerun_converges(faults, make_spec):
    spec = make_spec("mltrain")
    runner = DagRunner(Path(spec.source_path), faults.s3)
    raw_before = faults.raw_etags()
    train_errors = watch_failures(runner, TaskId.TRAIN_CHALLENGER)
    # Drift detection talks to MLflow too: the server goes away right after it, as training starts.
    runner.dag.task_dict[TaskId.TRAIN_CHALLENGER].on_execute_callback = [lambda context: faults.stop_mlflow()]

    try:
        run, summary = runner.run(W1)
    finally:
        if not faults.mlflow_up:
            faults.start_mlflow()

    states = runner.task_states(run)
    assert str(run.state) == "failed", states
    assert states[TaskId.DETECT_DRIFT] == "success" and states[TaskId.TRAIN_CHALLENGER] == "failed"
    assert ti_of(run, TaskId.TRAIN_CHALLENGER).try_number == 1 + RETRIES
    assert states[TaskId.COMPARE_MODELS] == "upstream_failed" and states[TaskId.PROMOTE_CHALLENGER] == "upstream_failed"
    expected = f"MLflow tracking server {faults.mlflow_uri} is unreachable (connection refused)"
    for message in train_errors.by_try.values():
        assert message.startswith("RegistryUnavailableError: " + expected), message
    # S3 was up: the summary and the failure record say it in one line.
    assert summary["decision"] == "failed"
    (reason,) = [r for r in summary["reasons"] if r.startswith("train_challenger failed: ")]
    assert one_line(reason) and expected in reason, reason
    assert summary["champion_version_before"] is None and summary["champion_version_after"] is None
    record = faults.store.get_json(RunLayout.of(spec, *week(W1)).error(TaskId.TRAIN_CHALLENGER))
    assert record["try_number"] == 1 + RETRIES and expected in record["error"]
    assert faults.versions(spec.name) == [] and faults.champion(spec.name) is None

    # MLflow restarted on the same backend file: a re-run of the interval converges.
    runner.dag.task_dict[TaskId.TRAIN_CHALLENGER].on_execute_callback = []
    run, summary = runner.run(W1)
    assert str(run.state) == "success", runner.task_states(run)
    assert summary["decision"] == "promoted", summary["reasons"]
    assert faults.versions(spec.name) == [summary["challenger_version"]]  # exactly one version
    assert faults.champion(spec.name) == summary["challenger_version"]
    assert faults.raw_etags() == raw_before


@pytest.fixture
def champion_and_winning_challenger(faults, make_spec):
    """W1 trained and promoted (cold start); W2 (drifted) trained and compared: promote."""
    spec = make_spec("mlpromote")
    store, uri = faults.store, faults.mlflow_uri
    c1 = ctx_for(spec, W1, "w1")
    t1 = steps.train_challenger(store, uri, spec, c1)
    cmp1 = steps.compare_models(store, uri, spec, c1, t1)
    assert cmp1.decision == "promote", cmp1.reasons
    assert steps.promote_challenger(store, uri, spec, c1, cmp1).promoted is True
    c2 = ctx_for(spec, W2, "w2")
    t2 = steps.train_challenger(store, uri, spec, c2)
    cmp2 = steps.compare_models(store, uri, spec, c2, t2)
    assert cmp2.decision == "promote", cmp2.reasons  # the drifted week's model wins
    return spec, c2, cmp2, t1.challenger_version, t2.challenger_version


def test_mlflow_down_during_promotion_leaves_the_champion_then_retry_moves_once(
    faults, champion_and_winning_challenger
):
    spec, ctx, comparison, v1, v2 = champion_and_winning_challenger
    store, uri = faults.store, faults.mlflow_uri

    faults.stop_mlflow()
    try:
        with pytest.raises(registry.RegistryUnavailableError) as failure:
            steps.promote_challenger(store, uri, spec, ctx, comparison)
    finally:
        faults.start_mlflow()
    message = f"{type(failure.value).__name__}: {failure.value}"
    assert one_line(message) and f"MLflow tracking server {uri} is unreachable" in message, message
    assert champion_moves.champion_lock(store, spec, "probe").current().state == "released", (
        "the champion lock must be released when the promotion fails"
    )
    assert faults.champion(spec.name) == v1  # unchanged
    assert [h["to_version"] for h in history.list_history(store, spec)] == [v1]

    # The task retry once MLflow is back: exactly one move, one history record.
    outcome = steps.promote_challenger(store, uri, spec, ctx, comparison)
    assert outcome.promoted is True and outcome.champion_before == v1
    assert faults.champion(spec.name) == v2
    moves = history.list_history(store, spec)
    assert [(h["from_version"], h["to_version"]) for h in moves] == [(None, v1), (v1, v2)]
    assert faults.versions(spec.name) == sorted([v1, v2])
    client = registry.client_for(uri)
    assert registry.get_version(client, spec.name, v1).tag("replaced_by") == v2
    assert registry.get_version(client, spec.name, v2).tag("decision") == "promoted"


def test_mlflow_down_right_after_the_alias_moved_retry_completes_the_bookkeeping(
    faults, champion_and_winning_challenger, monkeypatch
):
    spec, ctx, comparison, v1, v2 = champion_and_winning_challenger
    store, uri = faults.store, faults.mlflow_uri
    move = registry.move_alias

    def move_then_lose_mlflow(*args: Any, **kwargs: Any) -> None:
        move(*args, **kwargs)
        faults.stop_mlflow()

    monkeypatch.setattr(registry, "move_alias", move_then_lose_mlflow)
    try:
        with pytest.raises(registry.RegistryUnavailableError):
            steps.promote_challenger(store, uri, spec, ctx, comparison)
    finally:
        monkeypatch.setattr(registry, "move_alias", move)
        if not faults.mlflow_up:
            faults.start_mlflow()
    assert faults.champion(spec.name) == v2  # the one-call move itself is atomic

    outcome = steps.promote_challenger(store, uri, spec, ctx, comparison)  # the task retry
    assert outcome.promoted is True and faults.champion(spec.name) == v2
    moves = history.list_history(store, spec)
    assert [(h["from_version"], h["to_version"]) for h in moves] == [(None, v1), (v1, v2)]
    assert registry.get_version(registry.client_for(uri), spec.name, v1).tag("replaced_by") == v2


# --------------------------------------------------------------------------------------
# 4. Airflow metadata DB restarting mid-run (PostgreSQL)
# --------------------------------------------------------------------------------------
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "connect_timeout": 3}


def _pg(dbname: str):
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, **PG)
    conn.autocommit = True
    return conn


def _query(conn, sql: str, *args: Any) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def postgres_metadata_db(tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    """A private database on the local PostgreSQL, migrated for Airflow; dropped afterwards.

    Only this database is touched: the "restart" is simulated inside it (connections refused,
    backends terminated), never by stopping the machine's server.
    """
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = _pg("postgres")
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL with trust auth at 127.0.0.1:5432: {exc}")
    name = f"retrain_faults_{uuid.uuid4().hex[:8]}"
    _query(admin, f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}",
    }
    try:
        airflow = str(Path(sys.executable).parent / "airflow")
        done = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        yield name, env
    finally:
        _query(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _dags_test(env: dict[str, str], dag_id: str, start: dt.date, log_path: Path) -> subprocess.Popen:
    airflow = str(Path(sys.executable).parent / "airflow")
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [airflow, "dags", "test", dag_id, week(start)[1].isoformat()],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


def _wait_for_task_state(
    db: str, dag_id: str, task_id: str, state: str, proc: subprocess.Popen, log_path: Path
) -> None:
    watch = _pg(db)
    try:
        deadline = time.monotonic() + 240
        seen = None
        while time.monotonic() < deadline and proc.poll() is None:
            rows = _query(watch, "SELECT state FROM task_instance WHERE dag_id = %s AND task_id = %s", dag_id, task_id)
            seen = rows[0][0] if rows else None
            if seen == state:
                return
            time.sleep(0.2)
    finally:
        watch.close()
    raise AssertionError(f"{task_id} never reached {state} (last {seen}):\n{log_path.read_text()[-3000:]}")


def test_metadata_db_down_when_a_task_finishes_then_rerun_converges(faults, make_spec, postgres_metadata_db, tmp_path):
    """PostgreSQL metadata DB "restarts" while train_challenger runs and is still refusing
    connections when the task finishes: the task's result cannot be recorded. A re-run once
    the DB is back converges with exactly one model version."""
    db, env = postgres_metadata_db
    spec = make_spec("pgdb")
    raw_before = faults.raw_etags()
    log_path = tmp_path / "dags-test.log"
    proc = _dags_test(env, spec.dag_id, W1, log_path)
    admin = _pg("postgres")
    try:
        _wait_for_task_state(db, spec.dag_id, TaskId.TRAIN_CHALLENGER, "running", proc, log_path)
        # The restart: every open connection killed, new ones refused until the
        # in-process Airflow gives up (it needs the DB to record the task's end).
        _query(admin, f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
        _query(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", db)
        try:
            proc.wait(timeout=240)
        finally:
            _query(admin, f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
    finally:
        if proc.poll() is None:
            services.stop_group(proc.pid, grace=4)
        admin.close()
    out = log_path.read_text()
    assert proc.returncode != 0, out[-3000:]
    assert "Failed to report terminal task state" in out and "is not currently accepting connections" in out
    watch = _pg(db)
    try:
        (run_state,) = _query(watch, "SELECT state FROM dag_run WHERE dag_id = %s", spec.dag_id)[0]
        tis = dict(_query(watch, "SELECT task_id, state FROM task_instance WHERE dag_id = %s", spec.dag_id))
    finally:
        watch.close()
    # Documented end state: the run and the task stay "running" in the metadata DB (a
    # scheduler's task-heartbeat timeout would fail and retry the task); no champion yet
    # (promotion never ran). Whether training registered its version before the outage cut
    # the task off depends on timing (the task may still need the DB, e.g. for a connection):
    # at most one version, never two.
    assert run_state == "running" and tis[TaskId.TRAIN_CHALLENGER] == "running", (run_state, tis)
    assert tis[TaskId.PROMOTE_CHALLENGER] is None
    registered = faults.versions(spec.name)
    assert len(registered) <= 1, registered
    assert faults.champion(spec.name) is None

    # DB back: a re-run of the interval reuses the registered version and finishes the job.
    log_path.write_text("")
    proc = _dags_test(env, spec.dag_id, W1, log_path)
    try:
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            services.stop_group(proc.pid, grace=4)
    watch = _pg(db)
    try:
        states = [s for (s,) in _query(watch, "SELECT state FROM dag_run WHERE dag_id = %s ORDER BY id", spec.dag_id)]
    finally:
        watch.close()
    assert states[-1] == "success", log_path.read_text()[-3000:]
    summary = faults.store.get_json(RunLayout.of(spec, *week(W1)).summary)
    assert summary["decision"] == "promoted", summary["reasons"]
    (version,) = faults.versions(spec.name)  # no duplicate version
    assert summary["challenger_version"] == version
    assert registered in ([], [version])  # a version registered before the outage is reused
    assert faults.champion(spec.name) == version
    assert faults.raw_etags() == raw_before
