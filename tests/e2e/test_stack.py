"""The README's quick start, end to end, from a fresh copy of the repository: `make run` brings
up the stack and runs the demo for both example models through the real scheduler, printing
every phase; a second `make run` changes nothing; the documented CLI commands work against it
with their defaults; `make stop` leaves no process and frees every port.

The copy holds the repository's files as they are now (tracked and new, not ignored ones) and
reuses the installed virtualenv through a `.venv` symlink; the test refuses to run if that venv
was not installed from this lock (make would then install into the shared venv)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scripts import services

ROOT = Path(__file__).resolve().parents[2]
WEEKS = 4  # cold start, two stable weeks, the drift week
MODELS = ("churn", "tickets")
PHASES = ("install", "state", "s3", "mlflow", "db", "airflow", "seed", "dags", "backfill", "week", "demo", "ready")
LINE = re.compile(r"^\[(\d\d:\d\d:\d\d) \+\s*(\d+)s\] (\w+)\s+(.*)$")
WEEK = re.compile(
    r"^(churn|tickets) week (\d+)/(\d+) \((\d{4}-\d\d-\d\d)\): (\w+) \(champion .*; run (\w+)\) in (\d+|\?)s$"
)

pytestmark = pytest.mark.timeout(3000)


def _http(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        url,
        data=json.dumps(data).encode() if data else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def fresh_copy(dest: Path) -> Path:
    """The repository's current files (as `git clone` of a commit of them would give) + the venv."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    stamp = hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()[:12]
    venv = Path(sys.prefix)
    if not (venv / f".installed-{stamp}").exists():
        pytest.skip(
            f"{venv} was not installed from this requirements.lock (no .installed-{stamp}); "
            "`make run` would reinstall into it"
        )
    (dest / ".venv").symlink_to(venv)
    # make compares mtimes: a lock newer than the stamp would trigger a reinstall into the
    # shared venv. The stamp already says this lock is installed.
    stamp_time = (venv / f".installed-{stamp}").stat().st_mtime
    os.utime(dest / "requirements.lock", (stamp_time - 60, stamp_time - 60))
    return dest


def phase_lines(out: str) -> list[tuple[int, str, str]]:
    found = []
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            found.append((int(m.group(2)), m.group(3), m.group(4)))
    return found


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def test_make_run_from_a_fresh_copy_runs_both_demo_models_and_stops_cleanly(tmp_path):
    repo = fresh_copy(tmp_path / "repo")
    ports = {
        "RETRAIN_S3_PORT": services.free_port(),
        "RETRAIN_MLFLOW_PORT": services.free_port(),
        "RETRAIN_AIRFLOW_PORT": services.free_port(),
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "RETRAIN_", "AWS_ENDPOINT", "PYTHONPATH"))
    }
    env.update({k: str(v) for k, v in ports.items()})
    env["RETRAIN_DEMO_WEEKS"] = str(WEEKS)
    local = repo / ".local"
    up = subprocess.run(["make", "run"], cwd=repo, env=env, capture_output=True, text=True, timeout=2700)
    try:
        assert up.returncode == 0, up.stdout[-6000:] + up.stderr[-3000:]
        out = up.stdout
        lines = phase_lines(out)
        seen = [p for _, p, _ in lines]
        for phase in PHASES:
            assert phase in seen, f"no '{phase}' line in:\n{out[-4000:]}"
        elapsed = [t for t, _, _ in lines]
        assert elapsed == sorted(elapsed), "elapsed seconds must grow line by line"
        assert "FAILED" not in out
        # The scheduler imported the tasks' libraries once, for every task its LocalExecutor
        # forks (retrain_ops.preload_plugin), all of them importable and without a thread.
        airflow_log = (local / "logs" / "airflow.log").read_text(errors="replace")
        preloaded = [ln for ln in airflow_log.splitlines() if "retrain: preloaded" in ln]
        assert preloaded and "LocalExecutor" in preloaded[0], airflow_log[-3000:]
        assert not [ln for ln in preloaded if "not importable" in ln or "started thread" in ln], preloaded

        # Every week of every model ends with a named outcome, printed once, read from its summary.
        weeks = {}
        for _, phase, msg in lines:
            if phase == "week" and (m := WEEK.match(msg)):
                key = (m.group(1), int(m.group(2)))
                assert key not in weeks, f"week reported twice: {msg}"
                weeks[key] = (m.group(4), m.group(5), m.group(6))
        assert set(weeks) == {(m, w) for m in MODELS for w in range(1, WEEKS + 1)}, out[-4000:]
        assert f"demo runs finished: {WEEKS * len(MODELS)}/{WEEKS * len(MODELS)}" in out

        s3 = services.s3_client(f"http://127.0.0.1:{ports['RETRAIN_S3_PORT']}")
        for model in MODELS:
            keys = [
                o["Key"]
                for o in s3.list_objects_v2(Bucket="retrain-artifacts", Prefix=f"runs/{model}/")["Contents"]
                if o["Key"].endswith("/summary.json")
            ]
            summaries = {
                s["data_interval_start"][:10]: s
                for s in (json.loads(s3.get_object(Bucket="retrain-artifacts", Key=k)["Body"].read()) for k in keys)
            }
            for w in range(1, WEEKS + 1):
                start, decision, state = weeks[(model, w)]
                assert state == "success"
                assert decision in {"promoted", "skipped", "rejected"}
                assert summaries[start]["decision"] == decision  # the printed outcome is the stored one
                assert summaries[start]["dag_run_id"].startswith("backfill__")
                assert len(summaries[start]["partitions"]["days_found"]) == 7

        api = f"http://127.0.0.1:{ports['RETRAIN_AIRFLOW_PORT']}"
        assert f"{api}   login: admin / " in out
        status, _ = _http(f"{api}/api/v2/dags")
        assert status in (401, 403), "the API must require login"
        password = json.loads((local / "airflow/simple_auth_manager_passwords.json.generated").read_text())["admin"]
        status, body = _http(f"{api}/auth/token", {"username": "admin", "password": password})
        assert status in (200, 201) and body.get("access_token")
        for model in MODELS:
            status, runs = _http(f"{api}/api/v2/dags/retrain_{model}/dagRuns", token=body["access_token"])
            assert status == 200
            backfilled = [r["state"] for r in runs["dag_runs"] if r["dag_run_id"].startswith("backfill__")]
            assert backfilled == ["success"] * WEEKS

        # A second `make run` on the running stack: safe, says so, restarts nothing.
        pids_before = {p.name: p.read_text() for p in (local / "pids").glob("*.pid")}
        again = subprocess.run(["make", "run"], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "already running" in again.stdout and "nothing restarted" in again.stdout
        assert {p.name: p.read_text() for p in (local / "pids").glob("*.pid")} == pids_before

        # The README's CLI commands, with the stack's defaults only.
        cli_env = {
            **env,
            "PATH": f"{repo / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": ".local/airflow",
        }
        listed = subprocess.run(
            ["airflow", "dags", "list-runs", "retrain_churn", "-o", "json"],
            cwd=repo,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert listed.returncode == 0, listed.stderr[-2000:]
        runs = next(json.loads(ln) for ln in listed.stdout.splitlines() if ln.startswith("["))
        assert sum(r["run_id"].startswith("backfill__") for r in runs) == WEEKS
        history = subprocess.run(
            [str(repo / ".venv/bin/python"), "scripts/champion_history.py", "--model", "churn"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert history.returncode == 0 and "champion history of 'churn'" in history.stdout, (
            history.stdout + history.stderr
        )
        helped = subprocess.run(
            [
                str(repo / ".venv/bin/python"),
                "scripts/reproduce_training_data.py",
                "--model",
                "churn",
                "--version",
                "champion",
            ],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert helped.returncode == 0, helped.stdout + helped.stderr
        assert list(local.joinpath("output").glob("churn_v*_train.parquet"))
        assert not list(repo.glob("*.parquet")), "CLI tools must not write into the repository root"
    finally:
        pids = [int(p.read_text()) for p in (local / "pids").glob("*.pid")] if (local / "pids").is_dir() else []
        down = subprocess.run(["make", "stop"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "no process left behind" in down.stdout
    for pid in pids:
        assert not group_alive(pid), f"process group {pid} still alive after make stop"
    for port in ports.values():
        assert not services.port_open(port), f"port {port} still answers after stop"
