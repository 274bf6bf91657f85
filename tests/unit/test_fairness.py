"""Fairness gate (include/retrainer/fairness.py) against fairlearn.metrics as the oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    true_positive_rate,
)

from include.retrainer.fairness import disparities, evaluate_fairness
from include.retrainer.slices import MISSING, group_labels

LIMITS = {"demographic_parity_difference": 0.05, "equalized_odds_difference": 0.05}


def _biased(n=2000, seed=0, bias=0.15, groups=("f", "m", "x"), p_groups=(0.45, 0.45, 0.10)):
    rng = np.random.default_rng(seed)
    g = rng.choice(list(groups), n, p=list(p_groups))
    y = (rng.random(n) < 0.35).astype(int)
    score = 0.6 * y + rng.normal(0, 0.35, n) + np.where(g == groups[0], bias, 0.0)
    pred = (score > 0.45).astype(int)
    return g, y, pred


def _run(frame, y, preds, labels=(0, 1), **kw):
    kw.setdefault("limits", LIMITS)
    kw.setdefault("min_group_rows", 30)
    return evaluate_fairness(frame, list(frame.columns), np.asarray(y), preds, np.asarray(labels), **kw)


def test_binary_disparities_equal_fairlearn():
    g, y, pred = _biased()
    ours = disparities(y, pred, g.astype(object), 1)
    assert ours["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=g), abs=1e-12
    )
    assert ours["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=g), abs=1e-12
    )
    mf = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=g)
    assert ours["true_positive_rate_difference"] == pytest.approx(mf.difference(), abs=1e-12)


def test_string_labels_with_a_configured_positive_label_equal_fairlearn_on_binarised_labels():
    g, y, pred = _biased(seed=1)
    names = np.array(["stay", "leave"])
    frame = pd.DataFrame({"gender": g})
    rep = _run(
        frame,
        names[y],
        {"challenger": names[pred]},
        labels=("leave", "stay"),
        positive_label="stay",
        limits={"demographic_parity_difference": None, "equalized_odds_difference": None},
    )
    ch = rep.attributes["gender"]["challenger"]
    # "stay" is the positive class: binarise on it for fairlearn.
    yb, pb = (names[y] == "stay").astype(int), (names[pred] == "stay").astype(int)
    assert ch["positive_class"] == "stay"
    assert ch["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(yb, pb, sensitive_features=g)
    )
    assert ch["equalized_odds_difference"] == pytest.approx(equalized_odds_difference(yb, pb, sensitive_features=g))
    assert rep.passed  # no limits: reported only
    assert any("no limit configured" in r for r in rep.reasons)


def test_multiclass_is_one_vs_rest_and_reports_the_worst_class():
    rng = np.random.default_rng(2)
    n = 3000
    g = rng.choice(["a", "b"], n)
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    pred = np.where((g == "a") & (rng.random(n) < 0.2), 2, pred)  # group a gets class 2 more often
    rep = _run(
        pd.DataFrame({"grp": g}),
        y,
        {"challenger": pred},
        labels=(0, 1, 2),
        limits={"demographic_parity_difference": None, "equalized_odds_difference": None},
    )
    ch = rep.attributes["grp"]["challenger"]
    expected = {
        c: demographic_parity_difference((y == c).astype(int), (pred == c).astype(int), sensitive_features=g)
        for c in (0, 1, 2)
    }
    for c, v in expected.items():
        assert ch["by_class"][str(c)]["demographic_parity_difference"] == pytest.approx(v)
        assert ch["by_class"][str(c)]["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference((y == c).astype(int), (pred == c).astype(int), sensitive_features=g)
        )
    assert ch["demographic_parity_difference"] == pytest.approx(max(expected.values()))
    assert ch["demographic_parity_difference_class"] == "2"


def test_over_the_limit_blocks_naming_attribute_and_numbers_even_if_the_champion_is_worse():
    g, y, champ_pred = _biased(seed=3, bias=0.30)
    _, _, chall_pred = _biased(seed=3, bias=0.15)  # fairer than the champion, still over 0.05
    rep = _run(pd.DataFrame({"gender": g}), y, {"champion": champ_pred, "challenger": chall_pred})
    assert not rep.passed
    info = rep.attributes["gender"]
    dpd = demographic_parity_difference(y, chall_pred, sensitive_features=g)
    cdpd = demographic_parity_difference(y, champ_pred, sensitive_features=g)
    assert dpd > 0.05 and cdpd > dpd
    assert "demographic_parity_difference" in info["over_limit"]
    reason = next(r for r in rep.reasons if "demographic parity difference" in r)
    assert f"{dpd:.3f} > limit 0.050" in reason and f"champion {cdpd:.3f}" in reason
    assert "the champion is over the limit too" in reason and "not promoting" in reason
    assert "gender:demographic_parity_difference" in rep.to_dict()["blocked_by"]


def test_within_the_limit_passes():
    g, y, pred = _biased(seed=4, bias=0.0)
    rep = _run(
        pd.DataFrame({"gender": g}),
        y,
        {"challenger": pred},
        limits={"demographic_parity_difference": 0.2, "equalized_odds_difference": 0.2},
    )
    assert rep.passed and all("<= limit" in r for r in rep.reasons)


def test_a_group_without_positives_is_named_and_its_tpr_left_out():
    g, y, pred = _biased(seed=5)
    y = y.copy()
    y[g == "x"] = 0  # group x has no positives: TPR undefined there
    ours = disparities(y, pred, g.astype(object), 1, min_group_rows=30)
    x = next(r for r in ours["groups"] if r["group"] == "x")
    assert x["status"] == "no_positives" and x["true_positive_rate"] is None
    keep = g != "x"
    tpr = MetricFrame(metrics=true_positive_rate, y_true=y[keep], y_pred=pred[keep], sensitive_features=g[keep])
    assert ours["true_positive_rate_difference"] == pytest.approx(tpr.difference())
    # fairlearn would count the undefined rate as 0 and report a spurious disparity.
    assert equalized_odds_difference(y, pred, sensitive_features=g) > ours["equalized_odds_difference"]


def test_missing_values_form_their_own_group_and_small_groups_are_reported_not_used():
    g, y, pred = _biased(seed=6, groups=("f", "m", "tiny"), p_groups=(0.5, 0.49, 0.01))
    g = g.astype(object)
    g[:150] = None
    frame = pd.DataFrame({"gender": g})
    rep = _run(
        frame, y, {"challenger": pred}, limits={"demographic_parity_difference": 0.9, "equalized_odds_difference": 0.9}
    )
    groups = {r["group"]: r for r in rep.attributes["gender"]["challenger"]["groups"]}
    assert groups[MISSING]["rows"] == 150 and groups[MISSING]["status"] == "ok"
    assert groups["tiny"]["status"] == "too_small"
    keep = np.array([v != "tiny" for v in g])
    named = np.where(pd.isna(g), MISSING, g)
    assert rep.attributes["gender"]["challenger"]["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y[keep], pred[keep], sensitive_features=named[keep])
    )
    assert any("too small to judge: tiny (n=" in r for r in rep.reasons)


def test_numeric_attribute_is_binned():
    labels, how = group_labels(np.arange(400) % 90, bin_numeric=True, bins=4, max_groups=50)
    assert how == "quantile_bins" and len(set(labels)) == 4


def test_missing_column_and_unknown_positive_label_block():
    g, y, pred = _biased(seed=7)
    rep = evaluate_fairness(
        pd.DataFrame({"gender": g}),
        ["gender", "age_band"],
        y,
        {"challenger": pred},
        np.array([0, 1]),
        limits=LIMITS,
        min_group_rows=30,
    )
    assert rep.attributes["age_band"]["status"] == "column_missing" and not rep.passed
    assert any("'age_band' cannot be judged (column_missing)" in r for r in rep.reasons)
    rep = _run(pd.DataFrame({"gender": g}), y, {"challenger": pred}, positive_label="yes")
    assert rep.attributes["gender"]["status"] == "unknown_positive_label" and not rep.passed


def test_one_judged_group_is_not_judged_and_does_not_block():
    g, y, pred = _biased(seed=8, groups=("f", "m"), p_groups=(0.99, 0.01))
    rep = _run(pd.DataFrame({"gender": g}), y, {"challenger": pred}, min_group_rows=100)
    assert rep.passed and rep.attributes["gender"]["status"] == "not_judged"
    assert "not judged" in rep.reasons[0]
