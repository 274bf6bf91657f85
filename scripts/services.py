"""Start, wait for and stop the local services (moto S3, MLflow, Airflow).

Shared by the embedded stack (``scripts/stack.py``) and the test fixtures, so tests run
against the same processes, started the same way, that ``make run`` starts.
Every service is started in its own session (process group) so that stopping it
signals the whole group: no orphaned workers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

#: Buckets the project uses on the S3 endpoint.
BUCKETS = ("raw-data", "retrain-artifacts", "mlflow-artifacts", "dvc-store")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    """Poll ``url`` until it answers 2xx/3xx; fail early if ``proc`` died.

    Also fails if ``proc`` dies just after the answer: then something else owns the port."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what or url} exited with code {proc.returncode} before becoming ready")
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                if r.status < 400:
                    if proc is not None:
                        time.sleep(1.0)
                        if proc.poll() is not None:
                            raise RuntimeError(f"{what or url} exited with code {proc.returncode}; "
                                               "another process answers on its port")
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise TimeoutError(f"{what or url} not ready after {timeout:.0f}s ({last})")


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
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


def start_moto(port: int, log_path: Path) -> subprocess.Popen:
    _require_free(port, "moto_server")
    proc = spawn([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log_path)
    wait_http(f"http://127.0.0.1:{port}/moto-api/", 30, proc, "moto_server")
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
    }


def start_mlflow(port: int, backend_db: Path, s3_endpoint: str, log_path: Path, artifacts_bucket: str = "mlflow-artifacts") -> subprocess.Popen:
    _require_free(port, "mlflow server")
    backend_db.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(VENV_BIN / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{backend_db}",
        "--artifacts-destination", f"s3://{artifacts_bucket}",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]
    proc = spawn(cmd, log_path, env=mlflow_env(s3_endpoint))
    wait_http(f"http://127.0.0.1:{port}/health", 120, proc, "mlflow server")
    return proc
