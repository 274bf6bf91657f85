"""Approval bookkeeping on real moto S3 and MLflow: backfill expiry, re-runs reuse, promotion records."""

from __future__ import annotations

import datetime as dt

from mlflow import MlflowClient

from include.retrainer import history, steps
from include.retrainer.tasks import TaskId

UTC = dt.UTC
ANSWER = {
    "chosen_options": ["Approve"],
    "params_input": {"comment": "fine"},
    "responded_by_user": {"id": "carol", "name": "Carol"},
    "responded_at": dt.datetime(2026, 4, 1, 9, tzinfo=UTC),
    "timedout": False,
}


def _versions(client: MlflowClient, name: str, n: int) -> list[str]:
    client.create_registered_model(name)
    exp = client.create_experiment(f"exp_{name}")
    out = []
    for _ in range(n):
        run = client.create_run(exp)
        client.set_terminated(run.info.run_id)
        mv = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        out.append(str(mv.version))
    return out


def _ctx(week: int, run_id: str) -> steps.RunContext:
    start = dt.datetime(2026, 3, 1, tzinfo=UTC) + dt.timedelta(weeks=week)
    return steps.RunContext(
        dag_id="retrain_x", run_id=run_id, interval_start=start, interval_end=start + dt.timedelta(weeks=1)
    )


def _results(version: str, champion: str | None = None) -> steps.RunResults:
    return steps.RunResults.from_xcom(
        {
            TaskId.COMPARE_MODELS: {
                "decision": "promote",
                "challenger_version": version,
                "champion_version": champion,
                "reasons": [f"v{version} is better"],
                "metrics": {"champion": {}, "challenger": {"roc_auc": 0.8}},
            },
            TaskId.TRAIN_CHALLENGER: {"challenger_version": version},
        }
    )


def test_backfill_only_the_newest_request_can_be_approved(mlflow_server, store, churn_spec_factory):
    spec = churn_spec_factory(promotion__approval="required", promotion__expire_superseded=False)
    v1, v2, v3 = _versions(MlflowClient(mlflow_server), spec.name, 3)
    old, new, older = _ctx(0, "backfill_w0"), _ctx(1, "backfill_w1"), _ctx(-1, "backfill_wm1")

    asked_old = steps.prepare_approval(store, mlflow_server, spec, old, _results(v1))
    asked_new = steps.prepare_approval(store, mlflow_server, spec, new, _results(v2))
    assert asked_old["ask"] and asked_new["ask"]
    assert "Run report: `s3://" in asked_new["body"] and asked_new["subject"].startswith(f"Approve {spec.name} v{v2}")

    # An older week reaching the step after a newer one expires at once: nobody is asked.
    late = steps.prepare_approval(store, mlflow_server, spec, older, _results(v3))
    assert late["ask"] is False and late["decision"]["outcome"] == "expired"
    assert late["decision"]["reason"].startswith(
        f"expired: a newer challenger v{v2} (week 2026-03-08..2026-03-15, run backfill_w1)"
    )

    # The older pending request, answered after the newer one was made: expired, answer kept.
    stale = steps.finish_approval(store, mlflow_server, spec, old, v1, ANSWER)
    assert stale["outcome"] == "expired" and stale["decided_by"] == "Carol" and "response ignored" in stale["reason"]

    # The newest one is approved; a re-run of its interval reuses the decision instead of asking.
    approved = steps.finish_approval(store, mlflow_server, spec, new, v2, ANSWER)
    assert (approved["outcome"], approved["decided_by"], approved["comment"]) == ("approved", "Carol", "fine")
    again = steps.prepare_approval(store, mlflow_server, spec, _ctx(1, "manual_rerun"), _results(v2))
    assert again["ask"] is False
    assert again["decision"]["outcome"] == "approved" and again["decision"]["reused"] is True
    assert again["decision"]["dag_run_id"] == "backfill_w1"
    # A second answer for a decided key changes nothing (the first recorded decision wins).
    rejected = steps.finish_approval(store, mlflow_server, spec, new, v2, {**ANSWER, "chosen_options": ["Reject"]})
    assert rejected["outcome"] == "approved"
    # The model's approvals log has each decision once.
    log = history.list_approvals(store, spec)
    assert sorted(d["outcome"] for d in log) == ["approved", "expired", "expired"]


def test_a_dry_run_asks_nobody(mlflow_server, store, churn_spec_factory):
    spec = churn_spec_factory(promotion__approval="required", promotion__expire_superseded=False)
    (v1,) = _versions(MlflowClient(mlflow_server), spec.name, 1)
    ctx = steps.RunContext(**{**_ctx(0, "dry").__dict__, "params": {"allow_promotion": False}})
    out = steps.prepare_approval(store, mlflow_server, spec, ctx, _results(v1))
    assert out["ask"] is False and out["decision"]["outcome"] == "not_requested"
    assert "allow_promotion=false" in out["decision"]["reason"]


def test_promotion_records_the_approval_and_a_rejection_keeps_the_champion(
    mlflow_server, store, churn_spec_factory, moto_server
):
    spec = churn_spec_factory(promotion__approval="required", promotion__expire_superseded=False)
    client = MlflowClient(mlflow_server)
    v1, v2, v3 = _versions(client, spec.name, 3)
    client.set_registered_model_alias(spec.name, "champion", v1)
    ctx2, ctx3 = _ctx(1, "r2"), _ctx(2, "r3")

    steps.prepare_approval(store, mlflow_server, spec, ctx2, _results(v2, v1))
    approval = steps.finish_approval(store, mlflow_server, spec, ctx2, v2, ANSWER)
    out = steps.promote_challenger(store, mlflow_server, spec, ctx2, _results(v2, v1).comparison, approval=approval)
    assert out.promoted is True and out.approval["decided_by"] == "Carol"
    move = history.list_history(store, spec)[-1]
    assert (move["to_version"], move["approval"]["comment"]) == (v2, "fine")
    tags = client.get_model_version(spec.name, v2).tags
    assert (tags["retrain.approval"], tags["retrain.approval_by"], tags["retrain.approval_comment"]) == (
        "approved",
        "Carol",
        "fine",
    )

    steps.prepare_approval(store, mlflow_server, spec, ctx3, _results(v3, v2))
    no = steps.finish_approval(
        store, mlflow_server, spec, ctx3, v3, {**ANSWER, "chosen_options": ["Reject"], "params_input": {}}
    )
    out = steps.promote_challenger(store, mlflow_server, spec, ctx3, _results(v3, v2).comparison, approval=no)
    assert out.promoted is False and out.reasons[-1].startswith("rejected by Carol at")
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == v2
    assert client.get_model_version(spec.name, v3).tags["retrain.approval"] == "rejected"

    # The CLI lists the move with its approval, and every decision with --approvals.
    moves = _history_cli(spec, moto_server)
    assert moves.returncode == 0, moves.stderr
    assert f"-> v{v2}" in moves.stdout and "approval approved" in moves.stdout and 'comment: "fine"' in moves.stdout
    decisions = _history_cli(spec, moto_server, "--approvals")
    assert decisions.returncode == 0, decisions.stderr
    lines = [line for line in decisions.stdout.splitlines() if " approval " in line]
    assert len(lines) == 2 and "approved" in lines[0] and "by Carol" in lines[0] and "rejected" in lines[1]


def _history_cli(spec, endpoint: str, *extra: str):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "champion_history.py"),
            "--model",
            spec.name,
            "--models-dir",
            str(Path(spec.source_path).parent),
            "--s3-endpoint",
            endpoint,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        cwd=str(root),
    )


def test_a_superseded_week_expires_unasked_by_default(mlflow_server, store, churn_spec_factory):
    """A backfill's older weeks (their next interval already ended) never wait for a person."""
    spec = churn_spec_factory(promotion__approval="required")
    (v1,) = _versions(MlflowClient(mlflow_server), spec.name, 1)
    ctx = _ctx(0, "backfill__2026-03-01")
    out = steps.prepare_approval(
        store, mlflow_server, spec, ctx, _results(v1), now=dt.datetime(2026, 3, 20, tzinfo=UTC)
    )
    assert out["ask"] is False and out["decision"]["outcome"] == "expired"
    assert out["decision"]["reason"].startswith(
        "expired: the next data interval (2026-03-08..2026-03-15) had already ended"
    )
    # The newest complete week is asked about.
    newest = steps.prepare_approval(
        store, mlflow_server, spec, _ctx(1, "scheduled"), _results(v1), now=dt.datetime(2026, 3, 15, 1, tzinfo=UTC)
    )
    assert newest["ask"] is True


def test_timeout_applies_the_spec_outcome_through_the_operator(
    mlflow_server, store, churn_spec_factory, moto_server, monkeypatch
):
    """The scheduler's timeout sweep resumes the task with the default option and ``timedout``:
    the operator records ``timed_out`` (not promoted) and promote_challenger keeps the champion."""
    import json
    import types
    import uuid

    from airflow.models.hitl import HITLDetail
    from retrain_ops.approval import PromotionApproveOperator

    monkeypatch.setenv(
        "AIRFLOW_CONN_ARTIFACTS_TIMEOUT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "test",
                "password": "test",
                "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"},
            }
        ),
    )
    spec = churn_spec_factory(
        promotion__approval="required", promotion__approval_timeout="90m", promotion__expire_superseded=False
    )
    client = MlflowClient(mlflow_server)
    v1, v2 = _versions(client, spec.name, 2)
    client.set_registered_model_alias(spec.name, "champion", v1)
    ctx = _ctx(3, "scheduled__timeout")
    comparison = _results(v2, v1).comparison
    steps.prepare_approval(store, mlflow_server, spec, ctx, _results(v2, v1))

    # What the sweep does to the request when the deadline passes (scheduler_job_runner).
    detail = HITLDetail(
        ti_id=uuid.uuid4(),
        options=["Approve", "Reject"],
        subject="s",
        defaults=["Reject"],
        params={"comment": {"value": ""}},
    )
    detail.chosen_options, detail.params_input = list(detail.defaults), {"comment": ""}
    detail.responded_by, detail.responded_at = None, dt.datetime.now(UTC)
    event = detail.as_resume_event_payload(timedout=True)

    ti = types.SimpleNamespace(xcom_pull=lambda task_ids, key="return_value": comparison.to_xcom(), try_number=1)
    dag_run = types.SimpleNamespace(
        dag_id=ctx.dag_id, run_id=ctx.run_id, run_after=ctx.interval_end, logical_date=ctx.interval_end
    )
    context = {
        "dag_run": dag_run,
        "ti": ti,
        "data_interval_start": ctx.interval_start,
        "data_interval_end": ctx.interval_end,
        "params": {},
    }
    op = PromotionApproveOperator(
        task_id="approve_promotion",
        spec=spec,
        s3_conn_id="artifacts_timeout",
        mlflow_conn_id="mlflow_default",
        response_timeout=dt.timedelta(minutes=90),
    )
    decision = op.execute_complete(context, event)
    assert (decision["outcome"], decision["decided_by"], decision["allows_promotion"]) == ("timed_out", None, False)
    assert decision["reason"].startswith("approval timed out: no response within 90m")
    out = steps.promote_challenger(store, mlflow_server, spec, ctx, comparison, approval=decision)
    assert out.promoted is False and "approval timed out" in out.reasons[-1]
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == v1
