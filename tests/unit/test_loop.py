"""The weekly decision loop (include/retrainer/loop.py) on in-memory frames.

These are the functions both the DAG steps and the replay benchmark call, so each
"nothing gets stuck" case of the decisions issue has a test here: trailing empty days,
small weeks, a widened evaluation set, a class the champion never saw, an old champion.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from include.retrainer import loop
from include.retrainer.config import PARTITION_COLUMN, parse_spec

START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # a Monday


def spec_for(**over):
    raw = {
        "name": "toy",
        "data": {"bucket": "raw-data", "prefix": "toy"},
        "features": {"target": "y", "numeric": ["x1", "x2", "noise"], "categorical": ["c"]},
        "training": {
            "params": {"max_iter": 30},
            "window_weeks": 2,
            "holdout_days": 2,
            "min_train_rows": 50,
            "min_holdout_rows": 40,
        },
    }
    for block, values in over.items():
        raw.setdefault(block, {}).update(values)
    return parse_spec(raw, "bench/toy.yaml")


def frame(
    days: int,
    rows_per_day: int,
    seed: int = 0,
    shift: float = 0.0,
    start=START,
    classes=2,
    empty_days: tuple[int, ...] = (),
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for d in range(days):
        if d in empty_days:
            continue
        n = rows_per_day
        x1 = rng.normal(shift, 1, n)
        x2 = rng.normal(0, 1, n)
        logit = 2.0 * x1 + 0.5 * x2
        if classes == 2:
            y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        else:
            y = np.digitize(logit + rng.normal(0, 0.5, n), [-1, 1]).astype(int)
        parts.append(
            pd.DataFrame(
                {
                    "x1": x1,
                    "x2": x2,
                    "noise": rng.normal(0, 1, n),
                    "c": rng.choice(["a", "b"], n),
                    "y": y,
                    PARTITION_COLUMN: (start + dt.timedelta(days=d)).date().isoformat(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_holdout_is_the_last_days_with_data_not_calendar_days():
    spec = spec_for()
    window = frame(14, 40, empty_days=(12, 13))  # the last two calendar days are empty
    train, holdout, info = loop.select_holdout(window, spec)
    assert info["holdout_days"] == [(START + dt.timedelta(days=d)).date().isoformat() for d in (10, 11)]
    assert len(holdout) == 80 and len(train) == 10 * 40
    assert set(holdout[PARTITION_COLUMN]).isdisjoint(set(train[PARTITION_COLUMN]))


def test_holdout_widens_until_it_has_min_rows_but_never_past_half_the_window():
    spec = spec_for(training={"min_holdout_rows": 100, "min_train_rows": 50})
    window = frame(14, 25)  # 2 days = 50 rows < 100: widen to 4 days
    train, holdout, info = loop.select_holdout(window, spec)
    assert info["widened"] is True
    assert len(info["holdout_days"]) == 4 and len(holdout) == 100 and len(train) == 250


def test_too_few_rows_is_a_named_insufficient_data_outcome():
    spec = spec_for(training={"min_holdout_rows": 100, "min_train_rows": 50})
    with pytest.raises(loop.InsufficientData, match=r"min_holdout_rows=100"):
        loop.select_holdout(frame(6, 20), spec)  # 120 rows: half is 60 < 100
    with pytest.raises(loop.InsufficientData, match="at least 2 days"):
        loop.select_holdout(frame(1, 500), spec)


def test_the_held_out_days_never_take_more_than_half_the_window():
    spec = spec_for()  # holdout_days 2
    quiet = frame(12, 40, seed=1)
    busy = frame(2, 1000, seed=2, start=START + dt.timedelta(days=12))  # 2000 of 2480 rows
    train, holdout, info = loop.select_holdout(pd.concat([quiet, busy], ignore_index=True), spec)
    assert len(info["holdout_days"]) == 1 and len(holdout) == 1000 and len(train) == 1480
    # ... unless fewer days would hold fewer than min_holdout_rows: then the days stay.
    spec = spec_for(training={"min_holdout_rows": 40, "min_train_rows": 40})
    quiet = frame(10, 5, seed=1)
    busy = frame(2, 35, seed=2, start=START + dt.timedelta(days=10))  # 70 of 120 rows; one day is 35 < 40
    train, holdout, info = loop.select_holdout(pd.concat([quiet, busy], ignore_index=True), spec)
    assert len(info["holdout_days"]) == 2 and len(holdout) == 70 and len(train) == 50


def _one_class_last_days(days: int) -> pd.DataFrame:
    window = frame(14, 40)
    last = sorted(window[PARTITION_COLUMN].unique())[-days:]
    window.loc[window[PARTITION_COLUMN].isin(last), "y"] = 0  # rare positives: none on those days
    return window


def test_under_roc_auc_the_held_out_days_widen_until_they_hold_two_classes():
    spec = spec_for()
    train, holdout, info = loop.select_holdout(_one_class_last_days(2), spec)
    assert info["widened"] is True and len(info["holdout_days"]) == 3 and holdout["y"].nunique() == 2
    # A label metric is defined on one class: nothing to widen for.
    _, _, info = loop.select_holdout(_one_class_last_days(2), spec_for(comparison={"primary_metric": "accuracy"}))
    assert len(info["holdout_days"]) == 2 and info["widened"] is False


def test_a_held_out_set_of_one_class_is_a_named_outcome_not_a_crash():
    spec = spec_for()
    end = START + dt.timedelta(days=14)
    # Half the window is as far as the held-out days may widen: still one class there.
    state = loop.build_challenger(spec, _one_class_last_days(8), end)
    assert state.baseline["value"] is None and "single class" in state.baseline["why"]
    cold = loop.judge(spec, None, state)
    assert not cold.promote and any("single class" in r for r in cold.reasons)
    champion = loop.build_challenger(spec, frame(14, 40, seed=5), end)
    judged = loop.judge(spec, champion, state)
    assert not judged.promote and judged.to_dict()["outcome_code"] == "single_class_holdout"
    # Later, as the champion of a cold start that was forced through, it is still assessed.
    outcome = loop.assess(spec, state, frame(7, 40, seed=9, start=end), end + dt.timedelta(days=7))
    assert signal(outcome, "performance_decay")["status"] == "insufficient"


def test_importance_shares_single_out_the_feature_that_matters():
    spec = spec_for()
    state = loop.build_challenger(spec, frame(14, 120, seed=1), START + dt.timedelta(days=14))
    shares = state.importance
    assert set(shares) == {"x1", "x2", "noise", "c"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert max(shares, key=shares.get) == "x1"
    assert shares["x1"] > 0.5 and shares["noise"] < 0.1
    base = state.baseline
    assert base["metric"] == "roc_auc" and 0.8 < base["value"] <= 1 and base["se"] > 0
    assert base["n"] == len(state.holdout)


@pytest.mark.parametrize("metric", ["f1", "precision", "recall"])
def test_importance_is_measured_for_string_labels_under_every_binary_metric(metric, caplog):
    """sklearn's f1/precision/recall scorers default to pos_label=1, which "no"/"yes" labels lack:
    the importance then fell back to equal weights. The positive class is the comparison's."""
    spec = spec_for(comparison={"primary_metric": metric})
    window = frame(14, 120, seed=1)
    window["y"] = np.where(window["y"] == 1, "yes", "no")
    with caplog.at_level("WARNING"):
        state = loop.build_challenger(spec, window, START + dt.timedelta(days=14))
    assert "permutation importance not computed" not in caplog.text
    assert max(state.importance, key=state.importance.get) == "x1" and state.importance["x1"] > 0.5


def test_single_class_window_is_a_clear_permanent_training_error():
    from include.retrainer.errors import PermanentError
    from include.retrainer.training import TrainingError

    spec = spec_for()
    window = frame(14, 40)
    window["y"] = 1
    with pytest.raises(TrainingError, match="single class") as err:
        loop.build_challenger(spec, window, START + dt.timedelta(days=14))
    assert isinstance(err.value, PermanentError) and not isinstance(err.value, loop.InsufficientData)


def test_cold_start_retrains_and_judge_promotes_on_the_floor_alone():
    spec = spec_for(comparison={"floor": 0.6})
    outcome = loop.assess(spec, None, None, START)
    assert outcome.retrain and outcome.code == "cold_start"
    challenger = loop.build_challenger(spec, frame(14, 80, seed=2), START + dt.timedelta(days=14))
    verdict = loop.judge(spec, None, challenger)
    assert verdict.promote
    assert "challenger_pred" in verdict.predictions


def test_champion_age_in_weeks():
    spec = spec_for()
    state = loop.build_challenger(spec, frame(14, 60, seed=3), START + dt.timedelta(days=14))
    assert loop.champion_age_weeks(state, START + dt.timedelta(days=14 + 21)) == pytest.approx(3.0)


def test_a_class_the_champion_never_saw_is_scored_not_an_error():
    spec = spec_for(comparison={"primary_metric": "roc_auc"})
    end = START + dt.timedelta(days=14)
    old = frame(14, 90, seed=4, classes=3)
    old = old[old["y"] != 2].reset_index(drop=True)  # the champion only knows classes 0 and 1
    champion = loop.build_challenger(spec, old, end)
    assert champion.classes == [0, 1]
    new_end = end + dt.timedelta(days=14)
    challenger = loop.build_challenger(spec, frame(14, 90, seed=5, classes=3, start=end), new_end)
    assert challenger.classes == [0, 1, 2]
    verdict = loop.judge(spec, champion, challenger)
    metrics = verdict.result["metrics"]
    assert metrics["challenger"]["roc_auc"] > metrics["champion"]["roc_auc"]
    assert verdict.promote, verdict.reasons


def test_a_challenger_trained_on_older_data_is_rejected_as_stale():
    spec = spec_for()
    end = START + dt.timedelta(days=14)
    newer = loop.build_challenger(spec, frame(14, 80, seed=6, start=end), end + dt.timedelta(days=14))
    older = loop.build_challenger(spec, frame(14, 80, seed=7), end)
    verdict = loop.judge(spec, newer, older)
    assert verdict.stale and not verdict.promote
    assert any("stale challenger" in r for r in verdict.reasons)


def test_a_challenger_identical_to_the_champion_is_not_promoted():
    """A forced retrain on the champion's own data gives the same model: no new champion for nothing."""
    spec = spec_for()
    end = START + dt.timedelta(days=14)
    data = frame(14, 80, seed=6)
    champion = loop.build_challenger(spec, data, end)
    again = loop.build_challenger(spec, data.copy(), end)
    verdict = loop.judge(spec, champion, again)
    out = verdict.to_dict()
    assert out["paired_test"]["effect"] == 0.0  # expected_gain alone would promote a tie
    assert not verdict.promote and out["decision"] == "reject"
    assert out["checks"]["distinct_from_champion"] is False
    assert verdict.reasons[0].startswith("the challenger's predictions and scores equal the champion's on all")
    # A model trained on other rows of the same weeks is compared as usual (and here promoted).
    other = loop.build_challenger(spec, frame(14, 80, seed=8), end)
    judged = loop.judge(spec, champion, other)
    assert judged.promote and "distinct_from_champion" not in judged.to_dict()["checks"]


def test_same_outputs_needs_equal_labels_and_equal_probabilities():
    labels = np.array([0, 1, 1, 0])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.9, 0.1]])
    assert loop._same_outputs(labels, proba, labels.astype(float), proba + 1e-15)
    # The same labels, other scores: different models.
    assert not loop._same_outputs(labels, proba, labels, proba * 0.5 + 0.25)
    # Other labels, or another number of classes.
    assert not loop._same_outputs(labels, proba, 1 - labels, proba)
    assert not loop._same_outputs(labels, proba, labels, np.c_[proba, np.zeros(4)])
    # Label-only models that agree on every row are not called the same model.
    assert not loop._same_outputs(labels, None, labels, None)
    assert not loop._same_outputs(labels, proba, labels, None)


# -- assess: every signal is computed, reported and combined ---------------------------------
@pytest.fixture(scope="module")
def trained():
    spec = spec_for()
    end = START + dt.timedelta(days=14)
    return spec, loop.build_challenger(spec, frame(14, 300, seed=11), end), end


def signal(outcome, name):
    return next(s for s in outcome.signals if s["name"] == name)


def test_stationary_week_does_not_retrain_and_reports_every_signal(trained):
    spec, champion, end = trained
    batch = frame(7, 300, seed=12, start=end)
    outcome = loop.assess(spec, champion, batch, end + dt.timedelta(days=7))
    assert not outcome.retrain, outcome.reason
    names = [s["name"] for s in outcome.signals]
    assert names == ["data_drift", "prediction_drift", "performance_decay", "age", "data_growth", "follow_up", "retry"]
    assert all(s["status"] == "quiet" for s in outcome.signals), outcome.signals
    assert signal(outcome, "age")["statistic"] == pytest.approx(1.0)


def test_a_shift_in_the_important_feature_trips_data_and_prediction_drift(trained):
    spec, champion, end = trained
    batch = frame(7, 300, seed=13, start=end, shift=0.5)  # x1 carries most of the importance
    outcome = loop.assess(spec, champion, batch, end + dt.timedelta(days=7))
    assert outcome.retrain
    assert signal(outcome, "data_drift")["status"] == "fired"
    assert signal(outcome, "prediction_drift")["status"] == "fired"
    assert "data drift" in outcome.reason


def test_a_concept_change_trips_performance_decay(trained):
    spec, champion, end = trained
    batch = frame(7, 300, seed=14, start=end)
    batch["y"] = 1 - batch["y"]  # same inputs, the relation flipped
    outcome = loop.assess(spec, champion, batch, end + dt.timedelta(days=7))
    decay = signal(outcome, "performance_decay")
    assert decay["status"] == "fired" and decay["p_value"] < 0.05 / 3
    assert signal(outcome, "data_drift")["status"] == "quiet"
    assert outcome.retrain and "performance decay" in outcome.reason


@pytest.mark.parametrize("metric", ["accuracy", "log_loss"])
def test_a_baseline_recorded_under_another_metric_is_measured_again_in_the_specs(trained, metric):
    spec, champion, end = trained  # trained under roc_auc: its card holds a roc_auc baseline
    now = spec_for(comparison={"primary_metric": metric})
    stationary = loop.assess(now, champion, frame(7, 300, seed=12, start=end), end + dt.timedelta(days=7))
    decay = signal(stationary, "performance_decay")
    assert decay["status"] == "quiet", decay["summary"]
    assert metric in decay["summary"]
    flipped = frame(7, 300, seed=14, start=end)
    some = flipped.sample(frac=0.25, random_state=0).index  # a quarter of the labels flipped:
    flipped.loc[some, "y"] = 1 - flipped.loc[some, "y"]  # log loss ~0.75, under a roc_auc of ~0.85
    changed = loop.assess(now, champion, flipped, end + dt.timedelta(days=7))
    assert signal(changed, "performance_decay")["status"] == "fired"


def test_an_old_champion_is_refreshed_without_drift(trained):
    spec, champion, end = trained
    batch = frame(7, 300, seed=15, start=end)
    outcome = loop.assess(spec, champion, batch, end + dt.timedelta(weeks=8))
    assert signal(outcome, "age")["status"] == "fired"
    assert outcome.retrain and "age" in outcome.reason


def test_small_batches_are_insufficient_for_a_signal_not_stuck(trained):
    spec, champion, end = trained
    batch = frame(1, 20, seed=16, start=end)  # 20 rows < drift.min_rows=30
    outcome = loop.assess(spec, champion, batch, end + dt.timedelta(weeks=8))
    assert signal(outcome, "performance_decay")["status"] == "insufficient"
    assert outcome.retrain  # the age signal still decides


def test_cost_rule_retrains_only_when_the_expected_loss_exceeds_the_cost():
    spec = spec_for(drift={"gate": {"rule": "cost", "retrain_cost": 0.05, "cost_horizon_weeks": 4}})
    end = START + dt.timedelta(days=14)
    champion = loop.build_challenger(spec, frame(14, 300, seed=17), end)
    calm = loop.assess(spec, champion, frame(7, 300, seed=18, start=end, shift=0.5), end + dt.timedelta(days=7))
    cost = signal(calm, "retrain_cost")
    assert cost["threshold"] == 0.05
    flipped = frame(7, 300, seed=19, start=end)
    flipped["y"] = 1 - flipped["y"]
    broken = loop.assess(spec, champion, flipped, end + dt.timedelta(days=7))
    assert signal(broken, "retrain_cost")["status"] == "fired" and broken.retrain
    assert broken.rule == "cost"
    # A covariate shift the model handles costs little: not worth a retrain under this rule,
    # although data drift fired (reported as advice).
    if cost["status"] == "quiet":
        assert not calm.retrain and "advisory" in calm.reason


def test_after_a_rejection_the_gate_asks_what_changed_since(trained):
    """The same shift that was already tried (challenger rejected) does not retrain again."""
    spec, champion, end = trained
    shifted = frame(14, 300, seed=21, start=end, shift=0.5)
    week_end = end + dt.timedelta(days=14)
    rejected = loop.build_challenger(spec, shifted, week_end)
    batch = frame(7, 300, seed=22, start=week_end, shift=0.5)
    plain = loop.assess(spec, champion, batch, week_end + dt.timedelta(days=7))
    assert plain.retrain and signal(plain, "data_drift")["status"] == "fired"
    rebased = loop.assess(spec, champion, batch, week_end + dt.timedelta(days=7), since=rejected)
    assert signal(rebased, "data_drift")["status"] == "quiet", rebased.signals
    assert "rejected" in rebased.reference
    assert not rebased.retrain, rebased.reason


class _ScoreModel:
    """A fitted-model stand-in: P(y=1) = sigmoid(score(X)), with an optional broken segment."""

    classes_ = np.array([0, 1])

    def __init__(self, noise: float, broken_segment: str | None = None, seed: int = 0):
        self.noise, self.broken, self.seed = noise, broken_segment, seed

    def predict_proba(self, X):
        rng = np.random.default_rng(self.seed)
        score = 2.0 * X["x1"].to_numpy() + 0.5 * X["x2"].to_numpy() + rng.normal(0, self.noise, len(X))
        if self.broken is not None:
            bad = X["c"].to_numpy() == self.broken
            score[bad] = rng.normal(0, 1, bad.sum())  # this segment is scored at random
        p = 1 / (1 + np.exp(-score))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def _segment_holdout(n=3000, seed=11):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * x1 + 0.5 * x2)))).astype(int)
    seg = rng.choice(["a", "b", "c", "d", "e"], n)
    group = np.where(x1 > 0.3, "g1", rng.choice(["g1", "g2"], n))  # g1 gets more positives predicted
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "noise": 0.0, "c": seg, "y": y, "group": group, PARTITION_COLUMN: "2026-03-10"}
    )


def _state(model, holdout, end=START):
    return loop.ModelState(model=model, train=None, holdout=holdout, trained_through=end, baseline={}, importance={})


def test_judge_blocks_a_challenger_better_overall_but_worse_on_one_slice():
    spec = spec_for(comparison={"policy": "expected_gain", "slices": {"columns": ["c"], "min_rows": 100}})
    holdout = _segment_holdout()
    champion = _state(_ScoreModel(noise=2.0, seed=1), None, START - dt.timedelta(days=7))
    challenger = _state(_ScoreModel(noise=0.2, broken_segment="e", seed=2), holdout)
    verdict = loop.judge(spec, champion, challenger)
    res = verdict.result
    assert res["checks"]["expected_gain"] is True  # better overall...
    assert res["paired_test"]["effect"] > 0
    assert res["checks"]["slices"] is False and not verdict.promote  # ...but not on c=e
    assert res["slices"]["worse"] == ["c=e"]
    assert any(r.startswith("slice c=e (") and "not promoting" in r for r in verdict.reasons)
    assert verdict.to_dict()["decision"] == "reject"


def test_judge_applies_the_fairness_limit_also_at_cold_start():
    spec = spec_for(
        features={"attributes": ["group"]},
        comparison={"fairness": {"sensitive": ["group"], "demographic_parity_difference_max": 0.05}},
    )
    challenger = _state(_ScoreModel(noise=0.2, seed=3), _segment_holdout())
    verdict = loop.judge(spec, None, challenger)
    assert verdict.result["checks"]["floor"] is True
    assert verdict.result["checks"]["fairness"] is False and not verdict.promote
    assert verdict.result["fairness"]["blocked_by"] == ["group:demographic_parity_difference"]
    assert any(
        "fairness on 'group': challenger demographic parity difference" in r and "> limit 0.050" in r
        for r in verdict.reasons
    )


def test_judge_without_gates_reports_none():
    spec = spec_for()
    champion = _state(_ScoreModel(noise=2.0, seed=1), None, START - dt.timedelta(days=7))
    verdict = loop.judge(spec, champion, _state(_ScoreModel(noise=0.2, seed=2), _segment_holdout(600)))
    assert verdict.result["slices"] is None and verdict.result["fairness"] is None
    assert "slices" not in verdict.result["checks"]


def test_judge_with_non_finite_scores_does_not_run_the_gates():
    class _NaNModel(_ScoreModel):
        def predict_proba(self, X):
            p = super().predict_proba(X)
            p[:5] = np.nan
            return p

    spec = spec_for(comparison={"slices": {"columns": ["c"]}, "fairness": {"sensitive": ["c"]}})
    champion = _state(_ScoreModel(noise=2.0, seed=1), None, START - dt.timedelta(days=7))
    verdict = loop.judge(spec, champion, _state(_NaNModel(noise=0.2, seed=2), _segment_holdout(600)))
    assert not verdict.promote and verdict.result["outcome_code"] == "nan_scores"
    assert verdict.result["slices"]["not_run"] == "non-finite scores"
    assert verdict.result["checks"]["fairness"] is False


def test_shrunk_drop_is_the_positive_part_james_stein_estimate():
    # Oracle: posterior mean drop * tau^2 / (tau^2 + se^2) with tau^2 = drop^2 - se^2.
    for drop, se in [(0.05, 0.02), (0.1, 0.01), (0.03, 0.029)]:
        tau2 = drop**2 - se**2
        assert loop.shrunk_drop(drop, se) == pytest.approx(drop * tau2 / (tau2 + se**2))
    assert loop.shrunk_drop(0.02, 0.03) == 0.0  # within its own noise: no change
    assert loop.shrunk_drop(-0.05, 0.01) == 0.0  # an improvement costs nothing
    assert loop.shrunk_drop(0.04, 0.0) == 0.04  # exact measurement: kept whole


def test_cost_signal_takes_the_drop_with_its_uncertainty():
    class Est:
        def __init__(self, value, se):
            self.value, self.se = value, se

    base = {"value": 0.85, "se": 0.03}
    # Measured drop 0.03 with se ~0.036: within noise, expected loss 0 < cost (point estimate
    # x horizon would have been 0.12 >= 0.01 and retrained).
    noisy = loop.cost_signal(base, Est(0.82, 0.02), None, True, 0.01, 4, "roc_auc")
    assert noisy.status == "quiet" and noisy.statistic == 0.0
    assert noisy.details["drop"] == pytest.approx(0.03) and noisy.details["drop_se"] == pytest.approx(
        np.hypot(0.03, 0.02)
    )
    # A drop of 0.10 (about 3 se): expected 4 x (0.1^2 - se^2) / 0.1 metric-weeks.
    big = loop.cost_signal(base, Est(0.75, 0.02), None, True, 0.01, 4, "roc_auc")
    se2 = 0.03**2 + 0.02**2
    assert big.status == "fired" and big.statistic == pytest.approx(4 * (0.01 - se2) / 0.1)
    assert "+/-" in big.summary and ">= retrain cost 0.01" in big.summary
    # log_loss: lower is better, the drop is current - baseline.
    ll = loop.cost_signal({"value": 0.40, "se": 0.01}, Est(0.60, 0.01), None, False, 0.01, 4, "log_loss")
    assert ll.details["drop"] == pytest.approx(0.2) and ll.status == "fired"
    # An SE of 0 on both sides (AUC 1.0 on few rows) is read as 0.5/sqrt(n), as decay reads it:
    # a drop of 0.01 on 400 rows is within that noise, not a whole 0.04 metric-weeks.
    perfect = Est(0.99, 0.0)
    perfect.n = 400
    flat = loop.cost_signal({"value": 1.0, "se": 0.0, "n": 400}, perfect, None, True, 0.04, 4, "roc_auc")
    assert flat.status == "quiet" and flat.details["drop_se"] == pytest.approx(np.hypot(0.025, 0.025))


def test_stating_a_retrain_cost_makes_cost_the_default_rule_with_a_cost_optimal_refresh_age():
    plain = spec_for().drift.gate
    assert plain.rule == "any" and plain.refresh_age_weeks() == 4.0
    for cost in (0.0025, 0.01, 0.04):
        g = spec_for(drift={"gate": {"retrain_cost": cost}}).drift.gate
        assert g.rule == "cost"
        # Renewal-cost optimum: argmin_A cost/A + rate*A/2 (checked numerically).
        grid = np.linspace(1, 40, 390001)
        best = grid[np.argmin(cost / grid + g.staleness_rate * grid / 2)]
        assert g.refresh_age_weeks() == pytest.approx(max(1.0, best), abs=1e-3)
    # An explicit max_champion_age_weeks caps it; an explicit rule keeps its own meaning.
    capped = spec_for(drift={"gate": {"retrain_cost": 0.04, "max_champion_age_weeks": 3}}).drift.gate
    assert capped.refresh_age_weeks() == 3.0
    anyrule = spec_for(drift={"gate": {"retrain_cost": 0.04, "rule": "any"}}).drift.gate
    assert anyrule.rule == "any" and anyrule.refresh_age_weeks() == 4.0


def test_a_stated_staleness_rate_sets_the_age_limit_of_rule_any_unless_the_limit_is_set():
    """make add-model writes the measured rate, not the age: rule any refreshes once a champion
    is expected to be 0.01 behind (floor(0.01 / rate), 1-12 weeks); an explicit age wins."""
    for rate, weeks in ((0.0025, 4.0), (0.0039, 2.0), (0.011, 1.0), (0.0001, 12.0)):
        g = spec_for(drift={"gate": {"staleness_rate": rate}}).drift.gate
        assert g.rule == "any" and g.age_from_staleness() and g.refresh_age_weeks() == weeks
    fixed = spec_for(drift={"gate": {"staleness_rate": 0.011, "max_champion_age_weeks": 6}}).drift.gate
    assert not fixed.age_from_staleness() and fixed.refresh_age_weeks() == 6.0
    off = spec_for(drift={"gate": {"staleness_rate": 0.011, "max_champion_age_weeks": None}}).drift.gate
    assert off.refresh_age_weeks() is None
    # Under rule cost the rate prices the refresh; no age limit was set, so nothing caps it.
    cost = spec_for(drift={"gate": {"staleness_rate": 0.0039, "retrain_cost": 0.04}}).drift.gate
    assert cost.refresh_age_weeks() == pytest.approx((2 * 0.04 / 0.0039) ** 0.5)


def test_cost_rule_refreshes_at_the_cost_optimal_age(trained):
    spec, champion, end = trained
    cheap = spec_for(drift={"gate": {"retrain_cost": 0.0025}})  # refresh after sqrt(2) weeks
    dear = spec_for(drift={"gate": {"retrain_cost": 0.04}})  # refresh after ~5.7 weeks
    batch = frame(7, 300, seed=23, start=end)
    two_weeks = end + dt.timedelta(weeks=2)
    a = loop.assess(cheap, champion, batch, two_weeks)
    b = loop.assess(dear, champion, batch, two_weeks)
    assert a.rule == b.rule == "cost"
    assert signal(a, "age")["status"] == "fired" and a.retrain
    assert "cost-optimal refresh interval" in signal(a, "age")["summary"]
    assert signal(b, "age")["status"] == "quiet"
    assert signal(b, "age")["threshold"] == pytest.approx((2 * 0.04 / 0.0025) ** 0.5)
    assert not b.retrain or signal(b, "retrain_cost")["status"] == "fired"
    later = loop.assess(dear, champion, batch, end + dt.timedelta(weeks=6))
    assert signal(later, "age")["status"] == "fired" and later.retrain


# -- life-cycle signals: data growth after a short first window, follow-up after a change ---------
def test_a_champion_trained_on_a_short_window_is_retrained_when_the_data_has_doubled():
    spec = spec_for(training={"window_weeks": 4})
    end = START + dt.timedelta(days=7)
    first = loop.build_challenger(spec, frame(7, 300, seed=21), end)  # data began a week ago
    assert first.evaluation["data_from"] == START.date().isoformat()
    batch = frame(7, 300, seed=22, start=end)
    one_week_on = loop.assess(spec, first, batch, end + dt.timedelta(days=7))
    growth = signal(one_week_on, "data_growth")
    assert growth["status"] == "fired" and growth["statistic"] == pytest.approx(2.0)
    assert one_week_on.retrain and "data growth" in one_week_on.reason
    # A champion trained on a full window: no growth however old it gets.
    full_end = START + dt.timedelta(days=28)
    full = loop.build_challenger(spec, frame(28, 100, seed=23), full_end)
    later = loop.assess(spec, full, frame(7, 300, seed=24, start=full_end), full_end + dt.timedelta(days=7))
    assert signal(later, "data_growth")["status"] == "quiet"
    assert signal(later, "data_growth")["statistic"] == pytest.approx(1.0)


def test_data_growth_counts_from_the_latest_rejected_challenger_and_can_be_switched_off():
    spec = spec_for(training={"window_weeks": 4})
    end = START + dt.timedelta(days=7)
    champion = loop.build_challenger(spec, frame(7, 300, seed=25), end)
    rejected = loop.build_challenger(spec, frame(14, 300, seed=26), end + dt.timedelta(days=7))
    batch = frame(7, 300, seed=27, start=end + dt.timedelta(days=7))
    outcome = loop.assess(spec, champion, batch, end + dt.timedelta(days=14), since=rejected)
    growth = signal(outcome, "data_growth")
    assert growth["status"] == "quiet" and "latest challenger" in growth["summary"]  # 21 days vs its 14
    off = spec_for(training={"window_weeks": 4}, drift={"gate": {"min_data_growth": None}})
    assert signal(loop.assess(off, champion, batch, end + dt.timedelta(days=7)), "data_growth")["status"] == "disabled"


def test_a_champion_trained_on_a_change_gets_one_follow_up_once_the_window_is_mostly_post_change(trained):
    import dataclasses

    spec, champion, end = trained  # window_weeks 2: follow-up after 1 week by default
    assert loop.follow_up_weeks(spec) == 1
    batch = frame(7, 300, seed=28, start=end)
    after_decay = dataclasses.replace(champion, trigger=("performance_decay",))
    outcome = loop.assess(spec, after_decay, batch, end + dt.timedelta(days=7))
    follow = signal(outcome, "follow_up")
    assert follow["status"] == "fired" and outcome.retrain and "follow-up" in outcome.reason
    # Not when the champion came from age, growth or a cold start ...
    for trigger in ((), ("age",), ("data_growth",), ("follow_up",), ("follow_up", "data_drift")):
        quiet = loop.assess(spec, dataclasses.replace(champion, trigger=trigger), batch, end + dt.timedelta(days=7))
        assert signal(quiet, "follow_up")["status"] == "quiet", trigger
    # ... nor once a challenger was already trained after it (the follow-up happened).
    rejected = loop.build_challenger(
        spec, frame(14, 300, seed=29, start=end - dt.timedelta(days=7)), end + dt.timedelta(days=7)
    )
    again = loop.assess(spec, after_decay, batch, end + dt.timedelta(days=14), since=rejected)
    assert signal(again, "follow_up")["status"] == "quiet"
    # Under rule cost the follow-up decides too (a life-cycle signal, not advice).
    cost = spec_for(drift={"gate": {"retrain_cost": 10.0}})
    decided = loop.assess(cost, after_decay, batch, end + dt.timedelta(days=7))
    assert decided.rule == "cost" and decided.retrain and "follow-up" in decided.reason
    explicit = spec_for(drift={"gate": {"follow_up_weeks": 3}})
    assert (
        signal(loop.assess(explicit, after_decay, batch, end + dt.timedelta(days=7)), "follow_up")["status"] == "quiet"
    )


def test_a_follow_up_is_made_only_when_retraining_on_the_change_measurably_helped(trained):
    import dataclasses

    spec, champion, end = trained
    batch = frame(7, 300, seed=30, start=end)
    week_on = end + dt.timedelta(days=7)

    def follow(spec_, gain):
        state = dataclasses.replace(champion, trigger=("data_drift",), gain=gain)
        return signal(loop.assess(spec_, state, batch, week_on), "follow_up")

    assert follow(spec, {"effect": 0.05, "se": 0.01})["status"] == "fired"
    noise = follow(spec, {"effect": 0.004, "se": 0.01})  # a covariate shift the old model handled
    assert noise["status"] == "quiet" and "within its noise" in noise["summary"]
    assert noise["details"]["expected_gain"] == 0.0
    # Rule cost: 4 weeks x the shrunk gain (0.05^2 - 0.01^2) / 0.05 = 0.192 against the cost.
    cheap = spec_for(drift={"gate": {"retrain_cost": 0.1}})
    dear = spec_for(drift={"gate": {"retrain_cost": 0.3}})
    assert follow(cheap, {"effect": 0.05, "se": 0.01})["details"]["expected_gain"] == pytest.approx(0.048)
    assert follow(cheap, {"effect": 0.05, "se": 0.01})["status"] == "fired"
    assert follow(dear, {"effect": 0.05, "se": 0.01})["status"] == "quiet"


def test_a_follow_up_is_also_worth_what_the_promotion_did_not_win_back(trained):
    import dataclasses

    spec, champion, end = trained
    batch = frame(7, 300, seed=30, start=end)
    week_on = end + dt.timedelta(days=7)
    dear = spec_for(drift={"gate": {"retrain_cost": 0.3}})

    def follow(gain, asked):
        state = dataclasses.replace(champion, trigger=("retrain_cost",), gain=gain, trigger_drop=asked)
        return signal(loop.assess(dear, state, batch, week_on), "follow_up")

    # A change that cost 0.10 a week, of which the promotion won back 0.02 (4 x 0.0192 < 0.3 alone):
    # the rest, 0.08 +/- hypot(0.01, 0.01), shrunk: (0.08^2 - 0.0002) / 0.08 = 0.0775; 4 x that >= 0.3.
    fired = follow({"effect": 0.02, "se": 0.01}, {"signal": "retrain_cost", "drop": 0.10, "se": 0.01})
    assert fired["status"] == "fired", fired["summary"]
    d = fired["details"]
    assert d["remaining_drop"] == pytest.approx(0.08) and d["remaining_drop_se"] == pytest.approx(0.01 * 2**0.5)
    assert d["expected_remaining"] == pytest.approx((0.08**2 - 0.0002) / 0.08)
    assert d["expected_value"] == pytest.approx(4 * d["expected_remaining"])
    assert "drop that asked for it (retrain_cost), leaving +0.0800" in fired["summary"]
    # The promotion won it all back: nothing is left, and it fires on its own gain (4 x 0.099 >= 0.3).
    won = follow({"effect": 0.10, "se": 0.01}, {"signal": "retrain_cost", "drop": 0.10, "se": 0.01})
    assert won["status"] == "fired" and won["details"]["expected_remaining"] == 0.0
    small = follow({"effect": 0.02, "se": 0.01}, {"signal": "retrain_cost", "drop": 0.03, "se": 0.01})
    assert small["status"] == "quiet" and small["details"]["expected_remaining"] == 0.0  # 0.01 +/- 0.014: noise
    # A promotion that lost a little (non-inferiority lets one through): the rest alone pays.
    lost = follow({"effect": -0.01, "se": 0.01}, {"signal": "retry", "drop": 0.09, "se": 0.02})
    assert lost["status"] == "fired" and lost["details"]["remaining_drop"] == pytest.approx(0.10)
    # Without a recorded drop (data drift asked, an older model card, a malformed one): the gain alone.
    for asked in ({}, {"drop": "x", "se": 0.01}, {"drop": None}, {"drop": float("nan"), "se": 0.01}):
        quiet = follow({"effect": 0.02, "se": 0.01}, asked)
        assert quiet["status"] == "quiet" and "remaining_drop" not in quiet["details"], asked
    # Rule any (also with a cost stated): no cost to pay; either one above its noise is enough.
    # A promotion that won back +0.004 of a 0.10 drop left 0.096 +/- 0.014: the change is not
    # learnt yet (measured by the policy replay on a user's stream: a concept flip whose first
    # challenger won back +0.02 of 0.18 served at AUC 0.40 until the age refresh).
    for spec_ in (spec, spec_for(drift={"gate": {"retrain_cost": 0.3, "rule": "any"}})):

        def follow_any(asked, spec_=spec_):
            state = dataclasses.replace(
                champion, trigger=("performance_decay",), gain={"effect": 0.004, "se": 0.01}, trigger_drop=asked
            )
            return signal(loop.assess(spec_, state, batch, week_on), "follow_up")

        fired = follow_any({"signal": "performance_decay", "drop": 0.1, "se": 0.01})
        assert fired["status"] == "fired" and "leaving +0.0960" in fired["summary"], fired["summary"]
        assert "expected_value" not in fired["details"]  # no cost weighed under rule any
        quiet = follow_any({"signal": "performance_decay", "drop": 0.015, "se": 0.01})
        assert quiet["status"] == "quiet" and "both within their noise" in quiet["summary"], quiet["summary"]
        assert follow_any({})["status"] == "quiet"  # no recorded drop: the gain alone, within its noise


def test_trigger_drop_is_the_largest_drop_a_deciding_signal_measured():
    signals = [
        {"name": "retrain_cost", "status": "fired", "details": {"drop": 0.03, "drop_se": 0.01}},
        {"name": "retry", "status": "fired", "details": {"fall": 0.05, "fall_se": 0.02}},
        {"name": "performance_decay", "status": "fired", "details": {"drop": 0.09, "se": 0.01}},
        {"name": "age", "status": "fired", "details": {}},
    ]
    # Under rule cost, decay is advice: not what asked for the model.
    assert loop.trigger_drop("cost", signals) == {"signal": "retry", "drop": 0.05, "se": 0.02}
    assert loop.trigger_drop("any", signals) == {"signal": "performance_decay", "drop": 0.09, "se": 0.01}
    quiet = [{**s, "status": "quiet"} for s in signals]
    assert loop.trigger_drop("any", quiet) == {} and loop.trigger_drop(None, None) == {}
    broken = [{"name": "retrain_cost", "status": "fired", "details": {"drop": float("nan"), "drop_se": 0.01}}]
    assert loop.trigger_drop("cost", broken) == {}
    # Without a usable SE the drop is not recorded (it would escape shrinkage).
    for se in (None, float("inf"), -0.01):
        no_se = [{"name": "retrain_cost", "status": "fired", "details": {"drop": 0.05, "drop_se": se}}]
        assert loop.trigger_drop("cost", no_se) == {}, se


def test_promotion_gain_reads_the_paired_test_of_a_comparison():
    assert loop.promotion_gain({"paired_test": {"effect": 0.02, "se": 0.005}}) == {"effect": 0.02, "se": 0.005}
    assert loop.promotion_gain({"paired_test": None}) == {}
    assert loop.promotion_gain(None) == {}
    assert loop.promotion_gain({"paired_test": {"effect": float("nan"), "se": 0.1}}) == {}


def test_a_short_window_records_what_doubling_its_data_won_and_growth_weighs_it():
    import dataclasses

    spec = spec_for(training={"window_weeks": 4})
    end = START + dt.timedelta(days=7)
    first = loop.build_challenger(spec, frame(7, 300, seed=31), end)
    gain = first.evaluation["data_gain"]
    assert gain["half_rows"] < gain["rows"] and gain["se"] > 0
    full_end = START + dt.timedelta(days=28)
    full = loop.build_challenger(spec, frame(28, 100, seed=32), full_end)
    assert "data_gain" not in full.evaluation  # growth can never fire for it: not measured
    batch = frame(7, 300, seed=33, start=end)

    def growth(spec_, effect, se):
        state = dataclasses.replace(first, evaluation={**first.evaluation, "data_gain": {"effect": effect, "se": se}})
        return signal(loop.assess(spec_, state, batch, end + dt.timedelta(days=7)), "data_growth")

    # Without a stated cost the retrain is made (the judge decides); the gain is reported.
    flat = growth(spec, -0.002, 0.01)
    assert flat["status"] == "fired" and "doubling its data gained -0.0020" in flat["summary"]
    # Under rule cost the gain must pay for the retrain, over the weeks it is worth: 14 days into
    # a 28-day window the window doubles again in 2 weeks (when this signal asks anyway).
    cost = spec_for(training={"window_weeks": 4}, drift={"gate": {"retrain_cost": 0.2}})
    assert growth(cost, 0.06, 0.01)["status"] == "quiet"  # 2 x 0.06 < 0.2
    assert growth(cost, 0.11, 0.01)["status"] == "fired"  # 2 x 0.11 >= 0.2
    fired = growth(cost, 0.11, 0.01)
    assert fired["details"]["value_weeks"] == pytest.approx(2.0)
    assert fired["details"]["expected_value"] == pytest.approx(2 * 0.11)
    assert "0.2200 metric-weeks over 2 weeks" in fired["summary"]
    assert "weighed for growth again once the window holds 28 days" in fired["summary"]
    assert growth(cost, -0.06, 0.01)["status"] == "quiet"


def test_a_growth_retrain_is_worth_its_gain_until_the_window_grows_again():
    import dataclasses

    spec = spec_for(training={"window_weeks": 4}, drift={"gate": {"retrain_cost": 0.2}})
    assert spec.drift.gate.cost_horizon_weeks == 4
    end = START + dt.timedelta(days=7)
    first = loop.build_challenger(spec, frame(7, 300, seed=31), end)
    state = dataclasses.replace(first, evaluation={**first.evaluation, "data_gain": {"effect": 0.06, "se": 0.01}})

    def at(days):
        batch = frame(7, 300, seed=33, start=end + dt.timedelta(days=days - 7))
        return signal(loop.assess(spec, state, batch, end + dt.timedelta(days=days)), "data_growth")

    # 21 days of 28 cannot double again: the horizon (4 x 0.06 >= 0.2) ...
    later = at(14)
    assert later["statistic"] == pytest.approx(3.0) and later["status"] == "fired"
    assert later["details"]["value_weeks"] == pytest.approx(4.0) and "until the window" not in later["summary"]
    # ... 14 days can: 2 weeks (2 x 0.06 < 0.2); the retrain waits for the fuller window.
    assert at(7)["status"] == "quiet" and at(7)["details"]["value_weeks"] == pytest.approx(2.0)
    # The weeks, by hand: the days until the window holds min_data_growth x the days available
    # now, in whole weeks (at least 1), capped by the horizon; the horizon when it never will.
    for available, growth, weeks in (
        (14, 2.0, 2.0),
        (7, 2.0, 1.0),
        (7, 3.0, 2.0),
        (10, 2.0, 2.0),  # 10 days: the next weekly decision after it is 2 weeks on
        (3, 1.5, 1.0),  # 1.5 days: a model serves a week at least
        (15, 2.0, 4.0),
    ):
        g = spec_for(training={"window_weeks": 4}, drift={"gate": {"retrain_cost": 0.2, "min_data_growth": growth}})
        assert loop.data_growth_value_weeks(g, available)[0] == pytest.approx(weeks), (available, growth)
    long_window = spec_for(training={"window_weeks": 12}, drift={"gate": {"retrain_cost": 0.2}})
    assert loop.data_growth_value_weeks(long_window, 35) == (4.0, False)  # 5 weeks to go: beyond the horizon
    # A model trained on the rows since a change: a retrain now may keep the whole window and
    # never be weighed for growth again, so the horizon applies.
    assert loop.data_growth_value_weeks(spec, 14, regime_cut=True) == (4.0, False)
    cut = dataclasses.replace(
        state, evaluation={**state.evaluation, "regime": {"from": START.date().isoformat(), "source": "detected"}}
    )
    batch = frame(7, 300, seed=33, start=end)
    cut_growth = signal(loop.assess(spec, cut, batch, end + dt.timedelta(days=7)), "data_growth")
    assert cut_growth["details"]["value_weeks"] == pytest.approx(4.0) and cut_growth["status"] == "fired"


def test_after_a_rejected_refresh_the_age_counts_from_that_attempt(trained):
    spec, champion, end = trained  # max_champion_age_weeks 4
    batch = frame(7, 300, seed=34, start=end)
    old = end + dt.timedelta(weeks=5)
    assert signal(loop.assess(spec, champion, batch, old), "age")["status"] == "fired"
    tried = loop.build_challenger(
        spec, frame(14, 300, seed=35, start=end + dt.timedelta(weeks=2)), end + dt.timedelta(weeks=4)
    )
    age = signal(loop.assess(spec, champion, batch, old, since=tried), "age")
    assert age["status"] == "quiet" and age["statistic"] == pytest.approx(1.0)
    assert "latest challenger" in age["summary"] and "champion is 5.0 weeks old" in age["summary"]


def _attempt_on_fallen_rows(spec, end, seed, flip_days=3):
    """A challenger trained after ``end`` whose last ``flip_days`` (its held-out rows) have the relation flipped."""
    data = frame(14, 300, seed=seed, start=end - dt.timedelta(days=7))
    last_days = sorted(data[PARTITION_COLUMN].unique())[-flip_days:]
    late = data[PARTITION_COLUMN].isin(last_days)
    data.loc[late, "y"] = 1 - data.loc[late, "y"]
    return loop.build_challenger(spec, data, end + dt.timedelta(days=7))


def test_a_challenger_rejected_on_rows_where_the_champion_fell_is_retried_once(trained):
    import dataclasses

    from scipy.stats import norm

    spec, champion, end = trained  # window_weeks 2: retry after 1 week by default
    assert loop.retry_weeks(spec) == 1
    tried = _attempt_on_fallen_rows(spec, end, seed=50)
    batch = frame(7, 300, seed=51, start=end + dt.timedelta(days=7))
    batch["y"] = 1 - batch["y"]  # the change persists into the week after the attempt
    week_after = end + dt.timedelta(days=14)
    outcome = loop.assess(spec, champion, batch, week_after, since=tried)
    retry = signal(outcome, "retry")

    # Oracle: a one-sided z-test of the champion's baseline (no served weeks) against its metric
    # since the attempt: its held-out rows and this week's batch, pooled by inverse variance
    # (fixed effects: fewer than 3 parts before), at the performance-decay share of alpha (0.05 / 3).
    def since(*frames):
        parts = [loop.baseline_estimate(champion.model, f, spec) for f in frames]
        w = np.array([1 / p["se"] ** 2 for p in parts])
        return float(np.dot(w, [p["value"] for p in parts]) / w.sum()), float(1 / np.sqrt(w.sum()))

    def oracle_p(value, se):
        return float(norm.sf((champion.baseline["value"] - value) / np.hypot(champion.baseline["se"], se)))

    value, se = since(tried.holdout, batch)
    assert retry["p_value"] == pytest.approx(oracle_p(value, se), rel=1e-9)
    assert retry["alpha"] == pytest.approx(0.05 / 3)
    assert retry["details"]["since_attempt"] == pytest.approx(value)
    on = loop.baseline_estimate(champion.model, tried.holdout, spec)
    assert retry["details"]["on_attempt"] == pytest.approx(on["value"])  # the held-out rows alone
    assert retry["details"]["weeks_since_attempt"] == 1 and "held-out rows + 1 week(s) since" in retry["summary"]
    assert retry["status"] == "fired" and outcome.retrain, outcome.reason
    # A fall the weeks since do not confirm (the batch serves at the old level) is weaker evidence.
    clean = frame(7, 300, seed=51, start=end + dt.timedelta(days=7))
    transient = signal(loop.assess(spec, champion, clean, week_after, since=tried), "retry")
    assert transient["p_value"] == pytest.approx(oracle_p(*since(tried.holdout, clean)), rel=1e-9)
    assert transient["p_value"] > oracle_p(*since(tried.holdout))
    assert "retry after a rejection" in outcome.reason and "fall" in retry["summary"]
    assert "retry" in outcome.trigger
    # Not before the attempt is retry_weeks old: waiting for newer data.
    early = signal(
        loop.assess(spec_for(drift={"gate": {"retry_weeks": 2}}), champion, batch, week_after, since=tried), "retry"
    )
    assert early["status"] == "quiet" and "waiting for newer data" in early["summary"]
    # A retry that was rejected is not retried.
    again = loop.assess(spec, champion, batch, week_after, since=dataclasses.replace(tried, trigger=("retry",)))
    assert signal(again, "retry")["status"] == "quiet" and "itself a retry" in signal(again, "retry")["summary"]
    # Switched off.
    off = loop.assess(spec_for(drift={"gate": {"retry_weeks": None}}), champion, batch, week_after, since=tried)
    assert signal(off, "retry")["status"] == "disabled"
    # No rejected attempt: quiet.
    assert signal(loop.assess(spec, champion, batch, week_after), "retry")["status"] == "quiet"


def test_the_retry_pools_the_served_weeks_before_the_attempts_held_out_rows_only(trained):
    import dataclasses

    from include.retrainer import gate

    spec, champion, end = trained
    tried = _attempt_on_fallen_rows(spec, end, seed=56)
    held_from = dt.datetime.fromisoformat(tried.evaluation["holdout_from"]).replace(tzinfo=dt.UTC)

    def week(ending, value):
        return {"interval_end": ending.isoformat(), "value": value, "se": 0.02, "n": 500, "metric": "roc_auc"}

    # One served week ends where the held-out rows begin (counts); one overlaps them (left out:
    # its rows would sit on both sides of the comparison), one is after the attempt.
    served = (week(held_from, 0.90), week(held_from + dt.timedelta(days=1), 0.10), week(tried.trained_through, 0.2))
    state = dataclasses.replace(champion, served=served)
    batch = frame(7, 300, seed=57, start=end + dt.timedelta(days=7))
    retry = signal(loop.assess(spec, state, batch, end + dt.timedelta(days=14), since=tried), "retry")
    expected = gate.pool_estimates([champion.baseline, served[0]])
    assert retry["details"]["before_weeks_served"] == 1
    assert retry["details"]["before"] == pytest.approx(expected["value"])
    assert retry["details"]["before_se"] == pytest.approx(expected["se"])


def test_the_retry_allows_for_the_spread_of_the_weeks_before_the_attempt(trained):
    import dataclasses

    spec, champion, end = trained
    tried = _attempt_on_fallen_rows(spec, end, seed=65)
    base = champion.baseline["value"]
    weeks = [
        {
            "interval_end": (end + dt.timedelta(days=d)).isoformat(),
            "value": base + v,
            "se": 0.01,
            "n": 2000,
            "metric": "roc_auc",
        }
        for d, v in ((1, 0.04), (2, -0.04), (3, 0.03), (4, -0.03))
    ]
    state = dataclasses.replace(champion, served=tuple(weeks))
    batch = frame(7, 300, seed=66, start=end + dt.timedelta(days=7))
    week_after = end + dt.timedelta(days=14)
    spread = signal(loop.assess(spec, state, batch, week_after, since=tried), "retry")
    fixed = signal(
        loop.assess(spec_for(drift={"gate": {"decay_pool": "fixed"}}), state, batch, week_after, since=tried), "retry"
    )
    assert spread["details"]["between_weeks_sd"] > 0.02 and fixed["details"]["between_weeks_sd"] == 0.0
    assert spread["details"]["fall_se"] > fixed["details"]["fall_se"]
    assert spread["p_value"] > fixed["p_value"]


def test_the_retry_reads_a_lower_is_better_metric_the_right_way_round():
    spec = spec_for(comparison={"primary_metric": "log_loss"})
    end = START + dt.timedelta(days=14)
    champion = loop.build_challenger(spec, frame(14, 300, seed=58), end)
    tried = _attempt_on_fallen_rows(spec, end, seed=59)
    batch = frame(7, 300, seed=60, start=end + dt.timedelta(days=7))
    retry = signal(loop.assess(spec, champion, batch, end + dt.timedelta(days=14), since=tried), "retry")
    # The log loss rose on the flipped rows: a fall of the model's quality, positive.
    assert retry["details"]["on_attempt"] > retry["details"]["before"]
    assert retry["details"]["fall"] > 0 and retry["status"] == "fired", retry["summary"]


def test_the_retry_measures_a_baseline_of_another_metric_again_in_the_specs(trained):
    spec, champion, end = trained  # its card holds a roc_auc baseline
    now = spec_for(comparison={"primary_metric": "log_loss"})
    tried = _attempt_on_fallen_rows(now, end, seed=59)
    batch = frame(7, 300, seed=60, start=end + dt.timedelta(days=7))
    retry = signal(loop.assess(now, champion, batch, end + dt.timedelta(days=14), since=tried), "retry")
    own = loop.baseline_estimate(champion.model, champion.holdout, now)
    assert retry["details"]["before"] == pytest.approx(own["value"])  # log loss, not the card's roc_auc
    assert retry["status"] == "fired", retry["summary"]


def test_the_retry_is_insufficient_when_the_attempts_rows_cannot_be_scored(trained):
    import dataclasses

    spec, champion, end = trained
    tried = loop.build_challenger(
        spec, frame(14, 300, seed=61, start=end - dt.timedelta(days=7)), end + dt.timedelta(days=7)
    )
    tried = dataclasses.replace(tried, holdout=tried.holdout.assign(y=1))  # one class: AUC undefined there
    outcome = loop.assess(spec, champion, frame(7, 300, seed=62, start=end), end + dt.timedelta(days=14), since=tried)
    retry = signal(outcome, "retry")
    assert retry["status"] == "insufficient" and "unknown" in retry["summary"]


def test_a_retry_retrains_outside_the_vote_and_its_champion_gets_a_follow_up(trained):
    import dataclasses

    spec, champion, end = trained
    tried = _attempt_on_fallen_rows(spec, end, seed=63)
    batch = frame(7, 300, seed=64, start=end + dt.timedelta(days=7))
    for rule in ("all", "majority"):
        voted = loop.assess(
            spec_for(drift={"gate": {"rule": rule}}), champion, batch, end + dt.timedelta(days=14), since=tried
        )
        assert voted.retrain and f"outside the {rule} vote" in voted.reason, voted.reason
        assert signal(voted, "retry")["status"] == "fired"
    # A champion a retry produced was trained on a window that straddled the change: one follow-up.
    retried = dataclasses.replace(champion, trigger=("retry",), gain={"effect": 0.05, "se": 0.01})
    follow = signal(loop.assess(spec, retried, batch, end + dt.timedelta(days=7)), "follow_up")
    assert follow["status"] == "fired", follow["summary"]


def test_a_challenger_rejected_on_ordinary_rows_is_not_retried_early(trained):
    spec, champion, end = trained
    tried = loop.build_challenger(
        spec, frame(14, 300, seed=52, start=end - dt.timedelta(days=7)), end + dt.timedelta(days=7)
    )
    batch = frame(7, 300, seed=53, start=end + dt.timedelta(days=7))
    outcome = loop.assess(spec, champion, batch, end + dt.timedelta(days=14), since=tried)
    retry = signal(outcome, "retry")
    assert retry["status"] == "quiet", retry
    # Either the champion did not fall on the attempt's held-out rows, or not significantly.
    assert "no fall on the attempt's held-out rows" in retry["summary"] or "no significant fall" in retry["summary"]
    assert retry["details"]["held_out_fall"] <= 0 or retry["p_value"] >= retry["alpha"]
    assert not outcome.retrain, outcome.reason


def test_the_retry_looks_once_at_the_weeks_up_to_retry_weeks_and_only_after_a_fall_on_the_held_out_rows(trained):
    import dataclasses

    spec, champion, end = trained  # retry_weeks 1
    tried = _attempt_on_fallen_rows(spec, end, seed=58)
    week1 = tried.trained_through + dt.timedelta(days=7)
    fallen = frame(7, 300, seed=59, start=week1 - dt.timedelta(days=7))
    fallen["y"] = 1 - fallen["y"]
    est = loop.baseline_estimate(champion.model, fallen, spec)
    served = ({**est, "interval_end": week1.isoformat(), "metric": "roc_auc"},)
    state = dataclasses.replace(champion, served=served)
    # Two weeks after the attempt: the served week 1 is pooled, this week's batch (week 2) is not.
    batch = frame(7, 300, seed=60, start=week1)
    retry = signal(loop.assess(spec, state, batch, week1 + dt.timedelta(days=7), since=tried), "retry")
    assert retry["details"]["weeks_since_attempt"] == 1, retry
    assert retry["details"]["held_out_fall"] > 0 and retry["status"] == "fired", retry
    # A champion that held up on the attempt's held-out rows and fell only later: decay's to judge.
    ordinary = loop.build_challenger(
        spec, frame(14, 300, seed=61, start=end - dt.timedelta(days=7)), end + dt.timedelta(days=7)
    )
    later = signal(loop.assess(spec, state, fallen, week1, since=ordinary), "retry")
    assert later["details"]["held_out_fall"] <= 0, later  # this seed's held-out rows: no fall
    assert later["status"] == "quiet" and "no fall on the attempt's held-out rows" in later["summary"]
    assert later["details"]["since_attempt"] < later["details"]["on_attempt"]  # the fallen batch pooled


def test_under_rule_cost_a_retry_must_pay_for_itself(trained):
    spec, champion, end = trained
    tried = _attempt_on_fallen_rows(spec, end, seed=54)
    batch = frame(7, 300, seed=55, start=end + dt.timedelta(days=7))
    week_after = end + dt.timedelta(days=14)
    cheap = loop.assess(spec_for(drift={"gate": {"retrain_cost": 0.01}}), champion, batch, week_after, since=tried)
    retry = signal(cheap, "retry")
    assert retry["status"] == "fired" and cheap.rule == "cost" and cheap.retrain
    # 4 weeks x the fall shrunk by its noise: (fall^2 - se^2) / fall.
    fall, se = retry["details"]["fall"], retry["details"]["fall_se"]
    assert retry["details"]["expected_value"] == pytest.approx(4 * (fall * fall - se * se) / fall)
    dear_cost = retry["details"]["expected_value"] * 1.5
    dear = loop.assess(spec_for(drift={"gate": {"retrain_cost": dear_cost}}), champion, batch, week_after, since=tried)
    assert signal(dear, "retry")["status"] == "quiet" and "retrain cost" in signal(dear, "retry")["summary"]


def test_a_model_records_only_the_signals_that_decided_as_its_trigger():
    signals = [{"name": "data_drift", "status": "fired"}, {"name": "age", "status": "fired"}]
    signals += [{"name": "retrain_cost", "status": "quiet"}, {"name": "follow_up", "status": "insufficient"}]
    assert loop.deciding_signals("any", signals) == ("data_drift", "age")
    # Under rule cost data drift is advice: an age refresh with drift in the air is not change-driven.
    assert loop.deciding_signals("cost", signals) == ("age",)
    assert loop.deciding_signals(None, []) == ()


def test_under_a_vote_the_trigger_holds_only_the_side_that_retrained():
    drift = {"name": "data_drift", "status": "fired"}
    quiet = [{"name": n, "status": "quiet"} for n in ("prediction_drift", "performance_decay", "age")]
    growth = {"name": "data_growth", "status": "fired"}
    # Drift outvoted (1 of 4): data growth retrained on its own and is the whole trigger.
    assert loop.deciding_signals("majority", [drift, *quiet, growth]) == ("data_growth",)
    assert loop.deciding_signals("all", [drift, *quiet, growth]) == ("data_growth",)
    # A vote that passes keeps its signals beside the life-cycle one.
    decay = {"name": "performance_decay", "status": "fired"}
    passed = [drift, decay, {"name": "prediction_drift", "status": "fired"}, {"name": "age", "status": "quiet"}]
    assert loop.deciding_signals("majority", [*passed, growth]) == (
        "data_drift",
        "performance_decay",
        "prediction_drift",
        "data_growth",
    )
    assert loop.deciding_signals("all", [*passed, growth]) == ("data_growth",)  # 3 of 4 is not all
    # Disabled and insufficient signals do not vote (as in gate.combine_signals); no vote at all fails.
    off = [{"name": "age", "status": "disabled"}, {"name": "performance_decay", "status": "insufficient"}]
    assert loop.deciding_signals("all", [drift, *off, growth]) == ("data_drift", "data_growth")
    assert loop.deciding_signals("majority", [*off, growth]) == ("data_growth",)
    # trigger_drop follows: an outvoted decay signal's drop is not what the model answers.
    measured = {"name": "performance_decay", "status": "fired", "details": {"drop": 0.05, "se": 0.01}}
    outvoted = [measured, *[{"name": n, "status": "quiet"} for n in ("data_drift", "prediction_drift", "age")]]
    assert loop.trigger_drop("majority", [*outvoted, growth]) == {}
    assert loop.trigger_drop("any", [*outvoted, growth])["drop"] == 0.05


@pytest.mark.parametrize("rule", ["all", "majority"])
def test_the_trigger_is_the_side_of_the_gate_decision_that_retrained(rule):
    """Every combination of statuses: the recorded trigger agrees with the gate's own decision."""
    import itertools

    from include.retrainer import gate

    statuses = ("fired", "quiet", "disabled", "insufficient")
    voting_names = ("data_drift", "performance_decay", "age")
    for voting_st in itertools.product(statuses, repeat=len(voting_names)):
        for growth_st in ("fired", "quiet", "disabled"):
            signals = [gate.SignalResult(n, st, None, None, None, None, n) for n, st in zip(voting_names, voting_st)]
            signals.append(gate.SignalResult("data_growth", growth_st, None, None, None, None, "growth"))
            decision = loop._vote_then_life_cycle(gate, signals, rule)
            trigger = loop.deciding_signals(rule, [s.to_dict() for s in signals])
            vote = gate.combine_signals(signals[:-1], rule).retrain
            assert bool(trigger) == decision.retrain, (voting_st, growth_st)
            assert any(name in voting_names for name in trigger) == vote, (voting_st, growth_st)
            assert ("data_growth" in trigger) == (growth_st == "fired")


def test_vote_passes_names_an_unknown_rule():
    from include.retrainer import gate

    assert gate.vote_passes("any", 1, 5) and not gate.vote_passes("any", 0, 5)
    assert gate.vote_passes("all", 2, 2) and not gate.vote_passes("all", 0, 0)
    assert gate.vote_passes("majority", 2, 3) and not gate.vote_passes("majority", 1, 2)
    with pytest.raises(ValueError, match="rule must be one of.*got 'cost'"):
        gate.vote_passes("cost", 1, 1)


def test_gate_outcome_round_trips_to_a_dict_with_every_signal(trained):
    spec, champion, end = trained
    outcome = loop.assess(spec, champion, frame(7, 300, seed=36, start=end), end + dt.timedelta(days=7))
    d = outcome.to_dict()
    assert d["retrain"] is outcome.retrain and d["rule"] == "any"
    assert [s["name"] for s in d["signals"]] == [s["name"] for s in outcome.signals]


def test_under_rules_all_and_majority_the_life_cycle_signals_retrain_on_their_own_and_never_vote():
    spec = spec_for(training={"window_weeks": 4}, drift={"gate": {"rule": "all"}})
    end = START + dt.timedelta(days=7)
    first = loop.build_challenger(spec, frame(7, 300, seed=37), end)
    batch = frame(7, 300, seed=38, start=end)
    grown = loop.assess(spec, first, batch, end + dt.timedelta(days=7))
    assert grown.retrain and "outside the all vote" in grown.reason
    assert signal(grown, "data_growth")["status"] == "fired"
    # A full-window champion: both life-cycle signals quiet, and they are not counted as votes.
    full_end = START + dt.timedelta(days=28)
    full = loop.build_challenger(spec, frame(28, 100, seed=39), full_end)
    quiet = loop.assess(spec, full, frame(7, 300, seed=40, start=full_end), full_end + dt.timedelta(days=7))
    assert not quiet.retrain
    assert "data growth" not in quiet.reason and "follow-up" not in quiet.reason
    majority = spec_for(training={"window_weeks": 4}, drift={"gate": {"rule": "majority"}})
    assert loop.assess(majority, first, batch, end + dt.timedelta(days=7)).retrain


def test_a_model_card_without_data_from_disables_growth_with_a_note(trained):
    import dataclasses

    spec, champion, end = trained
    old_card = dataclasses.replace(champion, evaluation={})
    growth = signal(
        loop.assess(spec, old_card, frame(7, 300, seed=41, start=end), end + dt.timedelta(days=7)), "data_growth"
    )
    assert growth["status"] == "disabled" and "older model card" in growth["summary"]


def test_the_learning_gain_is_optional_and_never_fails_training(monkeypatch):
    from include.retrainer import training

    spec = spec_for(training={"window_weeks": 4})
    window = frame(7, 300, seed=42)
    real_fit = training.fit_pipeline
    calls = []

    def fit_once(spec_, rows):  # the model itself fits; the half-data refit blows up
        calls.append(len(rows))
        if len(calls) > 1:
            raise ValueError("n_splits=5 cannot be greater than the number of members in each class")
        return real_fit(spec_, rows)

    monkeypatch.setattr(training, "fit_pipeline", fit_once)
    state = loop.build_challenger(spec, window, START + dt.timedelta(days=7))
    assert state.evaluation["data_gain"] is None and len(calls) == 2


# -- reinstating an earlier champion (comparison.reinstate_earlier) ----------------------------
class _BrokenModel:
    """An earlier champion that cannot score today's rows (e.g. trained on other columns)."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        raise KeyError("column 'old_feature' not in the batch")

    predict = predict_proba


def test_an_earlier_champion_that_serves_the_rows_better_is_reinstated_at_alpha_over_candidates():
    from include.retrainer import compare

    spec = spec_for()
    holdout = _segment_holdout()
    winner = _state(_ScoreModel(noise=2.0, seed=1), holdout)
    strong, similar = _ScoreModel(noise=0.3, seed=3), _ScoreModel(noise=2.0, seed=4)
    candidates = [
        ("7", _state(similar, None, START - dt.timedelta(days=28))),
        ("5", _state(strong, None, START - dt.timedelta(days=56))),
        ("4", _state(_BrokenModel(), None, START - dt.timedelta(days=63))),
    ]
    found = loop.reinstate_earlier_champion(spec, winner, "challenger", candidates, holdout)
    assert found.key == "5" and found.alpha == pytest.approx(0.05 / 3)
    assert found.reason.startswith(
        "earlier champion 5 serves these 3000 held-out rows better than the challenger: roc_auc +"
    )
    by_key = {c["key"]: c for c in found.candidates}
    assert by_key["5"]["passed"] and not by_key["7"]["passed"]
    assert by_key["4"]["passed"] is False and "KeyError" in by_key["4"]["error"]
    # The numbers are those of the superiority test of the candidate against the winner at alpha / 3.
    y = holdout["y"].to_numpy()
    settings = spec.comparison.model_copy(update={"policy": "superiority", "alpha": 0.05 / 3})
    oracle = compare.compare_models(
        y,
        winner.model.predict(holdout),
        strong.predict(holdout),
        settings,
        champion_proba=winner.model.predict_proba(holdout),
        challenger_proba=strong.predict_proba(holdout),
        classes=[0, 1],
    ).paired_test
    assert by_key["5"]["effect"] == pytest.approx(oracle.effect) and by_key["5"]["ci_low"] == pytest.approx(
        oracle.ci_low
    )
    assert found.result["paired_test"]["confidence"] == pytest.approx(1 - 2 * 0.05 / 3)
    assert found.to_dict()["reinstated"] == "5" and found.to_dict()["winner"] == "challenger"


def test_judged_on_a_batch_an_earlier_champion_must_serve_it_at_its_own_level():
    """Instead of a retrain, a model that decayed on the rows is not a returning regime."""
    import dataclasses

    from include.retrainer import training
    from include.retrainer.metric_tests import metric_estimate

    spec = spec_for()
    holdout = _segment_holdout()
    winner = _state(_ScoreModel(noise=2.0, seed=1), holdout)
    strong = _ScoreModel(noise=0.3, seed=3)
    pred, proba = training.predict(strong, holdout, spec)
    level = metric_estimate("roc_auc", holdout["y"].to_numpy(), pred, proba, strong.classes_)
    n = 300
    at_level = dataclasses.replace(
        _state(strong, None, START - dt.timedelta(days=56)), baseline={"value": level.value, "se": 0.01, "n": n}
    )
    fallen = dataclasses.replace(at_level, baseline={"value": level.value + 0.1, "se": 0.01, "n": n})
    week_end = START + dt.timedelta(days=14)
    # Judged on held-out rows after training (no interval_end): its level is not asked.
    assert loop.reinstate_earlier_champion(spec, winner, "challenger", [("5", fallen)], holdout).key == "5"
    # On the batch, instead of a retrain: at its level it returns; 0.1 below it, it does not.
    found = loop.reinstate_earlier_champion(
        spec, winner, "champion", [("5", at_level)], holdout, loop.BATCH_ROWS, interval_end=week_end
    )
    assert found.key == "5" and found.candidates[0]["own_level"]["status"] == "quiet"
    found = loop.reinstate_earlier_champion(
        spec, winner, "champion", [("5", fallen)], holdout, loop.BATCH_ROWS, interval_end=week_end
    )
    entry = found.candidates[0]
    assert found.key is None and entry["passed"] is False and entry["own_level"]["status"] == "fired"
    assert entry["reasons"][0].startswith("decayed on these rows: ") and "effect" not in entry
    # Held to the level it was promoted at: the weeks it served, whose last ones are often the
    # weeks it decayed before it was replaced, do not lower or widen it (as they would pooled).
    served = tuple(
        {
            "interval_end": (START - dt.timedelta(days=56 - 7 * k)).isoformat(),
            "value": v,
            "se": 0.01,
            "n": n,
            "metric": "roc_auc",
        }
        for k, v in enumerate((level.value + 0.1, level.value + 0.1, level.value - 0.2, level.value - 0.5), 1)
    )
    sig = loop.own_level_signal(spec, dataclasses.replace(fallen, served=served), holdout, week_end)
    assert sig.status == "fired" and sig.summary.startswith("roc_auc "), sig.summary
    assert sig.statistic == pytest.approx(0.1, abs=1e-9)  # the drop from its held-out level
    # No recorded baseline: its level cannot be measured, and it is judged as before.
    unknown = _state(strong, None, START - dt.timedelta(days=56))
    assert loop.own_level_signal(spec, unknown, holdout, week_end).status == "insufficient"
    found = loop.reinstate_earlier_champion(
        spec, winner, "champion", [("5", unknown)], holdout, loop.BATCH_ROWS, interval_end=week_end
    )
    assert found.key == "5"
    # One that cannot score the rows (other feature columns) is reported and skipped, never an error.
    broken = dataclasses.replace(at_level, model=_BrokenModel())
    found = loop.reinstate_earlier_champion(
        spec, winner, "champion", [("4", broken), ("5", at_level)], holdout, loop.BATCH_ROWS, interval_end=week_end
    )
    assert found.key == "5" and "KeyError" in found.candidates[0]["error"]
    # A baseline of another metric (the spec changed) cannot tell its level.
    other = dataclasses.replace(fallen, baseline={**fallen.baseline, "metric": "accuracy"})
    assert loop.own_level_signal(spec, other, holdout, week_end).status == "insufficient"


def test_no_earlier_champion_is_reinstated_on_noise():
    spec = spec_for()
    holdout = _segment_holdout()
    winner = _state(_ScoreModel(noise=1.0, seed=1), holdout)
    candidates = [(str(v), _state(_ScoreModel(noise=1.0, seed=20 + v), None)) for v in range(3)]
    found = loop.reinstate_earlier_champion(spec, winner, "champion", candidates, holdout)
    assert found.key is None and found.result is None
    assert found.reason.startswith("no earlier champion serves these 3000 held-out rows better than the champion")
    assert all(c["passed"] is False and "effect" in c for c in found.candidates)


def _days_frame(days=7, per_day=600, seed=12):
    """Labelled rows over ``days`` days, with per-row noise columns the models below read."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * x1 + 0.5 * x2)))).astype(int)
    day = np.repeat([(START + dt.timedelta(days=d)).date().isoformat() for d in range(days)], per_day)
    # c names the day, so the models (which see only the features) can tell the days apart.
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "noise": 0.0, "c": day, "y": y, "e1": rng.normal(0, 1, n), "e2": rng.normal(0, 1, n)}
    ).assign(**{PARTITION_COLUMN: day})


class _RowNoiseModel:
    """P(y=1) = sigmoid(2 x1 + 0.5 x2 + noise), the noise read from the rows (the same on any subset).

    ``noise``: scale of column e1; ``own``: scale of column e2; ``sharp_day``: on that day the
    model scores with e2 at scale 0.2 only (much better there, like the winner elsewhere).
    """

    classes_ = np.array([0, 1])

    def __init__(self, noise: float, own: float = 0.0, sharp_day: str | None = None):
        self.noise, self.own, self.sharp_day = noise, own, sharp_day

    def predict_proba(self, X):
        score = 2.0 * X["x1"].to_numpy() + 0.5 * X["x2"].to_numpy()
        noisy = self.noise * X["e1"].to_numpy() + self.own * X["e2"].to_numpy()
        if self.sharp_day is not None:
            sharp = X["c"].to_numpy() == self.sharp_day
            noisy = np.where(sharp, 0.2 * X["e2"].to_numpy(), noisy)
        p = 1 / (1 + np.exp(-(score + noisy)))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def test_a_lead_that_is_one_days_does_not_bring_an_earlier_champion_back():
    """Rows of one day share the day: the lead must hold against how it varies between days."""
    from scipy.stats import t as student_t
    from statsmodels.stats.meta_analysis import combine_effects

    from include.retrainer.metric_tests import paired_metric_test

    features = {"numeric": ["x1", "x2", "noise", "e1", "e2"]}
    spec = spec_for(features=features)
    rows = _days_frame()
    winner = _state(_RowNoiseModel(noise=2.0), rows)
    sharp_day = rows[PARTITION_COLUMN].iloc[0]
    one_day = _state(_RowNoiseModel(noise=2.0, own=1.0, sharp_day=sharp_day), None, START - dt.timedelta(days=56))
    steady = _state(_RowNoiseModel(noise=1.4), None, START - dt.timedelta(days=63))

    found = loop.reinstate_earlier_champion(spec, winner, "champion", [("5", one_day)], rows, loop.BATCH_ROWS)
    entry = found.candidates[0]
    # Row by row, the one-day lead clears the superiority test at alpha ...
    assert entry["ci_low"] > 0 and entry["effect"] > 0
    # ... but it varies between the days far more than their own noise: refused.
    days = entry["days"]
    assert found.key is None and entry["passed"] is False and days["passed"] is False
    assert days["days"] == 7 and days["design_effect"] > 4 and days["p_value"] >= 0.05
    assert any(r.startswith(f"its lead {entry['effect']:+.4f} varies between the 7 days") for r in entry["reasons"])
    # The numbers: tau^2 is DerSimonian-Laird's over the per-day paired tests (statsmodels'
    # oracle), the SE the row-level one scaled by SE_random / SE_fixed of pooling the days.
    tests = []
    for _day, part in rows.groupby(PARTITION_COLUMN, sort=True):
        w, o = winner.model.predict_proba(part), one_day.model.predict_proba(part)
        tests.append(
            paired_metric_test("roc_auc", part["y"].to_numpy(), None, None, w, o, [0, 1], alpha=0.05, null_value=0.0)
        )
    oracle = combine_effects(np.array([t.effect for t in tests]), np.array([t.se for t in tests]) ** 2, method_re="dl")
    assert days["tau2"] == pytest.approx(oracle.tau2, rel=1e-9)
    ratio = (oracle.sd_eff_w_re / oracle.sd_eff_w_fe) ** 2
    assert days["design_effect"] == pytest.approx(ratio, rel=1e-9)
    # The row-level SE scaled by its square root, read on t with the Welch-Satterthwaite df of
    # tau^2 estimated from 7 - 1 degrees of freedom: df = 6 (V_random / (V_random - V_fixed))^2.
    row = paired_metric_test(
        "roc_auc",
        rows["y"].to_numpy(),
        None,
        None,
        winner.model.predict_proba(rows),
        one_day.model.predict_proba(rows),
        [0, 1],
        alpha=0.05,
        null_value=0.0,
    )
    v_re, v_fe = oracle.sd_eff_w_re**2, oracle.sd_eff_w_fe**2
    df = 6 * (v_re / (v_re - v_fe)) ** 2
    assert days["se"] == pytest.approx(row.se * ratio**0.5, rel=1e-9)
    assert days["df"] == pytest.approx(df, rel=1e-9)
    assert days["p_value"] == pytest.approx(student_t.sf(row.effect / (row.se * ratio**0.5), df), rel=1e-9)

    # A lead that every day shows passes (here the days vary a little more than their noise:
    # Cochran's Q 19.5 on 6 df, a 1% draw; over 300 draws of these days Q averages 5.8).
    found = loop.reinstate_earlier_champion(spec, winner, "champion", [("6", steady)], rows, loop.BATCH_ROWS)
    entry = found.candidates[0]
    assert found.key == "6" and entry["days"]["passed"] is True and entry["days"]["p_value"] < 0.05

    # Days that agree (tau^2 = 0; another draw of the rows): the row-level verdict stands as it was.
    agree = _days_frame(seed=13)
    found = loop.reinstate_earlier_champion(
        spec, _state(_RowNoiseModel(noise=2.0), agree), "champion", [("6", steady)], agree, loop.BATCH_ROWS
    )
    entry = found.candidates[0]
    assert found.key == "6" and entry["days"]["tau2"] == 0 and entry["days"]["design_effect"] == 1
    assert entry["days"]["p_value"] == entry["p_value"] and entry["days"]["se"] > 0

    # Days under drift.min_rows cannot be measured one by one: the row-level test alone decides.
    small = spec_for(features=features, drift={"min_rows": 700})
    found = loop.reinstate_earlier_champion(small, winner, "champion", [("5", one_day)], rows, loop.BATCH_ROWS)
    assert found.key == "5" and found.candidates[0]["days"] is None
    # So do rows without their day.
    no_days = rows.drop(columns=[PARTITION_COLUMN])
    winner_nd = _state(_RowNoiseModel(noise=2.0), no_days)
    steady_nd = _state(_RowNoiseModel(noise=1.4), None, START - dt.timedelta(days=63))
    found = loop.reinstate_earlier_champion(spec, winner_nd, "champion", [("6", steady_nd)], no_days)
    assert found.key == "6" and found.candidates[0]["days"] is None

    # A model that scores the whole batch but fails on a day's rows: those days are left out, never an error.
    class _FailsOnSmallRows(_RowNoiseModel):
        def predict_proba(self, X):
            if len(X) < 1000:
                raise IndexError("index 3 is out of bounds for axis 0 with size 3")
            return super().predict_proba(X)

    picky = _state(_FailsOnSmallRows(noise=1.4), None, START - dt.timedelta(days=63))
    found = loop.reinstate_earlier_champion(spec, winner, "champion", [("6", picky)], rows, loop.BATCH_ROWS)
    assert found.key == "6" and found.candidates[0]["days"] is None


class _ThreeClassRowNoiseModel(_RowNoiseModel):
    """Class 2 when x2 is high, else the binary model's 0/1 ranking."""

    classes_ = np.array([0, 1, 2])

    def predict_proba(self, X):
        two = 1 / (1 + np.exp(-(3.0 * (X["x2"].to_numpy() - 1.5) + 0.3 * self.noise * X["e1"].to_numpy())))
        p = super().predict_proba(X) * (1 - two)[:, None]
        return np.column_stack([p, two])

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def test_the_days_check_measures_only_days_that_hold_every_class():
    """A day without a class measures a macro AUC over fewer classes: another quantity, left out."""
    features = {"numeric": ["x1", "x2", "noise", "e1", "e2"]}
    spec = spec_for(features=features)
    rows = _days_frame()
    rows.loc[rows["x2"] > 1.5, "y"] = 2
    first = rows[PARTITION_COLUMN] == rows[PARTITION_COLUMN].iloc[0]
    rows = rows[~(first & (rows["y"] == 2))]  # the first day holds no row of class 2
    winner = _state(_ThreeClassRowNoiseModel(noise=2.0), rows)
    steady = _state(_ThreeClassRowNoiseModel(noise=1.2), None, START - dt.timedelta(days=63))
    found = loop.reinstate_earlier_champion(spec, winner, "champion", [("6", steady)], rows, loop.BATCH_ROWS)
    entry = found.candidates[0]
    assert entry["passed"] and entry["days"]["days"] == 6, entry


def test_earlier_champions_are_the_latest_tenures_without_those_a_person_rolled_back_from():
    from include.retrainer.champion import earlier_champions

    moves = [
        {"action": "promote", "from_version": None, "to_version": "1"},
        {"action": "promote", "from_version": "1", "to_version": "2"},
        {"action": "promote", "from_version": "2", "to_version": "3"},
        {"action": "rollback", "from_version": "3", "to_version": "2"},
        {"action": "promote", "from_version": "2", "to_version": "5"},
        {"action": "reinstate", "from_version": "5", "to_version": "1"},
        {"action": "promote", "from_version": "1", "to_version": "8"},
    ]
    # 8 is champion, 9 the challenger; 3 was rolled back from; 1 counts at its latest tenure.
    assert earlier_champions(moves, {"8", "9"}, 3) == ["1", "5", "2"]
    assert earlier_champions(moves, {"8", "9"}, 1) == ["1"]
    assert earlier_champions(moves, {"8", "9"}, 0) == []
    # A version promoted again after a rollback away from it is a candidate again.
    moves.append({"action": "promote", "from_version": "8", "to_version": "3"})
    assert earlier_champions(moves, {"3"}, 5) == ["8", "1", "5", "2"]


class _RankWellLabelBadly:
    """Ranks like a strong model, but its labels are the winner's with a few right ones made wrong."""

    classes_ = np.array([0, 1])

    def __init__(self, labels, flip_rows):
        self.labels, self.flip = np.asarray(labels), set(flip_rows)
        self.strong = _ScoreModel(noise=0.3, seed=3)

    def predict_proba(self, X):
        return self.strong.predict_proba(X)

    def predict(self, X):
        out = self.labels.copy()
        idx = [i for i in range(len(out)) if i in self.flip]
        out[idx] = 1 - out[idx]
        return out


def test_the_mcnemar_guard_of_a_reinstatement_keeps_the_comparisons_alpha():
    """b = 5, c = 0: mid-p 0.5**5 = 0.031, under alpha 0.05 but over alpha / 3: still blocked."""
    spec = spec_for()
    holdout = _segment_holdout()
    winner = _state(_ScoreModel(noise=2.0, seed=1), holdout)
    labels = winner.model.predict(holdout)
    right = np.flatnonzero(labels == holdout["y"].to_numpy())[:5]
    candidate = _RankWellLabelBadly(labels, right)
    others = [(str(v), _state(_ScoreModel(noise=2.0, seed=30 + v), None)) for v in range(2)]
    found = loop.reinstate_earlier_champion(
        spec, winner, "champion", [("9", _state(candidate, None)), *others], holdout
    )
    entry = next(c for c in found.candidates if c["key"] == "9")
    assert entry["effect"] > 0.1 and entry["ci_low"] > 0  # a far better ranking at alpha / 3 ...
    assert found.key is None and entry["passed"] is False  # ... but more often wrong at alpha 0.05
    assert any(
        r.startswith("McNemar: more often wrong than the champion (b=5 > c=0, p=0.03125") for r in entry["reasons"]
    )
    # The guard's line at alpha / 3 ("not significantly more often wrong") is replaced, not contradicted.
    assert not any("not significantly more often wrong" in r for r in entry["reasons"])
    assert sum(r.startswith("McNemar") for r in entry["reasons"]) == 1
    assert entry["mcnemar_verdict"] == "worse"


def test_a_reinstatement_keeps_the_mcnemar_veto_when_the_metric_would_outvote_it():
    """b = 12, c = 0 (mid-p 0.5**12, under alpha / 3) with a far better ranking: a challenger would
    pass (the primary metric outvotes the guard), an earlier champion does not come back."""
    spec = spec_for()
    holdout = _segment_holdout()
    winner = _state(_ScoreModel(noise=2.0, seed=1), holdout)
    labels = winner.model.predict(holdout)
    right = np.flatnonzero(labels == holdout["y"].to_numpy())[:12]
    candidate = _RankWellLabelBadly(labels, right)
    others = [(str(v), _state(_ScoreModel(noise=2.0, seed=30 + v), None)) for v in range(2)]
    found = loop.reinstate_earlier_champion(
        spec, winner, "champion", [("9", _state(candidate, None)), *others], holdout
    )
    entry = next(c for c in found.candidates if c["key"] == "9")
    assert entry["effect"] > 0.1 and entry["ci_low"] > 0
    assert found.key is None and entry["passed"] is False
    # One verdict, told once: the guard's own veto, not "outvoted" followed by a veto.
    assert any("McNemar (mid-p)" in r and "b=12 > c=0" in r and "more often wrong" in r for r in entry["reasons"])
    assert not any("the primary metric decides" in r for r in entry["reasons"])
    assert entry["mcnemar_verdict"] == "worse"


def test_earlier_champions_pre_empt_a_retrain_only_when_more_than_newer_data_asked_for_it():
    before = loop.earlier_champions_before_training
    # A change (a regime that may return, a weak champion): judged on the batch first.
    for trigger in (("data_drift",), ("performance_decay",), ("retrain_cost",), ("age", "performance_decay")):
        assert before(trigger), trigger
    # Newer data is the reason (the age included: no earlier champion is fresher than the
    # champion's own data): the retrain is made; earlier champions are judged after it.
    for trigger in (
        ("follow_up",),
        ("retry",),
        ("data_growth",),
        ("data_growth", "follow_up"),
        ("age",),
        ("follow_up", "age"),
    ):
        assert not before(trigger), trigger
    assert set(loop.FRESH_DATA_SIGNALS) == {"data_growth", "follow_up", "retry", "age"}
    assert before(())  # nothing named (as before this rule): judged


def test_the_drift_step_does_not_judge_earlier_champions_when_only_newer_data_was_asked_for():
    from types import SimpleNamespace

    from include.retrainer.steps import drift as drift_step
    from include.retrainer.steps.context import RunContext

    spec = spec_for()
    assert spec.comparison.reinstate_earlier > 0  # on: only the trigger keeps it from running
    ctx = RunContext(dag_id="d", run_id="r", interval_start=START, interval_end=START + dt.timedelta(days=7))
    for trigger in (("follow_up",), ("retry",), ("data_growth",), ("age",)):
        outcome = SimpleNamespace(retrain=True, trigger=trigger)
        # Returns before any I/O: no store, registry, champion or batch is needed (all None here).
        found = drift_step._check_earlier_champions(None, None, "", spec, ctx, None, None, None, "", outcome)
        assert found is None, trigger


def test_a_champion_records_its_scores_day_to_day_variation_and_prediction_drift_is_judged_against_it(trained):
    spec, champion, end = trained
    # 12 training days (14 in the window, 2 held out): one per day, for the one score column.
    (variation,) = champion.score_variation
    assert variation is not None and variation.blocks == 12
    assert loop.score_variation_from_json(loop.score_variation_to_json(champion.score_variation)) == (variation,)
    assert loop.score_variation_from_json([{"blocks": 1}]) == () and loop.score_variation_from_json(None) == ()
    batch = frame(7, 300, seed=15, start=end)
    details = signal(loop.assess(spec, champion, batch, end + dt.timedelta(days=7)), "prediction_drift")["details"]
    assert details["reference_days"] == 2 and details["current_days"] == 7 and details["design_effect"][0] is not None
    # Switched off: no variation recorded, the plain KS.
    off = spec_for(drift={"natural_variation": False})
    assert loop.build_challenger(off, frame(14, 300, seed=11), end).score_variation == ()


def test_the_week_after_a_reinstatement_is_judged_against_the_champions_training_weeks():
    # After an earlier champion serves again instead of a retrain, the gate measures change
    # since that batch: a one-week reference, too short to show its own variation, so the
    # reinstated champion's training weeks (3 full weeks here) lend theirs.
    spec = spec_for()
    end = START + dt.timedelta(days=28)
    champion = loop.build_challenger(spec, frame(28, 200, seed=41), end)
    reinstated_on = frame(7, 300, seed=42, start=end + dt.timedelta(days=7))
    since = loop.ModelState(
        model=None,
        train=reinstated_on,
        holdout=reinstated_on,
        trained_through=end + dt.timedelta(days=14),
        baseline={},
        importance={},
        evaluation={"since": loop.REINSTATED_ON},
    )
    batch = frame(7, 300, seed=43, start=end + dt.timedelta(days=14))
    outcome = loop.assess(spec, champion, batch, end + dt.timedelta(days=21), since=since)
    assert "reinstated instead of a retrain" in outcome.reference
    x1 = outcome.drift_report["features"]["x1"]
    assert x1["effect"]["reference_span_weeks"] == 1 and x1["effect"]["reference_weeks"] == 3
    assert "the champion's training rows (this reference spans 1 week(s))" in x1["note"]
    # Without a rejected challenger or a reinstatement, the champion's own weeks: nothing borrowed.
    own = loop.assess(spec, champion, batch, end + dt.timedelta(days=21))
    assert "variation_borrowed" not in own.drift_report["features"]["x1"]["effect"]
    assert own.drift_report["features"]["x1"]["effect"]["reference_weeks"] == 3
