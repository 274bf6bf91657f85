"""Training on the rows since the champion's errors changed (include/retrainer/regime.py).

The excess Brier loss is checked against an independent formula (observed Brier loss minus
the Brier loss the model's own probabilities expect), the change test's false alarms on
stationary windows against its alpha (Monte Carlo), and ``loop.regime_candidate`` /
``loop.train_on_regime`` / ``loop.build_challenger`` on windows with a known change of the
label's relation to the inputs.
"""

from __future__ import annotations

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


def test_excess_loss_is_observed_minus_expected_brier(champion):
    spec = spec_for()
    rows = days_frame(3, 100, seed=2)
    proba = champion.predict_proba(training.prepare_features(rows, spec))
    y = rows["y"].to_numpy()
    onehot = np.eye(2)[y]
    observed = ((onehot - proba) ** 2).sum(axis=1)
    expected = (proba * (1 - proba)).sum(axis=1)
    np.testing.assert_allclose(regime.excess_loss(champion, rows, spec), observed - expected, atol=1e-12)


def test_excess_loss_gives_a_label_the_model_never_saw_probability_zero(champion):
    spec = spec_for()
    rows = days_frame(1, 20, seed=3)
    rows["y"] = 7  # a class the champion was never trained on
    proba = champion.predict_proba(training.prepare_features(rows, spec))
    # Brier loss with the unseen class's one-hot column (p = 0) minus the expected loss.
    observed = (proba**2).sum(axis=1) + 1.0
    expected = (proba * (1 - proba)).sum(axis=1)
    np.testing.assert_allclose(regime.excess_loss(champion, rows, spec), observed - expected, atol=1e-12)


def test_a_model_without_probabilities_uses_its_errors():
    from sklearn.svm import LinearSVC

    spec = spec_for(training={"estimator": "sklearn.svm.LinearSVC"})
    model = training.fit_pipeline(spec, days_frame(4, 100, seed=4))
    assert not hasattr(model, "predict_proba") or not callable(getattr(LinearSVC, "predict_proba", None))
    rows = days_frame(2, 50, seed=5)
    expected = (model.predict(training.prepare_features(rows, spec)) != rows["y"].to_numpy()).astype(float)
    np.testing.assert_array_equal(regime.excess_loss(model, rows, spec), expected)


def test_a_reversal_is_located_on_its_day(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=6, first=14, flip_from=23)  # the champion's data ended on day 13
    found = regime.locate_change(spec, champion, day(12), window)
    assert found.found and found.day == day(23), found.reason
    assert found.after_mean > found.before_mean and found.p_value < found.alpha
    assert found.rows_after == 5 * 150 and "changed" in found.reason


def test_stationary_windows_find_a_change_at_most_alpha_of_the_time(champion):
    """Monte Carlo: 200 stationary windows; false alarms <= alpha + 3 standard errors."""
    spec = spec_for(drift={"alpha": 0.05})
    hits = sum(
        regime.locate_change(spec, champion, day(14), days_frame(14, 60, seed=100 + i, first=14)).found
        for i in range(200)
    )
    assert hits / 200 <= 0.05 + 3 * (0.05 * 0.95 / 200) ** 0.5


def test_a_covariate_shift_alone_is_not_a_change_of_regime(champion):
    """Inputs move 1.5 sd; the calibrated champion's excess loss does not (its 0/1 error would)."""
    spec = spec_for()
    before = days_frame(7, 150, seed=7, first=14)
    after = days_frame(7, 150, seed=8, first=21, shift=1.5)
    found = regime.locate_change(spec, champion, day(14), pd.concat([before, after], ignore_index=True))
    assert not found.found, found.reason


def test_rows_the_champion_trained_on_are_left_out(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=9, first=14, flip_from=23)
    found = regime.locate_change(spec, champion, day(24), window)  # only days 24-27 are out of sample
    # Days 24-27 are all after the change: no boundary inside them can show it.
    assert not found.found
    assert found.rows_before + found.rows_after <= 4 * 150


def test_too_few_rows_after_any_boundary_is_a_named_outcome(champion):
    spec = spec_for(training={"min_train_rows": 5000})
    found = regime.locate_change(spec, champion, day(14), days_frame(14, 50, seed=10, first=14))
    assert not found.found and "training.min_train_rows" in found.reason and "5100" in found.reason


def _state(model, holdout_from: str, regime_from: str | None = None) -> loop.ModelState:
    return loop.ModelState(
        model=model,
        train=None,
        holdout=None,
        trained_through=START + dt.timedelta(days=14),
        baseline={},
        importance={},
        evaluation={"holdout_from": holdout_from, **({"regime": {"from": regime_from}} if regime_from else {})},
    )


def test_build_challenger_trains_on_the_new_regime_when_its_model_is_better(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=11, first=14, flip_from=22)
    end = START + dt.timedelta(days=28)
    state = loop.build_challenger(spec, window, end, champion=_state(champion, day(12)))
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
        rows, out, model = loop.train_on_regime(spec, _state(champion, day(12)), rng_window, train, holdout, info)
    assert len(rows) == len(train) and out["regime"]["from"] is None
    assert out["regime"]["candidate_from"] == day(22) and out["regime"]["kept"].startswith("whole window")
    assert out["regime"]["test"]["p_value"] >= spec.comparison.alpha
    assert model is not None  # the whole window's pipeline, fitted once and reused


def test_a_successor_keeps_its_champions_start_until_the_window_passes_it(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=13, first=14)  # nothing changes inside it
    cand = loop.regime_candidate(spec, _state(champion, day(26), regime_from=day(20)), window)
    assert cand["from"] == day(20) and cand["source"] == "champion"
    # Once the window starts after that day there is no candidate.
    cand = loop.regime_candidate(spec, _state(champion, day(26), regime_from=day(10)), window)
    assert cand["from"] is None and not cand["detection"]["found"]


def test_a_start_that_leaves_too_few_training_rows_keeps_the_whole_window(champion):
    spec = spec_for()
    window = days_frame(14, 150, seed=14, first=14)
    train, holdout, info = loop.select_holdout(window, spec)
    rows, out, model = loop.train_on_regime(
        spec, _state(champion, day(26), regime_from=day(25)), window, train, holdout, info
    )
    assert len(rows) == len(train) and out["regime"]["from"] is None and model is None
    assert "training.min_train_rows=200" in out["regime"]["kept"]


def test_switched_off_or_without_a_champion_nothing_is_tested(champion):
    window = days_frame(14, 150, seed=15, first=14, flip_from=22)
    off = spec_for(training={"window_from_change": False})
    assert loop.regime_candidate(off, _state(champion, day(12)), window) == {}
    assert loop.regime_candidate(spec_for(), None, window) == {}
    train, holdout, info = loop.select_holdout(window, off)
    assert loop.train_on_regime(off, _state(champion, day(12)), window, train, holdout, info) == (train, info, None)
