"""Staleness measured on a file's history (include/retrainer/staleness.py)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from include.retrainer.staleness import (
    DEFAULT_STALENESS_RATE,
    MIN_WEEKS,
    PRIOR_LOG_SD,
    estimate_staleness,
    newey_west_mean,
    posterior_rate,
    refresh_weeks_for,
)


@pytest.mark.parametrize("lags", [0, 1, 3, 6])
def test_newey_west_equals_statsmodels_hac(lags):
    x = np.random.default_rng(lags).normal(size=45).cumsum() * 0.01
    oracle = sm.OLS(x, np.ones(len(x))).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    mean, se = newey_west_mean(x, lags)
    assert mean == pytest.approx(oracle.params[0], rel=1e-12)
    assert se == pytest.approx(oracle.bse[0], rel=1e-10)


def test_newey_west_needs_two_values():
    with pytest.raises(ValueError, match="at least 2"):
        newey_west_mean([0.1], 2)


def test_refresh_weeks_at_the_prior_is_todays_default_and_is_bounded():
    assert refresh_weeks_for(DEFAULT_STALENESS_RATE) == 4
    assert refresh_weeks_for(0.0041) == 2 and refresh_weeks_for(0.0026) == 3  # whole weeks within 0.01
    assert refresh_weeks_for(0.02) == 1  # never below 1
    assert refresh_weeks_for(0.0001) == 12  # never above the longest


def _quality(weeks: int, rate: float, noise: float, seed: int = 0, early_penalty: float = 0.0, early: int = 0):
    """q[s][t] = level of week t - rate x (age - 1) + noise; models before ``early`` lose ``early_penalty``."""
    rng = np.random.default_rng(seed)
    level = 0.8 + 0.05 * rng.standard_normal(weeks)  # weeks differ; the paired leads cancel it
    q = np.full((weeks, weeks), np.nan)
    for s in range(weeks):
        for t in range(s + 1, weeks):
            q[s, t] = (
                level[t] - rate * (t - s - 1) + noise * rng.standard_normal() - (early_penalty if s < early else 0)
            )
    return q


def _all_comparable(weeks: int, first: int = 0) -> np.ndarray:
    ok = np.zeros((weeks, weeks), dtype=bool)
    ok[first:, first:] = True
    return ok


def test_a_clear_rate_is_measured_and_sets_a_shorter_age_limit():
    est = estimate_staleness(_quality(52, 0.012, 0.002), _all_comparable(52))
    assert est.measured == pytest.approx(0.012, abs=0.001)
    assert est.se < 0.001
    assert est.weeks == 52 - 4
    # Precise data outweigh the prior: the rate used is about the measured one.
    assert est.rate == pytest.approx(est.measured, rel=0.05)
    assert est.refresh_weeks == 1  # 0.01 behind within a week
    assert dict(est.lead_by_age)[4] == pytest.approx(3 * 0.012, abs=0.002)


def test_a_stationary_file_backs_off_and_a_noisy_one_keeps_about_the_prior():
    flat = estimate_staleness(_quality(52, 0.0, 0.002, seed=1), _all_comparable(52))
    assert abs(flat.measured) < 0.001
    assert flat.rate < DEFAULT_STALENESS_RATE / 3
    assert flat.refresh_weeks == 12  # the longest
    assert flat.summary("roc_auc").startswith("on this file an older model did not fall behind a fresh one (")
    noisy = estimate_staleness(_quality(52, 0.012, 0.2, seed=2), _all_comparable(52))
    assert noisy.se > 0.01
    assert noisy.rate == pytest.approx(DEFAULT_STALENESS_RATE, abs=0.001)
    assert noisy.refresh_weeks in (3, 4, 5)


def test_posterior_rate_follows_a_precise_measurement_and_keeps_the_prior_mean_on_none():
    # A precise measurement decides, however far from the prior (rates differ tenfold between files).
    assert posterior_rate(0.1, 0.002) == pytest.approx(0.1, rel=0.01)
    assert posterior_rate(0.0004, 0.0001) == pytest.approx(0.0004, rel=0.1)
    # A measurement that says nothing returns the prior's mean (the default rate), by integration:
    from scipy import integrate, stats

    prior = stats.lognorm(s=PRIOR_LOG_SD, scale=DEFAULT_STALENESS_RATE * np.exp(-(PRIOR_LOG_SD**2) / 2))
    assert prior.mean() == pytest.approx(DEFAULT_STALENESS_RATE)
    assert posterior_rate(0.0, 10.0) == pytest.approx(DEFAULT_STALENESS_RATE, rel=0.01)
    # Against quadrature of prior x normal likelihood.
    for measured, se in [(0.007, 0.003), (0.0, 0.001), (0.005, 0.006)]:

        def dens(r, measured=measured, se=se):
            return prior.pdf(r) * stats.norm.pdf(measured, loc=r, scale=se)

        num = integrate.quad(lambda r: r * dens(r), 0, 0.2, points=[0.001, 0.01], limit=200)[0]
        den = integrate.quad(dens, 0, 0.2, points=[0.001, 0.01], limit=200)[0]
        assert posterior_rate(measured, se) == pytest.approx(num / den, rel=0.01)


def test_models_trained_on_less_data_do_not_read_as_staleness():
    # The first 10 weeks' models are 0.1 worse (short windows: a learning curve). Compared with
    # fresher full-window models they would look stale; excluded, the rate is the true 0.
    q = _quality(40, 0.0, 0.002, seed=3, early_penalty=0.1, early=10)
    naive = estimate_staleness(q, _all_comparable(40))
    assert naive.measured > 0.002  # about 0.1 x 3 of 36 weeks x the slope's weights
    est = estimate_staleness(q, _all_comparable(40, first=10))
    assert abs(est.measured) < 0.001
    assert est.weeks == 40 - 10 - 4  # target weeks whose oldest model (4 weeks) is from week 10 on


def test_too_few_weeks_keep_the_prior_and_say_why():
    q = _quality(MIN_WEEKS + 3, 0.02, 0.001)
    est = estimate_staleness(q, _all_comparable(MIN_WEEKS + 3))
    assert est.measured is None and est.rate == DEFAULT_STALENESS_RATE and est.refresh_weeks == 4
    assert f"{MIN_WEEKS} needed" in est.why_not
    assert "not measured" in est.summary("roc_auc")


def test_undefined_weeks_are_left_out():
    q = _quality(30, 0.01, 0.002, seed=4)
    q[:, 20] = np.nan  # a week with one class: its metric is undefined for every model
    est = estimate_staleness(q, _all_comparable(30))
    assert est.weeks == 30 - 4 - 1
    assert est.measured == pytest.approx(0.01, abs=0.002)


def test_max_age_below_two_is_refused():
    with pytest.raises(ValueError, match="max_age"):
        estimate_staleness(np.zeros((5, 5)), _all_comparable(5), max_age=1)


def _shared_model_quality(rng, weeks: int, rate: float, sd_model: float, sd_row: float) -> np.ndarray:
    """Weeks scored by the 4 models before them; each model has its own level (shared by every
    week it scores: neighbouring weeks' slopes are correlated, as on a real file)."""
    model = rng.normal(0, sd_model, weeks)
    level = rng.normal(0.8, 0.03, weeks)
    q = np.full((weeks, weeks), np.nan)
    for s in range(weeks):
        for t in range(s + 1, min(weeks, s + 5)):
            q[s, t] = level[t] + model[s] - rate * (t - s - 1) + rng.normal(0, sd_row)
    return q


def test_a_short_stationary_file_rarely_gets_a_short_age_limit_and_a_stale_one_usually_does():
    """Monte Carlo over 300 files of 16 weeks (12 slopes): on a stationary stream the age limit
    is 2 weeks or less in under 6% of files (an estimate from 12 correlated weeks is noisy: the
    t likelihood and the prior keep it from reading as precise); at 0.01 a week, in most."""
    rng = np.random.default_rng(11)
    ok = np.ones((16, 16), dtype=bool)
    flat = [estimate_staleness(_shared_model_quality(rng, 16, 0.0, 0.005, 0.02), ok).refresh_weeks for _ in range(300)]
    stale = [
        estimate_staleness(_shared_model_quality(rng, 16, 0.01, 0.005, 0.02), ok).refresh_weeks for _ in range(300)
    ]
    assert np.mean(np.array(flat) <= 2) < 0.06
    assert np.median(flat) >= 5
    assert np.mean(np.array(stale) <= 2) > 0.7
