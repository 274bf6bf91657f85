"""Performance decay against a baseline pooled over the weeks the champion has served.

``gate.served_decay_signal`` pools the champion's metric on its held-out rows and on each
labelled batch it served (inverse variance), and tests the latest 1..k weeks against what came
before them (Bonferroni over the k windows). ``loop.assess`` feeds it the champion's served
history and returns this week's estimate for the record.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from include.retrainer import gate, loop
from tests.unit.test_loop import START, frame, spec_for

ALPHA = 0.05 / 3  # the gate's share for performance decay with all three p-value signals on


def _week(value: float, se: float = 0.013, n: int = 1200) -> dict:
    return {"value": value, "se": se, "n": n}


def _served(end: dt.datetime, weeks: range, value: float) -> tuple[dict, ...]:
    """Served records as the DAG stores them: the champion's roc_auc on weeks ``end + k``."""
    return tuple(
        {"interval_end": (end + dt.timedelta(weeks=k)).isoformat(), "metric": "roc_auc", **_week(value, 0.01, 2100)}
        for k in weeks
    )


def _with_gate(spec, **fields):
    """``spec`` with ``drift.gate`` fields replaced."""
    gate_ = spec.drift.gate.model_copy(update=fields)
    return spec.model_copy(update={"drift": spec.drift.model_copy(update={"gate": gate_})})


def test_pooling_is_the_inverse_variance_mean_with_its_standard_error():
    parts = [_week(0.80, 0.025, 300), _week(0.78, 0.013, 1200), _week(0.81, 0.02, 500)]
    w = np.array([1 / p["se"] ** 2 for p in parts])
    v = np.array([p["value"] for p in parts])
    pooled = gate.pool_estimates(parts)
    assert pooled["value"] == pytest.approx(float((w * v).sum() / w.sum()))
    assert pooled["se"] == pytest.approx(float(1 / np.sqrt(w.sum())))
    assert pooled["n"] == 2000 and pooled["parts"] == 3
    # A zero SE (a perfect AUC on a small week) weighs as a proportion's largest SE on its n
    # rows, 0.5 / sqrt(n): a modest weight, not an infinite or dominating one.
    perfect, normal = _week(1.0, 0.0, 1000), _week(0.8, 0.02, 100)
    floor = 0.5 / np.sqrt(1000)
    expected = (1.0 / floor**2 + 0.8 / 0.02**2) / (1 / floor**2 + 1 / 0.02**2)
    assert gate.pool_estimates([perfect, normal])["value"] == pytest.approx(expected)
    assert gate.pool_estimates([perfect, normal])["value"] < 0.95
    with pytest.raises(ValueError, match="finite value"):
        gate.pool_estimates([{"value": float("nan"), "se": 0.01, "n": 10}])
    with pytest.raises(ValueError, match="row count n >= 1"):
        gate.pool_estimates([{"value": 0.9, "se": 0.0, "n": 0}])
    # Damaged stored records are not usable (the history filter skips them), never a crash.
    for bad in (
        {"value": "0.8", "se": 0.01, "n": 9},
        {"value": True, "se": 0.01, "n": 9},
        {"value": 0.8, "se": -0.01, "n": 9},
        {"value": 0.8, "se": 0.01, "n": "x"},
        {"value": 0.8, "se": 0.01, "n": float("inf")},
        {"value": 0.8, "se": 0.0},
        None,
    ):
        assert not gate.usable_estimate(bad), bad
    assert gate.usable_estimate(_week(0.8, 0.01, 9))


def test_without_served_weeks_it_is_the_single_week_test():
    ref, cur = _week(0.82, 0.025, 300), _week(0.76)
    pooled = gate.served_decay_signal(ref, [], cur, True, ALPHA, metric="roc_auc")
    single = gate.performance_decay_signal(0.82, 0.025, 0.76, 0.013, True, ALPHA, metric="roc_auc")
    assert pooled.status == single.status and pooled.p_value == pytest.approx(single.p_value)
    assert pooled.details["tests_run"] == 1


def test_stationary_weeks_fire_at_most_alpha():
    # Every week measures the same AUC with its own noise: the signal must fire <= alpha
    # (Monte Carlo error: 4000 draws, 3 sd of a binomial rate at alpha).
    rng = np.random.default_rng(7)
    draws, fired = 4000, 0
    for _ in range(draws):
        ref = _week(0.80 + rng.normal(0, 0.025), 0.025, 300)
        served = [_week(0.80 + rng.normal(0, 0.013)) for _ in range(int(rng.integers(0, 6)))]
        cur = _week(0.80 + rng.normal(0, 0.013))
        fired += gate.served_decay_signal(ref, served, cur, True, ALPHA, recent_weeks=2).status == "fired"
    assert fired / draws <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / draws), fired


def test_a_gradual_drop_missed_against_the_held_out_rows_is_caught_by_the_pooled_baseline():
    # Held-out AUC 0.80 on 300 rows; three served weeks at 0.80; the latest two at 0.765.
    ref = _week(0.80, 0.025, 300)
    served = [_week(0.80), _week(0.80), _week(0.80), _week(0.765)]
    cur = _week(0.765)
    old = gate.performance_decay_signal(0.80, 0.025, 0.765, 0.013, True, ALPHA, metric="roc_auc")
    assert old.status == "quiet"  # 0.035 drop, se 0.028: within the held-out rows' noise
    new = gate.served_decay_signal(ref, served, cur, True, ALPHA, metric="roc_auc", recent_weeks=2)
    assert new.status == "fired", new.summary
    d = new.details
    assert d["deciding_recent_weeks"] == 2 and d["tests_run"] == 2 and d["test_alpha"] == pytest.approx(ALPHA / 2)
    two = d["tests"][1]
    assert two["recent_rows"] == 2400 and two["baseline_rows"] == 300 + 3 * 1200 and two["baseline_served_weeks"] == 3
    assert two["drop"] == pytest.approx(0.035, abs=0.002)
    assert new.p_value == pytest.approx(min(1.0, 2 * two["p_value"])) and new.p_value < ALPHA
    assert d["ci_low"] > 0  # the (1 - 2 alpha/k) interval of the drop excludes 0
    assert "last 2 weeks (2400 rows)" in new.summary and "3 served week(s)" in new.summary
    assert new.summary.endswith(f"p={new.p_value:.3g} < {ALPHA:.3g} (Bonferroni over 2 windows)")
    assert old.summary == (
        f"roc_auc 0.800 -> 0.765, drop 0.035 not significantly > 0, p={old.p_value:.3g} >= {ALPHA:.3g}"
    )
    # Quiet with 2 windows: the printed p is the Bonferroni-adjusted one, against alpha.
    mild = gate.served_decay_signal(ref, served, _week(0.79), True, ALPHA, metric="roc_auc", recent_weeks=2)
    assert mild.status == "quiet" and mild.details["tests_run"] == 2 and mild.p_value >= ALPHA
    assert mild.summary.endswith(
        f"not significantly > 0, p={mild.p_value:.3g} >= {ALPHA:.3g} (Bonferroni over 2 windows)"
    )


def test_a_rise_or_a_loss_metric_is_read_the_right_way_round():
    ref, served = _week(0.40, 0.01, 300), [_week(0.40, 0.01)]
    worse = gate.served_decay_signal(ref, served, _week(0.50, 0.01), False, ALPHA, metric="log_loss")
    better = gate.served_decay_signal(ref, served, _week(0.30, 0.01), False, ALPHA, metric="log_loss")
    assert worse.status == "fired" and better.status == "quiet" and better.statistic < 0


def test_missing_numbers_are_insufficient_and_bad_settings_raise():
    s = gate.served_decay_signal(None, [], _week(0.8), True, ALPHA, metric="roc_auc")
    assert s.status == "insufficient" and "baseline" in s.summary
    s = gate.served_decay_signal(_week(0.8), [], {"value": None, "se": None}, True, ALPHA, metric="roc_auc")
    assert s.status == "insufficient" and "current" in s.summary
    with pytest.raises(ValueError, match="recent_weeks"):
        gate.served_decay_signal(_week(0.8), [], _week(0.8), True, ALPHA, recent_weeks=0)


def test_served_history_keeps_the_weeks_between_the_reference_and_this_week_once_each():
    end = START + dt.timedelta(weeks=4)
    weeks = [
        {"interval_end": (START + dt.timedelta(weeks=k)).isoformat(), "value": 0.8 + k / 100, "se": 0.01, "n": 9}
        | {"metric": "roc_auc"}
        for k in range(6)
    ]
    rerun = {**weeks[2], "value": 0.5}  # week 2 recorded again later: the latest record counts
    odd = {**weeks[3], "metric": "log_loss"}
    damaged = [{**weeks[1], "value": "0.8"}, {**weeks[1], "n": -1}, ["not", "a", "record"]]
    kept = loop.served_history([*weeks, rerun, odd, *damaged], START, end, "roc_auc")
    assert [w["value"] for w in kept] == pytest.approx([0.81, 0.5, 0.83])  # weeks 1..3: after START, before week 4


@pytest.fixture(scope="module")
def champion():
    spec = spec_for()
    end = START + dt.timedelta(days=14)
    return spec, loop.build_challenger(spec, frame(14, 300, seed=11), end), end


def test_assess_pools_the_served_weeks_and_returns_this_weeks_estimate(champion):
    spec, state, end = champion
    served = []
    for k in range(1, 4):  # three stationary weeks, each fed back as the DAG stores them
        when = end + dt.timedelta(weeks=k)
        batch = frame(7, 300, seed=40 + k, start=when - dt.timedelta(days=7))
        outcome = loop.assess(spec, loop.ModelState(**{**state.__dict__, "served": tuple(served)}), batch, when)
        decay = next(s for s in outcome.signals if s["name"] == "performance_decay")
        assert decay["status"] == "quiet", decay["summary"]
        assert decay["details"]["served_weeks"] == len(served)
        assert outcome.served["interval_end"] == when.isoformat() and outcome.served["n"] == 2100
        assert outcome.served["metric"] == "roc_auc" and outcome.to_dict()["served"] == outcome.served
        served.append(outcome.served)
    baseline = decay["details"]["tests"][0]
    assert baseline["baseline_rows"] == int(state.baseline["n"]) + 2 * 2100  # held-out rows + 2 earlier weeks
    # A later week whose labels are partly scrambled: the drop is caught against the pooled baseline.
    when = end + dt.timedelta(weeks=4)
    batch = frame(7, 300, seed=50, start=when - dt.timedelta(days=7))
    rng = np.random.default_rng(0)
    flip = rng.random(len(batch)) < 0.15
    batch.loc[flip, "y"] = 1 - batch.loc[flip, "y"]
    outcome = loop.assess(spec, loop.ModelState(**{**state.__dict__, "served": tuple(served)}), batch, when)
    decay = next(s for s in outcome.signals if s["name"] == "performance_decay")
    assert decay["status"] == "fired" and outcome.retrain, decay["summary"]
    assert "3 served week(s)" in decay["summary"]


def test_a_rejected_attempt_restarts_the_pooled_history(champion):
    spec, state, end = champion
    attempt_end = end + dt.timedelta(weeks=2)
    attempt = loop.build_challenger(
        spec, frame(14, 300, seed=60, start=attempt_end - dt.timedelta(days=14)), attempt_end
    )
    served = _served(end, range(1, 4), 0.9)
    when = end + dt.timedelta(weeks=4)
    batch = frame(7, 300, seed=61, start=when - dt.timedelta(days=7))
    outcome = loop.assess(spec, loop.ModelState(**{**state.__dict__, "served": served}), batch, when, since=attempt)
    decay = next(s for s in outcome.signals if s["name"] == "performance_decay")
    assert decay["details"]["served_weeks"] == 1  # only week 3 came after the attempt's data


class _Estimate:
    def __init__(self, value, se, n):
        self.value, self.se, self.n = value, se, n


def test_the_cost_signal_measures_the_drop_from_the_pooled_baseline():
    # Held-out rows scored the champion 0.85 +/- 0.03 (300 rows); it has served three weeks at
    # 0.80 +/- 0.01 and scores 0.79 this week. Against the held-out rows alone that is a 0.06 drop
    # worth 4 x 0.043 metric-weeks (> cost 0.04: retrain); against what it usually scores, ~0.01.
    base, weeks, now = _week(0.85, 0.03, 300), [_week(0.80, 0.01, 2000)] * 3, _Estimate(0.79, 0.01, 2000)
    alone = loop.cost_signal(base, now, None, True, 0.04, 4, "roc_auc")
    assert alone.status == "fired" and alone.details["baseline_served_weeks"] == 0
    pooled = loop.cost_signal(base, now, None, True, 0.04, 4, "roc_auc", served=weeks)
    assert pooled.status == "quiet", pooled.summary
    # Oracle: the random-effects pool of the held-out rows and the served weeks (tau^2 by
    # DerSimonian-Laird over them, added to this week's variance too), then the shrunk drop.
    parts = [base, *weeks]
    tau2 = gate.between_week_variance(parts)
    w = np.array([1 / (p["se"] ** 2 + tau2) for p in parts])
    level = float((w * np.array([p["value"] for p in parts])).sum() / w.sum())
    se = float(np.sqrt(1 / w.sum() + 0.01**2 + tau2))
    d = pooled.details
    assert d["drop_from"] == pytest.approx(level) and d["baseline"] == 0.85
    assert d["drop_from_se"] == pytest.approx(float(np.sqrt(1 / w.sum())))
    assert d["drop"] == pytest.approx(level - 0.79) and d["drop_se"] == pytest.approx(se)
    assert pooled.statistic == pytest.approx(4 * loop.shrunk_drop(level - 0.79, se))
    assert d["baseline_served_weeks"] == 3 and d["baseline_rows"] == 6300
    assert "from 0.8018 over the baseline rows + 3 served week(s);" in pooled.summary
    # Weeks that vary beyond their noise widen the drop's SE: a week inside the usual spread
    # costs nothing, where the fixed-effect pool would price it.
    spread = [_week(v, 0.005, 4000) for v in (0.86, 0.80, 0.85, 0.79, 0.84)]
    low = _Estimate(0.80, 0.005, 4000)
    rand = loop.cost_signal(base, low, None, True, 0.04, 4, "roc_auc", served=spread)
    fixed = loop.cost_signal(base, low, None, True, 0.04, 4, "roc_auc", served=spread, pool="fixed")
    assert rand.details["between_weeks_sd"] > 0.02 and "between-week sd" in rand.summary
    parts = [base, *spread]
    tau2 = gate.between_week_variance(parts)
    w = np.array([1 / (p["se"] ** 2 + tau2) for p in parts])
    assert rand.details["between_weeks_sd"] == pytest.approx(np.sqrt(tau2))
    assert rand.details["drop_se"] == pytest.approx(float(np.sqrt(1 / w.sum() + 0.005**2 + tau2)))
    assert rand.status == "quiet" and fixed.status == "fired", (rand.summary, fixed.summary)
    # log_loss (lower is better): the drop is this week's loss above the pooled level.
    ll = loop.cost_signal(
        _week(0.40, 0.01, 300),
        _Estimate(0.60, 0.01, 2000),
        None,
        False,
        0.01,
        4,
        "log_loss",
        served=[_week(0.42, 0.01, 2000)] * 2,
    )
    assert ll.status == "fired" and ll.details["drop"] == pytest.approx(0.60 - ll.details["drop_from"])
    assert 0.40 < ll.details["drop_from"] < 0.42
    # A stored week that cannot pool is left out, not fatal; under random effects one served
    # week is not pooled (the between-week variance needs the held-out rows + 2 weeks), under
    # the fixed pool it is.
    bad = [{"value": None, "se": 0.01, "n": 5}, _week(0.80, 0.01, 2000)]
    one = loop.cost_signal(base, now, None, True, 0.04, 4, "roc_auc", served=bad)
    assert one.details["baseline_served_weeks"] == 0 and one.statistic == alone.statistic
    one_fixed = loop.cost_signal(base, now, None, True, 0.04, 4, "roc_auc", served=bad, pool="fixed")
    assert one_fixed.details["baseline_served_weeks"] == 1
    assert one_fixed.details["drop_from"] == pytest.approx(
        gate.pool_estimates([base, _week(0.80, 0.01, 2000)])["value"]
    )


def test_the_cost_signal_without_a_baseline_is_insufficient_not_a_crash():
    for baseline in ({}, {"value": None, "se": 0.0, "n": 0}, {"value": float("nan"), "se": 0.01, "n": 300}):
        signal = loop.cost_signal(baseline, _Estimate(0.8, 0.01, 2000), None, True, 0.01, 4, "roc_auc")
        assert signal.status == "insufficient" and "no roc_auc baseline" in signal.summary


@pytest.mark.parametrize("varies", [False, True])
def test_pooling_the_served_weeks_prices_fewer_retrains_on_stationary_weeks(varies):
    # Stationary weeks (true AUC 0.80, or varying around it with sd 0.02 for benign reasons),
    # held-out rows 300 (se 0.025), weeks 2000 rows (se 0.01); cost 0.01 over 4 weeks, the
    # threshold a drop of 0.0025 passes easily. How often does the cost signal price a retrain?
    # Measured with this simulation (2000 draws): weeks that agree 14% against the held-out rows
    # alone, 12% pooled with 6 served weeks; weeks that vary 24% alone, 16% pooled (random
    # effects) and 30% with the fixed-effect pool, which takes the spread for a precise level.
    rng = np.random.default_rng(5)
    sd, draws = (0.02 if varies else 0.0), 1500
    fired = {"alone": 0, "random": 0, "fixed": 0}
    for _ in range(draws):
        ref = _week(0.80 + rng.normal(0, sd) + rng.normal(0, 0.025), 0.025, 300)
        served = [_week(0.80 + rng.normal(0, sd) + rng.normal(0, 0.01), 0.01, 2000) for _ in range(6)]
        now = _Estimate(0.80 + rng.normal(0, sd) + rng.normal(0, 0.01), 0.01, 2000)
        fired["alone"] += loop.cost_signal(ref, now, None, True, 0.01, 4, "roc_auc").status == "fired"
        for pool in ("random", "fixed"):
            signal = loop.cost_signal(ref, now, None, True, 0.01, 4, "roc_auc", served=served, pool=pool)
            fired[pool] += signal.status == "fired"
    if varies:
        assert fired["random"] < 0.8 * fired["alone"] and fired["random"] < 0.65 * fired["fixed"], fired
    else:
        assert fired["random"] < fired["alone"] and fired["fixed"] <= 1.05 * fired["alone"], fired


def test_assess_prices_the_drop_against_the_weeks_the_champion_served(champion):
    spec, state, end = champion
    costly = _with_gate(spec, retrain_cost=0.04)
    served = _served(end, range(1, 3), 0.7)
    when = end + dt.timedelta(weeks=3)
    batch = frame(7, 300, seed=62, start=when - dt.timedelta(days=7))
    outcome = loop.assess(costly, loop.ModelState(**{**state.__dict__, "served": served}), batch, when)
    cost = next(s for s in outcome.signals if s["name"] == "retrain_cost")
    decay = next(s for s in outcome.signals if s["name"] == "performance_decay")
    assert cost["details"]["baseline_served_weeks"] == 2 == decay["details"]["served_weeks"]
    assert cost["details"]["baseline"] == pytest.approx(state.baseline["value"])
    assert cost["details"]["drop_from"] < state.baseline["value"]  # pulled towards the served 0.7
    # decay_pool: fixed pools the same weeks without the between-week variance, for both signals.
    fixed = _with_gate(costly, decay_pool="fixed")
    spread = tuple({**w, "value": v} for w, v in zip(served, (0.6, 0.8), strict=True))
    one = loop.assess(fixed, loop.ModelState(**{**state.__dict__, "served": spread}), batch, when)
    other = loop.assess(costly, loop.ModelState(**{**state.__dict__, "served": spread}), batch, when)
    cost_fixed = next(s for s in one.signals if s["name"] == "retrain_cost")["details"]
    cost_random = next(s for s in other.signals if s["name"] == "retrain_cost")["details"]
    assert cost_fixed["between_weeks_sd"] == 0.0 < cost_random["between_weeks_sd"]
    assert cost_fixed["drop_se"] < cost_random["drop_se"]


def test_after_a_rejected_attempt_cost_and_decay_pool_the_same_weeks(champion):
    spec, state, end = champion
    costly = _with_gate(spec, retrain_cost=0.04)
    attempt_end = end + dt.timedelta(weeks=1)
    attempt = loop.build_challenger(
        spec, frame(14, 300, seed=63, start=attempt_end - dt.timedelta(days=14)), attempt_end
    )
    served = _served(end, range(1, 5), 0.7)
    when = end + dt.timedelta(weeks=5)
    batch = frame(7, 300, seed=64, start=when - dt.timedelta(days=7))
    outcome = loop.assess(costly, loop.ModelState(**{**state.__dict__, "served": served}), batch, when, since=attempt)
    cost = next(s for s in outcome.signals if s["name"] == "retrain_cost")["details"]
    decay = next(s for s in outcome.signals if s["name"] == "performance_decay")["details"]
    # Weeks 2..4 came after the attempt's data (week 1 is in it): both signals pool those three.
    assert decay["served_weeks"] == 3 == cost["baseline_served_weeks"]
    rebased = loop.baseline_estimate(state.model, attempt.holdout, spec)
    assert cost["baseline"] == pytest.approx(rebased["value"])  # the attempt's held-out rows


def test_between_week_variance_equals_statsmodels_dersimonian_laird():
    from statsmodels.stats.meta_analysis import combine_effects

    rng = np.random.default_rng(3)
    for _ in range(20):
        k = int(rng.integers(3, 12))
        se = rng.uniform(0.005, 0.03, k)
        values = 0.8 + rng.normal(0, rng.choice([0.0, 0.01, 0.03]), k) + rng.normal(0, se)
        oracle = combine_effects(values, se**2, method_re="dl").tau2
        ours = gate.between_week_variance([_week(v, s) for v, s in zip(values, se)])
        assert ours == pytest.approx(max(0.0, oracle), rel=1e-9, abs=1e-15)
    assert gate.between_week_variance([_week(0.8), _week(0.9)]) == 0.0  # too few to tell


@pytest.mark.parametrize("n_served", [3, 10])
def test_benign_week_to_week_variation_is_not_read_as_decay(n_served):
    # Each week's true AUC varies around 0.80 with sd 0.02 (seasonality, mix) and is measured on
    # thousands of rows (se 0.008): the fixed-effect pool takes the spread for decay many times
    # more often than alpha; the random-effects pool (the default) a fraction as often, and at
    # alpha (MC error 3 sd) once 10 weeks estimate the spread (measured with this simulation:
    # 30% vs 6.4% / 6.7% / 4.4% / 1.7% at 2 / 3 / 6 / 10 served weeks, alpha 1.7%).
    rng = np.random.default_rng(11)
    draws, fired = 1500, {"fixed": 0, "random": 0}
    for _ in range(draws):
        ref = _week(0.80 + rng.normal(0, 0.02) + rng.normal(0, 0.015), 0.015, 600)
        served = [_week(0.80 + rng.normal(0, 0.02) + rng.normal(0, 0.008), 0.008, 3000) for _ in range(n_served)]
        cur = _week(0.80 + rng.normal(0, 0.02) + rng.normal(0, 0.008), 0.008, 3000)
        for pool in fired:
            fired[pool] += gate.served_decay_signal(ref, served, cur, True, ALPHA, pool=pool).status == "fired"
    assert fired["fixed"] / draws > 5 * ALPHA, fired
    assert fired["random"] < fired["fixed"] / 4, fired
    if n_served >= 10:
        assert fired["random"] / draws <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / draws), fired


def test_the_random_effects_pool_is_the_fixed_one_when_the_weeks_agree_and_says_when_not():
    ref, cur = _week(0.80, 0.025, 300), _week(0.76)
    agree = [_week(0.80), _week(0.80), _week(0.80)]
    fixed = gate.served_decay_signal(ref, agree, cur, True, ALPHA, pool="fixed")
    rand = gate.served_decay_signal(ref, agree, cur, True, ALPHA)
    assert rand.p_value == pytest.approx(fixed.p_value) and rand.details["between_weeks_sd"] == 0.0
    assert rand.details["pool"] == "random" and "between-week" not in rand.summary
    spread = [_week(0.84), _week(0.76), _week(0.83), _week(0.77)]
    wide = gate.served_decay_signal(ref, spread, cur, True, ALPHA)
    assert wide.details["between_weeks_sd"] > 0.02 and "between-week sd" in wide.summary
    assert wide.p_value > gate.served_decay_signal(ref, spread, cur, True, ALPHA, pool="fixed").p_value
    # Oracle for the deciding window: the random-effects SEs rebuilt by hand, the Welch-Satterthwaite
    # df of the tau^2 part (estimated with parts - 1 df), and scipy's t.
    from scipy.stats import t as student_t

    d = wide.details
    best = next(t for t in d["tests"] if t["recent_weeks"] == d["deciding_recent_weeks"])
    m = best["recent_weeks"]
    before_parts = [ref, *(spread + [cur])[: len(spread) + 1 - m]]
    recent_parts = (spread + [cur])[len(spread) + 1 - m :]
    tau2 = gate.between_week_variance(before_parts)
    var_re = (
        sum(1 / (p["se"] ** 2 + tau2) for p in before_parts) ** -1
        + sum(1 / (p["se"] ** 2 + tau2) for p in recent_parts) ** -1
    )
    var_fe = sum(1 / p["se"] ** 2 for p in before_parts) ** -1 + sum(1 / p["se"] ** 2 for p in recent_parts) ** -1
    df = (len(before_parts) - 1) * (var_re / (var_re - var_fe)) ** 2
    assert best["se"] == pytest.approx(np.sqrt(var_re)) and best["df"] == pytest.approx(df)
    assert best["p_value"] == pytest.approx(float(student_t.sf(best["drop"] / np.sqrt(var_re), df)))
    assert wide.p_value == pytest.approx(min(1.0, d["tests_run"] * best["p_value"]))
    with pytest.raises(ValueError, match="pool"):
        gate.served_decay_signal(ref, agree, cur, True, ALPHA, pool="bayes")


def test_under_random_effects_a_window_that_cannot_estimate_the_spread_is_left_out():
    ref, cur = _week(0.80, 0.025, 300), _week(0.76)
    two = [_week(0.80), _week(0.79)]  # windows: 1 week vs 3 baseline parts, 2 weeks vs 2 parts
    assert gate.served_decay_signal(ref, two, cur, True, ALPHA).details["tests_run"] == 1
    assert gate.served_decay_signal(ref, two, cur, True, ALPHA, pool="fixed").details["tests_run"] == 2
    # A champion's first weeks: no window can, so the fixed-effect tests run as before.
    first = gate.served_decay_signal(ref, [_week(0.80)], cur, True, ALPHA)
    assert first.details["tests_run"] == 2 and first.p_value == pytest.approx(
        gate.served_decay_signal(ref, [_week(0.80)], cur, True, ALPHA, pool="fixed").p_value
    )


def test_pooling_rejects_a_between_sample_variance_that_is_not_a_finite_non_negative_number():
    for bad in (-0.001, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tau2"):
            gate.pool_estimates([_week(0.8)], bad)
    assert gate.tau2_df(0.0004, 0.0004, 5) is None  # no tau^2 part: the normal
    assert gate.tau2_df(0.0008, 0.0004, 5) == pytest.approx(20.0)  # 5 x (2)^2
