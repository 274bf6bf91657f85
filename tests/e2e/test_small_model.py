"""A small model (25 rows a day) is never stuck: a named outcome first, then a first champion.

Week 1 alone cannot give 200 training rows and 100 held-out rows, and there is no earlier
data to widen the window into: the run ends green with decision ``skipped`` and
``decision_code: insufficient_data`` (no version registered, champion untouched). Week 2:
the window widens to two weeks, the held-out days widen until they hold 100 rows, and the
model gets its first champion. Week 3 is assessed (every signal reported), not skipped for a
small reference.
"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from mlflow import MlflowClient

from include.demo import data as demo_data
from tests.e2e.conftest import DagRunner

W1 = dt.date(2026, 6, 7)  # a Sunday
W2, W3 = W1 + dt.timedelta(weeks=1), W1 + dt.timedelta(weeks=2)

pytestmark = pytest.mark.timeout(900)


def test_small_weeks_get_a_named_outcome_then_a_first_champion(stack, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    spec = {
        "name": "tiny_churn",
        "data": {"bucket": "raw-data", "prefix": "tiny_churn"},
        "features": {
            "target": "churned",
            "timestamp": "event_ts",
            "numeric": ["tenure_months", "monthly_charges", "support_calls", "usage_hours"],
            "categorical": ["contract", "payment_method", "region"],
        },
        "training": {"params": {"max_iter": 50}, "window_weeks": 1, "max_window_weeks": 4, "holdout_days": 2},
        "comparison": {"primary_metric": "roc_auc", "floor": 0.55},
    }
    (models / "tiny_churn.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(models))
    frames = demo_data.generate_churn(W1, days=21, rows_per_day=25, seed=3)
    demo_data.write_partitions(stack["s3"], "raw-data", "tiny_churn", frames)
    runner = DagRunner(models / "tiny_churn.yaml", stack["s3"])
    client = MlflowClient(stack["mlflow"])

    run, s1 = runner.run(W1)
    assert str(run.state) == "success", runner.task_states(run)
    assert (s1["decision"], s1["decision_code"]) == ("skipped", "insufficient_data"), s1["reasons"]
    assert "min_holdout_rows=100" in s1["reasons"][0] or "min_train_rows=200" in s1["reasons"][0]
    assert "widened to 4 weeks" in s1["reasons"][0]
    # ~175 rows a week of data: 300 rows take 2 weeks, within the 4 the window may widen to.
    assert "take ~2 weeks; the window widens up to training.max_window_weeks=4: wait for more weeks" in s1["reasons"][0]
    assert s1["challenger_version"] is None
    assert client.search_model_versions("name='tiny_churn'") == []
    assert s1["headline"].startswith("Skipped (insufficient data)")

    run, s2 = runner.run(W2)
    assert str(run.state) == "success", runner.task_states(run)
    assert s2["decision"] == "promoted", s2["reasons"]
    assert s2["trigger"] == "cold_start"
    assert s2["training_window"]["weeks"] == 2
    assert s2["evaluation"]["widened"] is True and s2["evaluation"]["holdout_rows"] >= 100

    run, s3 = runner.run(W3)
    assert str(run.state) == "success", runner.task_states(run)
    assert s3["decision"] in ("skipped", "promoted", "rejected"), s3["reasons"]
    signals = {s["name"]: s["status"] for s in s3["drift"]["signals"]}
    assert set(signals) >= {"data_drift", "prediction_drift", "performance_decay", "age"}
    assert signals["data_drift"] in ("fired", "quiet")  # 100+ reference rows: assessed, not "insufficient"
