"""Slice and fairness gates through the real task functions, on real MLflow and moto S3.

Week 1 makes a champion. Week 2 brings a concept change: the retrained challenger is clearly
better overall, but its predictions are over the demographic-parity limit on a sensitive
attribute that is not a model feature (``age_band``, in the data, never trained on). It must
not be promoted, and the run summary and the challenger's MLflow run must say why.
"""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pytest
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer import steps
from include.retrainer.report import render_report
from include.retrainer.tasks import TaskId

START = dt.datetime(2026, 6, 7, tzinfo=dt.UTC)  # a Sunday
WEEK = dt.timedelta(weeks=1)

pytestmark = pytest.mark.timeout(600)


def _seed(s3, prefix: str) -> None:
    frames = demo_data.generate_churn(START.date(), days=14, rows_per_day=700, drift_start=(START + WEEK).date())
    for day, frame in frames.items():
        # A sensitive attribute correlated with the contract type (and so with churn), not a feature.
        rng = np.random.default_rng(day.toordinal())
        m2m = frame["contract"].to_numpy() == "month-to-month"
        frame["age_band"] = np.where(rng.random(len(frame)) < np.where(m2m, 0.85, 0.15), "under_30", "30_plus")
    demo_data.write_partitions(s3, "raw-data", prefix, frames)


def _ctx(spec, start: dt.datetime) -> steps.RunContext:
    return steps.RunContext(
        dag_id=spec.dag_id, run_id=f"r_{start.date()}", interval_start=start, interval_end=start + WEEK
    )


def test_better_challenger_over_the_disparity_limit_is_not_promoted(mlflow_server, s3, store, churn_spec_factory):
    name, prefix = f"t_{uuid.uuid4().hex[:10]}", f"fair_{uuid.uuid4().hex[:6]}"
    _seed(s3, prefix)
    plain = churn_spec_factory(name=name, data__prefix=prefix)

    # Week 1: cold start, no gates: the first champion.
    ctx1 = _ctx(plain, START)
    trained1 = steps.train_challenger(store, mlflow_server, plain, ctx1)
    comparison1 = steps.compare_models(store, mlflow_server, plain, ctx1, trained1)
    assert comparison1.decision == "promote", comparison1.reasons
    assert comparison1.slices is None and comparison1.fairness is None
    assert steps.promote_challenger(store, mlflow_server, plain, ctx1, comparison1).promoted
    champion_v = str(trained1.challenger_version)

    # Week 2: the same model with slice and fairness gates.
    gated = churn_spec_factory(
        name=name,
        data__prefix=prefix,
        features__attributes=["age_band"],
        comparison__slices={"columns": ["contract", "age_band"], "min_rows": 100},
        comparison__fairness={
            "sensitive": ["age_band"],
            "demographic_parity_difference_max": 0.05,
            "equalized_odds_difference_max": 0.5,
        },
    )
    ctx2 = _ctx(gated, START + WEEK)
    trained2 = steps.train_challenger(store, mlflow_server, gated, ctx2)
    comparison = steps.compare_models(store, mlflow_server, gated, ctx2, trained2)
    checks = comparison.checks
    assert comparison.paired_test["effect"] > 0  # better overall...
    assert checks["floor"] and checks["expected_gain"] and checks["mcnemar"], comparison.reasons
    assert checks["fairness"] is False and comparison.decision == "reject"  # ...but over the limit
    assert comparison.fairness["blocked_by"] == ["age_band:demographic_parity_difference"]
    assert comparison.slices["judged"] >= 4  # contract x3, age_band x2 (each >= 100 held-out rows)

    outcome = steps.reject_challenger(mlflow_server, gated, ctx2, comparison)
    assert outcome.promoted is False
    # As the summarize task gets them: the XCom JSON of each step, read back into typed results.
    results = steps.RunResults.from_xcom(
        {
            TaskId.DECIDE_RETRAIN: steps.RetrainDecision(retrain=True, reason="data drift").to_xcom(),
            TaskId.TRAIN_CHALLENGER: trained2.to_xcom(),
            TaskId.COMPARE_MODELS: comparison.to_xcom(),
            TaskId.REJECT_CHALLENGER: outcome.to_xcom(),
        }
    )
    summary = steps.summarize_run(store, mlflow_server, gated, ctx2, results, {})

    assert summary["schema_version"] == 8
    assert summary["decision"] == "rejected" and summary["champion_version_after"] == champion_v
    blocking = [r for r in summary["reasons"] if r.startswith("fairness on 'age_band'") and "not promoting" in r]
    assert len(blocking) == 1 and "> limit 0.050" in blocking[0], summary["reasons"]
    assert summary["fairness"]["attributes"]["age_band"]["over_limit"] == ["demographic_parity_difference"]
    groups = {g["group"] for g in summary["fairness"]["attributes"]["age_band"]["challenger"]["groups"]}
    assert groups == {"under_30", "30_plus"}
    assert summary["comparison"]["checks"]["fairness"] is False
    assert {s["column"] for s in summary["slices"]["slices"]} == {"contract", "age_band"}
    assert store.get_json(summary["summary_uri"])["fairness"]["passed"] is False
    predictions = store.read_parquet(comparison.predictions_uri)
    assert {"age_band", "contract", "challenger_pred", "champion_pred"} <= set(predictions.columns)

    client = MlflowClient(mlflow_server)
    assert str(client.get_model_version_by_alias(name, "champion").version) == champion_v
    run_tags = client.get_run(trained2.run_id).data.tags
    assert "fairness on 'age_band'" in run_tags["retrain.decision_reasons"]
    page = render_report(summary)
    assert "<h2>Fairness</h2>" in page and "age_band:demographic_parity_difference" in page
