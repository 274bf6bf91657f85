"""The embedded local stack: moto S3, MLflow and Airflow on 127.0.0.1, plus the demo.

    python scripts/stack.py up [--no-demo]   # fresh stack, demo data, demo runs
    python scripts/stack.py down             # stop every process the stack started
    python scripts/stack.py status

State lives under .local/ and is reset by ``up``: the S3 stand-in keeps objects in
memory only, so S3, MLflow and Airflow are started empty together rather than leaving
MLflow or Airflow remembering models and runs whose S3 objects are gone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import services  # noqa: E402

LOCAL = Path(os.environ.get("RETRAIN_LOCAL_DIR") or ROOT / ".local")
PIDS = LOCAL / "pids"
LOGS = LOCAL / "logs"
S3_PORT = int(os.environ.get("RETRAIN_S3_PORT", "9000"))
MLFLOW_PORT = int(os.environ.get("RETRAIN_MLFLOW_PORT", "5000"))
AIRFLOW_PORT = int(os.environ.get("RETRAIN_AIRFLOW_PORT", "8080"))
DEMO_DAG = "retrain_churn"
DEMO_WEEKS = int(os.environ.get("RETRAIN_DEMO_WEEKS", "6"))
DEMO_DRIFT_WEEK = 4


def say(msg: str) -> None:
    print(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def airflow_env() -> dict[str, str]:
    home = LOCAL / "airflow"
    secret_file = home / ".jwt_secret"
    if not secret_file.exists():
        home.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_hex(32))  # 64 characters
        secret_file.chmod(0o600)
    bin_dir = str(Path(sys.executable).parent)
    notes_password = notes_user_password(home)
    return {
        # standalone spawns `airflow` subprocesses: the venv must be on PATH.
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(AIRFLOW_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{AIRFLOW_PORT}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1,localhost",
        # The connections in airflow_settings.yaml follow the ports chosen here.
        "S3_DATA_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
        "MLFLOW_CONN_PORT": str(MLFLOW_PORT),
        # Links in the UI, the report and notifications open MLflow at this address.
        "RETRAIN_MLFLOW_PUBLIC_URL": f"http://127.0.0.1:{MLFLOW_PORT}",
        # The summarize task sets each run's note through the REST API as this user (role "user").
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{NOTES_USER}:user",
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": AIRFLOW_PORT,
                                                "schema": "http", "login": NOTES_USER, "password": notes_password}),
    }


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


def run_airflow(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "airflow"), *args]
    result = subprocess.run(cmd, env={**os.environ, **airflow_env()}, capture_output=capture, text=True, cwd=ROOT)
    if check and result.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(args)}` failed:\n{(result.stdout or '')[-2000:]}\n{(result.stderr or '')[-2000:]}")
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


def down(quiet: bool = False) -> int:
    running = pids()
    order = ["airflow", "mlflow", "moto"]  # consumers first, storage last
    for name in sorted(running, key=lambda n: order.index(n) if n in order else -1):
        pid = running[name]
        if alive(pid):
            say(f"stopping {name} (process group {pid})")
            services.stop_group(pid, grace=20)
        (PIDS / f"{name}.pid").unlink(missing_ok=True)
    left = [n for n, p in running.items() if alive(p)]
    if left:
        say(f"WARNING: still running: {', '.join(left)}")
        return 1
    if not quiet:
        say("stack stopped; no process left behind" if running else "nothing was running")
    return 0


def demo_weeks(now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The last DEMO_WEEKS complete Sunday-to-Sunday weeks (Airflow's @weekly) before ``now``."""
    today = now.astimezone(dt.timezone.utc).date()
    last_sunday = today - dt.timedelta(days=(today.weekday() + 1) % 7)
    end = dt.datetime.combine(last_sunday, dt.time(0), dt.timezone.utc)
    starts = [end - dt.timedelta(weeks=DEMO_WEEKS - i) for i in range(DEMO_WEEKS)]
    return [(s, s + dt.timedelta(weeks=1)) for s in starts]


def seed_demo(endpoint: str, weeks: list[tuple[dt.datetime, dt.datetime]]) -> None:
    from include.retrainer import demo_data

    first = weeks[0][0].date()
    drift_start = weeks[DEMO_DRIFT_WEEK - 1][0].date()
    frames = demo_data.generate_churn(first, days=7 * len(weeks), rows_per_day=2000, drift_start=drift_start)
    demo_data.write_partitions(services.s3_client(endpoint), "raw-data", "churn", frames)
    say(f"seeded {len(frames)} daily partitions s3://raw-data/churn/dt={first}..{max(frames)} "
        f"(drift from week {DEMO_DRIFT_WEEK}, {drift_start})")


def dag_runs(dag_id: str) -> list[dict]:
    out = run_airflow("dags", "list-runs", dag_id, "-o", "json", check=False)
    for line in out.stdout.splitlines():  # warnings may precede the JSON document
        if line.startswith("[{") or line.strip() == "[]":
            try:
                return json.loads(line)
            except ValueError:
                pass
    return []


def run_demo(endpoint: str) -> list[dict]:
    weeks = demo_weeks(dt.datetime.now(dt.timezone.utc))
    seed_demo(endpoint, weeks)
    say("waiting for the DAG to be parsed (airflow dags reserialize)")
    run_airflow("dags", "reserialize")
    frm, to = weeks[0][0].isoformat(), weeks[-1][0].isoformat()
    say(f"backfilling {DEMO_DAG} over {len(weeks)} weeks ({frm[:10]} .. {weeks[-1][1].date()}), one run at a time")
    run_airflow("backfill", "create", "--dag-id", DEMO_DAG, "--from-date", frm, "--to-date", to,
                "--max-active-runs", "1", "--reprocess-behavior", "completed")
    run_airflow("dags", "unpause", DEMO_DAG)
    deadline = time.monotonic() + 45 * 60
    last = ""
    while time.monotonic() < deadline:
        runs = dag_runs(DEMO_DAG)
        states = [r.get("state") for r in runs]
        done = sum(s in ("success", "failed") for s in states)
        line = f"demo runs finished: {done}/{len(weeks)} ({', '.join(f'{s}' for s in states) or 'none yet'})"
        if line != last:
            say(line)
            last = line
        if runs and done >= len(weeks) and all(s in ("success", "failed") for s in states):
            break
        time.sleep(5)
    client = services.s3_client(endpoint)
    from include.retrainer.config import load_spec
    from include.retrainer.steps import RunPaths
    from include.retrainer.storage import split_uri

    spec = load_spec(ROOT / "include" / "models" / "churn.yaml")
    summaries = []
    for start, end in weeks:
        bucket, key = split_uri(RunPaths(spec, start, end).summary)
        try:
            summaries.append(json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read()))
        except client.exceptions.NoSuchKey:
            summaries.append({"data_interval_start": start.isoformat(), "decision": "(no summary)", "reasons": []})
    return summaries


def up(demo: bool) -> int:
    down(quiet=True)
    for port, name in ((S3_PORT, "S3 stand-in"), (MLFLOW_PORT, "MLflow"), (AIRFLOW_PORT, "Airflow")):
        if services.port_open(port):
            say(f"port {port} ({name}) is taken by another process: stop it or set RETRAIN_*_PORT")
            return 1
    say("resetting local state (.local/): S3, MLflow and Airflow start empty together")
    for sub in ("airflow", "mlflow", "logs"):
        shutil.rmtree(LOCAL / sub, ignore_errors=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    endpoint = f"http://127.0.0.1:{S3_PORT}"
    try:
        say(f"starting the S3 stand-in (moto_server) on {endpoint}")
        moto = services.start_moto(S3_PORT, LOGS / "moto.log")
        write_pid("moto", moto)
        services.create_buckets(endpoint)
        say(f"buckets: {', '.join(services.BUCKETS)}")

        say(f"starting MLflow on http://127.0.0.1:{MLFLOW_PORT} (SQLite backend, artifacts in s3://mlflow-artifacts); waiting for /health")
        mlflow = services.start_mlflow(MLFLOW_PORT, LOCAL / "mlflow" / "mlflow.db", endpoint, LOGS / "mlflow.log")
        write_pid("mlflow", mlflow)

        say("migrating the Airflow metadata DB (SQLite) and loading airflow_settings.yaml")
        run_airflow("db", "migrate")
        loaded = subprocess.run([sys.executable, "-m", "scripts.load_airflow_settings", str(ROOT / "airflow_settings.yaml")],
                                env={**os.environ, **airflow_env()}, capture_output=True, text=True, cwd=ROOT)
        if loaded.returncode != 0:
            raise RuntimeError(f"loading airflow_settings.yaml failed:\n{loaded.stdout}\n{loaded.stderr}")
        say(loaded.stdout.strip().splitlines()[-1] if loaded.stdout.strip() else "settings loaded")

        say(f"starting Airflow standalone (LocalExecutor) on http://127.0.0.1:{AIRFLOW_PORT}; waiting for health (~30 s)")
        airflow = services.spawn([str(Path(sys.executable).parent / "airflow"), "standalone"], LOGS / "airflow.log", env=airflow_env())
        write_pid("airflow", airflow)
        services.wait_http(f"http://127.0.0.1:{AIRFLOW_PORT}/api/v2/monitor/health", 180, airflow, "airflow standalone")
        summaries = run_demo(endpoint) if demo else []
    except Exception as exc:
        say(f"FAILED: {exc}")
        say(f"logs: {LOGS}")
        down(quiet=True)
        return 1
    print_banner(summaries)
    return 0


def admin_password() -> str:
    f = LOCAL / "airflow" / "simple_auth_manager_passwords.json.generated"
    for _ in range(30):
        if f.exists():
            try:
                return json.loads(f.read_text()).get("admin", "?")
            except ValueError:
                pass
        time.sleep(1)
    return f"(see {f})"


def print_banner(summaries: list[dict]) -> None:
    print()
    print("=" * 78)
    print(f"Airflow UI   http://127.0.0.1:{AIRFLOW_PORT}   login: admin / {admin_password()}")
    print(f"MLflow UI    http://127.0.0.1:{MLFLOW_PORT}   (registered model 'churn', aliases champion/challenger)")
    print(f"S3 (moto)    http://127.0.0.1:{S3_PORT}   access key: test / secret: test (local dummy)")
    print(f"             raw data s3://raw-data/churn/dt=YYYY-MM-DD/, run artefacts s3://retrain-artifacts/runs/churn/")
    print(f"Logs         {LOGS}")
    if summaries:
        print("-" * 78)
        print("Demo outcome (summary.json of each weekly run):")
        for s in summaries:
            week = str(s.get("data_interval_start", ""))[:10]
            champ = f"champion {s.get('champion_version_before')} -> {s.get('champion_version_after')}"
            print(f"  week of {week}: {s.get('decision', '?'):9s} {champ}")
            for r in (s.get("reasons") or [])[:3]:
                print(f"      - {r}")
    print("-" * 78)
    print("Stop everything with: make stop")
    print("=" * 78)


def status() -> int:
    for name, pid in sorted(pids().items()):
        print(f"{name:8s} pid {pid}: {'running' if alive(pid) else 'not running'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start a fresh stack and run the demo")
    p_up.add_argument("--no-demo", action="store_true", help="start the services only")
    sub.add_parser("down", help="stop every process the stack started")
    sub.add_parser("status", help="show which services run")
    args = parser.parse_args(argv)
    if args.cmd == "up":
        return up(demo=not args.no_demo)
    if args.cmd == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())
