"""Quarantine and run params: a day that fails validation is set aside (a copy plus the report,
raw data untouched); later runs skip it or take it back in. Bad params never start a run."""

from __future__ import annotations

import datetime as dt
import io
import json

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer.tasks import RunParam, TaskId
from tests.e2e.conftest import DagRunner
from tests.plugins.conftest import ROOT

W = dt.date(2026, 6, 7)  # a Sunday
BAD_DAY = W + dt.timedelta(days=2)

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def setup(stack, tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw.update(name="quarantined_churn", retries=1, retry_delay_minutes=0.02)
    raw["data"]["prefix"] = "quarantine_demo"
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    (models / "quarantined_churn.yaml").write_text(yaml.safe_dump(raw))
    mp = pytest.MonkeyPatch()
    mp.setenv("RETRAIN_MODELS_DIR", str(models))  # dag.test() parses dags/ and must find this DAG
    frames = demo_data.generate_churn(W, days=7, rows_per_day=600)
    bad = frames[BAD_DAY].copy()
    bad.loc[bad.index[:300], "churned"] = None  # half the labels missing: the target must not be null
    frames[BAD_DAY] = bad
    demo_data.write_partitions(stack["s3"], "raw-data", "quarantine_demo", frames)
    yield DagRunner(models / "quarantined_churn.yaml", stack["s3"]), frames
    mp.undo()


def raw_etags(s3) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="raw-data", Prefix="quarantine_demo/")["Contents"]}


def test_failing_day_is_quarantined_then_skipped_then_taken_back(setup, stack):
    runner, frames = setup
    s3 = stack["s3"]
    before = raw_etags(s3)
    quarantine = f"runs/quarantined_churn/quarantine/dt={BAD_DAY}"

    run, s = runner.run(W)
    assert str(run.state) == "failed"
    assert s["decision"] == "failed"
    assert s["validation"]["success"] is False
    assert s["validation"]["quarantined_days"] == [BAD_DAY.isoformat()]
    assert s["validation"]["quarantined_rows"] == len(frames[BAD_DAY]) == 600  # the whole day, not just bad rows
    assert s["durations"][TaskId.VALIDATE_BATCH] > 0  # a failed step's time comes from its error record
    assert any("churned" in str(e.get("column")) for e in s["validation"]["failed_expectations"])
    assert any("validate_batch failed" in r and "quarantined day(s): " + BAD_DAY.isoformat() in r for r in s["reasons"])
    record = json.loads(s3.get_object(Bucket="retrain-artifacts", Key=f"{quarantine}/record.json")["Body"].read())
    assert record["status"] == "quarantined" and record["failed_expectations"]
    copy = s3.get_object(Bucket="retrain-artifacts", Key=record["files"][0]["copy"].split("/", 3)[3])["Body"].read()
    assert pd.read_parquet(io.BytesIO(copy)).equals(
        pd.read_parquet(
            io.BytesIO(
                s3.get_object(Bucket="raw-data", Key=f"quarantine_demo/dt={BAD_DAY}/part-000.parquet")["Body"].read()
            )
        )
    )
    assert raw_etags(s3) == before  # raw data untouched

    # Default policy: the quarantined day is left out, the rest of the week goes through.
    run, s = runner.run(W)
    assert str(run.state) == "success", runner.task_states(run)
    assert s["decision"] == "promoted"
    assert s["partitions"]["days_quarantined_skipped"] == [BAD_DAY.isoformat()]
    assert s["rows"] == 6 * 600

    # Upstream fixes the day; a run told to take quarantined days back in releases it.
    demo_data.write_partitions(
        s3, "raw-data", "quarantine_demo", {BAD_DAY: demo_data.generate_churn_day(BAD_DAY, 600, seed=1)}
    )
    run, s = runner.run(W, quarantine="include")
    assert str(run.state) == "success", runner.task_states(run)
    assert s["rows"] == 7 * 600 and s["partitions"]["days_quarantined_skipped"] == []
    assert s["validation"]["released_days"] == [BAD_DAY.isoformat()]
    record = json.loads(s3.get_object(Bucket="retrain-artifacts", Key=f"{quarantine}/record.json")["Body"].read())
    assert record["status"] == "released"


@pytest.mark.parametrize(
    "conf", [{RunParam.FORCE_RETRAIN: "yes"}, {RunParam.ALLOW_PROMOTION: 1}, {"quarantine": "ignore"}]
)
def test_bad_params_are_refused_before_any_task_runs(setup, stack, conf):
    runner, _ = setup
    versions = len(MlflowClient(stack["mlflow"]).search_model_versions("name='quarantined_churn'"))
    with pytest.raises(Exception, match="(?i)param|valid|schema"):
        runner.run(W + dt.timedelta(weeks=5), **conf)
    assert len(MlflowClient(stack["mlflow"]).search_model_versions("name='quarantined_churn'")) == versions
    listed = stack["s3"].list_objects_v2(Bucket="retrain-artifacts", Prefix="runs/quarantined_churn/2026071")
    assert listed.get("KeyCount", 0) == 0  # no task ran, nothing was written for that week
