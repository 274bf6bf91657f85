"""The embedded local stack: moto S3, MLflow and Airflow on 127.0.0.1, plus the demo.

    python scripts/stack.py up [--no-demo] [--db sqlite|postgres]   # fresh stack (+ demo runs)
    python scripts/stack.py up --executor celery [--workers 2]      # production topology, persistent
    python scripts/stack.py down                                    # stop every process it started
    python scripts/stack.py purge                                   # down + delete the Celery stack's state
    python scripts/stack.py status

The Celery topology (``--executor celery``) runs the parts of docker-compose.yaml as native
processes: metadata DB and MLflow backend store in their own PostgreSQL databases on
127.0.0.1:5432 (created if absent, never emptied by ``up``), Redis 127.0.0.1:6379 as the
Celery broker (DB ``RETRAIN_REDIS_DB``, keys prefixed with the stack id), Celery results in
PostgreSQL, SeaweedFS as the persistent S3 store (data under .local/seaweedfs), MLflow,
api-server, scheduler, dag-processor, triggerer and N ``airflow celery worker`` processes,
each worker with its own hostname, working directory and TMPDIR. ``down`` then ``up`` keeps
every object, model version and run; ``purge`` deletes them.

Every phase prints one line ``[HH:MM:SS +ELAPSEDs] phase  what happened``. Readiness waits
poll health endpoints until ``RETRAIN_READY_TIMEOUT`` seconds (default 600) and say what
they wait for; the demo waits up to ``RETRAIN_DEMO_TIMEOUT`` (default 3600).

State lives under .local/ (``RETRAIN_LOCAL_DIR``) and is reset by ``up``: the S3 stand-in
keeps objects in memory only, so S3, MLflow and Airflow are started empty together rather
than leaving MLflow or Airflow remembering models and runs whose S3 objects are gone.
``up`` on a stack that is already running and healthy changes nothing and says so.
The endpoints of the running stack are written to .local/stack.json and .local/stack.env
(read by the CLI tools in scripts/); .local/airflow/airflow.cfg carries the stack's Airflow
settings, so ``AIRFLOW_HOME=.local/airflow airflow ...`` works from any shell.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import services  # noqa: E402

LOCAL = services.local_dir()
PIDS = LOCAL / "pids"
LOGS = LOCAL / "logs"
S3_PORT = int(os.environ.get("RETRAIN_S3_PORT", "9000"))
MLFLOW_PORT = int(os.environ.get("RETRAIN_MLFLOW_PORT", "5000"))
AIRFLOW_PORT = int(os.environ.get("RETRAIN_AIRFLOW_PORT", "8080"))
READY_TIMEOUT = float(os.environ.get("RETRAIN_READY_TIMEOUT", "600"))
DEMO_TIMEOUT = float(os.environ.get("RETRAIN_DEMO_TIMEOUT", "3600"))
DEMO_WEEKS = int(os.environ.get("RETRAIN_DEMO_WEEKS", "4"))  # cold start, 2 stable weeks, the drift week
DEMO_MODELS = tuple(m.strip() for m in os.environ.get("RETRAIN_DEMO_MODELS", "churn,tickets").split(",") if m.strip())
DEMO_DRIFT_WEEK = 4
# Rows per day: churn as before; tickets trains a random forest, so fewer rows keep it quick.
DEMO_ROWS = {"churn": 2000, "tickets": 400}
PG_URL = os.environ.get("RETRAIN_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/retrain_stack_airflow")

# --- Celery topology (see the module doc) ---
#: Names the stack's databases and Redis keys, so stacks of several checkouts never collide.
STACK_ID = (
    os.environ.get("RETRAIN_STACK_ID") or "retrain_" + hashlib.sha1(str(LOCAL.resolve()).encode()).hexdigest()[:8]
)
PG_SERVER = os.environ.get("RETRAIN_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432").rstrip("/")
REDIS_URL = os.environ.get("RETRAIN_REDIS_URL") or f"redis://127.0.0.1:6379/{os.environ.get('RETRAIN_REDIS_DB', '3')}"
WORKER_CONCURRENCY = int(os.environ.get("RETRAIN_WORKER_CONCURRENCY", "2"))
CELERY_QUEUE = "default"  # [operators] default_queue; the queue every worker serves
# Airflow's default (300 s): how long a task whose worker died stays "running" before the
# scheduler fails it and schedules its retry.
TI_HEARTBEAT_TIMEOUT = os.environ.get("RETRAIN_TI_HEARTBEAT_TIMEOUT", "300")
CELERY_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")

_T0 = time.monotonic()


_SAY_LOCK = threading.Lock()


def say(phase: str, msg: str) -> None:
    """One progress line: wall clock, seconds since the command started, phase, message.
    Parts that start side by side (threads) print whole lines, their seconds in order."""
    with _SAY_LOCK:
        elapsed = time.monotonic() - _T0
        print(f"[{dt.datetime.now().strftime('%H:%M:%S')} +{elapsed:5.0f}s] {phase:<8} {msg}", flush=True)


def airflow_home() -> Path:
    return LOCAL / "airflow"


def jwt_secret() -> str:
    secret_file = airflow_home() / ".jwt_secret"
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_hex(32))  # 64 characters
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def db_url(db: str) -> str:
    if db == "postgres":
        return PG_URL
    # timeout=60: Python's default SQLite busy timeout is 5 s; on a loaded machine a writer
    # (a backfill created from the CLI while the scheduler writes) waits longer than that and
    # fails with "database is locked". In the URL, so airflow.cfg gives every CLI call the same.
    return f"sqlite:///{airflow_home() / 'airflow.db'}?timeout=60"


_ACTIVE_DB: str | None = None  # set by `up`; otherwise the running stack's choice


_ACTIVE_EXECUTOR: str | None = None


def current_executor() -> str:
    return _ACTIVE_EXECUTOR or str(services.read_state().get("executor") or "local")


def current_db() -> str:
    return _ACTIVE_DB or str(services.read_state().get("db") or os.environ.get("RETRAIN_DB") or "sqlite")


def airflow_env(db: str | None = None) -> dict[str, str]:
    db = db or current_db()
    bin_dir = str(Path(sys.executable).parent)
    notes_password = notes_user_password(airflow_home())
    env = {
        **services.service_env(airflow_home()),
        # standalone spawns `airflow` subprocesses: the venv must be on PATH.
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url(db),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(AIRFLOW_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{AIRFLOW_PORT}",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        "NO_PROXY": "127.0.0.1,localhost",
        # The connections in airflow_settings.yaml follow the ports chosen here.
        "S3_DATA_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
        "MLFLOW_CONN_PORT": str(MLFLOW_PORT),
        # Links in the UI, the report and notifications open MLflow at this address.
        "RETRAIN_MLFLOW_PUBLIC_URL": f"http://127.0.0.1:{MLFLOW_PORT}",
        # The summarize task sets each run's note through the REST API as this user (role "user").
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{NOTES_USER}:user",
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": AIRFLOW_PORT,
                "schema": "http",
                "login": NOTES_USER,
                "password": notes_password,
            }
        ),
    }
    return env


NOTES_USER = "retrain_notes"


def notes_user_password(home: Path) -> str:
    """The run-note user's password, seeded into SimpleAuthManager's password file before it
    starts (it generates passwords only for users missing from that file)."""
    path = home / "simple_auth_manager_passwords.json.generated"
    passwords = {}
    if path.exists():
        try:
            passwords = json.loads(path.read_text() or "{}")
        except ValueError:
            passwords = {}
    if NOTES_USER not in passwords:
        passwords[NOTES_USER] = secrets.token_urlsafe(24)
        path.write_text(json.dumps(passwords) + "\n")
        path.chmod(0o600)
    return passwords[NOTES_USER]


def celery_db_urls() -> dict[str, str]:
    return {"airflow": f"{PG_SERVER}/{STACK_ID}_airflow", "mlflow": f"{PG_SERVER}/{STACK_ID}_mlflow"}


def _stack_secret(name: str, make) -> str:
    """A secret kept in AIRFLOW_HOME across restarts (the Celery stack's DB outlives processes:
    the Fernet key must stay the one its connections were encrypted with)."""
    path = airflow_home() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def celery_env() -> dict[str, str]:
    """The environment of every process of the Celery topology (docker-compose.yaml uses the
    same AIRFLOW__* names; tests/infra/test_compose_parity.py compares them)."""
    from cryptography.fernet import Fernet

    urls = celery_db_urls()
    env = airflow_env("postgres")
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(max(4, 2 * WORKER_CONCURRENCY * max(1, _ACTIVE_WORKERS))),
            "AIRFLOW__CORE__FERNET_KEY": _stack_secret(".fernet_key", lambda: Fernet.generate_key().decode()),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{AIRFLOW_PORT}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.airflow_hostname.hostname",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"],
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + urls["airflow"],
            # Stacks sharing one Redis (other checkouts, CI jobs) must not see each other's queues.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"{STACK_ID}:",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": CELERY_QUEUE,
            # Airflow's Celery settings; each worker also preloads the tasks' libraries.
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "retrain_ops.celery_config.CELERY_CONFIG",
            "AIRFLOW__API__SECRET_KEY": _stack_secret(".api_secret_key", lambda: secrets.token_hex(32)),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": TI_HEARTBEAT_TIMEOUT,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home() / "logs"),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(services.free_port()),
            "S3_DATA_ACCESS_KEY_ID": os.environ.get("S3_DATA_ACCESS_KEY_ID", "test"),
            "S3_DATA_SECRET_ACCESS_KEY": os.environ.get("S3_DATA_SECRET_ACCESS_KEY", "test"),
            # Run metrics over StatsD (README "Monitoring"): off unless AIRFLOW_STATSD_ON=true, as
            # in docker-compose.yaml; point RETRAIN_STATSD_HOST/PORT at a statsd-exporter.
            "AIRFLOW__METRICS__STATSD_ON": os.environ.get("AIRFLOW_STATSD_ON", "false"),
            "AIRFLOW__METRICS__STATSD_HOST": os.environ.get("RETRAIN_STATSD_HOST", "127.0.0.1"),
            "AIRFLOW__METRICS__STATSD_PORT": os.environ.get("RETRAIN_STATSD_PORT", "9125"),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        }
    )
    return env


_ACTIVE_WORKERS = 0


def write_airflow_cfg(db: str) -> None:
    """The stack's settings in AIRFLOW_HOME/airflow.cfg, so that a plain
    ``AIRFLOW_HOME=.local/airflow airflow dags list-runs ...`` talks to this stack."""
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    celery = current_executor() == "celery"
    env = celery_env() if celery else {}
    text = f"""# Written by scripts/stack.py for the {"Celery" if celery else "embedded"} stack; recreated by every `make up`.
[core]
dags_folder = {ROOT / "dags"}
plugins_folder = {ROOT / "plugins"}
load_examples = False
executor = {"CeleryExecutor" if celery else "LocalExecutor"}
parallelism = {env.get("AIRFLOW__CORE__PARALLELISM", 4)}
dags_are_paused_at_creation = True
"""
    if celery:
        text += f"""fernet_key = {env["AIRFLOW__CORE__FERNET_KEY"]}
execution_api_server_url = {env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]}
hostname_callable = {env["AIRFLOW__CORE__HOSTNAME_CALLABLE"]}

[celery]
broker_url = {env["AIRFLOW__CELERY__BROKER_URL"]}
result_backend = {env["AIRFLOW__CELERY__RESULT_BACKEND"]}
celery_config_options = {env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]}

[celery_broker_transport_options]
global_keyprefix = {env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"]}
visibility_timeout = {env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]}
"""
    text += f"""
[database]
sql_alchemy_conn = {env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or db_url(db)}

[api]
host = 127.0.0.1
port = {AIRFLOW_PORT}
base_url = http://127.0.0.1:{AIRFLOW_PORT}

[api_auth]
jwt_secret = {jwt_secret()}

[dag_processor]
refresh_interval = 30

[logging]
base_log_folder = {home / "logs"}
"""
    cfg = home / "airflow.cfg"
    cfg.write_text(text)
    cfg.chmod(0o600)  # holds the JWT secret


def run_airflow(*args: str, check: bool = True, retries: int = 4) -> subprocess.CompletedProcess:
    """Run an ``airflow`` CLI command; retry with backoff when the metadata DB was locked."""
    cmd = [str(Path(sys.executable).parent / "airflow"), *args]
    delay = 2.0
    env = celery_env() if current_executor() == "celery" else airflow_env()
    for attempt in range(retries + 1):
        result = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, cwd=ROOT)
        if result.returncode == 0 or not services.is_db_locked(result.stdout + result.stderr) or attempt == retries:
            break
        say("db", f"`airflow {args[0]}`: database is locked; retrying in {delay:.0f}s")
        time.sleep(delay)
        delay *= 2
    if check and result.returncode != 0:
        raise RuntimeError(
            f"`airflow {' '.join(args)}` failed:\n{(result.stdout or '')[-2000:]}\n{(result.stderr or '')[-2000:]}"
        )
    return result


def write_pid(name: str, proc: subprocess.Popen) -> None:
    PIDS.mkdir(parents=True, exist_ok=True)
    (PIDS / f"{name}.pid").write_text(str(proc.pid))


def pids() -> dict[str, int]:
    out = {}
    if PIDS.is_dir():
        for f in PIDS.glob("*.pid"):
            try:
                out[f.stem] = int(f.read_text().strip())
            except ValueError:
                pass
    return out


def alive(pid: int) -> bool:
    try:
        os.killpg(os.getpgid(pid), 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


# Seconds from SIGINT to SIGKILL per part (services.SEAWEED_STOP_GRACE says why SeaweedFS's is long).
STOP_GRACE = {"seaweedfs": services.SEAWEED_STOP_GRACE}


def down(quiet: bool = False) -> int:
    running = pids()
    # The scheduler first (nothing new is queued), then workers (warm shutdown) and the other
    # Airflow parts, then MLflow and storage last.
    # Stopped in three waves; within a wave in parallel (each part takes seconds to exit).
    wave = {**{n: 0 for n in ("scheduler", "airflow")}, **{n: 2 for n in ("mlflow", "moto", "seaweedfs")}}
    for step in (0, 1, 2):
        names = [n for n in sorted(running) if wave.get(n, 1) == step]
        threads = []
        for name in names:
            if alive(running[name]):
                say("stop", f"stopping {name} (process group {running[name]})")
                threads.append(
                    threading.Thread(
                        target=services.stop_group, args=(running[name],), kwargs={"grace": STOP_GRACE.get(name, 20)}
                    )
                )
                threads[-1].start()
        for t in threads:
            t.join()
        for name in names:
            (PIDS / f"{name}.pid").unlink(missing_ok=True)
    left = [n for n, p in running.items() if alive(p)]
    if left:
        say("stop", f"WARNING: still running: {', '.join(left)}")
        return 1
    state = services.read_state()
    if state:
        services.write_state({**state, "running": False})
    if not quiet:
        say("stop", "stack stopped; no process left behind" if running else "nothing was running")
    return 0


@contextlib.contextmanager
def stack_lock() -> Iterator[None]:
    """One ``up`` at a time: a second concurrent ``make run`` fails at once instead of racing."""
    LOCAL.mkdir(parents=True, exist_ok=True)
    with open(LOCAL / "stack.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another `make run`/`make up` is using {LOCAL} right now; wait for it or run `make stop`"
            ) from None
        yield


def demo_weeks(now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The last DEMO_WEEKS complete Sunday-to-Sunday weeks (Airflow's @weekly) before ``now``."""
    today = now.astimezone(dt.UTC).date()
    last_sunday = today - dt.timedelta(days=(today.weekday() + 1) % 7)
    end = dt.datetime.combine(last_sunday, dt.time(0), dt.UTC)
    starts = [end - dt.timedelta(weeks=DEMO_WEEKS - i) for i in range(DEMO_WEEKS)]
    return [(s, s + dt.timedelta(weeks=1)) for s in starts]


def seed_demo(endpoint: str, weeks: list[tuple[dt.datetime, dt.datetime]]) -> None:
    from include.demo import data as demo_data

    first = weeks[0][0].date()
    drift_start = weeks[min(DEMO_DRIFT_WEEK, len(weeks)) - 1][0].date()
    client = services.s3_client(endpoint)
    for model in DEMO_MODELS:
        generate = {"churn": demo_data.generate_churn, "tickets": demo_data.generate_tickets}[model]
        # tickets' drift would force a retrain of a forest every week: keep that model stable.
        frames = generate(
            first,
            days=7 * len(weeks),
            rows_per_day=DEMO_ROWS[model],
            drift_start=drift_start if model == "churn" else None,
        )
        demo_data.write_partitions(client, "raw-data", model, frames, fmt="csv" if model == "tickets" else "parquet")
        drift = f", drift from week {DEMO_DRIFT_WEEK} ({drift_start})" if model == "churn" else ""
        say(
            "seed",
            f"{model}: {len(frames)} daily partitions x {DEMO_ROWS[model]} rows "
            f"s3://raw-data/{model}/dt={first}..{max(frames)}{drift}",
        )


def wait_for_dags(api: services.AirflowApi, dag_ids: list[str], timeout: float) -> None:
    """Until the dag-processor has parsed and serialized every DAG the demo needs."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    missing = list(dag_ids)
    reserialized = False
    next_note = 30.0
    while missing:
        missing = [d for d in missing if api.request("GET", f"/api/v2/dags/{d}", ok=(200, 404))[0] != 200]
        if not missing:
            break
        waited = time.monotonic() - started
        if waited > 45 and not reserialized:
            # Normally parsed within one refresh interval; on a crowded machine force it.
            say("dags", f"still not parsed after {waited:.0f}s: forcing `airflow dags reserialize`")
            run_airflow("dags", "reserialize", check=False)
            reserialized = True
        if time.monotonic() > deadline:
            errors = api.request("GET", "/api/v2/importErrors", ok=(200,))[1].get("import_errors", [])
            detail = "; ".join(f"{e.get('filename')}: {str(e.get('stack_trace', ''))[-300:]}" for e in errors[:3])
            raise TimeoutError(
                f"DAG(s) {', '.join(missing)} not parsed after {timeout:.0f}s "
                f"(RETRAIN_READY_TIMEOUT){'; import errors: ' + detail if detail else ''}"
            )
        if waited >= next_note:
            say(
                "dags",
                f"still waiting for the dag-processor to parse {', '.join(missing)} ({waited:.0f}s of up to {timeout:.0f}s)",
            )
            next_note += 30
        time.sleep(2)


def read_summary(client, model: str, start: dt.datetime, end: dt.datetime) -> dict | None:
    from include.retrainer.config import load_spec
    from include.retrainer.layout import RunLayout
    from include.retrainer.storage import split_uri

    spec = load_spec(ROOT / "include" / "models" / f"{model}.yaml")
    bucket, key = split_uri(RunLayout.of(spec, start, end).summary)
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        return None
    except Exception:
        return None


def outcome_text(summary: dict | None, state: str) -> str:
    if summary is None:
        return f"no summary (run {state})"
    champ = (
        f"champion {summary.get('champion_version_before') or '-'} -> {summary.get('champion_version_after') or '-'}"
    )
    return f"{summary.get('decision', '?')} ({champ}; run {state})"


def _parse_ts(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def run_demo(api: services.AirflowApi, endpoint: str) -> list[dict]:
    weeks = demo_weeks(dt.datetime.now(dt.UTC))
    seed_demo(endpoint, weeks)
    dag_ids = [f"retrain_{m}" for m in DEMO_MODELS]
    t = time.monotonic()
    wait_for_dags(api, dag_ids, READY_TIMEOUT)
    say("dags", f"parsed: {', '.join(dag_ids)} ({time.monotonic() - t:.0f}s)")
    frm, to = weeks[0][0].isoformat(), weeks[-1][0].isoformat()
    for dag_id in dag_ids:
        # Through the API server, not a second CLI process: one writer to the metadata DB.
        api.request(
            "POST",
            "/api/v2/backfills",
            {
                "dag_id": dag_id,
                "from_date": frm,
                "to_date": to,
                "max_active_runs": 1,
                "reprocess_behavior": "completed",
                "run_backwards": False,
                "dag_run_conf": {},
            },
            ok=(200, 201),
        )
        api.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, ok=(200,))
        say("backfill", f"{dag_id}: {len(weeks)} weekly runs {frm[:10]} .. {weeks[-1][1].date()}, one at a time")

    client = services.s3_client(endpoint)
    by_start = {w[0]: w for w in weeks}
    reported: set[tuple[str, dt.datetime]] = set()
    results: list[dict] = []
    deadline = time.monotonic() + DEMO_TIMEOUT
    total = len(weeks) * len(dag_ids)
    last_note = time.monotonic()
    while len(reported) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"demo runs not finished after {DEMO_TIMEOUT:.0f}s (RETRAIN_DEMO_TIMEOUT): {len(reported)}/{total} done"
            )
        for dag_id, model in zip(dag_ids, DEMO_MODELS):
            _, body = api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=logical_date", ok=(200,))
            for run in body.get("dag_runs", []):
                start = _parse_ts(run.get("data_interval_start"))
                if start not in by_start or (model, start) in reported or run.get("state") not in ("success", "failed"):
                    continue
                reported.add((model, start))
                summary = read_summary(client, model, *by_start[start])
                began, ended = _parse_ts(run.get("start_date")), _parse_ts(run.get("end_date"))
                took = f"{(ended - began).total_seconds():.0f}s" if began and ended else "?"
                index = sorted(by_start).index(start) + 1
                say(
                    "week",
                    f"{model} week {index}/{len(weeks)} ({start.date()}): {outcome_text(summary, run['state'])} in {took}",
                )
                results.append(
                    {
                        "model": model,
                        "week": index,
                        "data_interval_start": start.isoformat(),
                        "state": run["state"],
                        **(summary or {"decision": "(no summary)", "reasons": []}),
                    }
                )
                last_note = time.monotonic()
        if time.monotonic() - last_note > 60 and len(reported) < total:
            say("week", f"waiting for the next run to finish ({len(reported)}/{total} done)")
            last_note = time.monotonic()
        if len(reported) < total:
            time.sleep(3)
    say(
        "demo",
        f"demo runs finished: {len(reported)}/{total} "
        f"({', '.join(f'{m}: {sum(r[0] == m for r in reported)}' for m in DEMO_MODELS)})",
    )
    return sorted(results, key=lambda r: (r["model"], r["data_interval_start"]))


def _healthy(url: str) -> bool:
    try:
        services.wait_http(url, 3)
        return True
    except (TimeoutError, RuntimeError):
        return False


def already_running() -> bool:
    running = pids()
    if not running:
        return False
    state = services.read_state()
    if set(running) >= {"moto", "mlflow", "airflow"} and all(alive(p) for p in running.values()) and state:
        urls = [
            f"{state['s3_endpoint']}/moto-api/",
            f"{state['mlflow_tracking_uri']}/health",
            f"{state['airflow_url']}/api/v2/monitor/health",
        ]
        if all(_healthy(u) for u in urls):
            return True
    if any(alive(p) for p in running.values()):
        say("state", "a previous stack is only partly running: stopping what is left and starting fresh")
    down(quiet=True)
    return False


def prepare_db(db: str) -> None:
    if db == "postgres":
        created = services.recreate_postgres_db(PG_URL)
        say("db", f"PostgreSQL database {created} (re)created empty at {PG_URL.split('@')[-1]}")
    run_airflow("db", "migrate")
    if db == "sqlite":
        # WAL: readers (API, UI) no longer block the scheduler's writes. Persistent in the file.
        with sqlite3.connect(airflow_home() / "airflow.db", timeout=60) as conn:
            conn.execute("PRAGMA journal_mode=WAL")


def _load_airflow_settings(env: dict[str, str]) -> None:
    loaded = subprocess.run(
        [sys.executable, "-m", "scripts.load_airflow_settings", str(ROOT / "airflow_settings.yaml")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if loaded.returncode != 0:
        raise RuntimeError(f"loading airflow_settings.yaml failed:\n{loaded.stdout}\n{loaded.stderr}")


def _prepare_airflow_db(db: str) -> float:
    """airflow.cfg, the migrated metadata DB and airflow_settings.yaml's connections; seconds taken."""
    t = time.monotonic()
    write_airflow_cfg(db)
    prepare_db(db)
    _load_airflow_settings(airflow_env(db))
    return time.monotonic() - t


def _migrate_celery_db() -> float:
    """The Celery stack's airflow.cfg, migrated metadata DB and connections; seconds taken."""
    t = time.monotonic()
    write_airflow_cfg("postgres")
    run_airflow("db", "migrate")
    _load_airflow_settings(celery_env())
    return time.monotonic() - t


def up(demo: bool, db: str) -> int:
    try:
        with stack_lock():
            return _up(demo, db)
    except RuntimeError as exc:
        say("state", f"FAILED: {exc}")
        return 1


def _demo_and_record(state: dict, endpoint: str, demo: bool) -> list:
    """Run the demo weeks (when asked) on the stack just started and record them in its state."""
    api = services.AirflowApi(state["airflow_url"], admin_password(), on_retry=lambda m: say("db", m))
    results = run_demo(api, endpoint) if demo else []
    state["demo"] = results
    services.write_state(state)
    return results


def _failed(exc: Exception) -> int:
    """A start-up that failed stops whatever it started and names the logs."""
    say("failed", f"FAILED: {type(exc).__name__}: {exc}")
    say("failed", f"logs: {LOGS}")
    down(quiet=True)
    return 1


def _say_running(state: dict, message: str) -> None:
    say("state", message)
    print_banner(state.get("demo") or [], state)


def _ports_free(store_name: str) -> bool:
    """True when the stack's ports are free; else says which one is taken."""
    for port, name in ((S3_PORT, store_name), (MLFLOW_PORT, "MLflow"), (AIRFLOW_PORT, "Airflow")):
        if services.port_open(port):
            say("state", f"FAILED: port {port} ({name}) is taken by another process: stop it or set RETRAIN_*_PORT")
            return False
    return True


def _up(demo: bool, db: str) -> int:
    global _ACTIVE_DB, _ACTIVE_EXECUTOR
    _ACTIVE_EXECUTOR = "local"
    say("install", f"virtualenv ready: {sys.prefix} (Python {sys.version.split()[0]})")
    if already_running():
        state = services.read_state()
        _say_running(
            state,
            f"the stack is already running (started {state.get('started_at', '?')}, "
            f"{state.get('db', '?')} DB): nothing restarted, no data touched. `make stop` then `make run` starts over.",
        )
        return 0
    if not _ports_free("S3 stand-in"):
        return 1
    _ACTIVE_DB = db
    say("state", f"resetting local state ({LOCAL}): S3, MLflow and Airflow start empty together")
    for sub in ("airflow", "mlflow", "logs"):
        shutil.rmtree(LOCAL / sub, ignore_errors=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    endpoint = f"http://127.0.0.1:{S3_PORT}"
    state = {
        "running": True,
        "executor": "local",
        "store": "moto",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "root": str(ROOT),
        "db": db,
        "db_url": db_url(db),
        "s3_endpoint": endpoint,
        "mlflow_tracking_uri": f"http://127.0.0.1:{MLFLOW_PORT}",
        "airflow_url": f"http://127.0.0.1:{AIRFLOW_PORT}",
        "airflow_home": str(airflow_home()),
        "raw_bucket": "raw-data",
        "output_dir": str(LOCAL / "output"),
    }
    try:
        t = time.monotonic()
        moto = services.start_moto(S3_PORT, LOGS / "moto.log", READY_TIMEOUT)
        write_pid("moto", moto)
        services.create_buckets(endpoint)
        say(
            "s3",
            f"S3 stand-in (moto_server) up on {endpoint} in {time.monotonic() - t:.0f}s; buckets: {', '.join(services.BUCKETS)}",
        )

        t = time.monotonic()
        say(
            "mlflow",
            f"starting MLflow on {state['mlflow_tracking_uri']}; waiting for /health (up to {READY_TIMEOUT:.0f}s)",
        )
        # The metadata DB is migrated while MLflow starts (neither needs the other).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            migrated = pool.submit(_prepare_airflow_db, db)
            mlflow = services.start_mlflow(
                MLFLOW_PORT,
                LOCAL / "mlflow" / "mlflow.db",
                endpoint,
                LOGS / "mlflow.log",
                timeout=READY_TIMEOUT,
                progress=lambda m: say("mlflow", m),
            )
            write_pid("mlflow", mlflow)
            say(
                "mlflow",
                f"MLflow up in {time.monotonic() - t:.0f}s (SQLite backend, artifacts in s3://mlflow-artifacts)",
            )
            took = migrated.result()
        say("db", f"Airflow metadata DB ({db}) migrated, airflow_settings.yaml loaded in {took:.0f}s")

        t = time.monotonic()
        say(
            "airflow",
            f"starting Airflow standalone (LocalExecutor) on {state['airflow_url']}; waiting for the API, "
            f"scheduler and dag-processor to report healthy (up to {READY_TIMEOUT:.0f}s)",
        )
        airflow = services.spawn(
            [str(Path(sys.executable).parent / "airflow"), "standalone"], LOGS / "airflow.log", env=airflow_env(db)
        )
        write_pid("airflow", airflow)
        services.wait_airflow_healthy(
            state["airflow_url"], READY_TIMEOUT, airflow, progress=lambda m: say("airflow", m)
        )
        services.write_state(state)
        say("airflow", f"Airflow up in {time.monotonic() - t:.0f}s; endpoints written to {services.state_file()}")
        results = _demo_and_record(state, endpoint, demo)
    except Exception as exc:
        return _failed(exc)
    say("ready", f"stack ready in {time.monotonic() - _T0:.0f}s")
    print_banner(results, state)
    return 0


def seaweed_dir() -> Path:
    return LOCAL / "seaweedfs"


def celery_already_running(workers: int) -> bool:
    running = pids()
    if not running:
        return False
    state = services.read_state()
    expected = {"seaweedfs", "mlflow", *CELERY_SERVICES, *(f"worker-{i}" for i in range(1, workers + 1))}
    if (
        state.get("executor") == "celery"
        and set(running) == expected
        and all(alive(p) for p in running.values())
        and _healthy(f"{state['mlflow_tracking_uri']}/health")
        and _healthy(f"{state['airflow_url']}/api/v2/monitor/health")
    ):
        return True
    if any(alive(p) for p in running.values()):
        say(
            "state",
            "a previous stack is running with other settings or only partly: stopping it first "
            "(the Celery stack's data stays)",
        )
    down(quiet=True)
    return False


def start_seaweed(endpoint_port: int) -> subprocess.Popen:
    """SeaweedFS on its persistent data dir, reusing the internal ports of the last start."""
    ports_file = seaweed_dir() / "ports.json"
    try:
        ports = json.loads(ports_file.read_text())
    except (OSError, ValueError):
        ports = {}
    proc, ports = services.start_seaweedfs(
        endpoint_port,
        seaweed_dir() / "data",
        LOGS / "seaweedfs.log",
        ports=ports,
        access_key=os.environ.get("S3_DATA_ACCESS_KEY_ID", "test"),
        secret_key=os.environ.get("S3_DATA_SECRET_ACCESS_KEY", "test"),
        timeout=READY_TIMEOUT,
        progress=lambda m: say("s3", m),
    )
    ports_file.write_text(json.dumps(ports))
    return proc


def worker_names(workers: int) -> list[str]:
    return [f"worker-{i}" for i in range(1, workers + 1)]


def start_worker(name: str, env: dict[str, str]) -> subprocess.Popen:
    """One ``airflow celery worker`` with its own hostname, working directory and TMPDIR."""
    home = LOCAL / "workers" / name
    tmp = home / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # a worker's scratch space never outlives it
    tmp.mkdir(parents=True, exist_ok=True)
    worker_env = {
        **env,
        "TMPDIR": str(tmp),
        "RETRAIN_WORKER_HOSTNAME": name,
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
    }
    return services.spawn(worker_command(name), LOGS / f"{name}.log", env=worker_env, cwd=home)


def worker_command(name: str) -> list[str]:
    """One Celery worker: the compose worker's command, its queue, a hostname of its own."""
    return [
        str(Path(sys.executable).parent / "airflow"),
        "celery",
        "worker",
        "--celery-hostname",
        f"{name}@%h",
        "--queues",
        CELERY_QUEUE,
        "--concurrency",
        str(WORKER_CONCURRENCY),
        # Logs go to the shared base_log_folder that the api-server reads (as the compose
        # stack's shared log volume); no per-worker log server.
        "--skip-serve-logs",
    ]


def celery_workers_answering(names: list[str]) -> set[str]:
    """Names of the given workers that answer a Celery control ping on the stack's broker."""
    from celery import Celery

    app = Celery("retrain-ping", broker=REDIS_URL)
    app.conf.broker_transport_options = {"global_keyprefix": f"{STACK_ID}:"}
    app.conf.broker_connection_retry_on_startup = False
    try:
        replies = app.control.ping(timeout=2.0)
    except Exception:
        return set()
    finally:
        app.close()
    seen = {name.split("@", 1)[0] for reply in replies for name in reply}
    return seen & set(names)


def wait_workers(names: list[str], procs: dict[str, subprocess.Popen], timeout: float) -> None:
    started = time.monotonic()
    next_note = started + 30
    answering: set[str] = set()
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"Celery {name} exited with code {proc.returncode}; see {LOGS / (name + '.log')}")
        answering = celery_workers_answering(names)
        if answering == set(names):
            return
        waited = time.monotonic() - started
        if waited > timeout:
            raise TimeoutError(
                f"Celery workers not answering after {timeout:.0f}s: {', '.join(sorted(set(names) - answering))} "
                f"(broker {REDIS_URL}); raise RETRAIN_READY_TIMEOUT on a slow machine"
            )
        if time.monotonic() >= next_note:
            say(
                "workers",
                f"still waiting for {', '.join(sorted(set(names) - answering))} to answer a Celery ping "
                f"({waited:.0f}s of up to {timeout:.0f}s)",
            )
            next_note += 30
        time.sleep(2)


def up_celery(demo: bool, workers: int) -> int:
    try:
        with stack_lock():
            return _up_celery(demo, workers)
    except RuntimeError as exc:
        say("state", f"FAILED: {exc}")
        return 1


def _up_celery(demo: bool, workers: int) -> int:
    global _ACTIVE_DB, _ACTIVE_EXECUTOR, _ACTIVE_WORKERS
    say("install", f"virtualenv ready: {sys.prefix} (Python {sys.version.split()[0]})")
    _ACTIVE_DB, _ACTIVE_EXECUTOR, _ACTIVE_WORKERS = "postgres", "celery", workers
    if celery_already_running(workers):
        state = services.read_state()
        _say_running(
            state,
            f"the Celery stack is already running (started {state.get('started_at', '?')}, "
            f"{workers} workers): nothing restarted, no data touched.",
        )
        return 0
    if not _ports_free("SeaweedFS S3"):
        return 1
    urls = celery_db_urls()
    endpoint = f"http://127.0.0.1:{S3_PORT}"
    state = {
        "running": True,
        "executor": "celery",
        "store": "seaweedfs",
        "workers": workers,
        "stack_id": STACK_ID,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "root": str(ROOT),
        "db": "postgres",
        "db_url": urls["airflow"],
        "mlflow_db_url": urls["mlflow"],
        "broker_url": REDIS_URL,
        "broker_key_prefix": f"{STACK_ID}:",
        "s3_endpoint": endpoint,
        "mlflow_tracking_uri": f"http://127.0.0.1:{MLFLOW_PORT}",
        "airflow_url": f"http://127.0.0.1:{AIRFLOW_PORT}",
        "airflow_home": str(airflow_home()),
        "raw_bucket": "raw-data",
        "output_dir": str(LOCAL / "output"),
    }
    LOGS.mkdir(parents=True, exist_ok=True)
    try:
        say("db", f"checking PostgreSQL ({PG_SERVER.split('@')[-1]}) and Redis ({REDIS_URL})")
        for what, url in urls.items():
            created = services.ensure_postgres_db(url)
            say(
                "db", f"PostgreSQL database {url.rsplit('/', 1)[1]} ({what}) {'created' if created else 'exists: kept'}"
            )
        services.redis_ping(REDIS_URL)
        say("broker", f"Redis answers at {REDIS_URL}; Celery keys prefixed {STACK_ID}:")

        # The metadata DB is migrated while SeaweedFS and MLflow start (none needs the others).
        pool = concurrent.futures.ThreadPoolExecutor(1)
        migrated = pool.submit(_migrate_celery_db)
        try:
            t = time.monotonic()
            say(
                "s3",
                f"starting SeaweedFS on {endpoint} (data in {seaweed_dir()}); waiting for a bucket create + "
                f"object write to succeed (up to {READY_TIMEOUT:.0f}s)",
            )
            weed = start_seaweed(S3_PORT)
            write_pid("seaweedfs", weed)
            services.create_buckets(endpoint)
            say(
                "s3",
                f"SeaweedFS accepts writes after {time.monotonic() - t:.0f}s; buckets: {', '.join(services.BUCKETS)}",
            )

            t = time.monotonic()
            say(
                "mlflow",
                f"starting MLflow on {state['mlflow_tracking_uri']} (PostgreSQL backend); waiting for /health "
                f"(up to {READY_TIMEOUT:.0f}s)",
            )
            mlflow = services.start_mlflow(
                MLFLOW_PORT,
                urls["mlflow"],
                endpoint,
                LOGS / "mlflow.log",
                timeout=READY_TIMEOUT,
                progress=lambda m: say("mlflow", m),
            )
            write_pid("mlflow", mlflow)
            say("mlflow", f"MLflow up in {time.monotonic() - t:.0f}s (artifacts in s3://mlflow-artifacts on SeaweedFS)")
            took = migrated.result()
        finally:
            pool.shutdown(wait=True)
        env = celery_env()
        say("db", f"Airflow metadata DB migrated, airflow_settings.yaml loaded in {took:.0f}s")

        t = time.monotonic()
        airflow_bin = str(Path(sys.executable).parent / "airflow")
        parts = {}
        for name in CELERY_SERVICES:
            parts[name] = services.spawn([airflow_bin, name], LOGS / f"{name}.log", env=env)
            write_pid(name, parts[name])
        # The workers start alongside (they need only the broker and the migrated DB): their
        # start-up overlaps the API's, and no task reaches them before the scheduler is healthy.
        names = worker_names(workers)
        procs = {}
        for name in names:
            procs[name] = start_worker(name, env)
            write_pid(name, procs[name])
        say(
            "airflow",
            f"started {', '.join(CELERY_SERVICES)}; waiting for the API, scheduler and dag-processor to "
            f"report healthy (up to {READY_TIMEOUT:.0f}s)",
        )
        say(
            "workers",
            f"started {workers} Celery workers ({', '.join(names)}, concurrency {WORKER_CONCURRENCY}, "
            f"queue {CELERY_QUEUE}); each must answer a Celery ping (up to {READY_TIMEOUT:.0f}s)",
        )
        services.wait_airflow_healthy(
            state["airflow_url"], READY_TIMEOUT, progress=lambda m: say("airflow", m), procs=parts, logs=LOGS
        )
        say("airflow", f"Airflow healthy in {time.monotonic() - t:.0f}s")
        wait_workers(names, procs, READY_TIMEOUT)
        say("workers", f"all {workers} workers answer after {time.monotonic() - t:.0f}s")
        services.write_state(state)
        results = _demo_and_record(state, endpoint, demo)
    except Exception as exc:
        return _failed(exc)
    say("ready", f"Celery stack ready in {time.monotonic() - _T0:.0f}s")
    print_banner(results, state)
    return 0


def restart(name: str) -> int:
    """Restart one part of the running Celery stack (e.g. after a crash, or to apply config)."""
    global _ACTIVE_EXECUTOR, _ACTIVE_WORKERS, _ACTIVE_DB
    state = services.read_state()
    if state.get("executor") != "celery" or not state.get("running"):
        say("restart", "FAILED: no Celery stack is running here (`make up EXECUTOR=celery`)")
        return 1
    _ACTIVE_EXECUTOR, _ACTIVE_WORKERS, _ACTIVE_DB = "celery", int(state.get("workers") or 1), "postgres"
    known = [*CELERY_SERVICES, *worker_names(_ACTIVE_WORKERS)]
    if name not in known:
        say("restart", f"FAILED: unknown part {name!r}; one of {', '.join(known)}")
        return 1
    pid = pids().get(name)
    if pid and alive(pid):
        say("restart", f"stopping {name} (process group {pid})")
        services.stop_group(pid, grace=20)
    env = celery_env()
    if name.startswith("worker-"):
        proc = start_worker(name, env)
        write_pid(name, proc)
        wait_workers([name], {name: proc}, READY_TIMEOUT)
    else:
        proc = services.spawn([str(Path(sys.executable).parent / "airflow"), name], LOGS / f"{name}.log", env=env)
        write_pid(name, proc)
        services.wait_airflow_healthy(state["airflow_url"], READY_TIMEOUT, procs={name: proc}, logs=LOGS)
    say("restart", f"{name} running again (process group {proc.pid})")
    return 0


def purge() -> int:
    """Stop the stack and delete the Celery topology's state: its databases, Redis keys, S3 data."""
    rc = down(quiet=True)
    if rc:
        return rc
    for what, url in celery_db_urls().items():
        services.drop_postgres_db(url)
        say("purge", f"dropped PostgreSQL database {url.rsplit('/', 1)[1]} ({what})")
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
        keys = list(client.scan_iter(f"{STACK_ID}:*"))
        if keys:
            client.delete(*keys)
        say("purge", f"deleted {len(keys)} Redis keys with prefix {STACK_ID}:")
    except Exception as exc:
        say("purge", f"Redis keys not deleted ({exc})")
    for sub in ("seaweedfs", "workers", "airflow"):
        shutil.rmtree(LOCAL / sub, ignore_errors=True)
    say("purge", f"deleted {seaweed_dir()} (objects), worker dirs and {airflow_home()}")
    return 0


def admin_password() -> str:
    f = airflow_home() / "simple_auth_manager_passwords.json.generated"
    for _ in range(60):
        if f.exists():
            try:
                return json.loads(f.read_text()).get("admin", "?")
            except ValueError:
                pass
        time.sleep(1)
    raise RuntimeError(f"Airflow did not write the admin password to {f}")


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters at a word boundary, marked with "..." when cut."""
    if len(text) <= width:
        return text
    cut = text[: width - 4]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:(") + " ..."


def print_banner(results: list[dict], state: dict) -> None:
    try:
        password = json.loads((airflow_home() / "simple_auth_manager_passwords.json.generated").read_text()).get(
            "admin", "?"
        )
    except (OSError, ValueError):
        password = "(see .local/airflow/simple_auth_manager_passwords.json.generated)"
    print()
    print("=" * 78)
    print(f"Airflow UI   http://127.0.0.1:{AIRFLOW_PORT}   login: admin / {password}")
    # Name the demo's models only when the demo ran: `make up` (no demo) registers none.
    models = f"registered models {', '.join(DEMO_MODELS)}; " if results else ""
    print(f"MLflow UI    http://127.0.0.1:{MLFLOW_PORT}   ({models}alias champion)")
    if state.get("executor") == "celery":
        print(f"S3 (SeaweedFS, persistent) http://127.0.0.1:{S3_PORT}   data in {seaweed_dir()}")
        print(
            f"Celery       {state.get('workers')} workers, broker {state.get('broker_url')} "
            f"(prefix {state.get('broker_key_prefix')}), results in PostgreSQL"
        )
        print(f"MLflow DB    {state.get('mlflow_db_url')}")
    else:
        print(f"S3 (moto)    http://127.0.0.1:{S3_PORT}   access key: test / secret: test (local dummy)")
    print(
        "             raw data s3://raw-data/<model>/dt=YYYY-MM-DD/, run artefacts s3://retrain-artifacts/runs/<model>/"
    )
    print(f"Metadata DB  {state.get('db', '?')}: {state.get('db_url', '?')}")
    print(f"Logs         {LOGS}")
    print(f"CLI          export AIRFLOW_HOME={airflow_home()}   (or: source {services.env_file()})")
    if results:
        print("-" * 78)
        print("Demo outcome (summary.json of each weekly run):")
        for r in results:
            champ = f"champion {r.get('champion_version_before') or '-'} -> {r.get('champion_version_after') or '-'}"
            print(
                f"  {r['model']:8s} week of {str(r.get('data_interval_start', ''))[:10]}: {r.get('decision', '?'):10s} {champ}"
            )
            for reason in (r.get("reasons") or [])[:2]:
                print(f"      - {_clip(str(reason), 150)}")
    print("-" * 78)
    print("Bring your own data:  make add-model NAME=mymodel DATA=path/to/file.csv")
    print("Stop everything with: make stop")
    print("=" * 78)


def status() -> int:
    running = pids()
    if not running:
        print("not running (start it with `make run` or `make up`)")
        return 0
    for name, pid in sorted(running.items()):
        print(f"{name:8s} pid {pid}: {'running' if alive(pid) else 'not running'}")
    state = services.read_state()
    if state:
        print(
            f"S3 {state.get('s3_endpoint')}  MLflow {state.get('mlflow_tracking_uri')}  Airflow {state.get('airflow_url')}  "
            f"DB {state.get('db')}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start a fresh stack and run the demo (no-op if it is already running)")
    p_up.add_argument("--no-demo", action="store_true", help="start the services only")
    p_up.add_argument(
        "--executor",
        choices=["local", "celery"],
        default=os.environ.get("RETRAIN_EXECUTOR") or "local",
        help="local: the embedded stack (airflow standalone, moto, started empty); celery: the "
        "production topology (PostgreSQL, Redis, SeaweedFS, separate Airflow processes, "
        "N Celery workers; state persists across restarts)",
    )
    p_up.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("RETRAIN_WORKERS") or 2),
        help="Celery workers (with --executor celery)",
    )
    p_up.add_argument(
        "--db",
        choices=["sqlite", "postgres"],
        default=os.environ.get("RETRAIN_DB") or "sqlite",
        help="Airflow metadata DB: sqlite (default, zero setup) or postgres on 127.0.0.1:5432 "
        "($RETRAIN_PG_URL; its database is created if absent and emptied by every fresh start)",
    )
    sub.add_parser("down", help="stop every process the stack started")
    p_restart = sub.add_parser("restart", help="restart one part of the running Celery stack")
    p_restart.add_argument("name", help="api-server, scheduler, dag-processor, triggerer or worker-N")
    sub.add_parser("purge", help="stop, then delete the Celery stack's databases, Redis keys and S3 data")
    sub.add_parser("status", help="show which services run")
    args = parser.parse_args(argv)
    if args.cmd == "up":
        if args.executor == "celery":
            if args.workers < 1:
                parser.error("--workers must be at least 1")
            return up_celery(demo=not args.no_demo, workers=args.workers)
        return up(demo=not args.no_demo, db=args.db)
    if args.cmd == "restart":
        return restart(args.name)
    if args.cmd == "purge":
        return purge()
    if args.cmd == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())
