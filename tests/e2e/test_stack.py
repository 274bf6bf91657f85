"""The README's run command, end to end: a fresh embedded stack, the demo backfilled through
the real scheduler, login required, and a stop that leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scripts import services

ROOT = Path(__file__).resolve().parents[2]
WEEKS = 4  # cold start, two stable weeks, the drift week

pytestmark = pytest.mark.timeout(1800)


def _http(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_run_command_brings_up_the_stack_runs_the_demo_and_stops_cleanly(tmp_path):
    ports = {"RETRAIN_S3_PORT": services.free_port(), "RETRAIN_MLFLOW_PORT": services.free_port(),
             "RETRAIN_AIRFLOW_PORT": services.free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
    env.update({k: str(v) for k, v in ports.items()})
    env.update({"RETRAIN_LOCAL_DIR": str(tmp_path / "local"), "RETRAIN_DEMO_WEEKS": str(WEEKS), "PYTHONPATH": str(ROOT)})
    stack = [sys.executable, str(ROOT / "scripts" / "stack.py")]
    up = subprocess.run([*stack, "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    try:
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        out = up.stdout
        assert f"http://127.0.0.1:{ports['RETRAIN_AIRFLOW_PORT']}" in out and "login: admin / " in out
        assert "demo runs finished: 4/4" in out

        s3 = services.s3_client(f"http://127.0.0.1:{ports['RETRAIN_S3_PORT']}")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="retrain-artifacts", Prefix="runs/churn/")["Contents"]
                if o["Key"].endswith("/summary.json")]
        summaries = sorted((json.loads(s3.get_object(Bucket="retrain-artifacts", Key=k)["Body"].read()) for k in keys),
                           key=lambda s: s["data_interval_start"])
        assert [s["decision"] for s in summaries] == ["promoted", "skipped", "skipped", "promoted"], \
            [(s["decision"], s["reasons"]) for s in summaries]
        for s in summaries:  # each backfilled run read exactly its own week
            assert s["rows"] == 7 * 2000 and len(s["partitions"]["days_found"]) == 7
            assert s["partitions"]["days_found"][0] == s["data_interval_start"][:10]
            assert s["dag_run_id"].startswith("backfill__")

        api = f"http://127.0.0.1:{ports['RETRAIN_AIRFLOW_PORT']}"
        status, _ = _http(f"{api}/api/v2/dags")
        assert status in (401, 403), "the API must require login"
        password = json.loads((tmp_path / "local/airflow/simple_auth_manager_passwords.json.generated").read_text())["admin"]
        status, body = _http(f"{api}/auth/token", {"username": "admin", "password": password})
        assert status in (200, 201) and body.get("access_token")
        status, runs = _http(f"{api}/api/v2/dags/retrain_churn/dagRuns", token=body["access_token"])
        assert status == 200
        assert sorted(r["state"] for r in runs["dag_runs"]) == ["success"] * WEEKS
    finally:
        down = subprocess.run([*stack, "down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "no process left behind" in down.stdout
    for port in ports.values():
        assert not services.port_open(port), f"port {port} still answers after stop"
