"""Security: secrets never reach logs, summaries, artefacts or MLflow; models load only from
our registry by version number; object keys cannot leave the configured prefix."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer import registry
from include.retrainer.config import ModelSpecError, parse_spec
from tests.e2e.conftest import DagRunner
from tests.plugins.conftest import ROOT

SECRET = "Zq9-not-a-real-secret-7Hf2KpLw"  # moto accepts any credentials
W = dt.date(2026, 8, 2)  # a Sunday

pytestmark = pytest.mark.timeout(600)


def test_credentials_never_leak(stack, tmp_path, monkeypatch, capfd, caplog):
    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw.update(name="secure_churn", retries=1, retry_delay_minutes=0.02)
    raw["data"]["prefix"] = "secure_demo"
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    (tmp_path / "secure_churn.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_S3_DATA",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "secure-access-key",
                "password": SECRET,
                "extra": {"endpoint_url": stack["s3_endpoint"], "region_name": "us-east-1"},
            }
        ),
    )
    demo_data.write_partitions(
        stack["s3"], "raw-data", "secure_demo", demo_data.generate_churn(W, days=7, rows_per_day=500)
    )
    runner = DagRunner(tmp_path / "secure_churn.yaml", stack["s3"])
    run, summary = runner.run(W)
    assert str(run.state) == "success", runner.task_states(run)
    assert summary["decision"] == "promoted"

    out, err = capfd.readouterr()
    assert SECRET not in out + err + caplog.text
    s3 = stack["s3"]
    for obj in s3.list_objects_v2(Bucket="retrain-artifacts", Prefix="runs/secure_churn/")["Contents"]:
        if obj["Key"].endswith((".json", ".html")):
            assert SECRET not in s3.get_object(Bucket="retrain-artifacts", Key=obj["Key"])["Body"].read().decode(), obj[
                "Key"
            ]
    client = MlflowClient(stack["mlflow"])
    mv = client.get_model_version("secure_churn", summary["challenger_version"])
    mlflow_run = client.get_run(mv.run_id)
    blob = json.dumps([mv.tags, mlflow_run.data.params, mlflow_run.data.tags])
    assert SECRET not in blob


def test_models_load_only_by_registry_version(mlflow_server):
    for bad in ("../../etc", "s3://bucket/model", "latest", "1; rm -rf /"):
        with pytest.raises(registry.RegistryError, match="not a registry version number"):
            registry.load_model(mlflow_server, "churn", bad)


@pytest.mark.parametrize("field,value", [("prefix", "../other-team"), ("prefix", "a/../../b"), ("bucket", "../x")])
def test_configured_keys_cannot_escape(field, value, tmp_path):
    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    raw["data"][field] = value
    with pytest.raises(ModelSpecError, match=f"data.{field}"):
        parse_spec(raw, tmp_path / "churn.yaml")


def test_no_credentials_committed():
    """Only the documented dummy local credentials appear in tracked configuration."""
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    suspicious = []
    for name in files:
        if name == "tests/e2e/test_security.py":  # this file names the markers
            continue
        if name.endswith((".py", ".yaml", ".yml", ".json", ".cfg", ".ini", ".toml", ".env", ".example", ".sh")):
            text = (ROOT / name).read_text(errors="ignore")
            for marker in ("AKIA", "-----BEGIN", "aws_secret_access_key = "):
                if marker in text:
                    suspicious.append((name, marker))
    assert suspicious == []
