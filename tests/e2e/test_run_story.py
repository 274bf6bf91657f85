"""Every run tells its story: one real week through the DAG (moto S3, MLflow, Airflow dag.test()).

Checks what a person sees afterwards: the outcome row of the grid, the HTML report beside the
summary and in the MLflow run (with the Data Docs), the links, and the registry's descriptions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer.storage import split_uri
from include.retrainer.tasks import TaskId
from tests.e2e.conftest import DagRunner

ROOT = Path(__file__).resolve().parents[2]
WEEK = dt.date(2026, 5, 3)  # a Sunday, away from the weeks other e2e tests use
MODEL = "storychurn"

pytestmark = pytest.mark.timeout(900)


def test_a_promoted_week_tells_its_story(stack, tmp_path, monkeypatch):
    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw["name"] = MODEL
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    models = tmp_path / "models"
    models.mkdir()
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(models))  # dag.test() runs the DAG as parsed from dags/
    monkeypatch.setenv("RETRAIN_MLFLOW_PUBLIC_URL", stack["mlflow"])
    demo_data.write_partitions(
        stack["s3"], "raw-data", "churn", demo_data.generate_churn(WEEK, days=7, rows_per_day=1500)
    )
    runner = DagRunner(models / f"{MODEL}.yaml", stack["s3"])
    client = MlflowClient(stack["mlflow"])

    run, summary = runner.run(WEEK)

    states = runner.task_states(run)
    assert str(run.state) == "success", states
    assert summary["decision"] == "promoted", summary["reasons"]
    # The grid: exactly the outcome that happened is green.
    assert states[TaskId.DECIDE_OUTCOME] == "success" and states[TaskId.MARK_PROMOTED] == "success"
    assert {
        states[t]
        for t in (
            TaskId.MARK_REJECTED,
            TaskId.MARK_SKIPPED_NO_DRIFT,
            TaskId.MARK_SKIPPED_INSUFFICIENT_DATA,
            TaskId.MARK_FORCED_RUN,
        )
    } == {"skipped"}

    # The report beside summary.json, decision first.
    report_uri = summary["summary_uri"].rsplit("/", 1)[0] + "/report.html"
    bucket, key = split_uri(report_uri)
    obj = stack["s3"].get_object(Bucket=bucket, Key=key)
    page = obj["Body"].read().decode()
    assert obj["ContentType"].startswith("text/html")
    assert (
        page.index(summary["headline"][:40].replace("'", "&#x27;"))
        < page.index("<h2>Drift gate</h2>")
        < page.index("<h2>Lineage</h2>")
    )

    # The story in XCom, with links to things that exist.
    ti = next(t for t in run.get_task_instances() if t.task_id == TaskId.SUMMARIZE_RUN)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = {
            r.key: XComModel.deserialize_value(r)
            for r in session.query(XComModel).filter(
                XComModel.dag_id == ti.dag_id, XComModel.run_id == ti.run_id, XComModel.task_id == TaskId.SUMMARIZE_RUN
            )
        }
    story = rows["story"]
    assert story["errors"] == [], story["errors"]
    links = story["links"]
    version = summary["champion_version_after"]
    assert links["Champion version"] == f"{stack['mlflow']}/#/models/{MODEL}/versions/{version}"
    assert links["Run report"].endswith(f"/runs/{summary['mlflow_run_id']}/artifacts/report.html")
    assert links["Data Docs"].endswith("/artifacts/data_docs/index.html")
    assert rows["_link_RunReportLink"] == links["Run report"]
    assert rows["_link_ChampionVersionLink"] == links["Champion version"]

    # MLflow holds the same report and the Data Docs (its UI serves them to a browser).
    artifacts = {a.path for a in client.list_artifacts(summary["mlflow_run_id"])}
    assert {"report.html", "data_docs"} <= artifacts
    assert any(a.path == "data_docs/index.html" for a in client.list_artifacts(summary["mlflow_run_id"], "data_docs"))
    local = client.download_artifacts(summary["mlflow_run_id"], "report.html", str(tmp_path))
    assert Path(local).read_text() == page

    # The registry says who is champion and why.
    mv = client.get_model_version(MODEL, version)
    assert mv.description.startswith("CHAMPION since") and summary["dag_run_id"] in mv.description
    model = client.get_registered_model(MODEL)
    assert model.tags.get("champion") == f"v{version}"
    assert model.aliases == {"champion": version}  # the challenger alias left the new champion
