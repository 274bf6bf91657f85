"""Drift judged against the reference's own week-to-week variation (include/retrainer/drift.py).

The per-week statistics are checked against scipy (``ks_2samp``, ``chi2_contingency``) and
the moment estimate against a plain loop; the test's calibration and power are checked by
Monte Carlo on streams whose answer is known by construction: weeks that differ from each
other (real weeks do) but do not drift, independent weeks, and shifts beyond the weeks' own
variation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from include.retrainer import drift as drift_mod
from include.retrainer.config import PARTITION_COLUMN, DriftSpec
from include.retrainer.drift import (
    BlockVariation,
    ReferenceSummary,
    detect_drift,
    summarize_reference,
    week_blocks,
)

START = pd.Timestamp("2026-01-05")


def _days(weeks: int, rows_per_week: int, rng: np.random.Generator, start: pd.Timestamp = START) -> np.ndarray:
    offsets = rng.integers(0, 7, size=weeks * rows_per_week) + np.repeat(np.arange(weeks) * 7, rows_per_week)
    return np.array([(start + pd.Timedelta(days=int(o))).strftime("%Y-%m-%d") for o in offsets])


def _stream(
    rng: np.random.Generator, weeks: int, rows: int, week_sd: float, shift: float = 0.0, cat_week_sd: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference of ``weeks`` weeks and one later batch; each week's mean (and category mix)
    moves by its own random amount (sd ``week_sd``), the batch also by ``shift``."""

    def week(offset: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(rng.normal(0.0, week_sd) + offset, 1.0, rows)
        logits = np.array([0.0, 0.5, -0.5]) + rng.normal(0.0, cat_week_sd, 3)
        p = np.exp(logits) / np.exp(logits).sum()
        return x, rng.choice(np.array(["a", "b", "c"], dtype=object), size=rows, p=p)

    parts = [week(0.0) for _ in range(weeks)]
    reference = pd.DataFrame(
        {
            "x": np.concatenate([p[0] for p in parts]),
            "c": np.concatenate([p[1] for p in parts]),
            PARTITION_COLUMN: np.concatenate(
                [_days(1, rows, rng, START + pd.Timedelta(days=7 * w)) for w in range(weeks)]
            ),
        }
    )
    x, c = week(shift)
    return reference, pd.DataFrame({"x": x, "c": c})


def test_week_blocks_count_full_weeks_back_from_the_last_day():
    days = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-09", "2026-01-10", "2026-01-16", None, "bad"]
    # Last day 16th: week 0 = 10th..16th, week 1 = 3rd..9th; the 1st and 2nd are an incomplete week.
    assert week_blocks(days).tolist() == [-1, -1, 1, 1, 0, 0, -1, -1]
    assert week_blocks([None, None]).tolist() == [-1, -1]
    assert week_blocks(pd.Series(pd.to_datetime(["2026-01-01", "2026-01-07"]))).tolist() == [0, 0]


def _oracle_excess(ratios: list[float], n_effs: list[float]) -> float:
    weeks = len(ratios)
    loo = max(0.0, sum(r - 1 for r in ratios) / sum(n_effs))
    return loo * (weeks - 1) / weeks


def test_numeric_week_variation_equals_per_week_oracles():
    # Each week against the rest by scipy's KS and Wasserstein; on continuous values the
    # permutation null mean of n_eff D^2 is the Kolmogorov mean pi^2/12 within its Monte Carlo error.
    rng = np.random.default_rng(1)
    reference, _ = _stream(rng, weeks=5, rows=400, week_sd=0.3)
    reference.loc[::7, "x"] = np.nan
    blocks = week_blocks(reference[PARTITION_COLUMN])
    ratios, n_effs = [], []
    for w in sorted(set(blocks.tolist()) - {-1}):
        mine = reference["x"][blocks == w].dropna().to_numpy()
        rest = reference["x"][blocks != w].dropna().to_numpy()
        d = stats.ks_2samp(mine, rest).statistic
        n_eff = mine.size * rest.size / (mine.size + rest.size)
        ratios.append(n_eff * d * d / (math.pi**2 / 12))
        n_effs.append(n_eff)
    got = drift_mod._numeric_week_variations(reference["x"].to_numpy(dtype=float), blocks)
    assert set(got) == {"ks", "psi", "wasserstein", "location"}
    ks = got["ks"]
    assert ks.blocks == 5 and ks.rows == pytest.approx(np.mean(n_effs))
    assert ks.excess == pytest.approx(_oracle_excess(ratios, n_effs), rel=0.2)
    assert 3.5 < ks.dof / ks.blocks < 7  # K^2's moment-matched dof is about 5
    assert all(v.excess > 0 for v in got.values())
    # Same seed, same variation; a constant column has none.
    assert drift_mod._numeric_week_variations(reference["x"].to_numpy(dtype=float), blocks) == got
    assert drift_mod._numeric_week_variations(np.ones(len(blocks)), blocks) == {}


def test_categorical_week_variation_equals_per_week_chi2_oracle():
    rng = np.random.default_rng(2)
    reference, _ = _stream(rng, weeks=4, rows=500, week_sd=0.0, cat_week_sd=0.4)
    reference.loc[::11, "c"] = None
    blocks = week_blocks(reference[PARTITION_COLUMN])
    labels = reference["c"].fillna("__missing__")
    ratios, n_effs, dofs = [], [], []
    for w in sorted(set(blocks.tolist()) - {-1}):
        table = pd.crosstab(blocks == w, labels).to_numpy()
        chi2, _, dof, _ = stats.chi2_contingency(table, correction=False)
        n_w, total = table[1].sum(), table.sum()
        ratios.append(chi2 / dof)
        n_effs.append(n_w * (total - n_w) / total)
        dofs.append(dof)
    got = drift_mod._categorical_week_variation(reference["c"], blocks)
    assert got is not None and got.blocks == 4 and got.dof == sum(dofs)
    assert got.excess == pytest.approx(_oracle_excess(ratios, n_effs), rel=1e-9)


def test_design_effect_and_the_f_reference():
    v = BlockVariation(blocks=4, excess=0.01, dof=20.0, rows=800.0)
    assert v.design_effect(1000) == pytest.approx(1 + 1000 * 0.01 * 5 / 4)
    assert v.design_effect(1000, 2, 7) == pytest.approx(1 + 1000 * 0.01 * (1 / 2 + 1 / 7))
    # A ratio 1/deff sampling noise (nu dof), the rest a block's own move (1 dof); the blocks'
    # deviations from their mean have blocks - 1 degrees of freedom.
    own = 1 + 800 * 0.01 * 4 / 3
    assert v.estimate_dof() == pytest.approx(3 / ((1 / own) / 5 + (1 - 1 / own)))
    deff = v.design_effect(1000)
    p = drift_mod._week_corrected_pvalue(0.001, 5, v, deff)
    nu = 1 / ((1 / deff) / 5 + (1 - 1 / deff))
    assert p == pytest.approx(stats.f.sf(stats.chi2.isf(0.001, 5) / 5, nu, v.estimate_dof()))
    assert p > 0.001  # the week's own move and the estimate's uncertainty widen the tail
    assert drift_mod._week_corrected_pvalue(1.0, 5, v, deff) == 1.0
    # Weeks that do not vary: the plain test's shape, widened only by the estimate's dof.
    flat = BlockVariation(blocks=4, excess=0.0, dof=20.0, rows=800.0)
    assert flat.estimate_dof() == pytest.approx(15.0)
    assert drift_mod._week_corrected_pvalue(0.001, 5, flat, 1.0) == pytest.approx(
        stats.f.sf(stats.chi2.isf(0.001, 5) / 5, 5, 15)
    )


def _gate_rate(rng, reps, week_variation, **stream) -> tuple[float, float]:
    """Rates at which x and c are flagged (drifted after Holm over both)."""
    hits = np.zeros(2)
    settings = DriftSpec(natural_variation=week_variation)
    for _ in range(reps):
        reference, current = _stream(rng, **stream)
        report = detect_drift(reference, current, ["x"], ["c"], settings)
        hits += [report.features["x"].drifted, report.features["c"].drifted]
    return tuple(hits / reps)


def test_weeks_that_vary_but_do_not_drift_raise_no_more_alarms_than_alpha():
    # Each week's mean moves by 0.1 sd and its category mix by ~0.2 in logit: at 3,000 rows a
    # week the plain tests flag most weeks; judged against the weeks, the rate is <= alpha.
    reps = 150
    stream = {"weeks": 6, "rows": 3000, "week_sd": 0.1, "cat_week_sd": 0.2}
    plain = _gate_rate(np.random.default_rng(3), reps, False, **stream)
    judged = _gate_rate(np.random.default_rng(3), reps, True, **stream)
    assert min(plain) > 0.5
    mc = 3 * math.sqrt(0.05 * 0.95 / reps)
    assert max(judged) <= 0.05 + mc


def test_independent_weeks_stay_calibrated_and_keep_their_power():
    rng = np.random.default_rng(4)
    reps = 150
    stationary = _gate_rate(rng, reps, True, weeks=4, rows=2500, week_sd=0.0)
    assert max(stationary) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
    # The power target: a 0.25 sd shift at 10k rows a week (here: 4 reference weeks of 10k).
    hits = 0
    for _ in range(40):
        reference, current = _stream(rng, weeks=4, rows=10_000, week_sd=0.0, shift=0.25)
        hits += detect_drift(reference, current, ["x"], ["c"], DriftSpec()).features["x"].drifted
    assert hits / 40 >= 0.9


def test_a_shift_beyond_the_weeks_own_variation_is_flagged():
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(40):
        reference, current = _stream(rng, weeks=8, rows=3000, week_sd=0.1, shift=0.8)
        report = detect_drift(reference, current, ["x"], ["c"], DriftSpec())
        hits += report.features["x"].drifted
        effect = report.features["x"].effect
        assert effect["reference_weeks"] == 8 and effect["design_effect"] > 1
    assert hits / 40 >= 0.9


def test_report_explains_the_design_effect_and_widens_the_detectable_effect():
    rng = np.random.default_rng(6)
    reference, current = _stream(rng, weeks=5, rows=3000, week_sd=0.2)
    judged = detect_drift(reference, current, ["x"], ["c"], DriftSpec()).features["x"]
    plain = detect_drift(reference, current, ["x"], ["c"], DriftSpec(natural_variation=False)).features["x"]
    deff = judged.effect["design_effect"]
    assert deff > 10
    assert "week-to-week variation over 5 weeks" in judged.note and f"design effect {deff:.3g}" in judged.note
    # The design effect, and the F reference's wider critical value on top of it.
    assert judged.detectable_effect > plain.detectable_effect * math.sqrt(deff) * 1.05
    assert judged.p_value > plain.p_value
    assert "design_effect" not in plain.effect and plain.statistic == judged.statistic


@pytest.mark.parametrize("method", ["psi", "wasserstein"])
def test_permutation_methods_are_judged_against_the_weeks_too(method):
    rng = np.random.default_rng(7)
    reference, current = _stream(rng, weeks=5, rows=3000, week_sd=0.2, cat_week_sd=0.3)
    judged = detect_drift(reference, current, ["x"], ["c"], DriftSpec(numeric_method=method, categorical_method="psi"))
    plain = detect_drift(
        reference,
        current,
        ["x"],
        ["c"],
        DriftSpec(numeric_method=method, categorical_method="psi", natural_variation=False),
    )
    for col in ("x", "c"):
        assert judged.features[col].effect["design_effect"] > 1
        assert judged.features[col].p_value >= plain.features[col].p_value


def test_too_few_weeks_or_no_days_fall_back_to_the_plain_tests():
    rng = np.random.default_rng(8)
    reference, current = _stream(rng, weeks=2, rows=2000, week_sd=0.2)
    two = detect_drift(reference, current, ["x"], ["c"], DriftSpec())
    assert "design_effect" not in two.features["x"].effect
    reference, current = _stream(rng, weeks=4, rows=2000, week_sd=0.2)
    no_days = detect_drift(reference.drop(columns=PARTITION_COLUMN), current, ["x"], ["c"], DriftSpec())
    off = detect_drift(reference, current, ["x"], ["c"], DriftSpec(natural_variation=False))
    assert no_days.to_dict()["features"] == off.to_dict()["features"]
    fewer = detect_drift(reference, current, ["x"], ["c"], DriftSpec(min_reference_weeks=5))
    assert "design_effect" not in fewer.features["x"].effect


def _one_week_reference(rng, shift=0.0):
    """The champion's 4 training weeks, one later week (the batch it was reinstated on), and a batch."""
    weeks, current = _stream(rng, weeks=5, rows=3000, week_sd=0.1, shift=shift, cat_week_sd=0.2)
    last = weeks[PARTITION_COLUMN] >= (START + pd.Timedelta(days=28)).strftime("%Y-%m-%d")
    return weeks[~last].reset_index(drop=True), weeks[last].reset_index(drop=True), current


def test_a_one_week_reference_is_judged_against_the_champions_training_weeks():
    # After an earlier champion is reinstated on a batch, that one week is the reference: it
    # cannot show its own variation, so the champion's training weeks lend theirs, the
    # reference counting as one week in the design effect (1 / 1 + 1 / 1 instead of 1 + 1 / 4).
    reps = 120
    rng = np.random.default_rng(31)
    plain_hits, borrowed_hits = np.zeros(2), np.zeros(2)
    for _ in range(reps):
        training, one_week, current = _one_week_reference(rng)
        plain = detect_drift(one_week, current, ["x"], ["c"], DriftSpec())
        borrowed = detect_drift(one_week, current, ["x"], ["c"], DriftSpec(), variation_source=training)
        assert "design_effect" not in plain.features["x"].effect
        plain_hits += [plain.features["x"].drifted, plain.features["c"].drifted]
        borrowed_hits += [borrowed.features["x"].drifted, borrowed.features["c"].drifted]
    assert min(plain_hits / reps) > 0.5
    assert max(borrowed_hits / reps) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)

    training, one_week, current = _one_week_reference(np.random.default_rng(32))
    report = detect_drift(one_week, current, ["x"], ["c"], DriftSpec(), variation_source=training)
    x = report.features["x"]
    variation = drift_mod._FrameReference(training, DriftSpec()).variations("x", True)["ks"]
    n_eff = x.n_reference * x.n_current / (x.n_reference + x.n_current)
    assert x.effect["reference_weeks"] == 4 and x.effect["reference_span_weeks"] == 1 and x.effect["variation_borrowed"]
    assert x.effect["design_effect"] == pytest.approx(variation.design_effect(n_eff, 1.0, 1.0))
    assert x.effect["design_effect"] > variation.design_effect(n_eff, 1.0)  # a week, not 4, on that side
    assert "champion's training rows (this reference spans 1 week(s)) over 4 weeks" in x.note
    assert report.to_dict()["importance_source"] == "equal" and "(equal weights)" in report.reason
    # From the training rows' summary (as the DAG reads them): the identical report.
    summary = summarize_reference(training, ["x"], ["c"], DriftSpec())
    again = detect_drift(one_week, current, ["x"], ["c"], DriftSpec(), variation_source=summary)
    assert again.to_dict()["features"] == report.to_dict()["features"]
    # A reference with weeks of its own keeps them; natural_variation off ignores the source.
    own = detect_drift(training, current, ["x"], ["c"], DriftSpec(), variation_source=one_week)
    assert "variation_borrowed" not in own.features["x"].effect and own.features["x"].effect["reference_weeks"] == 4
    off = DriftSpec(natural_variation=False)
    assert (
        detect_drift(one_week, current, ["x"], ["c"], off, variation_source=training).to_dict()["features"]
        == detect_drift(one_week, current, ["x"], ["c"], off).to_dict()["features"]
    )
    with pytest.raises(ValueError, match="variation_source must be a pandas DataFrame or a ReferenceSummary"):
        detect_drift(one_week, current, ["x"], ["c"], DriftSpec(), variation_source={"x": [1.0]})


def test_a_reference_of_a_few_days_counts_its_days_the_same_as_a_frame_and_as_a_summary():
    training, one_week, current = _one_week_reference(np.random.default_rng(34))
    days = sorted(one_week[PARTITION_COLUMN].unique())
    five = one_week[one_week[PARTITION_COLUMN].isin(days[:5])].reset_index(drop=True)
    spec = DriftSpec()
    from_frame = detect_drift(five, current, ["x"], ["c"], spec, variation_source=training)
    summary = summarize_reference(five, ["x"], ["c"], spec)
    assert summary.span_weeks == pytest.approx(5 / 7)
    assert ReferenceSummary.from_bytes(summary.to_bytes()).span_weeks == pytest.approx(5 / 7)
    from_summary = detect_drift(summary, current, ["x"], ["c"], spec, variation_source=training)
    assert from_summary.to_dict()["features"] == from_frame.to_dict()["features"]
    x = from_frame.features["x"]
    variation = drift_mod._FrameReference(training, spec).variations("x", True)["ks"]
    n_eff = x.n_reference * x.n_current / (x.n_reference + x.n_current)
    assert x.effect["reference_span_weeks"] == pytest.approx(5 / 7)
    assert x.effect["design_effect"] == pytest.approx(variation.design_effect(n_eff, 1.0, 5 / 7))
    # A day column with no day in it, or none at all: taken to be a week, as a frame and as a summary.
    no_days = one_week.assign(**{PARTITION_COLUMN: None})
    for frame in (no_days, one_week.drop(columns=PARTITION_COLUMN)):
        report = detect_drift(frame, current, ["x"], ["c"], spec, variation_source=training)
        assert report.features["x"].effect["reference_span_weeks"] == 1
        assert summarize_reference(frame, ["x"], ["c"], spec).span_weeks == 1


def test_a_shift_beyond_the_weeks_variation_is_flagged_on_a_one_week_reference():
    # Two weeks that each move by 0.1 sd differ by ~0.14 sd; 1.2 sd is ~8 of those, read on
    # F(1, ~3) from 4 training weeks (0.8 sd is found about 70% of the time).
    rng = np.random.default_rng(33)
    hits = 0
    for _ in range(30):
        training, one_week, current = _one_week_reference(rng, shift=1.2)
        hits += (
            detect_drift(one_week, current, ["x"], ["c"], DriftSpec(), variation_source=training).features["x"].drifted
        )
    assert hits / 30 >= 0.9


def test_summary_keeps_the_week_variation_and_gives_the_identical_report():
    rng = np.random.default_rng(9)
    reference, current = _stream(rng, weeks=5, rows=2000, week_sd=0.2, cat_week_sd=0.3)
    summary = summarize_reference(reference, ["x"], ["c"], DriftSpec())
    assert set(summary.weeks) == {"x", "c"} and set(summary.weeks["x"]) == {"ks", "psi", "wasserstein", "location"}
    restored = ReferenceSummary.from_bytes(summary.to_bytes())
    assert restored.weeks == summary.weeks
    assert restored[["x"]].weeks == {"x": summary.weeks["x"]}
    from_frame = detect_drift(reference, current, ["x"], ["c"], DriftSpec()).to_dict()
    assert detect_drift(restored, current, ["x"], ["c"], DriftSpec()).to_dict() == from_frame


def _with_header(data: bytes, change) -> bytes:
    import io
    import json

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    change(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def test_summaries_of_the_earlier_format_are_refused_so_they_get_recomputed():
    rng = np.random.default_rng(10)
    reference, _ = _stream(rng, weeks=4, rows=500, week_sd=0.0)
    data = summarize_reference(reference, ["x"], ["c"], DriftSpec()).to_bytes()
    assert ReferenceSummary.from_bytes(_with_header(data, lambda h: None)).weeks["x"]["ks"].blocks == 4
    for old in (1, 2):  # 2: before the summary recorded its span in weeks
        with pytest.raises(ValueError, match=f"version {old}"):
            ReferenceSummary.from_bytes(_with_header(data, lambda h, old=old: h.update(version=old)))
    with pytest.raises(ValueError, match="span of 0.0 weeks"):
        ReferenceSummary.from_bytes(_with_header(data, lambda h: h.update(span_weeks=0.0)))

    def one_week(header):
        header["week_variation"][0]["blocks"] = 1

    with pytest.raises(ValueError, match="week variation of 'x' is malformed"):
        ReferenceSummary.from_bytes(_with_header(data, one_week))


# --------------------------------------------------------------------------
# Prediction drift: the champion's scores judged against their day-to-day variation
# --------------------------------------------------------------------------


def _day_scores(rng, days: int, rows: int, day_sd: float, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores (a logistic of a day-level move + row noise) and their days."""
    logit = np.concatenate([rng.normal(rng.normal(0.0, day_sd) + shift, 1.0, rows) for _ in range(days)])
    labels = np.repeat([(START + pd.Timedelta(days=d)).strftime("%Y-%m-%d") for d in range(days)], rows)
    return 1.0 / (1.0 + np.exp(-logit)), labels


def test_score_variation_equals_per_day_ks_oracle():
    rng = np.random.default_rng(12)
    scores, days = _day_scores(rng, days=9, rows=300, day_sd=0.3)
    (got,) = drift_mod.score_variation(scores, days)
    ratios, n_effs = [], []
    for day in np.unique(days):
        mine, rest = scores[days == day], scores[days != day]
        d = stats.ks_2samp(mine, rest).statistic
        n_eff = mine.size * rest.size / (mine.size + rest.size)
        ratios.append(n_eff * d * d / (math.pi**2 / 12))
        n_effs.append(n_eff)
    assert got.blocks == 9 and got.excess == pytest.approx(_oracle_excess(ratios, n_effs), rel=0.2)
    assert 0.0 <= got.lag1 <= 0.95
    # Multi-class: one per score column; too few days: None.
    two = drift_mod.score_variation(np.column_stack([scores, 1 - scores]), days)
    assert len(two) == 2 and two[0] == got
    assert drift_mod.score_variation(scores[days < "2026-01-10"], days[days < "2026-01-10"]) == [None]
    with pytest.raises(ValueError, match="scores but"):
        drift_mod.score_variation(scores, days[:-1])


def test_prediction_drift_judged_against_the_days_is_calibrated_and_keeps_its_power():
    from include.retrainer.gate import prediction_drift_signal

    rng = np.random.default_rng(13)
    reps, fired_plain, fired_judged, found = 150, 0, 0, 0
    for r in range(reps):
        train, train_days = _day_scores(rng, days=26, rows=250, day_sd=0.25)
        variation = drift_mod.score_variation(train, train_days)
        held, _ = _day_scores(rng, days=2, rows=250, day_sd=0.25)
        batch, _ = _day_scores(rng, days=7, rows=250, day_sd=0.25)
        fired_plain += prediction_drift_signal(held, batch, 0.05).status == "fired"
        judged = prediction_drift_signal(held, batch, 0.05, variation=variation, days=(2, 7))
        fired_judged += judged.status == "fired"
        if r < 40:
            moved, _ = _day_scores(rng, days=7, rows=250, day_sd=0.25, shift=1.5)
            found += prediction_drift_signal(held, moved, 0.05, variation=variation, days=(2, 7)).status == "fired"
    assert fired_plain / reps > 0.5
    assert fired_judged / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
    assert found / 40 >= 0.8
    assert judged.details["design_effect"][0] > 1 and judged.details["reference_days"] == 2
    assert "day-to-day variation of its scores (2 vs 7 days" in judged.summary
    with pytest.raises(ValueError, match="variation has 1 entries for 2 score columns"):
        prediction_drift_signal(
            np.column_stack([held, 1 - held]),
            np.column_stack([batch, 1 - batch]),
            0.05,
            variation=variation,
            days=(2, 7),
        )


def _rate_of(fired: int, reps: int) -> float:
    return fired / reps


def _alpha_bound(reps: int, alpha: float = 0.05) -> float:
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)


@pytest.mark.parametrize("method", ["ks", "psi", "wasserstein"])
def test_weeks_that_vary_in_spread_raise_no_more_alarms_than_alpha(method):
    # Each week's sd is multiplied by exp(N(0, 0.1^2)): not a move of the mean, which the KS,
    # PSI and Wasserstein statistics each see with their own sensitivity.
    rng = np.random.default_rng(21)
    reps, fired, plain = 100, 0, 0
    for r in range(reps):
        parts = [rng.normal(0, math.exp(rng.normal(0, 0.1)), 3000) for _ in range(7)]
        days = np.concatenate([_days(1, 3000, rng, START + pd.Timedelta(days=7 * w)) for w in range(6)])
        reference = pd.DataFrame({"x": np.concatenate(parts[:6]), PARTITION_COLUMN: days})
        current = pd.DataFrame({"x": parts[6]})
        fired += (
            detect_drift(reference, current, ["x"], [], DriftSpec(numeric_method=method, seed=r)).features["x"].drifted
        )
        plain += (
            detect_drift(
                reference, current, ["x"], [], DriftSpec(numeric_method=method, seed=r, natural_variation=False)
            )
            .features["x"]
            .drifted
        )
    assert plain / reps > 0.3
    assert fired / reps <= _alpha_bound(reps)


def test_a_tied_numeric_column_is_judged_by_its_own_null_not_the_kolmogorov_mean():
    # A 0/1 feature whose weekly rate moves by N(0, 0.02^2): KS's pi^2/12 is far too high for
    # two values, so the week-to-week excess would be underestimated without the permutation null.
    rng = np.random.default_rng(22)
    reps, fired = 150, 0
    for r in range(reps):
        parts = [(rng.random(3000) < 0.5 + rng.normal(0, 0.02)).astype(float) for _ in range(7)]
        days = np.concatenate([_days(1, 3000, rng, START + pd.Timedelta(days=7 * w)) for w in range(6)])
        reference = pd.DataFrame({"x": np.concatenate(parts[:6]), PARTITION_COLUMN: days})
        fired += (
            detect_drift(reference, pd.DataFrame({"x": parts[6]}), ["x"], [], DriftSpec(seed=r)).features["x"].drifted
        )
    assert fired / reps <= _alpha_bound(reps)


def test_prediction_drift_allows_for_days_that_move_together():
    # Day effects as AR(1) with lag-1 correlation 0.8 (weather lasts days): the held-out days
    # and the batch's are runs of consecutive days, each worth fewer independent days.
    from include.retrainer.gate import prediction_drift_signal

    rng = np.random.default_rng(23)

    def days_of(n_days: int, rows: int, state: float) -> tuple[np.ndarray, np.ndarray, float]:
        moves = []
        for _ in range(n_days):
            state = 0.8 * state + rng.normal(0, 0.25 * math.sqrt(1 - 0.64))
            moves.append(state)
        logit = np.concatenate([rng.normal(m, 1.0, rows) for m in moves])
        labels = np.repeat([(START + pd.Timedelta(days=d)).strftime("%Y-%m-%d") for d in range(n_days)], rows)
        return 1 / (1 + np.exp(-logit)), labels, state

    reps, fired = 200, 0
    for _ in range(reps):
        train, train_days, state = days_of(26, 250, rng.normal(0, 0.25))
        variation = drift_mod.score_variation(train, train_days)
        held, _, state = days_of(2, 250, state)
        batch, _, _ = days_of(7, 250, state)
        fired += prediction_drift_signal(held, batch, 0.05, variation=variation, days=(2, 7)).status == "fired"
    assert variation[0].lag1 > 0.3
    assert fired / reps <= _alpha_bound(reps)


def test_wasserstein_is_calibrated_for_weeks_whose_mean_moves():
    # W of two samples a move of the mean apart is about the move alone, so its own week-to-week
    # excess reads low; the mean's design effect bounds it (without it: ~0.10 at 0.05).
    rng = np.random.default_rng(24)
    reps, fired = 150, 0
    for r in range(reps):
        reference, current = _stream(rng, weeks=4, rows=1000, week_sd=0.1)
        fired += (
            detect_drift(reference, current, ["x"], [], DriftSpec(numeric_method="wasserstein", seed=r))
            .features["x"]
            .drifted
        )
    assert fired / reps <= _alpha_bound(reps)
