"""An earlier champion comes back through the whole DAG, instead of a retrain.

Week 1 is clean: v1 is the first champion. Week 2 is the other "season" (the demo's drift
event: charges jump by +40..60 and high charges raise churn): v2, trained on it, ends up
champion (put there by hand if the comparison did not promote it). Week 3 is the first season
again: its charges drifted back from v2's training rows, so the gate wants a retrain (a change,
not the age: an age refresh asks for newer data, which no earlier champion holds), and
``detect_drift`` judges v1 against v2 on the labelled batch; v1 serves it better, so
``train_challenger`` trains nothing, ``compare_models`` decides "reinstate",
``decide_promotion`` follows ``promote_challenger``, the alias moves back to v1 and the grid's
``mark_promoted`` row is green with decision code ``reinstated``.
"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer import steps
from include.retrainer.storage import ObjectStore
from include.retrainer.tasks import TaskId
from tests.e2e.conftest import DagRunner, week

W1 = dt.date(2026, 6, 7)  # a Sunday
W2, W3 = W1 + dt.timedelta(weeks=1), W1 + dt.timedelta(weeks=2)

pytestmark = pytest.mark.timeout(900)


def test_an_earlier_champion_returns_instead_of_a_retrain(stack, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    spec = {
        "name": "seasonal_churn",
        "data": {"bucket": "raw-data", "prefix": "seasonal_churn"},
        "features": {
            "target": "churned",
            "timestamp": "event_ts",
            "numeric": ["tenure_months", "monthly_charges", "support_calls", "usage_hours"],
            "categorical": ["contract", "payment_method", "region"],
        },
        "training": {"params": {"max_iter": 50}, "window_weeks": 1, "max_window_weeks": 1, "holdout_days": 2},
        "comparison": {"primary_metric": "roc_auc"},
    }
    (models / "seasonal_churn.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(models))
    frames = demo_data.generate_churn(W1, days=21, rows_per_day=400, seed=5)
    for d in range(7):  # week 2: the other season
        day = W2 + dt.timedelta(days=d)
        frames[day] = demo_data.generate_churn_day(day, 400, 5, drifted=True)
    demo_data.write_partitions(stack["s3"], "raw-data", "seasonal_churn", frames)
    runner = DagRunner(models / "seasonal_churn.yaml", stack["s3"])
    client = MlflowClient(stack["mlflow"])

    run, s1 = runner.run(W1)
    assert str(run.state) == "success" and s1["decision"] == "promoted", runner.task_states(run)
    v1 = s1["champion_version_after"]
    run, s2 = runner.run(W2)
    assert str(run.state) == "success" and s2["challenger_version"] is not None, s2["reasons"]
    v2 = str(s2["challenger_version"])
    if s2["champion_version_after"] != v2:
        start, end = week(W2)
        ctx = steps.RunContext(dag_id=runner.spec.dag_id, run_id="by_hand", interval_start=start, interval_end=end)
        put = steps.ComparisonResult(
            decision="promote", challenger_version=v2, champion_version=v1, reasons=["test: put v2 in office"]
        )
        steps.promote_challenger(ObjectStore(stack["s3"]), stack["mlflow"], runner.spec, ctx, put)
    assert client.get_model_version_by_alias("seasonal_churn", "champion").version == v2

    run, s3 = runner.run(W3)
    states = runner.task_states(run)
    assert str(run.state) == "success", states
    assert (s3["decision"], s3["decision_code"]) == ("promoted", "reinstated"), s3["reasons"]
    assert (s3["champion_version_before"], s3["champion_version_after"]) == (v2, v1)
    assert s3["reinstated_version"] == v1 and s3["challenger_version"] is None
    assert s3["drift"]["reinstatement"]["reinstated"] == v1
    # Its lead held between the batch's 7 days (400 rows each), not only row by row.
    won = {c["key"]: c for c in s3["drift"]["reinstatement"]["candidates"]}[v1]
    assert won["days"]["passed"] and won["days"]["days"] == 7, won
    assert "data_drift" in s3["drift"]["reinstatement"]["trigger"], s3["drift"]["reinstatement"]["trigger"]
    assert s3["headline"].startswith("Reinstated an earlier champion (signals): earlier champion")
    assert client.get_model_version_by_alias("seasonal_churn", "champion").version == v1
    assert len(client.search_model_versions("name='seasonal_churn'")) == 2  # nothing trained in week 3
    assert states[TaskId.TRAIN_CHALLENGER] == "success" and states[TaskId.PROMOTE_CHALLENGER] == "success"
    assert states[TaskId.REJECT_CHALLENGER] == "skipped"
    assert states[TaskId.MARK_PROMOTED] == "success" and states[TaskId.MARK_REJECTED] == "skipped"
