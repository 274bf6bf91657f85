"""Policy replay benchmark: streams, the retrospective optimum, and a replay with the real loop."""

from __future__ import annotations

import os

# One OpenMP thread before sklearn loads: HGB's threads spin-wait on a shared busy machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from benchmarks import streams as st
from benchmarks.optimum import best_available, best_periodic, optimal_path, path_cost, periodic_serving, regret_share
from include.retrainer.config import PARTITION_COLUMN, parse_spec


def _design(name: str, quick: bool = True) -> st.StreamDesign:
    return next(d for d in st.stream_designs(quick) if d.name == name)


# ----------------------------------------------------------------------------- streams
def test_streams_are_deterministic_and_well_formed():
    for name in ("small", "multiclass"):
        d = _design(name)
        a, b = st.make_stream(d), st.make_stream(d)
        assert a.changes == b.changes
        for fa, fb in zip(a.frames, b.frames, strict=True):
            pd.testing.assert_frame_equal(fa, fb)
        parse_spec(a.spec, f"bench/{a.name}.yaml")  # the product's own validation
        assert a.weeks == d.weeks
        for week, frame in enumerate(a.frames):
            assert len(frame) == d.rows_per_week
            days = sorted(frame[PARTITION_COLUMN].unique())
            assert len(days) == 7, f"week {week} of {name} covers {days}"
            assert days[0] == (a.start + pd.Timedelta(weeks=week)).isoformat()
            # event_ts lies in its partition day
            assert (frame[st.TIMESTAMP].dt.strftime("%Y-%m-%d") == frame[PARTITION_COLUMN]).all()
        window = a.window(5, 4)
        assert sorted(window[PARTITION_COLUMN].unique())[0] == (a.start + pd.Timedelta(weeks=2)).isoformat()
        assert a.interval_end(5).isoformat() == f"{(a.start + pd.Timedelta(weeks=6)).isoformat()}T00:00:00+00:00"
    # A different seed gives different rows.
    other = st.make_stream(st.StreamDesign(**{**_design("small").__dict__, "seed": 1}))
    assert not other.frames[0].equals(st.make_stream(_design("small")).frames[0])


def test_full_suite_sizes_and_kinds():
    designs = st.stream_designs(False)
    kinds = {c.kind for d in designs for c in d.changes}
    assert {"sudden", "gradual", "recurring", "covariate", "concept", "new_class", "straddle", "reversal"} <= kinds
    assert any(not d.changes for d in designs)  # a stationary stream
    sizes = [d.rows_per_week for d in designs]
    assert min(sizes) < 200 and max(sizes) >= 5000
    assert all(20 <= d.weeks <= 40 for d in designs)
    straddle = next(d for d in designs if d.name == "straddle")
    assert straddle.changes[0].day % 7 not in (0, 6)  # mid-week


def test_auc_matches_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + y, 1)  # ties on purpose
    assert st.auc_ovr_macro(y, s, (0, 1)) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    y3 = np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, 600)]
    p = rng.dirichlet([1, 1, 1], 600)
    assert st.auc_ovr_macro(y3, p, ("a", "b", "c")) == pytest.approx(
        roc_auc_score(y3, p, multi_class="ovr", average="macro"), abs=1e-12
    )


def _xy(frame: pd.DataFrame):
    X = frame[st.NUMERIC + st.CATEGORICAL].copy()
    for c in st.CATEGORICAL:
        X[c] = X[c].astype("category")
    return X, frame[st.TARGET].to_numpy()


def _hgb(frames):
    X, y = _xy(pd.concat(frames, ignore_index=True))
    return HistGradientBoostingClassifier(max_iter=80, random_state=0, categorical_features="from_dtype").fit(X, y)


@pytest.mark.parametrize("name", ["sudden", "small"])
def test_change_points_are_real(name):
    """A model trained before the change loses at least the stated cost after it.

    Independent oracle: sklearn's own HGB (native categoricals, not the product's pipeline)
    and sklearn's roc_auc_score. The stated (oracle) cost is the Bayes scorers' gap; a
    learner trained before the change must be at least that far below the post-change Bayes
    scorer (minus sampling slack), and a learner trained after the change must beat it by
    at least 0.02 (the benchmark's "costly change" threshold).
    """
    d = _design(name)
    s = st.make_stream(d)
    (c,) = s.changes
    assert c.oracle_cost >= 0.02
    pre = _hgb(s.frames[max(0, c.week - 4) : c.week])
    post = _hgb(s.frames[c.week : c.week + 4])
    test = pd.concat(s.frames[c.week + 4 :], ignore_index=True)
    X, y = _xy(test)
    auc_pre = roc_auc_score(y, pre.predict_proba(X)[:, 1])
    auc_post = roc_auc_score(y, post.predict_proba(X)[:, 1])
    # Bayes scorer of the post-change regime on the same rows.
    feats = {col: test[col].to_numpy() for col in st.NUMERIC}
    for col, levels in (("c0", "abcd"), ("c1", "uvw"), ("c2", "pqrst")):
        feats[col] = np.array([levels.index(v) for v in test[col]])
    lam = d.regime(c.week * 7 + 10).concept
    auc_bayes = roc_auc_score(y, st._binary_logit(feats, lam))
    slack = 0.015 if len(test) > 5000 else 0.03
    assert auc_bayes - auc_pre >= c.oracle_cost - slack, (auc_bayes, auc_pre, c.oracle_cost)
    assert auc_post - auc_pre >= 0.02, (auc_post, auc_pre, c.oracle_cost)  # costly for a real learner too


def test_a_reversal_makes_a_model_trained_before_it_score_below_chance():
    d = _design("reversal", quick=False)
    s = st.make_stream(d)
    (c,) = s.changes
    assert c.kind == "reversal" and c.day.endswith("-20")  # the Thursday of week 10
    pre = _hgb(s.frames[c.week - 4 : c.week])
    test = pd.concat(s.frames[c.week + 1 :], ignore_index=True)
    X, y = _xy(test)
    auc_pre = roc_auc_score(y, pre.predict_proba(X)[:, 1])
    post = _hgb(s.frames[c.week + 1 : c.week + 5])
    assert auc_pre < 0.3 and roc_auc_score(y, post.predict_proba(X)[:, 1]) > 0.75, auc_pre
    assert c.oracle_cost > 0.5


def test_covariate_only_moves_inputs_not_the_concept():
    s = st.make_stream(_design("covariate_only"))
    (c,) = s.changes
    assert c.oracle_cost == 0.0  # P(y|x) fixed: the Bayes scorer is unchanged
    before, after = s.frames[c.week - 1], s.frames[c.week + 1]
    assert ks_2samp(before["x5"], after["x5"]).pvalue < 1e-10
    assert ks_2samp(before["x0"], after["x0"]).pvalue < 1e-10


def test_new_class_appears_only_after_its_change():
    s = st.make_stream(_design("multiclass"))
    (c,) = s.changes
    assert all("fraud" not in set(f[st.TARGET]) for f in s.frames[: c.week])
    assert all((f[st.TARGET] == "fraud").mean() > 0.02 for f in s.frames[c.week :])
    assert c.oracle_cost > 0.05


# ----------------------------------------------------------------------------- optimum
def _brute_force(q: np.ndarray, start: int, cost: float) -> float:
    T = q.shape[0]
    best = best_available(q)
    candidates = [s for s in range(start + 1, T - 1) if np.isfinite(q[s, s + 1])]
    out = math.inf
    for k in range(len(candidates) + 1):
        for switches in itertools.combinations(candidates, k):
            serving, cur, sw = [], start, set(switches)
            for t in range(start + 1, T):
                if t - 1 in sw:
                    cur = t - 1
                serving.append(cur)
            out = min(out, cost * k + sum(best[t] - q[m, t] for m, t in zip(serving, range(start + 1, T))))
    return out


def _random_matrix(rng: np.random.Generator, T: int) -> tuple[np.ndarray, int]:
    q = np.full((T, T), np.nan)
    drift = np.cumsum(rng.normal(0, 0.02, T))
    for s in range(T):
        for t in range(s + 1, T):
            q[s, t] = 0.8 - 0.03 * abs(drift[t] - drift[s]) * rng.uniform(0.5, 3) + rng.normal(0, 0.01)
    start = int(rng.integers(0, 3))
    q[:start] = np.nan
    holes = [s for s in range(start + 1, T) if rng.random() < 0.2]  # weeks where no model could be trained
    q[holes] = np.nan
    return q, start


def test_dp_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(120):
        T = int(rng.integers(3, 11))
        q, start = _random_matrix(rng, T)
        if start >= T - 1:
            continue
        for cost in (0.0, 0.0025, 0.01, 0.04, 1.0):
            opt = optimal_path(q, start, cost)
            assert opt.cost == pytest.approx(_brute_force(q, start, cost), abs=1e-12)
            # the returned path really has the returned cost
            assert path_cost(q, start, opt.serving, opt.retrains, cost) == pytest.approx(opt.cost, abs=1e-12)
            assert opt.retrains == len(opt.switch_weeks)


def test_a_week_no_model_can_be_scored_on_costs_nobody_anything():
    """A week whose metric is undefined for every model (e.g. one class) is left out: the same
    costs as if every model had scored it alike."""
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(60):
        T = int(rng.integers(4, 10))
        q, start = _random_matrix(rng, T)
        if start >= T - 2:
            continue
        t = int(rng.integers(start + 2, T))  # not the week right after the cold start
        unscored, alike = q.copy(), q.copy()
        unscored[:, t] = np.nan
        alike[:t, t] = np.where(np.isfinite(q[:t, t]), 0.7, np.nan)
        for cost in (0.0025, 0.04):
            assert optimal_path(unscored, start, cost).cost == pytest.approx(optimal_path(alike, start, cost).cost)
            opt = optimal_path(alike, start, cost)
            assert path_cost(unscored, start, opt.serving, opt.retrains, cost) == pytest.approx(opt.cost)
            # A policy that never got a model: the no-model quality of a left-out week does not count.
            nobody = [-1] * (T - start - 1)
            floor = np.full(T, 0.5)
            floor[t] = -100.0
            assert path_cost(unscored, start, nobody, 0, cost, floor) == pytest.approx(
                path_cost(alike, start, nobody, 0, cost, np.where(np.arange(T) == t, 0.7, 0.5))
            )
        checked += 1
    assert checked > 20


def test_optimum_never_retrains_when_expensive_and_always_when_free():
    T, start = 8, 0
    q = np.full((T, T), np.nan)
    for s in range(T):
        for t in range(s + 1, T):
            q[s, t] = 0.9 - 0.01 * (t - s)  # staleness costs 0.01 per week
    assert optimal_path(q, start, 10.0).retrains == 0
    free = optimal_path(q, start, 0.0)
    assert free.cost == pytest.approx(0.0)
    assert list(free.serving) == list(range(start, T - 1))


def test_a_policys_own_models_are_costed_from_their_own_rows():
    """Models trained on part of a window are served as T + i and costed from ``extra``; they
    count in the best available week by week too."""
    T, start = 5, 0
    q = np.full((T, T), np.nan)
    for s in range(T):
        for t in range(s + 1, T):
            q[s, t] = 0.6 + 0.01 * s
    extra = np.full((1, T), np.nan)
    extra[0, 2:] = 0.9  # trained at the end of week 1 on its rows since a change
    serving = [0, T + 0, T + 0, 3]  # weeks 1..4
    # By hand: best = 0.60 in week 1, then 0.90 (the partial model); week 4 serves 0.63.
    expected = 0.01 * 1 + (0.60 - 0.60) + 0 + 0 + (0.90 - 0.63)
    assert path_cost(q, start, serving, 1, 0.01, extra=extra, extra_weeks=[1]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="week"):
        path_cost(q, start, serving, 1, 0.01, extra=extra)  # its week is needed
    with pytest.raises(ValueError, match="no quality"):
        path_cost(q, start, [T + 0, T + 0, T + 0, 3], 1, 0.01, extra=extra, extra_weeks=[1])  # not trained yet
    opt = optimal_path(q, start, 0.01, extra, [1])
    assert opt.serving == (0, T, T, T) and opt.switch_weeks == (1,)
    assert opt.cost == pytest.approx(0.01)


def _brute_force_extra(Q: np.ndarray, weeks: np.ndarray, T: int, start: int, cost: float) -> float:
    """Every serving path: keep the model, or install any model trained at the end of last week."""
    best = np.array([np.nanmax(Q[weeks < t, t]) if np.isfinite(Q[weeks < t, t]).any() else np.nan for t in range(T)])
    out = math.inf

    def walk(t: int, m: int, acc: float, k: int) -> None:
        nonlocal out
        if t == T:
            out = min(out, acc + cost * k)
            return
        walk(t + 1, m, acc + best[t] - Q[m, t], k)
        for m2 in np.flatnonzero(weeks == t - 1):
            if t - 1 > start and np.isfinite(Q[m2, t]):
                walk(t + 1, int(m2), acc + best[t] - Q[m2, t], k + 1)

    walk(start + 1, start, 0.0, 0)
    return out


def test_dp_with_extra_models_equals_brute_force():
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(60):
        T = int(rng.integers(3, 8))
        q, start = _random_matrix(rng, T)
        # Only matrices without untrainable weeks (the brute force installs any model of a week).
        if start >= T - 1 or any(
            not np.isfinite(q[s, s + 1 :]).all() for s in range(start, T - 1) if np.isfinite(q[s]).any()
        ):
            continue
        k = int(rng.integers(1, 4))
        extra_weeks = sorted(int(w) for w in rng.integers(start + 1, T - 1, k)) if T - 1 > start + 1 else []
        if not extra_weeks:
            continue
        extra = np.full((len(extra_weeks), T), np.nan)
        for i, w in enumerate(extra_weeks):
            extra[i, w + 1 :] = 0.8 + rng.normal(0, 0.03, T - w - 1)
        Q = np.vstack([q, extra])
        weeks = np.concatenate([np.arange(T), extra_weeks])
        for cost in (0.0, 0.01, 0.04):
            opt = optimal_path(q, start, cost, extra, extra_weeks)
            assert opt.cost == pytest.approx(_brute_force_extra(Q, weeks, T, start, cost), abs=1e-12)
            assert path_cost(q, start, opt.serving, opt.retrains, cost, 0.5, extra, extra_weeks) == pytest.approx(
                opt.cost, abs=1e-12
            )
        checked += 1
    assert checked > 15


def test_regret_share():
    assert regret_share(1.0, 1.0, 2.0) == 0.0
    assert regret_share(2.0, 1.0, 2.0) == 1.0
    assert regret_share(1.25, 1.0, 2.0) == pytest.approx(0.25)
    assert regret_share(1.0, 1.0, 1.0) == 0.0  # never is optimal and so is the policy
    assert regret_share(1.1, 1.0, 1.0) == math.inf
    with pytest.raises(ValueError, match="below the optimum"):
        regret_share(0.5, 1.0, 2.0)


# ----------------------------------------------------------------------------- replay
def test_periodic_reference_is_the_best_period_by_its_mean_cost_over_phases():
    # Hand-made: 8 weeks, cold start at 0; a model's quality falls 0.01 a week with its age, the
    # model of week 3 is unusually good (+0.05) and week 5's could not be trained.
    T = 8
    q = np.full((T, T), np.nan)
    for s in range(T):
        for t in range(s + 1, T):
            q[s, t] = 0.80 - 0.01 * (t - s) + (0.05 if s == 3 else 0.0)
    q[5] = np.nan
    serving, retrains = periodic_serving(q, 0, 2, 1)  # retrains at the end of weeks 2, 4, 6
    assert serving == [0, 0, 2, 2, 4, 4, 6] and retrains == 3
    serving, retrains = periodic_serving(q, 0, 2, 0)  # weeks 1, 3, 5 (untrainable: skipped, not paid)
    assert serving == [0, 1, 1, 3, 3, 3, 3] and retrains == 2
    for cost in (0.0, 0.01, 0.04, 1.0):
        ref = best_periodic(q, 0, cost)
        by_period: dict = {None: path_cost(q, 0, [0] * (T - 1), 0, cost)}  # never retrain
        for k in range(1, T - 1):  # 6 decision weeks (1..6)
            phases = [path_cost(q, 0, *periodic_serving(q, 0, k, p), cost) for p in range(k)]
            by_period[k] = sum(phases) / k
        # Lowest mean cost; on a tie never, then the shortest period (the order they are tried in).
        k_best = min(by_period, key=lambda k: (round(by_period[k], 12), -1 if k is None else k))
        assert ref.period == k_best and ref.cost == pytest.approx(by_period[k_best])
        assert ref.cost >= optimal_path(q, 0, cost).cost - 1e-12  # the optimum also knows which weeks
    # The lucky week-3 model makes "every 2 weeks from week 1" (which keeps it) best even for free.
    assert best_periodic(q, 0, 0.0).period == 2 and best_periodic(q, 0, 0.0).phase_costs[0] == pytest.approx(0.01)
    aging = np.where(np.isfinite(q), 0.80 - 0.01 * (np.arange(T)[None, :] - np.arange(T)[:, None]), np.nan)
    aging[5] = q[5]  # still untrainable
    assert best_periodic(aging, 0, 0.0).period == 1  # free retrains, only aging: every week
    # Dear: once (every 6 weeks, 6 phases) beats... nothing: never retraining is the best schedule.
    dear = best_periodic(q, 0, 1.0)
    never = path_cost(q, 0, [0] * (T - 1), 0, 1.0)
    assert dear.period is None and dear.cost == pytest.approx(never) and dear.label == "never"
    # Exact phase costs of "every 6 weeks" at cost 0.01: one retrain, at week 1 .. 6 by phase,
    # except week 5's (untrainable: skipped, not paid).
    every6 = [
        path_cost(q, 0, [0] * (T - 1), 0, 0.01)
        if p + 1 == 5
        else path_cost(q, 0, [0] * (p + 1) + [p + 1] * (T - 2 - p), 1, 0.01)
        for p in range(6)
    ]
    assert [path_cost(q, 0, *periodic_serving(q, 0, 6, p), 0.01) for p in range(6)] == pytest.approx(every6)
    with pytest.raises(ValueError, match="period"):
        periodic_serving(q, 0, 2, 2)


def test_periodic_reference_never_beats_the_optimum_on_random_matrices():
    rng = np.random.default_rng(5)
    for _ in range(60):
        T = int(rng.integers(4, 12))
        q, start = _random_matrix(rng, T)
        if start >= T - 2:
            continue
        for cost in (0.0025, 0.04):
            ref = best_periodic(q, start, cost)
            assert ref.cost >= optimal_path(q, start, cost).cost - 1e-12
            never = path_cost(q, start, [start] * (T - start - 1), 0, cost)
            assert ref.cost <= never + 1e-12  # never retraining is a candidate
            # Every period up to the number of decision weeks is tried: none beats the chosen one.
            for k in range(1, T - 1 - start):
                mean = np.mean([path_cost(q, start, *periodic_serving(q, start, k, p), cost) for p in range(k)])
                assert ref.cost <= mean + 1e-12


def test_replay_six_weeks_with_the_real_loop():
    pytest.importorskip("include.retrainer.gate", reason="the gate module is not merged yet")
    pytest.importorskip("include.retrainer.metric_tests", reason="metric_tests is not merged yet")
    from benchmarks.replay import POLICIES, load_loop, replay_stream

    loop, name = load_loop()
    assert name == "include.retrainer.loop"

    def regime(day: int) -> st.Regime:
        return st.Regime(concept=0.6 if day >= 21 else 0.0)

    design = st.StreamDesign(
        "six", "6 weeks, change at week 3", 6, 700, False, regime, (st._ChangeDef(21, "sudden", "lam 0 -> 0.6"),)
    )
    stream = st.make_stream(design)
    r = replay_stream(stream, loop, name, cost_ratios=(0.01,))
    assert r.loop_module == "include.retrainer.loop"
    # "ours" with the defaults, and "ours@0.01": the same product with drift.gate.retrain_cost: 0.01.
    assert set(r.policies) == {*POLICIES, "ours@0.01"}
    q = np.array(r.quality)
    assert np.isfinite(q[r.start, r.start + 1 :]).all()
    for p, run in r.policies.items():
        assert len(run.serving) == stream.weeks - r.start - 1
        assert 0.5 <= run.served_quality <= 1.0
        assert len(run.detection_delays) == 1
        assert run.unassessed_weeks >= 0 and run.stuck_weeks >= 0
        assert math.isfinite(r.costs[0.01][p])
        assert r.regret[0.01][p] >= 0
    always = r.policies["always"]
    assert always.detection_delays == (0,)
    assert always.retrains == stream.weeks - 2 - r.start
    assert r.policies["never"].retrains == 0 and r.policies["never"].detection_delays == (None,)
    assert r.costs[0.01]["optimum"] <= min(r.costs[0.01][p] for p in POLICIES) + 1e-12
    # The periodic reference: never below the optimum, and every 1 week is "always" when every
    # week's model could be trained and scored.
    assert r.costs[0.01]["optimum"] <= r.costs[0.01]["periodic"] + 1e-12
    assert set(r.periodic_weeks) == set(r.costs)
    every_week = periodic_serving(q, r.start, 1, 0)
    assert every_week == (list(always.serving), always.retrains)
    assert r.changes[0]["measured_cost"] is not None
    # The cost-configured run decides under rule cost and says so in its reasons.
    costed = r.policies["ours@0.01"]
    decided = [rec for rec in costed.records if rec.status == "ok"]
    assert decided and all("retrain cost" in rec.reason for rec in decided), [rec.reason for rec in decided]
    assert all("retrain cost" not in rec.reason for rec in r.policies["ours"].records)
    # Every retrain records the signals that asked for it, and the audit values each one.
    from benchmarks.replay import retrain_values

    retrained = [rec for rec in costed.records if rec.retrained]
    assert retrained and all(rec.trigger for rec in retrained), [(rec.week, rec.reason) for rec in costed.records]
    assert len(retrain_values(r, "ours@0.01", 0.01)) == costed.retrains == len(retrained)
    r.to_dict()  # JSON-ready
    # The seed spread's figures of this draw: JSON-ready, the matrix kept to 6 decimals.
    import json

    from benchmarks.seeds import draw_figures

    f = json.loads(json.dumps(draw_figures(r, 0)))
    kept = np.array([[np.nan if v is None else v for v in row] for row in f["matrix"]["quality"]])
    assert np.array_equal(np.isnan(kept), np.isnan(q))
    assert np.nanmax(np.abs(kept - q)) <= 5e-7
    assert all(len(repr(v)) <= 8 for row in f["matrix"]["quality"] for v in row if v is not None)
    assert f["regret"]["0.01"]["ours@0.01"] == pytest.approx(r.regret[0.01]["ours@0.01"])


def test_a_mid_week_reversal_is_answered_by_a_model_of_the_new_regime():
    """The product's challenger after a label reversal is trained on the rows since it (its own
    quality row, labelled with its first day) and serves the new regime; always-retrain's
    whole-window models lag behind."""
    from benchmarks.replay import load_loop, replay_stream

    loop, name = load_loop()

    def regime(day: int) -> st.Regime:
        return st.Regime(reversed=day >= 31)  # the Tuesday of week 4

    design = st.StreamDesign(
        "flip", "7 weeks, reversal in week 4", 7, 1000, False, regime, (st._ChangeDef(31, "reversal", "flip"),)
    )
    stream = st.make_stream(design)
    r = replay_stream(stream, loop, name, cost_ratios=(0.01,))
    ours = r.policies["ours"]
    partial = [s for s in ours.serving if s is not None and s >= stream.weeks]
    assert partial, [rec.reason for rec in ours.records]
    week, since = r.partial_models[partial[0]]
    assert week >= 4 and since >= stream.changes[0].day
    assert r.model_label(partial[0]) == f"week {week} (since {since})"
    assert ours.detection_delays == (0,)
    assert ours.served_quality > r.policies["always"].served_quality
    assert r.to_dict()["partial_models"][str(partial[0])] == {"week": week, "since": since}
    # The week's reason says it as the run summary does.
    said = [rec.reason for rec in ours.records if rec.champion_after == partial[0] and rec.week == week]
    assert said and f"trained on the window's rows since {since} (changed: " in said[0], said


def test_report_judges_regret_on_ours_configured_with_the_ratio():
    from benchmarks.replay import ours_at, with_retrain_cost
    from benchmarks.report import evaluate_targets

    assert ours_at(0.0025) == "ours@0.0025" and ours_at(0.04) == "ours@0.04"
    spec = st.make_spec("x")
    stated = with_retrain_cost(spec, 0.04)
    assert stated["drift"]["gate"] == {"retrain_cost": 0.04, "rule": "cost"} and "drift" not in spec  # a copy
    assert parse_spec(stated, "bench/x.yaml").drift.gate.rule == "cost"

    class Run:
        def __init__(self, sq):
            self.served_quality, self.stationary_retrains, self.stationary_weeks = sq, 0, 0
            self.detection_delays, self.unassessed_weeks, self.stuck_weeks = (), 0, 0
            self.costly_delays = ()

    class Result:
        stream, changes = "s", ()
        policies = {p: Run(0.8) for p in ("ours", "ours@0.01", "never", "always", "always_if_better")}
        regret = {0.01: {"ours": 0.9, "ours@0.01": 0.1, "never": 1.0, "always": 0.3, "always_if_better": 0.3}}

    assert evaluate_targets([Result()])["regret"]["met"] is True
    Result.regret = {0.01: {**Result.regret[0.01], "ours@0.01": 0.3}}
    assert evaluate_targets([Result()])["regret"]["failures"] == ["s @ 0.01: 0.30"]


def test_a_retrain_is_worth_what_its_champion_served_over_the_one_it_replaced():
    from types import SimpleNamespace

    from benchmarks.replay import WeekRecord, retrain_values
    from benchmarks.report import retrain_audit

    T = 6
    q = np.full((T, T), np.nan)
    q[0, 1:] = [0.70, 0.70, 0.70, 0.70, 0.70]
    q[1, 2:] = [0.75, 0.76, 0.74, 0.73]
    q[3, 4:] = [0.80, 0.80]
    extra = np.full((1, T), np.nan)
    extra[0, 5] = 0.90  # a partial-window model trained at week 4 (index T + 0)
    records = (
        WeekRecord(0, None, 0, False, True, "cold_start"),
        WeekRecord(1, 0, 1, True, True, "ok", trigger=("age",)),
        WeekRecord(2, 1, 1, False, False, "ok"),
        WeekRecord(3, 1, 1, True, False, "ok", trigger=("retrain_cost",)),  # rejected
        WeekRecord(4, 1, T, True, True, "ok", trigger=("retrain_cost", "follow_up")),
    )
    result = SimpleNamespace(
        weeks=T,
        quality=q.tolist(),
        extra_quality=extra.tolist(),
        policies={"ours@0.04": SimpleNamespace(records=records)},
    )
    values = retrain_values(result, "ours@0.04", 0.04)
    assert [v["week"] for v in values] == [1, 3, 4]  # the cold start is not a retrain
    # Week 1's model served weeks 2-4 (until week 4's promotion): +0.05 +0.06 +0.04 over week 0's.
    assert values[0]["value"] == pytest.approx(0.15) and values[0]["net"] == pytest.approx(0.11)
    assert values[1] == {"week": 3, "trigger": ["retrain_cost"], "changed": False, "value": 0.0, "net": -0.04}
    assert values[2]["value"] == pytest.approx(0.90 - 0.73) and values[2]["changed"] is True
    result.policies = {f"ours@{r:g}": SimpleNamespace(records=records) for r in (0.0025, 0.01, 0.04)}
    rows = [a for a in retrain_audit([result]) if a["policy"] == "ours@0.04" and a["cost"] == 0.04]
    by = {a["trigger"]: a for a in rows}
    assert by["retrain_cost"]["paid"] == 0 and by["retrain_cost"]["total_net"] == pytest.approx(-0.04)
    assert by["age"]["retrains"] == 1 and by["age"]["mean_value"] == pytest.approx(0.15)
    assert by["retrain_cost + follow_up"]["changed"] == 1 and by["retrain_cost + follow_up"]["paid"] == 1


def test_detection_counts_from_the_onset_and_reports_when_a_gradual_change_first_cost():
    from types import SimpleNamespace

    from benchmarks.replay import COSTLY_CHANGE, change_clocks
    from benchmarks.report import evaluate_targets

    T = 12
    q = np.full((T, T), 0.80)
    # A ramp from week 4 over 4 weeks: the best model trained since it leads the week-3 model by
    # 0.005, 0.01, then 0.03 (week 7), so its clock is week 7; a sudden change's clock is its onset.
    for t, lead in ((5, 0.005), (6, 0.01), (7, 0.03), (8, 0.05)):
        q[t - 1, t] = 0.80 + lead
    q[4, 7] = 0.80 + 0.03  # hindsight: an older post-change model counts as well
    q[6, 7] = 0.79
    ramp = st.ChangePoint(4, "2025-01-29", "gradual", "ramp", 4, 0.05)
    sudden = st.ChangePoint(9, "2025-03-05", "sudden", "jump", 0, 0.05)
    assert COSTLY_CHANGE == 0.02
    assert change_clocks(q, 0, SimpleNamespace(changes=(ramp, sudden))) == [7, 9]
    # A ramp that never costs that much (or whose pre-change model has no quality): its end.
    flat = np.full((T, T), 0.80)
    assert change_clocks(flat, 0, SimpleNamespace(changes=(ramp,))) == [8]
    blind = q.copy()
    blind[3, :] = np.nan
    assert change_clocks(blind, 0, SimpleNamespace(changes=(ramp,))) == [8]

    class Run:
        served_quality, stationary_retrains, stationary_weeks, unassessed_weeks, stuck_weeks = 0.8, 0, 0, 0, 0

        def __init__(self, onset, clock):
            self.detection_delays, self.costly_delays = onset, clock

    def result(onset, clock):
        return SimpleNamespace(
            stream="s",
            changes=({"week": 4, "measured_cost": 0.04, "clock_week": 7},),
            policies={
                "ours": Run(onset, clock),
                **{p: Run((0,), (0,)) for p in ("never", "always", "always_if_better")},
            },
            regret={},
        )

    # The target counts from the onset; the clock's delay is said beside a failure.
    assert evaluate_targets([result((2,), (0,))])["detection"] == {"met": True, "failures": []}
    late = evaluate_targets([result((4,), (1,))])["detection"]
    assert late["met"] is False
    assert late["failures"] == ["s week 4 (cost 0.040): delay 4; 1 from week 7, when it first cost 0.02"]
    assert evaluate_targets([result((None,), (None,))])["detection"]["met"] is False
    with pytest.raises(ValueError):  # a run without the clock's delays is an error, not a pass
        evaluate_targets([result((4,), ())])


def test_a_champion_reinstated_after_a_change_counts_from_the_week_it_took_office():
    """Delay: weeks until the champion is one put in office at or after the change: a model
    trained since, or an earlier champion reinstated then on post-change rows (not one that
    merely kept serving from before)."""
    from types import SimpleNamespace

    from benchmarks.replay import WeekRecord, _policy_run

    T = 10
    q = np.full((T, T), 0.8)
    stream = SimpleNamespace(changes=(st.ChangePoint(5, "2025-02-05", "recurring", "season A", 0, 0.05),))
    base = [WeekRecord(0, None, 0, False, True, "cold_start", ""), WeekRecord(1, 0, 1, True, True, "ok", "")]
    quiet = [WeekRecord(t, 1, 1, False, False, "ok", "") for t in range(2, 6)]
    # Week 6: the week-0 model (trained before the change) is reinstated on week 6's rows.
    back = [WeekRecord(6, 1, 0, False, True, "ok", "reinstated")] + [
        WeekRecord(t, 0, 0, False, False, "ok", "") for t in range(7, 9)
    ]
    run = _policy_run("ours", base + quiet + back, q, 0, stream, [], [5])
    assert run.detection_delays == (1,) and run.promotions == 2
    # Without the reinstatement the week-1 model keeps serving: never detected.
    kept = [WeekRecord(t, 1, 1, False, False, "ok", "") for t in range(6, 9)]
    assert _policy_run("ours", base + quiet + kept, q, 0, stream, [], [5]).detection_delays == (None,)
    # The serving champion is the reinstated model itself (quality read from its row of q).
    assert run.serving[6] == 0


# ----------------------------------------------------------------------------- seed spread
def test_another_draw_changes_only_the_random_rows():
    from benchmarks.seeds import design_with_seed

    d = _design("small")
    assert design_with_seed(d, 0) == d  # draw 0 is the benchmark's own draw
    a, b = st.make_stream(d), st.make_stream(design_with_seed(d, 1))
    assert [len(f) for f in a.frames] == [len(f) for f in b.frames]
    assert [(c.week, c.day, c.kind) for c in a.changes] == [(c.week, c.day, c.kind) for c in b.changes]
    assert not np.allclose(a.frames[0]["x0"].to_numpy(), b.frames[0]["x0"].to_numpy())


def test_seed_spread_summarizes_each_cell_across_draws():
    from benchmarks.seeds import render_markdown, summarize

    def draw(i, ours_reg, gap, delay, cost=0.05):
        return {
            "stream": "s",
            "draw": i,
            "regret": {"0.04": {"ours@0.04": ours_reg, "ours": 0.5, "always": 1.0, "always_if_better": None}},
            "served": {"ours": 0.8, "best_baseline": 0.8 - gap, "gap": gap},
            "changes": [{"week": 10, "kind": "sudden", "measured_cost": cost, "delay": delay, "judged": cost >= 0.02}],
        }

    draws = [draw(1, 0.30, -0.002, 3), draw(0, 0.10, 0.001, 0), draw(2, 0.20, -0.010, None, cost=0.01)]
    s = summarize(draws)["s"]
    assert s["draws"] == [0, 1, 2]
    cell = s["regret"]["0.04"]["ours@0.04"]
    assert cell["values"] == [0.10, 0.30, 0.20]  # in draw order
    assert cell["mean"] == pytest.approx(0.2) and cell["min"] == 0.10 and cell["max"] == 0.30
    assert cell["se"] == pytest.approx(np.std([0.1, 0.3, 0.2], ddof=1) / math.sqrt(3))
    assert cell["met"] == 2  # 0.10 and 0.20 <= 0.25
    assert s["regret"]["0.04"]["always_if_better"]["n"] == 0  # no figure: not counted as met
    assert s["served_gap"]["met"] == 2  # -0.010 misses the 0.005 slack
    det = s["detection"][0]
    assert det["delays"] == [0, 3, None] and det["judged_draws"] == 2 and det["met"] == 1
    md = render_markdown({"quick": True, "seconds": 1.0, "summary": summarize(draws)})
    assert "| s | 0.04 | 3 | 0.20 +/- 0.06 (0.10 to 0.30) | 2/3 |" in md
    assert "0.100, 0.300, 0.200" in md and "week 10 sudden: 0, 3, never (1/2)" in md
    # An infinite share (paid more when never retraining was optimal) is a miss, not a gap.
    from benchmarks.seeds import INF

    draws[2]["regret"]["0.04"]["ours@0.04"] = INF
    inf_cell = summarize(draws)["s"]["regret"]["0.04"]["ours@0.04"]
    assert (inf_cell["n"], inf_cell["met"], inf_cell["infinite"]) == (3, 1, 1)
    assert inf_cell["mean"] == pytest.approx(0.2)  # over the finite draws
    assert "| 3 | 0.20 +/- 0.10 (0.10 to 0.30; 1 inf) | 1/3 |" in render_markdown(
        {"quick": True, "seconds": 1.0, "summary": summarize(draws)}
    )


def _draws_of_one_design(rng: np.random.Generator, T: int, n: int, start: int) -> list[np.ndarray]:
    """n quality matrices of one design: every model exists on every draw (no holes)."""
    out = []
    for _ in range(n):
        q = np.full((T, T), np.nan)
        drift = np.cumsum(rng.normal(0, 0.02, T))
        for s in range(start, T):
            for t in range(s + 1, T):
                q[s, t] = 0.8 - 0.03 * abs(drift[t] - drift[s]) * rng.uniform(0.5, 3) + rng.normal(0, 0.01)
        out.append(q)
    return out


def test_design_schedule_is_the_cheapest_over_the_draws_by_brute_force():
    from benchmarks.optimum import design_optimal_switches, schedule_serving

    rng = np.random.default_rng(21)
    for _ in range(40):
        T, start = int(rng.integers(4, 10)), int(rng.integers(0, 2))
        mats = _draws_of_one_design(rng, T, int(rng.integers(1, 4)), start)

        def total(switches, mats=mats, start=start, cost=0.0):
            return sum(path_cost(q, start, *schedule_serving(q, start, switches), cost) for q in mats)

        for cost in (0.0, 0.0025, 0.04, 1.0):
            found = design_optimal_switches(mats, start, cost)
            candidates = range(start + 1, T - 1)
            brute = min(
                total(sw, cost=cost) for k in range(len(candidates) + 1) for sw in itertools.combinations(candidates, k)
            )
            assert total(found, cost=cost) == pytest.approx(brute, abs=1e-12)
        # One draw: its own retrospective optimum.
        assert design_optimal_switches(mats[:1], start, 0.01) == optimal_path(mats[0], start, 0.01).switch_weeks


def test_design_schedule_counts_a_week_unscored_on_one_draw_on_the_others():
    from benchmarks.optimum import design_optimal_switches, schedule_serving

    rng = np.random.default_rng(5)
    checked = 0
    start = 0
    for _ in range(40):
        T = int(rng.integers(5, 10))
        mats = _draws_of_one_design(rng, T, 2, start)
        # Not the last week: the model trained the week before would exist on no draw's terms.
        hole = int(rng.integers(start + 2, T - 1))
        mats[1][:, hole] = np.nan  # e.g. a single class that week, on this draw only

        def total(switches, mats=mats, cost=0.0):
            return sum(path_cost(q, start, *schedule_serving(q, start, switches), cost) for q in mats)

        for cost in (0.0, 0.0025, 0.04):
            found = design_optimal_switches(mats, start, cost)
            candidates = range(start + 1, T - 1)
            costs = {
                sw: total(sw, cost=cost)
                for k in range(len(candidates) + 1)
                for sw in itertools.combinations(candidates, k)
            }
            assert total(found, cost=cost) == pytest.approx(min(costs.values()), abs=1e-12)
            # The week still decides on the draw that scored it: dropping it would change the choice.
            without = [m.copy() for m in mats]
            without[0][:, hole] = np.nan
            if design_optimal_switches(without, start, cost) != found:
                checked += 1
    assert checked > 0  # the case occurred, so the assertion above could fail


def test_schedule_serving_skips_a_week_whose_model_is_missing():
    from benchmarks.optimum import schedule_serving

    q = np.full((5, 5), np.nan)
    for s in (0, 2, 3):
        q[s, s + 1 :] = 0.8
    serving, retrains = schedule_serving(q, 0, [1, 2])  # week 1's model was never trained
    assert (serving, retrains) == ([0, 0, 2, 2], 1)
    with pytest.raises(ValueError, match="differ in shape"):
        from benchmarks.optimum import design_optimal_switches

        design_optimal_switches([q, q[:4, :4]], 0, 0.01)


def test_design_reference_scores_the_other_draws_schedule_on_each_draw():
    from benchmarks.optimum import optimal_path as opt_path
    from benchmarks.seeds import design_regret, render_markdown, summarize

    rng = np.random.default_rng(3)
    T, start, cost = 8, 0, 0.01
    mats = _draws_of_one_design(rng, T, 3, start)

    def draw(i, q):
        never = path_cost(q, start, [start] * (T - start - 1), 0, cost)
        return {
            "stream": "s",
            "draw": i,
            "regret": {"0.01": {"ours@0.01": 0.1}},
            "served": {"ours": 0.8, "best_baseline": 0.8, "gap": 0.0},
            "changes": [],
            "matrix": {
                "start": start,
                "quality": [[None if math.isnan(v) else v for v in row] for row in q],
                "extra": [],
                "extra_weeks": [],
                "optimum": {"0.01": opt_path(q, start, cost).cost},
                "never": {"0.01": never},
            },
        }

    # The same matrix on every draw: the other draws' optimum is this draw's, regret 0.
    same = [draw(i, mats[0]) for i in range(3)]
    assert design_regret(same, "0.01") == [pytest.approx(0.0)] * 3
    # Other draws: each draw is scored with the schedule of the other two, not its own.
    ds = [draw(i, q) for i, q in enumerate(mats)]
    got = design_regret(ds, "0.01")
    from benchmarks.optimum import design_optimal_switches, regret_share, schedule_serving

    for k, q in enumerate(mats):
        sw = design_optimal_switches([m for j, m in enumerate(mats) if j != k], start, cost)
        c = path_cost(q, start, *schedule_serving(q, start, sw), cost)
        want = regret_share(c, ds[k]["matrix"]["optimum"]["0.01"], ds[k]["matrix"]["never"]["0.01"])
        assert got[k] == pytest.approx(want)
        assert got[k] >= 0.0
    assert design_regret(ds[:1], "0.01") == [None]  # no other draw to learn the design from
    with pytest.raises(ValueError, match=r"draw\(s\) \[1\] given twice"):
        summarize([*ds, ds[1]])  # e.g. two merged runs that replayed the same draw
    cell = summarize(ds)["s"]["regret"]["0.01"]["design"]
    assert cell["values"] == got
    assert "design regret" in render_markdown({"quick": False, "seconds": 1.0, "summary": summarize(ds)})
