"""report.py: one self-contained HTML page; decision first; evidence tables; plots inline; partial input."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from include.retrainer.report import distribution_plot, render_report

SUMMARY = {
    "schema_version": 2,
    "model": "churn",
    "decision": "promoted",
    "decision_code": "promoted",
    "trigger": "signals",
    "headline": "Promoted (signals): data drift in monthly_charges.",
    "reasons": ["retrained: drift", "non-inferior"],
    "data_interval_start": "2026-11-15T00:00:00+00:00",
    "data_interval_end": "2026-11-22T00:00:00+00:00",
    "champion_version_before": "1",
    "champion_version_after": "2",
    "challenger_version": "2",
    "drift": {
        "gate": True,
        "reason": "data drift",
        "rule": "any",
        "report_uri": "s3://b/drift.json",
        "signals": [
            {
                "name": "data_drift",
                "status": "fired",
                "statistic": 0.31,
                "threshold": 0.2,
                "p_value": None,
                "alpha": 0.05,
                "summary": "31% of importance drifted",
            }
        ],
        "importance": {"monthly_charges": 0.31, "contract": 0.1},
        "features": {
            "monthly_charges": {
                "method": "ks",
                "statistic": 0.21,
                "threshold": 0.05,
                "p_value": 1e-9,
                "p_value_adjusted": 4e-9,
                "drifted": True,
                "effect": {"shift": 12.5},
                "n_reference": 1000,
                "n_current": 900,
                "note": None,
            },
            "contract": {
                "method": "chi2",
                "statistic": 1.2,
                "threshold": 0.05,
                "p_value": 0.55,
                "p_value_adjusted": 1.0,
                "drifted": False,
                "effect": {"cramers_v": 0.01},
                "n_reference": 1000,
                "n_current": 900,
            },
        },
    },
    "comparison": {
        "policy": "non_inferiority",
        "outcome_code": "non_inferior",
        "holdout_rows": 4000,
        "paired_test": {
            "metric": "roc_auc",
            "method": "delong",
            "champion": 0.80,
            "challenger": 0.83,
            "effect": 0.03,
            "se": 0.01,
            "ci_low": 0.012,
            "ci_high": 0.048,
            "confidence": 0.95,
            "null_value": -0.01,
            "p_value": 0.001,
            "mde": 0.02,
            "n": 4000,
        },
        "checks": {"floor": True, "non_inferiority_margin": True},
    },
    "metrics": {"champion": {"roc_auc": 0.80, "accuracy": 0.75}, "challenger": {"roc_auc": 0.83, "accuracy": 0.77}},
    "mcnemar": {
        "b": 31,
        "c": 57,
        "p_value": 0.007,
        "method": "midp",
        "n": 4000,
        "both_right": 2900,
        "both_wrong": 1012,
    },
    "validation": {
        "success": True,
        "failed_expectations": [],
        "report_uri": "s3://b/validation.json",
        "data_docs_uri": "s3://b/data_docs/index.html",
    },
    "artifacts": {"batch": "s3://b/batch.parquet", "train": "s3://b/train.parquet"},
    "mlflow_run_id": "abc123",
    "code_version": "0.3.0+deadbeef",
    "dag_id": "retrain_churn",
    "dag_run_id": "manual__1",
}


def _section_positions(page: str, *titles: str) -> list[int]:
    return [page.index(t) for t in titles]


def test_full_report_orders_decision_first_and_holds_the_evidence():
    rng = np.random.default_rng(0)
    samples = {
        "monthly_charges": {
            "kind": "numeric",
            "reference": rng.normal(60, 10, 3000).tolist(),
            "current": rng.normal(72, 10, 3000).tolist(),
        },
        "contract": {"kind": "categorical", "reference": ["m", "y"] * 500, "current": ["m"] * 700 + ["y"] * 300},
    }
    page = render_report(
        SUMMARY,
        samples=samples,
        lineage={"dvc": {"md5": "0123abcd", "remote_url": "s3://dvc"}},
        links={"Champion version": "http://mlflow/#/models/churn/versions/2", "Data Docs": None},
    )
    assert page.startswith("<!DOCTYPE html>")
    pos = _section_positions(
        page,
        "Promoted (signals)",
        "<h2>Why</h2>",
        "<h2>Drift gate</h2>",
        "<h2>Drift per feature</h2>",
        "<h2>Comparison</h2>",
        "<h2>Validation</h2>",
        "<h2>Lineage</h2>",
    )
    assert pos == sorted(pos)
    # drifted, most important feature first in the per-feature table
    assert page.index("<b>monthly_charges</b>") < page.index("<b>contract</b>")
    for needle in (
        "1.00e-09",
        "0.012 .. 0.048",
        "b = 31",
        "c = 57",
        "2900",
        "1012",
        "0.02",
        "0123abcd",
        "0.3.0+deadbeef",
        "31% of importance drifted",
        "non_inferiority_margin",
        "href='http://mlflow/#/models/churn/versions/2'",
    ):
        assert needle in page, needle
    assert "Data Docs</a>" not in page  # no link given -> plain text, not a dead link
    # Self-contained: no external resource is loaded (links are anchors only).
    assert not re.search(r"(src|href)=['\"](?!data:|http://mlflow)", page)
    assert "<script" not in page and "<link" not in page
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 2
    import matplotlib.image as mpimg

    for b64 in images:
        raw = base64.b64decode(b64)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        assert mpimg.imread(io.BytesIO(raw)).shape[2] in (3, 4)


@pytest.mark.parametrize(
    "summary",
    [
        None,
        {},
        {
            "decision": "failed",
            "reasons": ["fetch_batch failed: boom"],
            "drift": None,
            "comparison": None,
            "metrics": None,
            "validation": None,
            "mcnemar": None,
            "artifacts": None,
        },
    ],
)
def test_partial_summaries_render(summary):
    page = render_report(summary)
    assert "failed" in page and "could not be rendered" not in page
    assert "The drift step did not run" in page and "No challenger was compared" in page


def test_a_broken_plot_becomes_a_note_not_an_error():
    page = render_report(
        SUMMARY, samples={"monthly_charges": {"kind": "numeric", "reference": ["x"], "current": [1.0]}}
    )
    assert "plot unavailable: ValueError" in page
    assert "<h2>Lineage</h2>" in page


def test_malformed_section_input_does_not_lose_the_others():
    broken = {**SUMMARY, "comparison": {"paired_test": "not a dict"}}
    page = render_report(broken)
    assert "This section could not be rendered" in page and "<h2>Lineage</h2>" in page and "<h2>Why</h2>" in page


def test_values_are_escaped():
    page = render_report({"decision": "failed", "reasons": ["<img src=x onerror=alert(1)>"]})
    assert "<img src=x" not in page and "&lt;img src=x" in page


def test_distribution_plot_categorical_rejects_empty():
    with pytest.raises(ValueError):
        distribution_plot("c", [], ["a"], "categorical")


def test_slice_and_fairness_sections_show_each_slice_and_group_with_the_verdict():
    import pandas as pd

    from include.retrainer.fairness import evaluate_fairness
    from include.retrainer.slices import evaluate_slices

    rng = np.random.default_rng(1)
    n = 600
    frame = pd.DataFrame({"region": rng.choice(["north", "south"], n), "gender": rng.choice(["f", "m"], n)})
    frame.loc[:9, "region"] = "tiny"
    y = rng.integers(0, 2, n)
    champ = np.clip(y * 0.6 + rng.random(n) * 0.5, 0, 1)
    chall = np.where(frame["region"] == "north", rng.random(n), champ)
    preds = {"champion": (champ > 0.5).astype(int), "challenger": (chall > 0.5).astype(int)}
    probas = {k: np.column_stack([1 - v, v]) for k, v in (("champion", champ), ("challenger", chall))}
    labels = np.array([0, 1])
    slices = evaluate_slices(frame, ["region"], y, preds, probas, labels, metric="roc_auc", min_rows=50).to_dict()
    fairness = evaluate_fairness(
        frame,
        ["gender"],
        y,
        preds,
        labels,
        limits={"demographic_parity_difference": 0.001, "equalized_odds_difference": None},
    ).to_dict()
    page = render_report({**SUMMARY, "schema_version": 4, "slices": slices, "fairness": fairness})
    pos = _section_positions(page, "<h2>Comparison</h2>", "<h2>Slices</h2>", "<h2>Fairness</h2>", "<h2>Validation</h2>")
    assert pos == sorted(pos)
    assert "region=north" in page and "WORSE" in page and "too small to judge" in page
    assert "holm correction" in page and "BLOCKED" in page
    assert "gender:demographic_parity_difference" in page and "over limit" in page
    assert "selection rate" in page and "demographic parity difference &lt;= 0.001" in page
    assert "worse: region=north" in page  # key numbers
    assert "over the limit: gender:demographic_parity_difference" in page
    # Without the gates the sections say so.
    bare = render_report(SUMMARY)
    assert "No slice gate configured" in bare and "No fairness gate configured" in bare


def test_an_outvoted_mcnemar_guard_is_named_under_its_table():
    summary = {**SUMMARY, "comparison": {**SUMMARY["comparison"], "mcnemar_verdict": "outvoted"}}
    page = render_report(summary)
    table = page.index("<h3>McNemar: per-row correctness</h3>")
    note = page.index("outvoted by a significant gain on roc_auc", table)
    assert note < page.index("<h3>Checks</h3>")
    assert page.index("outvoted by a significant gain on roc_auc") < table  # the key numbers up top say it too
    assert "outvoted" not in render_report(SUMMARY)


def test_a_vetoing_guard_and_a_verdict_only_in_the_stored_comparison_are_shown():
    comparison = {**SUMMARY["comparison"], "mcnemar_verdict": "worse"}
    vetoed = render_report({**SUMMARY, "comparison": comparison})
    assert "significantly more often wrong: vetoed" in vetoed
    # A summary without the field (written before it existed) falls back to comparison.json's.
    stored = {"mcnemar": SUMMARY["mcnemar"], "mcnemar_verdict": "outvoted"}
    page = render_report(SUMMARY, comparison=stored)
    assert "outvoted by a significant gain on roc_auc" in page[page.index("<h3>McNemar: per-row correctness</h3>") :]
