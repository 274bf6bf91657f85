"""The demo churn DAG over consecutive weeks, on real moto S3, MLflow and Airflow.

Data begins three weeks before week 1, so the cold start trains on a full four-week window
(a model trained on a short first window would be retrained at week 2 for the data growth
alone; tests/e2e/test_tickets_multiclass.py covers that).
Week 1: cold start -> promoted. Week 2: stable -> skipped, champion unchanged.
Week 3: drift event -> retrained; the decision equals the paired ROC AUC test (recomputed
with sklearn) and the mid-p McNemar guard (scipy) from the stored paired predictions.
Week 4: shuffled labels, forced retrain -> challenger rejected, champion unchanged.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.stats import binom
from sklearn.metrics import roc_auc_score

from include.demo import data as demo_data
from include.retrainer.tasks import RunParam, TaskId
from tests.e2e.conftest import DagRunner

ROOT = Path(__file__).resolve().parents[2]
W1 = dt.date(2026, 1, 4)  # a Sunday: Airflow's @weekly intervals run Sunday to Sunday
W2, W3, W4 = (W1 + dt.timedelta(weeks=i) for i in (1, 2, 3))
HISTORY = W1 - dt.timedelta(weeks=3)  # churn.yaml's window is 4 weeks: the cold start's is full

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def churn(stack):
    frames = demo_data.generate_churn(
        HISTORY,
        days=49,
        rows_per_day=2000,
        drift_start=W3,
        shuffle_label_days=[W4 + dt.timedelta(days=i) for i in range(7)],
    )
    demo_data.write_partitions(stack["s3"], "raw-data", "churn", frames)
    runner = DagRunner(ROOT / "include" / "models" / "churn.yaml", stack["s3"])
    return runner, MlflowClient(stack["mlflow"])


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias("churn", "champion").version)


def raw_etags(s3) -> dict[str, str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="raw-data", Prefix="churn/")
    return {o["Key"]: o["ETag"] for p in pages for o in p.get("Contents", [])}


def test_weekly_story(churn, stack):
    runner, client = churn
    raw_before = raw_etags(stack["s3"])

    # Week 1: no champion yet -> cold start, trained, promoted when the floor is met.
    run, s1 = runner.run(W1)
    assert str(run.state) == "success", runner.task_states(run)
    assert s1["decision"] == "promoted", s1["reasons"]
    assert s1["drift"]["cold_start"] is True
    assert s1["champion_version_before"] is None
    assert s1["champion_version_after"] == s1["challenger_version"] == champion(client)
    assert s1["validation"]["success"] is True and s1["validation"]["failed_expectations"] == []
    assert s1["rows"] == 7 * 2000
    assert s1["metrics"]["challenger"]["roc_auc"] >= 0.70
    # The cold start's window held the three weeks of history: a full window, no data gain due.
    assert s1["evaluation"]["data_from"][:10] == HISTORY.isoformat()
    assert "data_gain" not in s1["evaluation"]
    v1 = champion(client)

    # Week 2: same distribution -> gate closed, skipped, champion unchanged.
    run, s2 = runner.run(W2)
    assert str(run.state) == "success", runner.task_states(run)
    assert s2["decision"] == "skipped", s2["reasons"]
    assert s2["drift"]["gate"] is False
    assert s2["drift"]["features"], "per-feature drift statistics must be recorded"
    for col, f in s2["drift"]["features"].items():
        assert set(f) >= {"method", "statistic", "p_value", "threshold", "drifted"}, col
    assert s2["challenger_version"] is None and s2["mcnemar"] is None
    signals = {sig["name"]: sig for sig in s2["drift"]["signals"]}
    assert {name for name, sig in signals.items() if sig["status"] == "fired"} == set(), s2["drift"]["signals"]
    # The champion was trained on a full window: data growth stays quiet (1x < 2x).
    assert signals["data_growth"]["status"] == "quiet" and signals["data_growth"]["statistic"] == pytest.approx(1.0)
    assert signals["follow_up"]["status"] == "quiet", signals["follow_up"]  # a cold start is no change
    assert s2["champion_version_before"] == s2["champion_version_after"] == v1 == champion(client)
    assert runner.task_states(run)[TaskId.TRAIN_CHALLENGER] == "skipped"

    # Week 3: the drift event -> retrained; the decision must match the McNemar guard and
    # the paired ROC AUC test recomputed here from the stored paired predictions and scores.
    run, s3 = runner.run(W3)
    assert str(run.state) == "success", runner.task_states(run)
    assert s3["drift"]["gate"] is True
    assert s3["drift"]["features"]["monthly_charges"]["drifted"] is True
    fired = {s["name"] for s in s3["drift"]["signals"] if s["status"] == "fired"}
    assert "data_drift" in fired, s3["drift"]["signals"]
    assert s3["trigger"] == "signals"
    assert s3["decision"] in ("promoted", "rejected")
    preds = pd.read_parquet(io.BytesIO(runner.artefact(s3["artifacts"]["predictions"])))
    champ_ok = preds["champion_pred"] == preds["y_true"]
    chall_ok = preds["challenger_pred"] == preds["y_true"]
    b = int((champ_ok & ~chall_ok).sum())
    c = int((~champ_ok & chall_ok).sum())
    # Mid-p McNemar: the exact two-sided binomial p minus the probability of the observed count.
    k, n = min(b, c), b + c
    p = 1.0 if n == 0 else min(1.0, 2 * binom.cdf(k, n, 0.5) - binom.pmf(k, n, 0.5))
    assert (s3["mcnemar"]["b"], s3["mcnemar"]["c"]) == (b, c)
    assert s3["mcnemar"]["method"] == "midp"
    assert s3["mcnemar"]["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-300)
    test = s3["comparison"]["paired_test"]
    auc_champ = roc_auc_score(preds["y_true"], preds["champion_proba_1"])
    auc_chall = roc_auc_score(preds["y_true"], preds["challenger_proba_1"])
    assert test["method"] == "delong"
    assert test["effect"] == pytest.approx(auc_chall - auc_champ, abs=1e-12)
    assert test["ci_low"] < test["effect"] < test["ci_high"]
    assert test["null_value"] == pytest.approx(0.0) and test["mde"] > 0
    m = s3["metrics"]
    # The guard vetoes a challenger significantly more often wrong unless its ROC AUC gain is
    # itself significant (one-sided lower bound > 0): then the primary metric decides.
    harm = p < 0.05 and b > c and not test["ci_low"] > 0
    worse = p < 0.05 and b > c
    assert s3["comparison"]["mcnemar_verdict"] == ("worse" if harm else "outvoted" if worse else "not_worse")
    # policy expected_gain: the estimate decides, with the floor and the McNemar guard.
    expected = "promoted" if (test["effect"] >= 0 and not harm and m["challenger"]["roc_auc"] >= 0.70) else "rejected"
    assert s3["decision"] == expected
    # With this drift the retrained model is clearly better: the story promotes it.
    assert s3["decision"] == "promoted"
    v3 = s3["challenger_version"]
    assert champion(client) == v3 != v1
    mv = client.get_model_version("churn", v3)
    assert mv.tags["retrain.decision"] == "promoted"
    assert mv.tags["retrain.data_interval_start"].startswith("2026-01-18")
    assert client.get_model_version("churn", v1).tags["retrain.replaced_by"] == v3

    # Week 4: labels shuffled; forced retrain -> challenger below the floor -> rejected.
    run, s4 = runner.run(W4, force_retrain=True)
    assert str(run.state) == "success", runner.task_states(run)
    assert s4["decision"] == "rejected", s4["reasons"]
    assert any(RunParam.FORCE_RETRAIN in r for r in s4["reasons"])
    assert s4["champion_version_before"] == s4["champion_version_after"] == v3 == champion(client)
    rejected = client.get_model_version("churn", s4["challenger_version"])
    assert rejected.tags["retrain.decision"] == "rejected"
    assert client.get_model_version_by_alias("churn", "challenger").version == rejected.version

    # Raw data is never modified or deleted by any run.
    assert raw_etags(stack["s3"]) == raw_before


def test_rerun_same_interval_is_idempotent(churn, stack):
    """A second run of week 3 (clear and rerun) reaches the same end state: no new version,
    no new artefacts, the same decision, champion unchanged."""
    runner, client = churn
    before = {v.version for v in client.search_model_versions("name='churn'")}
    first = runner.summary(W3)
    champ = champion(client)
    pages = stack["s3"].get_paginator("list_objects_v2").paginate(Bucket="retrain-artifacts", Prefix="runs/churn/")
    keys_before = {o["Key"] for p in pages for o in p.get("Contents", [])}
    run, again = runner.run(W3)
    assert str(run.state) == "success", runner.task_states(run)
    assert {v.version for v in client.search_model_versions("name='churn'")} == before
    assert again["decision"] == first["decision"] == "promoted"
    assert again["challenger_version"] == first["challenger_version"]
    assert again["champion_version_before"] == first["champion_version_before"]
    # The stored comparison is reused, with the McNemar guard's verdict and numbers.
    assert again["comparison"]["mcnemar_verdict"] == first["comparison"]["mcnemar_verdict"] is not None
    assert champion(client) == champ
    pages = stack["s3"].get_paginator("list_objects_v2").paginate(Bucket="retrain-artifacts", Prefix="runs/churn/")
    assert {o["Key"] for p in pages for o in p.get("Contents", [])} == keys_before


def test_backfilled_older_week_never_replaces_a_newer_champion(churn):
    """Week 2 retrained after week 3's model became champion: its challenger is stale."""
    runner, client = churn
    champ = champion(client)
    run, s = runner.run(W2, force_retrain=True)
    assert str(run.state) == "success", runner.task_states(run)
    assert s["decision"] == "rejected", s["reasons"]
    assert any("stale challenger" in r for r in s["reasons"]), s["reasons"]
    assert champion(client) == champ


def test_reproduce_champion_training_data_byte_for_byte(churn, stack, tmp_path):
    """The documented command rebuilds a version's exact training set from the DVC remote."""
    import hashlib
    import os
    import subprocess
    import sys

    runner, client = churn
    version = champion(client)
    mv = client.get_model_version("churn", version)
    assert "retrain.train_data_uri" not in mv.tags  # lineage lives on the run; the version keeps a few tags
    tags = client.get_run(mv.run_id).data.tags
    original = runner.artefact(tags["retrain.train_data_uri"])
    out = tmp_path / "train.parquet"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "reproduce_training_data.py"),
            "--model",
            "churn",
            "--version",
            version,
            "--out",
            str(out),
            "--tracking-uri",
            stack["mlflow"],
            "--s3-endpoint",
            stack["s3_endpoint"],
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(original).hexdigest()
    assert tags["retrain.dvc_md5"] == hashlib.md5(original).hexdigest()
    assert int(tags["retrain.partitions"]) >= 7 and len(tags["retrain.partitions_sha256"]) == 64
