"""steps/summary.py: the comparison's numbers reach summary.json, the notification and the report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import yaml

from include.retrainer.compare import compare_models
from include.retrainer.config import parse_spec
from include.retrainer.notify import build_message
from include.retrainer.report import render_report
from include.retrainer.steps import RunContext, RunResults, build_summary

ROOT = Path(__file__).resolve().parents[2]
WEEK = (dt.datetime(2026, 3, 8, tzinfo=dt.UTC), dt.datetime(2026, 3, 15, tzinfo=dt.UTC))


def _spec():
    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    return parse_spec(raw, "models/churn.yaml")


def _outvoted_comparison(spec) -> dict:
    """A real comparison where a better ranking with shifted scores outvotes McNemar."""
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.integers(0, 2, n)
    signal = 2.0 * y - 1.0
    champ = 1 / (1 + np.exp(-(signal + rng.normal(0, 1.6, n))))
    # Ranks better (less noise) but its scores sit 1.5 logits low: more errors at 0.5.
    chall = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.8, n) - 1.5)))
    result = compare_models(
        y,
        (champ > 0.5).astype(int),
        (chall > 0.5).astype(int),
        spec.comparison,
        champion_proba=np.column_stack([1 - champ, champ]),
        challenger_proba=np.column_stack([1 - chall, chall]),
    )
    assert result.mcnemar_verdict == "outvoted" and result.decision == "promote"
    return result.to_dict()


def test_the_mcnemar_verdict_reaches_the_summary_the_message_and_the_report():
    spec = _spec()
    assert spec.comparison.primary_metric == "roc_auc"
    comparison = _outvoted_comparison(spec)
    results = RunResults.from_xcom(
        {
            "fetch_batch": {"rows": 10},
            "detect_drift": {"gate": True, "reason": "drift", "code": "signals", "champion_version": "3"},
            "decide_retrain": {"retrain": True, "reason": "data drift on x", "forced": False},
            "train_challenger": {"challenger_version": "7", "run_id": "run7"},
            "compare_models": {**comparison, "champion_version": "3", "challenger_version": "7"},
            "promote_challenger": {"promoted": True, "champion_before": "3", "champion_after": "7", "reasons": []},
        }
    )
    summary = build_summary(
        spec, RunContext("retrain_churn", "r1", *WEEK), results=results, failed_tasks={}, champion_after="7"
    )
    assert summary["decision"] == "promoted"
    assert summary["comparison"]["mcnemar_verdict"] == "outvoted"
    mc = summary["mcnemar"]
    assert mc["b"] > mc["c"] and mc["p_value"] < spec.comparison.alpha
    assert "outvoted by a significant gain on roc_auc" in build_message(summary).text
    page = render_report(summary)
    assert "outvoted by a significant gain on roc_auc" in page[page.index("<h3>McNemar: per-row correctness</h3>") :]
