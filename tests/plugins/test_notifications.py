"""Notifications through Airflow's own notifiers, against a real SMTP server (aiosmtpd) and a real
HTTP receiver, inside a real ``dag.test()`` run (the callbacks run as Airflow runs them).

A failing channel (SMTP down, webhook answering 500) is retried, recorded in summary.json and
never changes the task's or the run's state.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from include.retrainer.tasks import TaskId
from scripts import services

pytestmark = pytest.mark.timeout(300)


class _Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler protocol
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = services.free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


class _Receiver:
    def __init__(self, status: int):
        self.status = status
        self.requests: list[tuple[str, dict, dict]] = []


@pytest.fixture
def webhook():
    servers = []

    def start(status: int = 200):
        receiver = _Receiver(status)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, dict(self.headers), json.loads(body or b"{}")))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status < 400 else b"boom")

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", services.free_port()), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1], receiver

    yield start
    for s in servers:
        s.shutdown()


def _story(summary_uri: str, decision: str) -> dict:
    summary = {
        "model": "churn",
        "decision": decision,
        "decision_code": decision,
        "trigger": "signals",
        "headline": f"{decision.title()} (signals): data drift in monthly_charges; challenger non-inferior.",
        "reasons": ["retrained: data drift", "roc_auc lower bound -0.004 > -0.01"],
        "data_interval_start": "2026-11-15T00:00:00+00:00",
        "data_interval_end": "2026-11-22T00:00:00+00:00",
        "champion_version_before": "1",
        "champion_version_after": "2" if decision == "promoted" else "1",
        "challenger_version": "2",
        "dag_id": "notify_test",
        "dag_run_id": "r1",
        "summary_uri": summary_uri,
        "mcnemar": {"b": 31, "c": 57, "p_value": 0.007},
    }
    return {
        "summary": summary,
        "links": {"Run report": "http://mlflow.example/#/experiments/1/runs/abc/artifacts/report.html"},
    }


_DAG_FILE = '''
import datetime as dt
import json
import os

from airflow.sdk import DAG, BaseOperator

from include.retrainer.tasks import TaskId
from retrain_ops.notifiers import RunStoryNotifier

STORY = json.loads(os.environ.get("NOTIFY_TEST_STORY", "{}"))
NOTIFY = json.loads(os.environ.get("NOTIFY_TEST_CONFIG", "{}"))


class PushStory(BaseOperator):
    """Stands in for summarize_run: pushes the run story to XCom as that task does."""

    def execute(self, context):
        context["ti"].xcom_push(key="story", value=STORY)
        return {"decision": STORY.get("summary", {}).get("decision")}


notifier = RunStoryNotifier(notify=NOTIFY, model="churn", artifacts_conn_id="s3_data")
with DAG("notify_test", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)) as dag:
    PushStory(task_id=TaskId.SUMMARIZE_RUN, on_success_callback=[notifier], on_failure_callback=[notifier])
'''


@pytest.fixture
def run_dag(tmp_path, monkeypatch, airflow_db):
    """Runs a one-task DAG (from its own bundle, as dag.test() requires) with the notifier as callback."""
    folder = tmp_path / "notify_dags"
    folder.mkdir()
    (folder / "notify_test_dag.py").write_text(_DAG_FILE)
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        json.dumps(
            [
                {"name": "dags-folder", "classpath": local, "kwargs": {}},
                {"name": "notify-tests", "classpath": local, "kwargs": {"path": str(folder)}},
            ]
        ),
    )

    def run(story: dict, notify: dict):
        import importlib.util

        monkeypatch.setenv("NOTIFY_TEST_STORY", json.dumps(story))
        monkeypatch.setenv("NOTIFY_TEST_CONFIG", json.dumps(notify))
        spec = importlib.util.spec_from_file_location(
            f"notify_test_dag_{uuid.uuid4().hex}", folder / "notify_test_dag.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.dag.test()

    return run


@pytest.fixture
def summary_file(s3):
    key = f"runs/notify-test/{uuid.uuid4().hex}/summary.json"
    s3.put_object(Bucket="retrain-artifacts", Key=key, Body=b'{"decision": "promoted"}')

    def read():
        return json.loads(s3.get_object(Bucket="retrain-artifacts", Key=key)["Body"].read())

    return f"s3://retrain-artifacts/{key}", read


def _connections(smtp_port: int, http_port: int):
    os.environ["AIRFLOW_CONN_SMTP_TEST"] = json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": smtp_port,
            "login": None,
            "password": None,
            "extra": {
                "disable_tls": True,
                "disable_ssl": True,
                "from_email": "retrain@example.com",
                "retry_limit": 0,
                "timeout": 5,
            },
        }
    )
    os.environ["AIRFLOW_CONN_WEBHOOK_TEST"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": http_port, "schema": "http"}
    )


NOTIFY = {
    "on": ["promoted", "rejected", "failed"],
    "email": ["ml-team@example.com"],
    "smtp_conn_id": "smtp_test",
    "webhook": {"conn_id": "webhook_test", "endpoint": "/services/T0/B0/secret"},
    "retries": 2,
    "retry_delay_seconds": 0.05,
}


def test_promotion_is_announced_by_email_and_webhook(run_dag, moto_server, smtp_server, webhook, summary_file):
    smtp_port, inbox = smtp_server
    http_port, receiver = webhook(200)
    _connections(smtp_port, http_port)
    uri, read = summary_file

    run = run_dag(_story(uri, "promoted"), NOTIFY)

    assert str(run.state) == "success"
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["Subject"] == "[retrain churn] promoted v2, week 2026-11-15..2026-11-22"
    assert inbox.envelopes[0].rcpt_tos == ["ml-team@example.com"]
    body = msg.get_body(("html",)).get_content()
    assert "data drift in monthly_charges" in body and "31/57, p=0.007" in body
    assert "http://mlflow.example/#/experiments/1/runs/abc/artifacts/report.html" in body

    assert len(receiver.requests) == 1
    path, headers, payload = receiver.requests[0]
    assert path == "/services/T0/B0/secret" and headers["Content-Type"] == "application/json"
    assert payload["decision"] == "promoted" and payload["text"].startswith("Promoted (signals)")
    assert "<http://mlflow.example/#/experiments/1/runs/abc/artifacts/report.html|Run report>" in json.dumps(payload)

    records = read()["notifications"]
    assert [(r["channel"], r["ok"], r["attempts"]) for r in records] == [("email", True, 1), ("webhook", True, 1)]


def test_failed_delivery_is_retried_recorded_and_never_fails_the_run(run_dag, moto_server, webhook, summary_file):
    http_port, receiver = webhook(500)
    _connections(services.free_port(), http_port)  # nothing listens on that SMTP port
    uri, read = summary_file

    run = run_dag(_story(uri, "rejected"), NOTIFY)

    assert str(run.state) == "success"
    assert len(receiver.requests) == 3  # 1 + retries
    records = {r["channel"]: r for r in read()["notifications"]}
    assert records["email"]["ok"] is False and records["email"]["attempts"] == 3
    assert "refused" in records["email"]["error"].lower() or "connect" in records["email"]["error"].lower()
    assert records["webhook"]["ok"] is False and records["webhook"]["attempts"] == 3
    assert "500" in records["webhook"]["error"]


def test_outcomes_not_listed_are_not_announced(run_dag, moto_server, smtp_server, webhook, summary_file):
    smtp_port, inbox = smtp_server
    http_port, receiver = webhook(200)
    _connections(smtp_port, http_port)
    uri, read = summary_file

    run = run_dag(_story(uri, "skipped"), {**NOTIFY, "on": ["promoted"]})

    assert str(run.state) == "success"
    assert inbox.messages == [] and receiver.requests == []
    assert "notifications" not in read()


def test_callbacks_survive_dag_serialization():
    """The scheduler sees the serialized DAG: a task with our notifier callbacks must serialize."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization
    from retrain_ops.notifiers import RunStoryNotifier, run_story_callbacks

    class Spec:
        name, artifacts_conn_id = "churn", "s3_data"

    assert run_story_callbacks(Spec(), None) == {}
    callbacks = run_story_callbacks(Spec(), NOTIFY)
    assert isinstance(callbacks["on_failure_callback"][0], RunStoryNotifier)
    with DAG("notify_serialization", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        EmptyOperator(task_id=TaskId.SUMMARIZE_RUN, **callbacks)
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    task = restored.task_dict[TaskId.SUMMARIZE_RUN]
    assert task.has_on_success_callback and task.has_on_failure_callback
    with pytest.raises(ValueError, match="unknown outcome"):
        run_story_callbacks(Spec(), {**NOTIFY, "on": ["promotion"]})  # a typo fails at parse time


@pytest.mark.parametrize(
    "block",
    [
        {},
        {"on": ["failed"], "retries": 0},
        {"email": ["ops@example.com"]},
        {"webhook": {"conn_id": "slack_hook"}},
        {"email": ["ops@example.com"], "webhook": {"conn_id": "slack_hook", "endpoint": "/x"}, "on": ["promoted"]},
    ],
)
def test_callbacks_from_parsed_notify_block_match_notify_config(block):
    """A parsed ``notify:`` block without channel returns {} without the notify module; the
    answer is the one ``notify_config`` gives for the same block."""
    from retrain_ops.notifiers import RunStoryNotifier, run_story_callbacks

    from include.retrainer.config import NotifySpec
    from include.retrainer.notify import notify_config

    class Spec:
        name, artifacts_conn_id = "churn", "s3_data"

    parsed = NotifySpec.model_validate(block)
    callbacks = run_story_callbacks(Spec(), parsed)
    if notify_config(parsed).channels:
        assert isinstance(callbacks["on_success_callback"][0], RunStoryNotifier)
        assert callbacks["on_failure_callback"] == callbacks["on_success_callback"]
    else:
        assert callbacks == {}
