"""The training window chosen on a file's own history (include/retrainer/window.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from include.retrainer.window import MIN_WEEKS, WindowChoice, choose_window, kept_default


def _ar1(rng: np.random.Generator, n: int, mean: float, sd: float, rho: float = 0.4) -> np.ndarray:
    """Weekly leads whose neighbours are correlated, as overlapping windows make them."""
    e = rng.normal(0, sd, n)
    for i in range(1, n):
        e[i] = rho * e[i - 1] + math.sqrt(1 - rho**2) * e[i]
    return mean + e


def test_a_window_that_scores_clearly_higher_is_chosen_and_the_summary_gives_the_figures():
    rng = np.random.default_rng(0)
    choice = choose_window(
        {2: _ar1(rng, 30, -0.015, 0.01), 8: _ar1(rng, 30, 0.02, 0.01), 16: _ar1(rng, 20, 0.035, 0.01)}
    )
    assert choice.weeks == 16 and choice.default == 4 and choice.why_default is None
    by = {lead.weeks: lead for lead in choice.leads}
    assert by[16].n == 20 and by[16].lower > 0 > by[2].lower
    assert choice.summary().startswith("16 weeks (the highest lower confidence bound of the lead, above 0: roc_auc")
    assert "8 weeks +0.0" in choice.summary() and "(30 weeks; lower bound +0.0" in choice.summary()


def test_the_highest_lower_bound_wins_not_the_highest_mean():
    rng = np.random.default_rng(1)
    precise = _ar1(rng, 40, 0.02, 0.005)
    noisy = _ar1(rng, 9, 0.03, 0.06)  # higher mean, measured on few noisy weeks
    choice = choose_window({8: precise, 16: noisy})
    assert choice.weeks == 8


def test_without_evidence_the_default_stays_and_says_why():
    rng = np.random.default_rng(2)
    choice = choose_window({2: _ar1(rng, 30, 0.0, 0.01), 8: _ar1(rng, 30, 0.0, 0.01)})
    assert choice.weeks == 4 and choice.measured
    assert choice.summary().startswith("4 weeks, the default (no candidate window scored significantly higher: ")
    short = choose_window({8: [0.05] * (MIN_WEEKS - 1), 16: []})
    assert short.weeks == 4 and "too few weeks to compare windows on" in short.summary()
    assert "8 weeks: 7 paired weeks (< 8), not judged" in short.summary()
    skipped = kept_default("a reason")
    assert not skipped.measured and skipped.summary() == "4 weeks, the default (a reason)"


def test_weeks_that_could_not_be_scored_are_left_out():
    leads = [0.03, 0.02, float("nan"), 0.025, 0.03, 0.02, 0.028, 0.022, 0.031, float("nan")]
    choice = choose_window({8: leads})
    assert choice.weeks == 8 and choice.leads[0].n == 8


@pytest.mark.parametrize("n", [10, 30])
def test_on_windows_that_do_not_differ_a_longer_or_shorter_one_is_rarely_chosen(n):
    """Three candidates with no true lead, weeks correlated as overlapping windows make them: a
    change of window on no evidence stays near the 5% the Bonferroni-split bounds allow."""
    rng = np.random.default_rng(3)
    draws = 1000
    changed = sum(choose_window({w: _ar1(rng, n, 0.0, 0.01) for w in (2, 8, 16)}).weeks != 4 for _ in range(draws))
    # Binomial sd at 5% over 1000 draws: 0.7% (batch means with neighbours correlated 0.4: 4-7%).
    assert changed / draws <= 0.08


def test_a_choice_is_a_frozen_record():
    choice = WindowChoice(weeks=8, default=4)
    with pytest.raises(AttributeError):
        choice.weeks = 2  # type: ignore[misc]


def test_batch_means_equal_a_t_test_on_the_batch_means_of_consecutive_weeks():
    from scipy import stats

    from include.retrainer.window import batch_means

    values = np.arange(11, dtype=float) ** 1.5 / 10  # 11 weeks: 3 batches of 3, the first 2 weeks only in the mean
    mean, se, df = batch_means(values)
    batches = values[2:].reshape(3, 3).mean(axis=1)
    assert mean == pytest.approx(values.mean()) and df == 2
    assert se == pytest.approx(stats.sem(batches))
    with pytest.raises(ValueError, match="at least 4 values"):
        batch_means(np.zeros(3))
