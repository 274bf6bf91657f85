"""Operator extra links: resolved by Airflow in the worker after the task, from the task's XCom.

A link exists only for something the task made and only when the public URL is configured;
otherwise it resolves to "" (shown disabled in the UI).
"""

from __future__ import annotations

import json
import uuid

import pytest
from retrain_ops.links import link_url

from include.retrainer.public_urls import PublicUrls
from include.retrainer.tasks import TaskId

pytestmark = pytest.mark.timeout(300)

URLS = PublicUrls(mlflow="http://mlflow.example:5000", reports="http://s3.example")


def test_links_from_a_tasks_return_value():
    trained = {"run_id": "abc", "challenger_version": "7"}
    assert link_url("MLflow run", trained, None, "churn", URLS) == "http://mlflow.example:5000/#/runs/abc"
    assert (
        link_url("Challenger version", trained, None, "churn", URLS)
        == "http://mlflow.example:5000/#/models/churn/versions/7"
    )
    promoted = {"promoted": True, "champion_after": "7", "champion_before": "6"}
    assert (
        link_url("Champion version", promoted, None, "churn", URLS)
        == "http://mlflow.example:5000/#/models/churn/versions/7"
    )
    validated = {
        "report_uri": "s3://arts/runs/churn/w/validation.json",
        "data_docs_uri": "s3://arts/runs/churn/w/data_docs/index.html",
    }
    assert (
        link_url("Validation report", validated, None, "churn", URLS)
        == "http://s3.example/arts/runs/churn/w/validation.json"
    )
    assert (
        link_url("Data Docs", validated, None, "churn", URLS)
        == "http://s3.example/arts/runs/churn/w/data_docs/index.html"
    )


def test_never_a_link_to_something_that_does_not_exist():
    # Insufficient data: no version was registered.
    assert (
        link_url("Challenger version", {"challenger_version": None, "insufficient_data": True}, None, "churn", URLS)
        == ""
    )
    # A rejection (or a promotion that turned into one) has no champion link.
    assert link_url("Champion version", {"promoted": False, "champion_after": "6"}, None, "churn", URLS) == ""
    # Nothing returned (the task failed).
    for name in (
        "MLflow run",
        "Challenger version",
        "Champion version",
        "Run report",
        "Validation report",
        "Data Docs",
    ):
        assert link_url(name, None, None, "churn", URLS) == ""
    # Public URLs not configured: no guessed address.
    assert link_url("MLflow run", {"run_id": "abc"}, None, "churn", PublicUrls()) == ""
    assert link_url("Validation report", {"report_uri": "s3://a/b"}, None, "churn", PublicUrls(mlflow="http://m")) == ""


def test_the_run_story_provides_links_of_the_summarize_task():
    story = {"links": {"Run report": "http://m/#/experiments/1/runs/r/artifacts/report.html"}}
    assert link_url("Run report", None, story, "churn", URLS) == "http://m/#/experiments/1/runs/r/artifacts/report.html"
    assert link_url("Champion version", None, story, "churn", URLS) == ""


def test_public_urls_are_validated():
    with pytest.raises(ValueError, match="RETRAIN_MLFLOW_PUBLIC_URL"):
        PublicUrls.from_env({"RETRAIN_MLFLOW_PUBLIC_URL": "mlflow:5000"})
    urls = PublicUrls.from_env(
        {"RETRAIN_MLFLOW_PUBLIC_URL": "https://mlflow.example/ ", "RETRAIN_REPORTS_PUBLIC_URL": ""}
    )
    assert urls == PublicUrls(mlflow="https://mlflow.example", reports=None)
    assert urls.model_version("my model", 3) == "https://mlflow.example/#/models/my%20model/versions/3"
    assert (
        urls.mlflow_artifact("r", "1", "data_docs/index.html")
        == "https://mlflow.example/#/experiments/1/runs/r/artifacts/data_docs/index.html"
    )
    assert urls.mlflow_artifact("r", None, "report.html") is None


_DAG_FILE = """
import datetime as dt
import json
import os

from airflow.sdk import DAG

from include.retrainer.tasks import TaskId
from retrain_ops.operators import ChallengerTrainOperator, ChampionPromoteOperator


class FakeSpec:
    name = "churn"


RESULTS = json.loads(os.environ.get("LINK_TEST_RESULTS", "{}"))


class Train(ChallengerTrainOperator):
    def execute(self, context):  # the real links, a canned result (no training here)
        return RESULTS["train"]


class Promote(ChampionPromoteOperator):
    def execute(self, context):
        return RESULTS["promote"]


with DAG("links_test", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)) as dag:
    train = Train(task_id=TaskId.TRAIN_CHALLENGER, spec=FakeSpec())
    train >> Promote(task_id=TaskId.PROMOTE_CHALLENGER, comparison=train.output, spec=FakeSpec())
"""


def test_airflow_resolves_and_stores_the_links_after_the_task(tmp_path, monkeypatch, airflow_db):
    folder = tmp_path / "link_dags"
    folder.mkdir()
    (folder / "links_test_dag.py").write_text(_DAG_FILE)
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        json.dumps(
            [
                {"name": "dags-folder", "classpath": local, "kwargs": {}},
                {"name": "link-tests", "classpath": local, "kwargs": {"path": str(folder)}},
            ]
        ),
    )
    monkeypatch.setenv("RETRAIN_MLFLOW_PUBLIC_URL", "http://mlflow.example:5000")
    monkeypatch.setenv(
        "LINK_TEST_RESULTS",
        json.dumps(
            {
                "train": {"run_id": "run123", "challenger_version": "4"},
                "promote": {"promoted": False, "champion_before": "3", "champion_after": "3"},  # rejected at promotion
            }
        ),
    )
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"links_test_dag_{uuid.uuid4().hex}", folder / "links_test_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.dag.test()
    assert str(run.state) == "success"

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(XComModel.dag_id == "links_test", XComModel.run_id == run.run_id, XComModel.key.like("_link_%"))
            .all()
        )
        links = {(r.task_id, r.key): XComModel.deserialize_value(r) for r in rows}
    assert links[(TaskId.TRAIN_CHALLENGER, "_link_MlflowRunLink")] == "http://mlflow.example:5000/#/runs/run123"
    assert (
        links[(TaskId.TRAIN_CHALLENGER, "_link_ChallengerVersionLink")]
        == "http://mlflow.example:5000/#/models/churn/versions/4"
    )
    assert links[(TaskId.PROMOTE_CHALLENGER, "_link_ChampionVersionLink")] == ""
