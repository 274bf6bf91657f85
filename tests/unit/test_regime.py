"""Training on the rows since the champion's errors changed (include/retrainer/regime.py).

The excess Brier loss is checked against an independent formula (observed Brier loss minus
the Brier loss the model's own probabilities expect), the change test's false alarms on
stationary windows against its alpha (Monte Carlo), and ``loop.regime_candidate`` /
``loop.train_on_regime`` / ``loop.build_challenger`` on windows with a known change of the
label's relation to the inputs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from include.retrainer import loop, regime, training
from include.retrainer.config import PARTITION_COLUMN, parse_spec

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # a Sunday


def spec_for(**over):
    raw = {
        "name": "toy",
        "data": {"bucket": "raw-data", "prefix": "toy"},
        "features": {"target": "y", "numeric": ["x1", "x2"], "categorical": ["c"]},
        "training": {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "window_weeks": 2,
            "holdout_days": 2,
            "min_train_rows": 200,
            "min_holdout_rows": 100,
        },
    }
    for block, values in over.items():
        raw.setdefault(block, {}).update(values)
    return parse_spec(raw, "bench/toy.yaml")


def days_frame(days: int, rows_per_day: int, seed: int, flip_from: int | None = None, shift: float = 0.0, first=0):
    """Days ``first .. first + days - 1``; from day ``flip_from`` on the label's relation is reversed."""
    rng = np.random.default_rng(seed)
    parts = []
    for d in range(first, first + days):
        n = rows_per_day
        x1 = rng.normal(shift, 1, n)
        x2 = rng.normal(0, 1, n)
        logit = 1.5 * x1 - 1.0 * x2
        if flip_from is not None and d >= flip_from:
            logit = -logit
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        parts.append(
            pd.DataFrame(
                {
                    "x1": x1,
                    "x2": x2,
                    "c": rng.choice(["a", "b"], n),
                    "y": y,
                    PARTITION_COLUMN: (START + dt.timedelta(days=d)).date().isoformat(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def day(d: int) -> str:
    return (START + dt.timedelta(days=d)).date().isoformat()


@pytest.fixture(scope="module")
def champion():
    """A logistic regression (correctly specified, so calibrated) trained on days 0-13."""
    spec = spec_for()
    return training.fit_pipeline(spec, days_frame(14, 150, seed=1))


def _holdout_from(window, spec) -> str:
    return loop.select_holdout(window, spec)[2]["holdout_from"]


def test_excess_loss_is_observed_minus_expected_brier(champion):
    spec = spec_for()
    rows = days_frame(3, 100, seed=2)
    proba = champion.predict_proba(training.prepare_features(rows, spec))
    y = rows["y"].to_numpy()
    onehot = np.eye(2)[y]
    observed = ((onehot - proba) ** 2).sum(axis=1)
    expected = (proba * (1 - proba)).sum(axis=1)
    loss, name = regime.excess_loss(champion, rows, spec)
    assert name == "excess_brier"
    np.testing.assert_allclose(loss, observed - expected, atol=1e-12)


def test_excess_loss_gives_a_label_the_model_never_saw_probability_zero(champion):
    spec = spec_for()
    rows = days_frame(1, 20, seed=3)
    rows["y"] = 7  # a class the champion was never trained on
    proba = champion.predict_proba(training.prepare_features(rows, spec))
    # Brier loss with the unseen class's one-hot column (p = 0) minus the expected loss.
    observed = (proba**2).sum(axis=1) + 1.0
    expected = (proba * (1 - proba)).sum(axis=1)
    np.testing.assert_allclose(regime.excess_loss(champion, rows, spec)[0], observed - expected, atol=1e-12)


def test_labels_are_matched_to_classes_as_the_comparison_matches_them(champion):
    """A label column read back as floats (1.0) is the class 1 the model was trained on."""
    spec = spec_for()
    rows = days_frame(2, 50, seed=18)
    as_float = rows.assign(y=rows["y"].astype(float))
    np.testing.assert_allclose(
        regime.excess_loss(champion, as_float, spec)[0], regime.excess_loss(champion, rows, spec)[0]
    )


def test_a_model_without_probabilities_uses_its_errors():
    spec = spec_for(training={"estimator": "sklearn.svm.LinearSVC"})
    model = training.fit_pipeline(spec, days_frame(4, 100, seed=4))
    assert not hasattr(model, "predict_proba")
    rows = days_frame(2, 50, seed=5)
    expected = (model.predict(training.prepare_features(rows, spec)) != rows["y"].to_numpy()).astype(float)
    loss, name = regime.excess_loss(model, rows, spec)
    assert name == "error_rate"
    np.testing.assert_array_equal(loss, expected)


def test_a_reversal_is_located_on_its_day(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=6, first=14, flip_from=23)  # the champion's data ended on day 13
    found = regime.locate_change(spec, champion, day(14), window, _holdout_from(window, spec))
    assert found.found and found.day == day(23), found.reason
    assert found.after_mean > found.before_mean and found.p_value < found.alpha
    assert found.rows_after == 5 * 150 and "changed" in found.reason and found.loss == "excess_brier"
    assert found.permutations == spec.drift.null_resamples


def _false_alarms(spec, model, make_window, n: int = 200) -> float:
    hits = 0
    for i in range(n):
        window = make_window(i)
        hits += regime.locate_change(spec, model, day(14), window, _holdout_from(window, spec)).found
    return hits / n


def _at_most_alpha(rate: float, alpha: float, n: int) -> bool:
    return rate <= alpha + 3 * (alpha * (1 - alpha) / n) ** 0.5


def test_stationary_windows_find_a_change_at_most_alpha_of_the_time(champion):
    """Monte Carlo: 200 stationary windows; false alarms <= alpha + 3 standard errors."""
    spec = spec_for(drift={"alpha": 0.05, "null_resamples": 199})
    rate = _false_alarms(spec, champion, lambda i: days_frame(14, 60, seed=100 + i, first=14))
    assert _at_most_alpha(rate, 0.05, 200), rate


def test_days_that_differ_from_each_other_are_not_a_change(champion):
    """Each day has its own level of difficulty (a random intercept of the logit, sd 1): rows
    within a day are not independent, and a row-level test would see changes everywhere."""
    spec = spec_for(drift={"alpha": 0.05, "null_resamples": 199})

    def window(i):
        w = days_frame(14, 400, seed=300 + i, first=14)
        rng = np.random.default_rng(900 + i)
        noise = {d: rng.normal(0, 1.0) for d in w[PARTITION_COLUMN].unique()}
        # Redraw each label with the day's shifted logit: P(y|x) differs day by day, not by regime.
        logit = 1.5 * w["x1"] - 1.0 * w["x2"] + w[PARTITION_COLUMN].map(noise)
        w["y"] = (rng.random(len(w)) < 1 / (1 + np.exp(-logit))).astype(int)
        return w

    rate = _false_alarms(spec, champion, window, n=100)
    assert _at_most_alpha(rate, 0.05, 100), rate


def test_a_rarely_wrong_model_without_probabilities_has_no_excess_false_alarms():
    """0/1 errors at a low rate: a day without errors has zero variance, which a row-level
    Welch test mistook for certainty; the permutation of days does not."""
    spec = spec_for(training={"estimator": "sklearn.svm.LinearSVC"}, drift={"alpha": 0.05, "null_resamples": 199})

    def window(i):
        w = days_frame(14, 60, seed=500 + i, first=14)
        w["y"] = (1.5 * w["x1"] - 1.0 * w["x2"] > 0).astype(int)  # separable: errors are rare
        flip = np.random.default_rng(700 + i).random(len(w)) < 0.005
        w.loc[flip, "y"] = 1 - w.loc[flip, "y"]
        return w

    train = days_frame(14, 150, seed=1)
    train["y"] = (1.5 * train["x1"] - 1.0 * train["x2"] > 0).astype(int)
    model = training.fit_pipeline(spec, train)
    rate = _false_alarms(spec, model, window, n=200)
    assert _at_most_alpha(rate, 0.05, 200), rate


def test_a_covariate_shift_alone_is_not_a_change_of_regime(champion):
    """Inputs move 1.5 sd; the calibrated champion's excess loss does not (its 0/1 error would)."""
    spec = spec_for()
    before = days_frame(7, 150, seed=7, first=14)
    after = days_frame(7, 150, seed=8, first=21, shift=1.5)
    window = pd.concat([before, after], ignore_index=True)
    found = regime.locate_change(spec, champion, day(14), window, _holdout_from(window, spec))
    assert not found.found, found.reason


def test_rows_the_champion_trained_on_are_left_out(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=9, first=14, flip_from=23)
    found = regime.locate_change(spec, champion, day(24), window, _holdout_from(window, spec))
    # Days 24-27 are all after the change: no boundary inside them can show it.
    assert not found.found
    assert found.rows_before + found.rows_after <= 4 * 150


def test_a_widened_holdout_still_leaves_candidates(champion):
    """holdout_days 1 widened to 2 days by min_holdout_rows: candidates are counted before the
    held-out days select_holdout chose, and the change is found."""
    spec = spec_for(training={"holdout_days": 1, "min_holdout_rows": 200})
    window = days_frame(14, 150, seed=19, first=14, flip_from=22)
    held = _holdout_from(window, spec)
    assert held == day(26)  # widened from day 27
    found = regime.locate_change(spec, champion, day(14), window, held)
    assert found.found and found.day == day(22), found.reason


def test_rows_without_a_finite_score_are_left_out_and_counted(champion):
    import unittest.mock as mock

    spec = spec_for()
    window = days_frame(14, 150, seed=20, first=14, flip_from=23)
    real = regime.excess_loss

    def with_nan(model, frame, spec):
        loss, name = real(model, frame, spec)
        loss = loss.copy()
        loss[:5] = np.nan
        return loss, name

    with mock.patch.object(regime, "excess_loss", with_nan):
        found = regime.locate_change(spec, champion, day(14), window, _holdout_from(window, spec))
    assert found.found and found.day == day(23) and found.dropped_rows == 5
    assert "5 row(s) without a finite score left out" in found.reason


def test_too_few_rows_after_any_boundary_is_a_named_outcome(champion):
    spec = spec_for(training={"min_train_rows": 5000})
    window = days_frame(14, 50, seed=10, first=14)
    found = regime.locate_change(spec, champion, day(14), window, _holdout_from(window, spec_for()))
    assert not found.found and "training.min_train_rows=5000" in found.reason


def _state(model, after_day: int = 14, regime_from: str | None = None) -> loop.ModelState:
    """The champion: its training window ended at the start of day ``after_day``."""
    return loop.ModelState(
        model=model,
        train=None,
        holdout=None,
        trained_through=START + dt.timedelta(days=after_day),
        baseline={},
        importance={},
        evaluation={"holdout_from": day(after_day - 2), **({"regime": {"from": regime_from}} if regime_from else {})},
    )


def test_build_challenger_trains_on_the_new_regime_when_its_model_is_better(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=11, first=14, flip_from=22)
    end = START + dt.timedelta(days=28)
    state = loop.build_challenger(spec, window, end, champion=_state(champion))
    info = state.evaluation["regime"]
    assert info["from"] == info["candidate_from"] == day(22) and info["source"] == "detected"
    assert state.evaluation["data_from"] == day(22)
    assert len(state.train) == 4 * 150 and len(state.holdout) == 2 * 150  # days 22-25, held out 26-27
    assert state.evaluation["train_rows"] == 4 * 150
    test = info["test"]
    assert test["since"] > test["whole"] and test["p_value"] < test["alpha"] and test["rows_since"] == 600
    whole = loop.build_challenger(spec, window, end)  # no champion: the whole window, as before
    assert "regime" not in whole.evaluation and len(whole.train) == 12 * 150
    # The new-regime model serves the new regime; the whole window's does not.
    from sklearn.metrics import roc_auc_score

    later = days_frame(7, 300, seed=12, first=28, flip_from=22)
    auc = {
        name: roc_auc_score(later["y"], s.model.predict_proba(training.prepare_features(later, spec))[:, 1])
        for name, s in (("since", state), ("whole", whole))
    }
    assert auc["since"] > 0.75 > auc["whole"], auc


def test_old_rows_that_still_help_keep_the_whole_window(champion):
    """A small change of the relation: the rows since it alone train no significantly better model."""
    spec = spec_for()
    rng_window = days_frame(14, 150, seed=16, first=14)
    # From day 22 one in five labels is flipped: a real change, but the old rows still teach the relation.
    late = rng_window[PARTITION_COLUMN] >= day(22)
    flip = late & (np.random.default_rng(17).random(len(rng_window)) < 0.2)
    rng_window.loc[flip, "y"] = 1 - rng_window.loc[flip, "y"]
    train, holdout, info = loop.select_holdout(rng_window, spec)
    cand = {"from": day(22), "source": "detected", "detection": {}}
    import unittest.mock as mock

    with mock.patch.object(loop, "regime_candidate", return_value=cand):
        rows, out, model = loop.train_on_regime(spec, _state(champion), rng_window, train, holdout, info)
    assert len(rows) == len(train) and out["regime"]["from"] is None
    assert out["regime"]["candidate_from"] == day(22) and out["regime"]["kept"].startswith("whole window")
    assert out["regime"]["test"]["p_value"] >= spec.comparison.alpha
    assert model is not None  # the whole window's pipeline, fitted once and reused


def test_a_successor_keeps_its_champions_start_until_the_window_passes_it(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=13, first=14)  # nothing changes inside it
    held = _holdout_from(window, spec)
    cand = loop.regime_candidate(spec, _state(champion, 26, regime_from=day(20)), window, held)
    assert cand["from"] == day(20) and cand["source"] == "champion"
    # Once the window starts after that day there is no candidate, nor for a day in the held-out
    # days or after the window (an older interval re-run under a later champion).
    for late in (day(10), day(26), day(40)):
        cand = loop.regime_candidate(spec, _state(champion, 26, regime_from=late), window, held)
        assert cand["from"] is None and not cand["detection"]["found"], late


def test_a_start_that_leaves_too_few_training_rows_keeps_the_whole_window(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=14, first=14)
    train, holdout, info = loop.select_holdout(window, spec)
    rows, out, model = loop.train_on_regime(
        spec, _state(champion, 26, regime_from=day(25)), window, train, holdout, info
    )
    assert len(rows) == len(train) and out["regime"]["from"] is None and model is None
    assert "training.min_train_rows=200" in out["regime"]["kept"]


def test_switched_off_or_without_a_champion_nothing_is_tested(champion):
    window = days_frame(14, 150, seed=15, first=14, flip_from=22)
    off = spec_for(training={"window_from_change": False})
    assert loop.regime_candidate(off, _state(champion), window, None) == {}
    assert loop.regime_candidate(spec_for(), None, window, None) == {}
    train, holdout, info = loop.select_holdout(window, off)
    assert loop.train_on_regime(off, _state(champion), window, train, holdout, info) == (train, info, None)


def test_a_change_on_the_first_day_after_the_champions_window_is_found(champion):
    """The champion's own held-out days (12-13) are the rows before a change on day 14."""
    spec = spec_for()
    window = days_frame(21, 150, seed=21, first=7, flip_from=14)  # days 7-27; the champion's: 0-13
    cand = loop.regime_candidate(spec, _state(champion, 14), window, _holdout_from(window, spec))
    assert cand["from"] == day(14) and cand["source"] == "detected", cand["detection"]["reason"]


def test_the_first_unseen_day_follows_the_partitions_of_the_window():
    state = _state(None, 14)
    assert loop._first_unseen_day(state) == day(12)  # its held-out days, from the model card
    bare = dataclasses.replace(state, evaluation={})
    assert loop._first_unseen_day(bare) == day(14)  # interval end at midnight: the next day is unseen
    six = dataclasses.replace(bare, trained_through=START + dt.timedelta(days=14, hours=6))
    assert loop._first_unseen_day(six) == day(15)  # day 14 (before 06:00) was in its window
    naive = dataclasses.replace(bare, trained_through=dt.datetime(2026, 3, 15))
    assert loop._first_unseen_day(naive) == "2026-03-15"
    assert loop._first_unseen_day(dataclasses.replace(bare, trained_through=dt.datetime.min)) is None
