"""Reference summaries give the same drift report as the frame; their storage format; the fast
exact branch of the KS p-value against scipy (independent oracle)."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from include.retrainer import drift as drift_mod
from include.retrainer.drift import ReferenceSummary, detect_drift, ks_2samp_columns, summarize_reference
from tests.drift_spec_helper import drift_spec


def _frames(n_ref: int, n_cur: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: float) -> pd.DataFrame:
        df = pd.DataFrame(
            {
                "a": rng.normal(shift, 1.0, n),
                "b": rng.integers(0, 5, n).astype(float),  # ties
                "i": pd.array(rng.integers(0, 100, n), dtype="Int64"),
                "flag": rng.random(n) < 0.3 + shift / 10,
                "s": rng.choice(["x", "y", "z", None], n),
                "k": pd.Categorical(rng.choice(["p", "q", "r"], n), categories=["r", "q", "p", "unused"]),
            }
        )
        df.loc[df.index[:3], "a"] = np.nan
        df.loc[df.index[3:5], "a"] = np.inf
        df.loc[df.index[:4], "i"] = pd.NA
        return df

    return frame(n_ref, 0.0), frame(n_cur, 0.3), ["a", "b", "i", "flag"], ["s", "k"]


@pytest.mark.parametrize("numeric_method,categorical_method", [("ks", "chi2"), ("psi", "psi"), ("wasserstein", "chi2")])
@pytest.mark.parametrize(
    "n_ref,n_cur,max_rows", [(300, 200, 200_000), (30_000, 12_000, 200_000), (5_000, 4_000, 1_000)]
)
def test_summary_gives_the_identical_report(numeric_method, categorical_method, n_ref, n_cur, max_rows):
    ref, cur, numeric, categorical = _frames(n_ref, n_cur)
    settings = drift_spec(
        numeric_method=numeric_method, categorical_method=categorical_method, max_rows=max_rows, null_resamples=200
    )
    expected = detect_drift(ref, cur, numeric, categorical, settings).to_dict()
    summary = summarize_reference(ref, numeric, categorical, settings)
    assert len(summary) == n_ref and summary.rows == min(n_ref, max_rows)
    assert detect_drift(summary, cur, numeric, categorical, settings).to_dict() == expected
    # Through the storage format as well.
    restored = ReferenceSummary.from_bytes(summary.to_bytes())
    assert detect_drift(restored, cur, numeric, categorical, settings).to_dict() == expected


def test_summary_selects_columns_and_absent_columns_stay_absent():
    ref, cur, numeric, categorical = _frames(400, 300)
    summary = summarize_reference(ref.drop(columns=["b"]), numeric, categorical)
    assert "b" not in summary.columns
    sub = summary[["a", "b", "s"]]
    assert sub.columns == ["a", "s"] and len(sub) == 400
    report = detect_drift(sub, cur, ["a", "b"], ["s"])
    assert report.features["b"].status == "missing_reference"
    assert report.to_dict() == detect_drift(ref.drop(columns=["b"]), cur, ["a", "b"], ["s"]).to_dict()


def test_summary_made_for_other_rows_or_kinds_is_refused():
    ref, cur, numeric, categorical = _frames(3_000, 500)
    summary = summarize_reference(ref, numeric, categorical, drift_spec(max_rows=1_000))
    with pytest.raises(ValueError, match="max_rows=1000, seed=0"):
        detect_drift(summary, cur, numeric, categorical, drift_spec(max_rows=2_000))
    with pytest.raises(ValueError, match="max_rows=1000, seed=0"):
        detect_drift(summary, cur, numeric, categorical, drift_spec(max_rows=1_000, seed=3))
    # Without subsampling the settings do not matter.
    small = summarize_reference(ref.iloc[:800], numeric, categorical, drift_spec(max_rows=1_000))
    assert detect_drift(small, cur, numeric, categorical, drift_spec(max_rows=5_000)).status == "assessed"
    with pytest.raises(ValueError, match="'s'.*other kind"):
        detect_drift(summary, cur, ["s"], [], drift_spec(max_rows=1_000))
    with pytest.raises(ValueError, match="listed as numeric but has dtype"):
        summarize_reference(ref, ["s"], [])


def _npz(summary: ReferenceSummary, **changes) -> bytes:
    with np.load(io.BytesIO(summary.to_bytes())) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays.update(changes)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_corrupt_summaries_raise_naming_the_problem():
    ref, _, numeric, categorical = _frames(500, 10)
    summary = summarize_reference(ref, numeric, categorical)
    data = summary.to_bytes()
    unsorted = summary.numeric["a"].values[::-1].copy()
    cases = {
        "truncated": data[: len(data) // 2],
        "garbage": b"not a summary at all",
        "unsorted": _npz(summary, numeric_0=unsorted),
        "non-finite": _npz(summary, numeric_0=np.concatenate([[np.nan], summary.numeric["a"].values[1:]])),
        "counts": _npz(summary, categorical_0=summary.categorical["s"].counts + 1),
        "header": _npz(summary, header=np.frombuffer(b'{"format": "other"}', dtype=np.uint8)),
    }
    for what, blob in cases.items():
        with pytest.raises(ValueError, match="corrupt reference summary"):
            ReferenceSummary.from_bytes(blob)
        assert what  # every case raised


def test_unstorable_labels_and_names_are_refused_when_writing():
    ref = pd.DataFrame({"t": pd.to_datetime(["2026-01-01", "2026-01-02"] * 20), "x": np.arange(40.0)})
    with pytest.raises(ValueError, match="cannot be stored"):
        summarize_reference(ref, ["x"], ["t"]).to_bytes()
    with pytest.raises(ValueError, match="string column names"):
        summarize_reference(pd.DataFrame({0: np.arange(40.0)}), [0], []).to_bytes()


def test_labels_keep_their_types_through_storage():
    ref = pd.DataFrame({"n": [1, 2, 2, 3] * 10, "f": [0.5, 1.5] * 20, "b": [True, False] * 20, "s": ["1", "2"] * 20})
    summary = summarize_reference(ref, [], ["n", "f", "b", "s"])
    restored = ReferenceSummary.from_bytes(summary.to_bytes())
    for col in ("n", "f", "b", "s"):
        assert restored.categorical[col].labels == summary.categorical[col].labels
        assert [type(x) for x in restored.categorical[col].labels] == [
            type(x.item() if hasattr(x, "item") else x) for x in summary.categorical[col].labels
        ]


# --------------------------------------------------------------------------------------
# KS p-value: scipy's exact 2 * smirnov branch, evaluated vectorised
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [141, 1_013, 5_000, 40_000])
def test_kstwo_sf_matches_scipy_in_and_out_of_the_smirnov_branch(n):
    for q in (0.3, 1.0, 2.2, 2.5, 10.0, 60.0, 200.0, 369.0, 400.0):
        for d in (math.sqrt(q / n), 0.5, 0.75):
            if d >= 1:
                continue
            expected = float(stats.kstwo.sf(d, n))
            got = drift_mod._kstwo_sf(d, n)
            assert got == pytest.approx(expected, rel=1e-10, abs=1e-300), (n, d)


def test_ks_p_values_at_large_n_match_scipy_where_the_exact_branch_applies():
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(30_000, 3))
    cur = rng.normal(size=(25_000, 3)) + np.array([0.0, 0.02, 0.05])  # D about 0.01-0.03: 2.2 <= n D^2 < 370
    d, p = ks_2samp_columns(ref, cur)
    for j in range(3):
        res = stats.ks_2samp(ref[:, j], cur[:, j])
        assert d[j] == res.statistic
        assert p[j] == pytest.approx(res.pvalue, rel=1e-10, abs=0)
