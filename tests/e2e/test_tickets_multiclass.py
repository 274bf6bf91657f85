"""A second model (3-class target, CSV partitions, random forest) through the same factory."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer.layout import RunLayout
from tests.e2e.conftest import DagRunner, week

MODELS = Path(__file__).resolve().parents[2] / "include" / "models"  # the shipped example

W1 = dt.date(2026, 3, 1)  # a Sunday
W2 = W1 + dt.timedelta(weeks=1)

pytestmark = pytest.mark.timeout(600)


def test_tickets_cold_start_then_non_inferior_retrain(stack, monkeypatch):
    # dag.test() runs the DAG as parsed from dags/: point the factory at the shipped specs.
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(MODELS))
    frames = demo_data.generate_tickets(W1, days=14, rows_per_day=800)
    demo_data.write_partitions(stack["s3"], "raw-data", "tickets", frames, fmt="csv")
    runner = DagRunner(MODELS / "tickets.yaml", stack["s3"])
    client = MlflowClient(stack["mlflow"])

    run, s1 = runner.run(W1)
    assert str(run.state) == "success", runner.task_states(run)
    assert s1["decision"] == "promoted" and s1["drift"]["cold_start"] is True
    assert set(s1["metrics"]["challenger"]) >= {"accuracy", "f1", "log_loss"}
    assert s1["metrics"]["challenger"]["accuracy"] > 0.5  # well above 1/3 for three classes
    v1 = s1["challenger_version"]
    assert str(client.get_model_version_by_alias("tickets", "champion").version) == v1

    # Same distribution: the gate retrains for the data growth alone (tickets.yaml's window is
    # 2 weeks, so week 2's window spans 14 days, twice the 7 the cold start was trained on), and
    # a fresher model that is not significantly worse is promoted under the non-inferiority policy.
    run, s2 = runner.run(W2)
    assert str(run.state) == "success", runner.task_states(run)
    fired = {sig["name"]: sig for sig in s2["drift"]["signals"] if sig["status"] == "fired"}
    assert s2["drift"]["gate"] is True and set(fired) == {"data_growth"}, s2["drift"]["signals"]
    assert fired["data_growth"]["statistic"] == pytest.approx(2.0)
    assert s2["trigger"] == "signals" and s2["challenger_version"] is not None
    # The model card records why it was trained (the follow-up signal reads it); the summary
    # links it, in the version's own training folder.
    card_uri = s2["artifacts"]["model_card"]
    assert card_uri.startswith(RunLayout.of(runner.spec, *week(W2)).base + "/training/")
    card = json.loads(runner.artefact(card_uri))
    assert card["trigger"] == ["data_growth"] and card["evaluation"]["data_from"][:10] == W1.isoformat()
    assert s2["mcnemar"] is not None and s2["mcnemar"]["method"] in ("exact", "midp", "none")
    champ, chall = s2["metrics"]["champion"]["accuracy"], s2["metrics"]["challenger"]["accuracy"]
    test = s2["comparison"]["paired_test"]
    assert test["method"] == "binomial_diff"
    assert test["effect"] == pytest.approx(chall - champ, abs=1e-12)
    assert test["null_value"] == pytest.approx(-0.02)
    # A label metric (accuracy here) never outvotes the McNemar guard: harm is a veto.
    harm = s2["mcnemar"]["p_value"] < 0.05 and s2["mcnemar"]["b"] > s2["mcnemar"]["c"]
    assert s2["comparison"]["mcnemar_verdict"] == ("worse" if harm else "not_worse")
    expected = "promoted" if (chall >= 0.5 and test["ci_low"] > -0.02 and not harm) else "rejected"
    assert s2["decision"] == expected, s2["reasons"]
    after = str(client.get_model_version_by_alias("tickets", "champion").version)
    assert after == (s2["challenger_version"] if expected == "promoted" else v1)
