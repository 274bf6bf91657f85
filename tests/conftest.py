"""Session fixtures: real services, started once, shared by every test that asks for them.

The environment is set at import time, before anything imports Airflow, so Airflow reads
a private AIRFLOW_HOME (SQLite metadata DB) and the connections point at the test servers.
Nothing here is started unless a test requests the fixture: unit tests stay fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "plugins"):  # as Airflow does for plugins/; the root holds `include`
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from scripts import services  # noqa: E402

_STATE = Path(tempfile.mkdtemp(prefix="retrain-tests-"))

# The stack's environment (scripts/services.py), plus what only the tests need.
_ENV = {
    **services.service_env(_STATE / "airflow"),
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
}
os.environ.update(_ENV)
os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def state_dir() -> Path:
    return _STATE


# Ports are chosen when a server starts (not at import): a port picked early but bound late
# could be handed to another server in between, whose /health would then answer for ours.
@pytest.fixture(scope="session")
def moto_server(state_dir):
    """A real moto S3 server over HTTP with the project's buckets; the connection s3_data points at it."""
    port = services.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = services.start_moto(port, state_dir / "logs" / "moto.log")
    services.create_buckets(endpoint)
    os.environ["AIRFLOW_CONN_S3_DATA"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "test",
            "password": "test",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )
    yield endpoint
    services.stop_group(proc.pid, grace=4)


@pytest.fixture(scope="session")
def s3(moto_server):
    return services.s3_client(moto_server)


@pytest.fixture(scope="session")
def mlflow_server(moto_server, state_dir):
    """A real MLflow tracking server: SQLite backend, artifacts proxied into moto."""
    port = services.free_port()
    proc = services.start_mlflow(
        port, state_dir / "mlflow" / "mlflow.db", moto_server, state_dir / "logs" / "mlflow.log"
    )
    os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    )
    yield f"http://127.0.0.1:{port}"
    services.stop_group(proc.pid, grace=6)


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata DB (SQLite) in the private AIRFLOW_HOME."""
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    result = subprocess.run([airflow, "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    yield os.environ["AIRFLOW_HOME"]


_real_sleep = time.sleep


#: Task states in which dag.test() waits for time to pass (a retry delay, a reschedule, a
#: trigger): its 1 s poll is kept then, so the loop does not spin through the wait.
_WAITING_STATES = frozenset({"up_for_retry", "up_for_reschedule", "deferred"})


def _short_dag_test_polls(seconds: float) -> None:
    """``dag.test()`` sleeps a fixed 1 s whenever no task is runnable: once per layer of
    ``skipped``/``upstream_failed`` propagation (a branch not taken, a failed task), i.e. some
    seconds per run. Only those polls are shortened: its wait for a human's answer (tasks
    parked in ``awaiting_input``) and its waits for a retry delay, a reschedule or a trigger
    keep their 1 s, and every other sleep (boto retries, locks, servers' own loops) is
    untouched. It reads the loop's own locals (``awaiting_input_tis``, ``ids_unrunnable``):
    were Airflow to rename them, the polls would merely stay at 1 s or shorten."""
    frame = sys._getframe(1)
    if frame.f_globals.get("__name__", "") == "airflow.sdk.definitions.dag" and not frame.f_locals.get(
        "awaiting_input_tis"
    ):
        unrunnable = frame.f_locals.get("ids_unrunnable") or ()
        states = {str(getattr(ti.state, "value", ti.state)) for ti in unrunnable}
        if not states & _WAITING_STATES:
            seconds = min(seconds, 0.05)
    _real_sleep(seconds)


@pytest.fixture(scope="session", autouse=True)
def short_dag_test_polls():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "sleep", _short_dag_test_polls)
        yield
