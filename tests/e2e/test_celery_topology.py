"""The production topology, natively: CeleryExecutor with 2 workers, metadata DB and MLflow
on PostgreSQL, Redis as the broker, SeaweedFS as the persistent S3 store
(``scripts/stack.py up --executor celery``), one stack for the module.

* a multi-week backfill of the demo churn model ends with the story the in-process tests
  assert for those weeks (tests/e2e/test_churn_weeks.py, data from three weeks before W1:
  cold start promoted, stable week skipped, drift week promoted; versions 1 and 2;
  champion 2), and task instances ran on
  both workers (hostnames recorded by Airflow, log files under each worker's name);
* state survives ``down`` + ``up``: raw data, artefacts, model versions and the champion
  are still there, and the next week's run starts from the same champion;
* that run (forced retrain) loses its worker to ``kill -9`` while training: the scheduler
  fails the orphaned try once its heartbeat times out, the retry runs on the other worker,
  the week ends correctly with exactly one model version for it, raw data untouched;
* the scheduler restarted mid-backfill: the backfill resumes and completes;
* two models backfilled at once: one version per trained week, one champion per model.

The stack reads its model specs from a copy of include/models/ plus two more churn-like
models (``RETRAIN_MODELS_DIR``), so the two-model test has models of its own.

Runs in the order the tests are written (one stack, growing history).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from include.demo import data as demo_data
from include.retrainer.config import load_spec
from include.retrainer.layout import RunLayout
from include.retrainer.storage import split_uri
from scripts import services

ROOT = Path(__file__).resolve().parents[2]
W1 = dt.date(2026, 1, 4)  # a Sunday, as in test_churn_weeks.py (same data generator and seed)
WEEKS = [W1 + dt.timedelta(weeks=i) for i in range(6)]
# As in test_churn_weeks.py, data begins three weeks before W1: the cold start's 4-week window is
# full, so week 2 is a stable week (a cold start on 7 days would be retrained at week 2 for the
# data growth alone).
HISTORY = W1 - dt.timedelta(weeks=3)
DAG_ID = "retrain_churn"

pytestmark = pytest.mark.timeout(2400)


def _interval(start: dt.date) -> tuple[dt.datetime, dt.datetime]:
    s = dt.datetime.combine(start, dt.time(0), dt.UTC)
    return s, s + dt.timedelta(weeks=1)


EXTRA_MODELS = ("churn_b", "churn_c")


def models_dir(folder: Path) -> Path:
    """include/models + include/suites, plus churn-like models reading their own raw prefix."""
    import shutil

    shutil.copytree(ROOT / "include" / "models", folder / "models")
    shutil.copytree(ROOT / "include" / "suites", folder / "suites")
    text = (ROOT / "include" / "models" / "churn.yaml").read_text()
    for name in EXTRA_MODELS:
        spec = text.replace("name: churn\n", f"name: {name}\n", 1).replace(
            "  prefix: churn\n", f"  prefix: {name}\n", 1
        )
        assert f"name: {name}" in spec and f"prefix: {name}" in spec
        (folder / "models" / f"{name}.yaml").write_text(spec)
    return folder / "models"


class CeleryStack:
    """Drives scripts/stack.py in its own local dir, stack id and ports."""

    def __init__(self, folder: Path):
        self.models = models_dir(folder)
        self.local = folder / "local"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "RETRAIN_", "AWS_ENDPOINT"))
        }
        self.env.update(
            {
                "PYTHONPATH": str(ROOT),
                "RETRAIN_LOCAL_DIR": str(self.local),
                "RETRAIN_STACK_ID": f"retrain_t{uuid.uuid4().hex[:10]}",
                "RETRAIN_S3_PORT": str(services.free_port()),
                "RETRAIN_MLFLOW_PORT": str(services.free_port()),
                "RETRAIN_AIRFLOW_PORT": str(services.free_port()),
                "RETRAIN_WORKER_CONCURRENCY": "2",
                "OMP_NUM_THREADS": "1",
                # A task whose worker died is failed (and retried) after this many seconds.
                "RETRAIN_TI_HEARTBEAT_TIMEOUT": "30",
                "RETRAIN_MODELS_DIR": str(self.models),
            }
        )
        self.s3_endpoint = f"http://127.0.0.1:{self.env['RETRAIN_S3_PORT']}"
        self.mlflow_uri = f"http://127.0.0.1:{self.env['RETRAIN_MLFLOW_PORT']}"
        self.airflow_url = f"http://127.0.0.1:{self.env['RETRAIN_AIRFLOW_PORT']}"

    def cli(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "stack.py"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def up(self) -> str:
        result = self.cli("up", "--executor", "celery", "--workers", "2", "--no-demo")
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
        return result.stdout

    def api(self) -> services.AirflowApi:
        home = self.local / "airflow" / "simple_auth_manager_passwords.json.generated"
        return services.AirflowApi(self.airflow_url, json.loads(home.read_text())["admin"], patience=120)

    def s3(self):
        return services.s3_client(self.s3_endpoint)


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory):
    stack = CeleryStack(tmp_path_factory.mktemp("celery"))
    try:  # purged even when start-up fails or is interrupted half-way
        yield stack, stack.up()
    finally:
        purged = stack.cli("purge")
        assert purged.returncode == 0, purged.stdout[-3000:]


def _wait_dag(api: services.AirflowApi, dag_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while api.request("GET", f"/api/v2/dags/{dag_id}", ok=(200, 404))[0] != 200:
        assert time.monotonic() < deadline, f"{dag_id} not parsed after {timeout}s"
        time.sleep(1)


def backfill(
    api: services.AirflowApi,
    dag_id: str,
    first: dt.date,
    last: dt.date,
    conf: dict | None = None,
    max_active_runs: int = 1,
) -> None:
    api.request(
        "POST",
        "/api/v2/backfills",
        {
            "dag_id": dag_id,
            "from_date": _interval(first)[0].isoformat(),
            "to_date": _interval(last)[0].isoformat(),
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "completed",
            "run_backwards": False,
            "dag_run_conf": conf or {},
        },
        ok=(200, 201),
    )
    api.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, ok=(200,))


def finished_runs(api: services.AirflowApi, dag_id: str, starts: list[dt.date], timeout: float = 1500) -> dict:
    """Wait until the runs of these weeks ended; {week start: run}."""
    want = {_interval(s)[0] for s in starts}
    deadline = time.monotonic() + timeout
    while True:
        _, body = api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100", ok=(200,))
        done = {
            dt.datetime.fromisoformat(r["data_interval_start"].replace("Z", "+00:00")): r
            for r in body.get("dag_runs", [])
            if r.get("state") in ("success", "failed")
        }
        if want <= set(done):
            return {k.date(): v for k, v in done.items() if k in want}
        assert time.monotonic() < deadline, f"runs not finished after {timeout}s: {sorted(want - set(done))}"
        time.sleep(2)


def task_instances(api: services.AirflowApi, dag_id: str, run_id: str) -> list[dict]:
    return api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100", ok=(200,))[1][
        "task_instances"
    ]


def summary(s3, start: dt.date, spec_path: Path = ROOT / "include" / "models" / "churn.yaml") -> dict:
    spec = load_spec(spec_path)
    bucket, key = split_uri(RunLayout.of(spec, *_interval(start)).summary)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def raw_etags(s3) -> dict[str, str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="raw-data", Prefix="churn/")
    return {o["Key"]: o["ETag"] for p in pages for o in p.get("Contents", [])}


def test_startup_reports_every_part(celery_stack):
    stack, out = celery_stack
    for expected in (
        "PostgreSQL database",
        "Redis answers",
        "SeaweedFS accepts writes",
        "MLflow up",
        "Airflow healthy",
        "all 2 workers answer",
        "Celery stack ready",
    ):
        assert expected in out, out[-4000:]
    pids = {p.stem for p in (stack.local / "pids").glob("*.pid")}
    assert pids == {
        "seaweedfs",
        "mlflow",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "worker-1",
        "worker-2",
    }


def test_backfill_on_two_workers_matches_the_in_process_story(celery_stack):
    stack, _ = celery_stack
    s3 = stack.s3()
    frames = demo_data.generate_churn(HISTORY, days=21 + 7 * len(WEEKS), rows_per_day=2000, drift_start=WEEKS[2])
    demo_data.write_partitions(s3, "raw-data", "churn", frames)
    raw_before = raw_etags(s3)
    api = stack.api()
    _wait_dag(api, DAG_ID)
    backfill(api, DAG_ID, WEEKS[0], WEEKS[2])
    runs = finished_runs(api, DAG_ID, WEEKS[:3])
    assert [runs[w]["state"] for w in WEEKS[:3]] == ["success"] * 3

    # The story tests/e2e/test_churn_weeks.py asserts for these weeks on the embedded setup.
    s = [summary(s3, w) for w in WEEKS[:3]]
    assert [x["decision"] for x in s] == ["promoted", "skipped", "promoted"], [x["reasons"] for x in s]
    assert [x["challenger_version"] for x in s] == ["1", None, "2"]
    assert [(x["champion_version_before"], x["champion_version_after"]) for x in s] == [
        (None, "1"),
        ("1", "1"),
        ("1", "2"),
    ]
    assert all(x["dag_run_id"].startswith("backfill__") for x in s)

    from mlflow import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "2"
    assert sorted(str(v.version) for v in client.search_model_versions("name='churn'")) == ["1", "2"]

    # Tasks ran on both workers: Airflow recorded each worker's own hostname.
    hosts: dict[str, int] = {}
    for w in WEEKS[:3]:
        for ti in task_instances(api, DAG_ID, runs[w]["dag_run_id"]):
            if ti["state"] == "success":
                hosts[ti["hostname"]] = hosts.get(ti["hostname"], 0) + 1
    # (Tasks the scheduler completes itself, never sent to a worker, have no hostname.)
    assert {h for h in hosts if h} == {"worker-1", "worker-2"}, hosts
    # ... and the worker logs show the tasks they executed.
    logs = {n: (stack.local / "logs" / f"{n}.log").read_text(errors="replace") for n in ("worker-1", "worker-2")}
    for name, text in logs.items():
        assert "execute_workload" in text or "ExecuteTask" in text or DAG_ID in text, f"{name}: {text[-2000:]}"
        # Each worker imported the tasks' libraries once, before its pool forked (celery_config).
        preloaded = [ln for ln in text.splitlines() if "retrain: preloaded" in ln]
        assert preloaded and "not importable" not in preloaded[0] and "started thread" not in preloaded[0], name
    assert raw_etags(s3) == raw_before  # raw data untouched


def test_state_survives_a_restart_and_the_next_week_uses_the_same_champion(celery_stack):
    stack, _ = celery_stack
    s3 = stack.s3()
    raw_before = raw_etags(s3)
    week3 = summary(s3, WEEKS[2])
    down = stack.cli("down")
    assert down.returncode == 0, down.stdout[-3000:]
    assert not services.port_open(int(stack.env["RETRAIN_S3_PORT"]))
    stack.up()

    s3 = stack.s3()
    assert raw_etags(s3) == raw_before
    assert summary(s3, WEEKS[2]) == week3
    bucket, key = split_uri(week3["artifacts"]["predictions"])
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0

    from mlflow import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "2"
    # The champion's model files (artifacts proxied from SeaweedFS) still load.
    model_dir = client.download_artifacts(client.get_model_version("churn", "2").run_id, "", dst_path=None)
    assert Path(model_dir).exists()

    api = stack.api()
    _, runs = api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100", ok=(200,))
    assert sum(r["state"] == "success" for r in runs["dag_runs"]) >= 3  # Airflow's history kept too

    # The next week, retrained by force; its worker is killed (-9) while it trains.
    backfill(api, DAG_ID, WEEKS[3], WEEKS[3], conf={"force_retrain": True})
    run_id, victim = None, None
    deadline = time.monotonic() + 900
    while victim is None:
        assert time.monotonic() < deadline, "train_challenger never started"
        _, body = api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100", ok=(200,))
        for r in body["dag_runs"]:
            if r["data_interval_start"].startswith(str(WEEKS[3])):
                run_id = r["dag_run_id"]
                for ti in task_instances(api, DAG_ID, run_id):
                    if ti["task_id"] == "train_challenger" and ti["state"] == "running" and ti["hostname"]:
                        victim = ti["hostname"]
                    assert not (ti["task_id"] == "train_challenger" and ti["state"] == "success"), (
                        "train_challenger finished before it could be seen running"
                    )
        time.sleep(0.5)
    pid = int((stack.local / "pids" / f"{victim}.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    survivor = ({"worker-1", "worker-2"} - {victim}).pop()

    run = finished_runs(api, DAG_ID, [WEEKS[3]])[WEEKS[3]]
    assert run["state"] == "success"
    tis = {ti["task_id"]: ti for ti in task_instances(api, DAG_ID, run_id)}
    train = tis["train_challenger"]
    assert train["try_number"] >= 2 and train["hostname"] == survivor, train
    s4 = summary(s3, WEEKS[3])
    assert s4["champion_version_before"] == "2"
    assert s4["decision"] in ("promoted", "rejected"), s4["reasons"]
    assert s4["challenger_version"] == "3"
    # No orphan version: the killed try left none behind (versions 1, 2 and this week's 3).
    versions = client.search_model_versions("name='churn'")
    assert sorted(str(v.version) for v in versions) == ["1", "2", "3"]
    assert [v.tags.get("retrain.data_interval_start", "")[:10] for v in versions if str(v.version) == "3"] == [
        str(WEEKS[3])
    ]
    champ = str(client.get_model_version_by_alias("churn", "champion").version)
    assert champ == ("3" if s4["decision"] == "promoted" else "2") == s4["champion_version_after"]
    assert raw_etags(s3) == raw_before

    restarted = stack.cli("restart", victim)
    assert restarted.returncode == 0, restarted.stdout[-3000:]


def test_scheduler_restart_mid_backfill_resumes(celery_stack):
    stack, _ = celery_stack
    s3 = stack.s3()
    api = stack.api()
    # Two weeks at once on the two workers; the scheduler goes away while they run.
    backfill(api, DAG_ID, WEEKS[4], WEEKS[5], max_active_runs=2)
    deadline = time.monotonic() + 600
    while True:  # the first of the two runs is under way
        _, body = api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100", ok=(200,))
        if any(
            r["data_interval_start"].startswith(str(WEEKS[4])) and r["state"] == "running" for r in body["dag_runs"]
        ):
            break
        assert time.monotonic() < deadline, "the backfill never started"
        time.sleep(2)
    old_pid = int((stack.local / "pids" / "scheduler.pid").read_text())
    restarted = stack.cli("restart", "scheduler")
    assert restarted.returncode == 0, restarted.stdout[-3000:]
    assert int((stack.local / "pids" / "scheduler.pid").read_text()) != old_pid
    runs = finished_runs(api, DAG_ID, WEEKS[4:6])
    assert [runs[w]["state"] for w in WEEKS[4:6]] == ["success", "success"]
    for w in WEEKS[4:6]:
        assert summary(s3, w)["dag_run_id"].startswith("backfill__")


def test_two_models_backfilled_at_once(celery_stack):
    """Both models' backfills run together on the two workers: per model one version per
    trained week (no duplicates), one champion, promotions through the shared lease."""
    stack, _ = celery_stack
    s3 = stack.s3()
    api = stack.api()
    frames = demo_data.generate_churn(HISTORY, days=21 + 14, rows_per_day=2000)
    for name in EXTRA_MODELS:
        demo_data.write_partitions(s3, "raw-data", name, frames)
    for name in EXTRA_MODELS:
        _wait_dag(api, f"retrain_{name}")
    for name in EXTRA_MODELS:
        backfill(api, f"retrain_{name}", WEEKS[0], WEEKS[1])
    from mlflow import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    for name in EXTRA_MODELS:
        runs = finished_runs(api, f"retrain_{name}", WEEKS[:2])
        assert [runs[w]["state"] for w in WEEKS[:2]] == ["success", "success"], name
        s = [summary(s3, w, stack.models / f"{name}.yaml") for w in WEEKS[:2]]
        assert [x["decision"] for x in s] == ["promoted", "skipped"], (name, [x["reasons"] for x in s])
        versions = client.search_model_versions(f"name='{name}'")
        assert [str(v.version) for v in versions] == ["1"], name
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
        assert versions[0].tags["retrain.data_interval_start"].startswith(str(WEEKS[0]))
