"""Human approval before promotion, end to end: real Airflow (dag.test() + an api-server on the
same metadata DB), moto S3 and MLflow.

Each week's run parks in ``approve_promotion`` (Airflow 3.3's ``awaiting_input`` state) until a
person answers through the REST API the UI's Required Actions page uses
(``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/approve_promotion/-1/hitlDetails``):

1. approved by alice with a comment -> champion moved; who/when/comment in the summary, the
   champion history, the version's tags and description;
2. rejected by bob -> not promoted, recorded as a human rejection;
3. approved after a newer champion appeared while the request waited -> not promoted, with
   the reason; the newer champion stays.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer.history import list_history
from include.retrainer.storage import ObjectStore, split_uri
from scripts import services
from tests.e2e.conftest import DagRunner, week

ROOT = Path(__file__).resolve().parents[2]
MODEL = "approvechurn"
DAG_ID = f"retrain_{MODEL}"
W1, W2, W3 = dt.date(2026, 8, 2), dt.date(2026, 8, 9), dt.date(2026, 8, 16)  # Sundays no other e2e test uses
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}

pytestmark = pytest.mark.timeout(1200)


def _api(base: str, path: str, token: str | None = None, data: dict | None = None, method: str | None = None):
    req = urllib.request.Request(
        base + path,
        data=json.dumps(data).encode() if data is not None else None,
        method=method or ("POST" if data is not None else "GET"),
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {"detail": exc.read().decode(errors="replace")[:2000]}


@pytest.fixture(scope="module")
def api_server(stack, state_dir):
    """``airflow api-server`` on the tests' metadata DB: where a person's answer is recorded."""
    home = Path(os.environ["AIRFLOW_HOME"])
    passwords = state_dir / "approval_passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    port = services.free_port()
    env = {
        "AIRFLOW__API_AUTH__JWT_SECRET": "approval-test-" + "x" * 64,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "alice:admin,bob:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__HOST": "127.0.0.1",
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = services.spawn(
        [airflow, "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1", "--apps", "core"],
        state_dir / "logs" / "approval-api-server.log",
        env=env,
        cwd=home,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        services.wait_http(f"{base}/api/v2/monitor/health", 180, proc, "airflow api-server")
        yield base
    finally:
        services.stop_group(proc.pid, grace=6)


def token_for(base: str, user: str) -> str:
    code, body = _api(base, "/auth/token", data={"username": user, "password": PASSWORDS[user]})
    assert code in (200, 201), body
    return body["access_token"]


class Responder(threading.Thread):
    """Answers the first pending approval of the DAG as ``user`` would in the UI (REST API)."""

    def __init__(self, base: str, user: str, option: str, comment: str, before_answer=None, timeout: float = 900):
        super().__init__(daemon=True)
        self.base, self.user, self.option, self.comment = base, user, option, comment
        self.before_answer, self.timeout = before_answer, timeout
        self.request: dict | None = None
        self.answer: tuple[int, dict] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            token = token_for(self.base, self.user)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                code, body = _api(
                    self.base, f"/api/v2/dags/{DAG_ID}/dagRuns/~/hitlDetails?response_received=false", token
                )
                assert code == 200, body
                # Answer once the task is parked, as a person would: on SQLite (no row locks) an answer
                # racing the park transition can be recorded without resuming the task.
                pending = [
                    d
                    for d in body["hitl_details"]
                    if d["task_instance"]["task_id"] == "approve_promotion"
                    and d["task_instance"]["state"] == "awaiting_input"
                ]
                if pending:
                    self.request = pending[0]
                    try:
                        if self.before_answer:
                            self.before_answer(self.request)
                    finally:  # answer even if the hook failed: the run must not wait forever
                        self.answer = self.respond(token, self.request["task_instance"]["dag_run_id"])
                    return
                time.sleep(1)
            raise TimeoutError("no approval request appeared")
        except BaseException as exc:  # reported by the test
            self.error = exc

    def respond(self, token: str, run_id: str) -> tuple[int, dict]:
        return _api(
            self.base,
            f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id, safe='')}"
            "/taskInstances/approve_promotion/-1/hitlDetails",
            token,
            {"chosen_options": [self.option], "params_input": {"comment": self.comment}},
            "PATCH",
        )


@pytest.fixture(scope="module")
def world(stack, api_server, tmp_path_factory):
    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw["name"] = MODEL
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    raw["data"]["prefix"] = MODEL
    # Every challenger passes the gates, so each week reaches the approval step.
    raw["comparison"].update({"floor": None, "policy": "non_inferiority", "non_inferiority_margin": 1.0})
    # The weeks lie in the past: approve them anyway (by default a superseded week expires unasked).
    raw["promotion"] = {
        "approval": "required",
        "approval_timeout": "2h",
        "approvers": ["alice", "bob"],
        "expire_superseded": False,
    }
    models = tmp_path_factory.mktemp("approval_models")
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(raw))
    frames = demo_data.generate_churn(W1, days=21, rows_per_day=700)
    demo_data.write_partitions(stack["s3"], "raw-data", MODEL, frames)
    return DagRunner(models / f"{MODEL}.yaml", stack["s3"]), MlflowClient(stack["mlflow"]), models


def run_answered(runner, start, responder: Responder):
    responder.start()
    run, summary = runner.run(start, force_retrain=True)
    responder.join(timeout=60)
    assert responder.error is None, repr(responder.error)
    assert responder.answer is not None and responder.answer[0] == 200, responder.answer
    return run, summary


def test_approve_reject_and_a_stale_approval(world, api_server, stack, monkeypatch):
    runner, client, models = world
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(models))
    monkeypatch.setenv("RETRAIN_MLFLOW_PUBLIC_URL", stack["mlflow"])
    store = ObjectStore(stack["s3"])

    # 1. Approved by alice: the first champion, with who/when/comment everywhere.
    alice = Responder(api_server, "alice", "Approve", "checked the holdout metrics")
    run, s1 = run_answered(runner, W1, alice)
    states = runner.task_states(run)
    assert str(run.state) == "success", states
    request = alice.request
    assert request["subject"].startswith(f"Approve {MODEL} v{s1['challenger_version']} to become the first champion?")
    assert "Run report](" in request["body"] and "/artifacts/report.html" in request["body"]
    assert "| roc_auc |" in request["body"] and "No answer within 2h" in request["body"]
    assert {u["id"] for u in request["assigned_users"]} == {"alice", "bob"}
    assert s1["decision"] == "promoted", s1["reasons"]
    v1 = s1["champion_version_after"]
    assert v1 == s1["challenger_version"]
    assert client.get_model_version_by_alias(MODEL, "champion").version == v1
    a1 = s1["approval"]
    assert (a1["outcome"], a1["decided_by"], a1["comment"]) == ("approved", "alice", "checked the holdout metrics")
    responded_at = dt.datetime.fromisoformat(alice.answer[1]["responded_at"].replace("Z", "+00:00"))
    assert abs(dt.datetime.fromisoformat(a1["decided_at"]) - responded_at) < dt.timedelta(seconds=1)
    assert s1["schema_version"] == 8
    move = [m for m in list_history(store, runner.spec) if m["to_version"] == v1][-1]
    assert move["approval"]["decided_by"] == "alice" and move["approval"]["comment"] == "checked the holdout metrics"
    mv = client.get_model_version(MODEL, v1)
    assert mv.tags["retrain.approval"] == "approved" and mv.tags["retrain.approval_by"] == "alice"
    assert "Approved by alice at" in mv.description and '"checked the holdout metrics"' in mv.description
    # The decision is kept keyed by (model, interval, challenger version) for re-runs.
    bucket, key = split_uri(s1["summary_uri"].rsplit("/", 1)[0] + f"/approval_v{v1}.json")
    assert json.loads(stack["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())["outcome"] == "approved"

    # 2. Rejected by bob: not promoted, recorded as a human rejection.
    bob = Responder(api_server, "bob", "Reject", "wait for the pricing change")
    run, s2 = run_answered(runner, W2, bob)
    assert str(run.state) == "success", runner.task_states(run)
    assert s2["decision"] == "rejected" and s2["champion_version_after"] == v1
    assert client.get_model_version_by_alias(MODEL, "champion").version == v1
    a2 = s2["approval"]
    assert (a2["outcome"], a2["decided_by"], a2["comment"]) == ("rejected", "bob", "wait for the pricing change")
    assert s2["headline"].startswith("Not promoted (forced): rejected by bob at")
    v2 = s2["challenger_version"]
    mv2 = client.get_model_version(MODEL, v2)
    assert mv2.tags["retrain.decision"] == "rejected" and mv2.tags["retrain.approval"] == "rejected"
    assert "Rejected by bob at" in mv2.description
    assert runner.task_states(run)["mark_rejected"] == "success"

    # 3. While week 3 waits, a champion trained on newer data appears (another run's promotion);
    #    alice then approves the older request: it expires, the champion stays where it is.
    newer = {}

    def newer_champion(_request):
        end = week(W3)[1] + dt.timedelta(weeks=1)
        exp = client.get_experiment_by_name(f"retrain_{MODEL}").experiment_id
        other = client.create_run(exp, run_name="another_deployment")
        client.log_text(other.info.run_id, "x", "model/placeholder.txt")
        client.set_terminated(other.info.run_id)
        mv = client.create_model_version(
            MODEL,
            f"runs:/{other.info.run_id}/model",
            run_id=other.info.run_id,
            tags={
                "retrain.data_interval_start": (end - dt.timedelta(weeks=1)).isoformat(),
                "retrain.data_interval_end": end.isoformat(),
            },
        )
        client.set_registered_model_alias(MODEL, "champion", mv.version)
        newer["version"] = str(mv.version)

    late = Responder(api_server, "alice", "Approve", "ok", before_answer=newer_champion)
    run, s3 = run_answered(runner, W3, late)
    assert str(run.state) == "success", runner.task_states(run)
    assert s3["decision"] == "rejected", s3["reasons"]
    assert client.get_model_version_by_alias(MODEL, "champion").version == newer["version"]
    a3 = s3["approval"]
    assert a3["outcome"] == "expired" and a3["decided_by"] == "alice"
    assert a3["reason"].startswith(f"expired: champion v{newer['version']} was trained on newer data")
    assert "response ignored: approved by alice" in a3["reason"]
    assert not [m for m in list_history(store, runner.spec) if m["to_version"] == s3["challenger_version"]]
