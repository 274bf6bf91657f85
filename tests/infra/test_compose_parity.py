"""docker-compose.yaml and the native Celery stack (scripts/stack.py --executor celery) describe
the same topology: the same Airflow components with the same commands, the same AIRFLOW__*
settings (names; values where they do not depend on the network), the same connections,
the same Celery queue, and images pinned to the versions the native stack runs (the lock).

The compose side is read through the real Compose binary (``config --format json``), which
also validates the file offline; the native side is what stack.py itself would start.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import stack
from tests.infra.test_compose import compose_binary, run_compose

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"

#: Native component -> compose service.
COMPONENTS = {
    "api-server": "airflow-apiserver",
    "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor",
    "triggerer": "airflow-triggerer",
}
#: Settings only one side needs, and why.
NATIVE_ONLY = {
    "AIRFLOW__CORE__DAGS_FOLDER": "the image's default /opt/airflow/dags is where compose mounts dags/",
    "AIRFLOW__CORE__PLUGINS_FOLDER": "the image's default /opt/airflow/plugins is where compose mounts plugins/",
    "AIRFLOW__CORE__PARALLELISM": "sized by the native stack's --workers",
    "AIRFLOW__API__HOST": "a container listens on all its interfaces; the native stack on 127.0.0.1 only",
    "AIRFLOW__API__PORT": "a container uses the default 8080; the native stack a free port",
    "AIRFLOW__API__WORKERS": "one uvicorn worker keeps the native stack small on a shared machine",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "faster pick-up of new specs during local use",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": "the image's default /opt/airflow/logs is the compose log volume",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "processes share one host natively: a free port each",
    "AIRFLOW_CONN_AIRFLOW_API": "run notes through the REST API: not configured in compose yet",
}
COMPOSE_ONLY = {
    "AIRFLOW__CORE__AUTH_MANAGER": "the default (SimpleAuthManager) natively",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "natively the default file in AIRFLOW_HOME",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "the container healthcheck polls it; natively /api/v2/monitor/health",
    "AIRFLOW_CONN_S3_DATA": "natively the row loaded from airflow_settings.yaml",
    "AIRFLOW_CONN_MLFLOW_DEFAULT": "natively the row loaded from airflow_settings.yaml",
}
#: Values that must be identical on both sides (they do not depend on hosts or secrets).
SAME_VALUE = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__HOSTNAME_CALLABLE",
    "AIRFLOW__OPERATORS__DEFAULT_QUEUE",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
)


@pytest.fixture(scope="module")
def compose_services(tmp_path_factory) -> dict[str, Any]:
    env_file = tmp_path_factory.mktemp("parity") / "test.env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    result = run_compose(compose_binary(), env_file, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


@pytest.fixture(scope="module")
def native_env(tmp_path_factory, monkeypatch_module) -> dict[str, str]:
    local = tmp_path_factory.mktemp("native-local")
    monkeypatch_module.setattr(stack, "LOCAL", local)
    (local / "airflow").mkdir()
    return stack.celery_env()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _airflow_keys(env: dict[str, str]) -> set[str]:
    return {k for k in env if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}


def test_same_airflow_components_with_the_same_commands(compose_services):
    assert set(stack.CELERY_SERVICES) == set(COMPONENTS)
    for native, service in COMPONENTS.items():
        assert compose_services[service]["command"] == [native], service
    worker = compose_services["airflow-worker"]["command"]
    assert worker[:2] == ["celery", "worker"]
    # Every native worker is the same command; its queue is the compose worker's queue.
    native_worker = stack.worker_command("worker-1")
    assert native_worker[1:3] == ["celery", "worker"]
    assert native_worker[native_worker.index("--queues") + 1] == stack.CELERY_QUEUE


def test_same_airflow_settings_names(compose_services, native_env):
    native = _airflow_keys(native_env) - set(NATIVE_ONLY)
    for service in (*COMPONENTS.values(), "airflow-worker", "airflow-init"):
        compose = _airflow_keys(compose_services[service]["environment"]) - set(COMPOSE_ONLY)
        assert compose == native, (
            f"{service}: only in compose {sorted(compose - native)}, only native {sorted(native - compose)}"
        )
    # The exceptions are real exceptions (a stale entry would hide a new difference).
    assert set(NATIVE_ONLY) <= _airflow_keys(native_env)
    assert set(COMPOSE_ONLY) <= _airflow_keys(compose_services["airflow-worker"]["environment"])


def test_same_values_for_topology_settings(compose_services, native_env):
    env = compose_services["airflow-worker"]["environment"]
    for key in SAME_VALUE:
        assert env[key] == native_env[key], key
    assert native_env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == stack.CELERY_QUEUE
    # Broker on Redis, results and metadata on PostgreSQL, on both sides.
    for e in (env, native_env):
        assert e["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert e["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
        assert e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert e["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"].endswith(":")
        assert e["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
    # The hostname callable exists and works without the per-worker variable (containers).
    from scripts.airflow_hostname import hostname

    module, _, func = native_env["AIRFLOW__CORE__HOSTNAME_CALLABLE"].rpartition(".")
    assert (module, func) == ("scripts.airflow_hostname", "hostname") and hostname()


def test_same_connections(compose_services):
    settings = yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())
    native_ids = {c["conn_id"] for c in settings["airflow"]["connections"]}
    env = compose_services["airflow-worker"]["environment"]
    compose_ids = {k.removeprefix("AIRFLOW_CONN_").lower() for k in env if k.startswith("AIRFLOW_CONN_")}
    assert compose_ids == native_ids
    # airflow-init loads the same file the native stack loads.
    assert "scripts.load_airflow_settings" in " ".join(compose_services["airflow-init"]["command"])


def test_images_pinned_to_the_versions_the_native_stack_runs(compose_services):
    lock = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    airflow_images = {compose_services[s]["image"] for s in (*COMPONENTS.values(), "airflow-worker", "airflow-init")}
    assert airflow_images == {f"retrain-orchestrator/airflow:{lock['apache-airflow']}"}
    assert f"apache/airflow:{lock['apache-airflow']}-python3.11" in (ROOT / "docker/airflow/Dockerfile").read_text()
    assert compose_services["mlflow"]["image"] == f"retrain-orchestrator/mlflow:{lock['mlflow']}"
    assert re.search(
        rf"mlflow(\[[^\]]*\])?=={re.escape(lock['mlflow'])}",
        (ROOT / "docker/mlflow/Dockerfile").read_text() + (ROOT / "requirements.txt").read_text(),
    )
    for service in ("postgres", "redis"):
        image = compose_services[service]["image"]
        assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)*", image), f"{service} image not pinned: {image}"
    # The Celery provider and its celery pin are the same package set the image installs.
    requirements = (ROOT / "requirements.txt").read_text()
    for name in ("apache-airflow-providers-celery", "celery"):
        assert f"{name}=={lock[name]}" in requirements.splitlines(), name
