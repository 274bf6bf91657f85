"""Tests for include/retrainer/validation.py (Great Expectations 1.x batch validation).

GX takes seconds to import and each validation run builds a context, so every
scenario is validated once in a module-scoped fixture and several tests read
the same report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.retrainer.validation import (
    NUMERIC_TYPE_LIST,
    SuiteError,
    ValidationReport,
    check_expectations,
    load_suite_file,
    schema_expectations,
    validate_batch,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHURN_SUITE = REPO_ROOT / "include" / "suites" / "churn.json"

NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "usage_hours"]
CATEGORICAL = ["contract", "payment_method", "region"]
TARGET = "churned"
TIMESTAMP = "event_ts"
N_ROWS = 400


def make_churn_frame(n: int = N_ROWS, seed: int = 7) -> pd.DataFrame:
    """A clean batch that satisfies every expectation in include/suites/churn.json."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "event_ts": pd.date_range("2024-01-01", periods=n, freq="15min"),
            "tenure_months": rng.integers(0, 121, n),
            "monthly_charges": rng.uniform(10, 300, n).round(2),
            "support_calls": rng.integers(0, 31, n),
            "usage_hours": rng.gamma(2.0, 10.0, n),
            "contract": rng.choice(["month-to-month", "one-year", "two-year"], n),
            "payment_method": rng.choice(["credit_card", "bank_transfer", "electronic_check", "mailed_check"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "churned": rng.integers(0, 2, n),
        }
    )


@pytest.fixture(scope="module")
def expectations() -> list[dict]:
    builtin = schema_expectations(NUMERIC, CATEGORICAL, TARGET, TIMESTAMP)
    return builtin + load_suite_file(CHURN_SUITE)


@pytest.fixture(scope="module")
def clean_docs(expectations, tmp_path_factory) -> tuple[ValidationReport, Path]:
    docs = tmp_path_factory.mktemp("docs") / "site"
    return validate_batch(make_churn_frame(), expectations, "churn_weekly", data_docs_dir=docs), docs


def _run(expectations, df: pd.DataFrame) -> ValidationReport:
    return validate_batch(df, expectations, "churn_weekly")


def _failed(report: ValidationReport, exp_type: str, column: str | None) -> dict:
    matches = [f for f in report.failed_expectations if f["type"] == exp_type and f["column"] == column]
    assert matches, f"{exp_type}({column}) not among failures: {report.summary_line()}"
    return matches[0]


# ------------------------------------------------------------------- scenarios (module scoped)


@pytest.fixture(scope="module")
def missing_column_report(expectations) -> ValidationReport:
    return _run(expectations, make_churn_frame().drop(columns=["region"]))


@pytest.fixture(scope="module")
def null_target_report(expectations) -> ValidationReport:
    df = make_churn_frame()
    df["churned"] = df["churned"].astype("Float64")
    df.loc[df.index[:50], "churned"] = pd.NA  # 12.5 % of 400 rows
    return _run(expectations, df)


@pytest.fixture(scope="module")
def string_numeric_report(expectations) -> ValidationReport:
    df = make_churn_frame()
    # What pandas 3 produces when a CSV column contains text: dtype "str".
    df["support_calls"] = df["support_calls"].astype(str)
    df.loc[df.index[:5], "support_calls"] = "abc"
    return _run(expectations, df)


@pytest.fixture(scope="module")
def out_of_range_report(expectations) -> ValidationReport:
    df = make_churn_frame()
    df.loc[df.index[:40], "monthly_charges"] = 5000.0  # 10 % far above 300
    return _run(expectations, df)


@pytest.fixture(scope="module")
def category_flood_report(expectations) -> ValidationReport:
    df = make_churn_frame()
    df.loc[df.index[:80], "contract"] = "lifetime"  # 20 % unknown
    return _run(expectations, df)


@pytest.fixture(scope="module")
def rare_outlier_report(expectations) -> ValidationReport:
    df = make_churn_frame()
    df.loc[df.index[0], "monthly_charges"] = 5000.0  # 1 of 400 = 0.25 % < 1 % allowed
    df.loc[df.index[1], "contract"] = "lifetime"
    df.loc[df.index[2], "tenure_months"] = 500
    return _run(expectations, df)


# ------------------------------------------------------------------------------- tests


def test_clean_batch_passes(clean_docs, expectations):
    report, _ = clean_docs
    assert report.success, report.summary_line()
    assert report.failed_expectations == []
    assert report.rows == N_ROWS
    total = report.statistics["evaluated_expectations"]
    assert total == len(report.results) > 20
    assert report.statistics["successful_expectations"] == total
    assert report.statistics["unsuccessful_expectations"] == 0
    assert report.summary_line() == f"validation passed: {total} of {total} expectations"
    assert all(r["success"] for r in report.results)
    # Built-ins and the suite both require e.g. expect_column_to_exist(churned): run once only.
    keys = {json.dumps([e["type"], e["kwargs"]], sort_keys=True) for e in expectations}
    assert total == len(keys) < len(expectations)


def test_results_follow_suite_order_and_report_observed_values(clean_docs):
    report, _ = clean_docs
    assert report.results[0]["type"] == "expect_table_row_count_to_be_between"
    assert report.results[0]["observed_value"] == N_ROWS
    type_checks = [r for r in report.results if r["type"] == "expect_column_values_to_be_in_type_list"]
    assert [r["column"] for r in type_checks] == NUMERIC
    map_result = next(
        r for r in report.results if r["type"] == "expect_column_values_to_be_in_set" and r["column"] == "contract"
    )
    assert map_result["observed_value"] == "0% unexpected"


def test_missing_column_is_a_failed_expectation_not_an_exception(missing_column_report):
    report = missing_column_report
    assert not report.success
    exist = _failed(report, "expect_column_to_exist", "region")
    assert exist["details"]["missing_columns"] == ["region"]
    # Expectations on the absent column fail with a readable reason instead of a GX traceback.
    in_set = _failed(report, "expect_column_values_to_be_in_set", "region")
    assert "region" in in_set["details"]["error"]
    match_set = _failed(report, "expect_table_columns_to_match_set", None)
    assert match_set["details"]["mismatched"]["missing"] == ["region"]
    line = report.summary_line()
    assert line.startswith("validation failed: ")
    assert "expect_column_to_exist(region) missing column(s): region" in line
    failed_columns = {f["column"] for f in report.failed_expectations}
    assert failed_columns <= {"region", None}


def test_null_target_fails(null_target_report):
    report = null_target_report
    assert not report.success
    failure = _failed(report, "expect_column_values_to_not_be_null", "churned")
    assert failure["details"]["unexpected_count"] == 50
    assert failure["details"]["unexpected_percent"] == pytest.approx(12.5)
    assert failure["observed_value"] == "12.5% unexpected"
    assert "expect_column_values_to_not_be_null(churned) observed 12.5% unexpected" in report.summary_line()
    n_failed = len(report.failed_expectations)
    assert report.summary_line().startswith(
        f"validation failed: {n_failed} of {report.statistics['evaluated_expectations']} expectations: "
    )


def test_strings_in_numeric_column_fail_type_check(string_numeric_report):
    report = string_numeric_report
    assert not report.success
    failure = _failed(report, "expect_column_values_to_be_in_type_list", "support_calls")
    assert failure["observed_value"] == "str"
    assert "expect_column_values_to_be_in_type_list(support_calls) observed str" in report.summary_line()
    # The other numeric columns are still fine.
    assert {
        f["column"] for f in report.failed_expectations if f["type"] == "expect_column_values_to_be_in_type_list"
    } == {"support_calls"}


def test_out_of_range_flood_fails(out_of_range_report):
    report = out_of_range_report
    assert not report.success
    failure = _failed(report, "expect_column_values_to_be_between", "monthly_charges")
    assert failure["kwargs"]["mostly"] == 0.99
    assert failure["details"]["unexpected_count"] == 40
    assert failure["details"]["partial_unexpected_list"][0] == 5000.0
    assert "expect_column_values_to_be_between(monthly_charges) observed 10% unexpected" in report.summary_line()
    assert len(report.failed_expectations) == 1


def test_unknown_category_flood_fails(category_flood_report):
    report = category_flood_report
    assert not report.success
    failure = _failed(report, "expect_column_values_to_be_in_set", "contract")
    assert failure["details"]["unexpected_percent"] == pytest.approx(20.0)
    assert "lifetime" in failure["details"]["partial_unexpected_list"]
    assert "expect_column_values_to_be_in_set(contract) observed 20% unexpected" in report.summary_line()


def test_rare_outliers_within_mostly_pass(rare_outlier_report):
    report = rare_outlier_report
    assert report.success, report.summary_line()
    between = next(
        r
        for r in report.results
        if r["type"] == "expect_column_values_to_be_between" and r["column"] == "monthly_charges"
    )
    assert between["observed_value"] == "0.25% unexpected"


def test_report_to_dict_is_strict_json(null_target_report, missing_column_report, clean_docs):
    for report in (null_target_report, missing_column_report, clean_docs[0]):
        payload = json.dumps(report.to_dict(), allow_nan=False)
        back = json.loads(payload)
        assert back["success"] is report.success
        assert back["rows"] == report.rows
        assert len(back["failed_expectations"]) == len(report.failed_expectations)


def test_data_docs_are_one_self_contained_gx_page(clean_docs):
    report, docs = clean_docs
    index = docs / "index.html"
    assert report.data_docs_index == str(index.resolve())
    # ONE file, not GX's static site (fonts, images, scripts and a page per suite and run).
    assert [p.name for p in docs.rglob("*") if p.is_file()] == ["index.html"]
    html = index.read_text(encoding="utf-8")
    assert "churn_weekly" in html
    # GX's own validation-results page (statistics table), not a page of ours.
    assert "compiled by Great Expectations" in html and "Evaluated Expectations" in html
    # No reference to a local file that is not there: only remote URLs, in-page anchors,
    # data URIs or the page itself.
    import re

    refs = re.findall(r'(?:href|src)="([^"]*)"', html)
    local = [r for r in refs if not r.startswith(("http://", "https://", "#", "data:")) and r not in ("index.html", "")]
    assert local == [], local
    assert index.stat().st_size < 500_000


def test_data_docs_page_shows_the_failures(expectations, tmp_path):
    df = make_churn_frame()
    df.loc[df.index[:40], "monthly_charges"] = 5000.0
    report = validate_batch(
        df, expectations, "churn_weekly", data_docs_dir=tmp_path / "docs", run_name="2026-02-01_2026-02-08"
    )
    html = (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")
    assert not report.success
    assert "2026-02-01_2026-02-08" in html  # the run name labels the page
    assert "monthly_charges" in html and "5000" in html  # the offending values are rendered


def _checkpoint_reference(expectations: list[dict], df: pd.DataFrame, suite_name: str) -> dict:
    """Independent oracle: the plain GX 1.x workflow (fresh ephemeral context, Checkpoint)."""
    import great_expectations as gx

    from include.retrainer.validation import _dedupe, _normalise_expectation

    exps = _dedupe([_normalise_expectation(e, "x") for e in expectations])
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = context.data_sources.add_pandas("ref").add_dataframe_asset("b").add_batch_definition_whole_dataframe("w")
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=suite_name,
            expectations=[
                gx.expectations.expectation_configuration.ExpectationConfiguration(
                    type=e["type"], kwargs=e["kwargs"]
                ).to_domain_obj()
                for e in exps
            ],
        )
    )
    vd = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
    cp = context.checkpoints.add(
        gx.Checkpoint(
            name="c",
            validation_definitions=[vd],
            actions=[],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
        )
    )
    (result,) = cp.run(batch_parameters={"dataframe": df}).run_results.values()
    position = {str(e.id): i for i, e in enumerate(suite.expectations)}
    ordered = sorted(result.results, key=lambda r: position[str(r.expectation_config.id)])
    rows = [
        (
            bool(r.success),
            r.result.get("observed_value"),
            r.result.get("unexpected_count"),
            r.result.get("partial_unexpected_list"),
        )
        for r in ordered
    ]
    return {"success": bool(result.success), "statistics": dict(result.statistics), "results": rows}


@pytest.mark.parametrize("scenario", ["clean", "out_of_range", "missing_column", "null_target", "rare_outliers"])
def test_results_equal_the_plain_gx_checkpoint_workflow(expectations, scenario):
    """The reused context and direct validator change nothing GX computes."""
    df = make_churn_frame(seed=11)
    if scenario == "out_of_range":
        df.loc[df.index[:40], "monthly_charges"] = 5000.0
    elif scenario == "missing_column":
        df = df.drop(columns=["region"])
    elif scenario == "null_target":
        df["churned"] = df["churned"].astype("Float64")
        df.loc[df.index[:50], "churned"] = pd.NA
    elif scenario == "rare_outliers":
        df.loc[df.index[0], "monthly_charges"] = 5000.0
        df.loc[df.index[1], "contract"] = "lifetime"
    ours = validate_batch(df, expectations, "churn_weekly")
    ref = _checkpoint_reference(expectations, df, "churn_weekly")
    assert ours.success is ref["success"]
    for key in ("evaluated_expectations", "successful_expectations", "unsuccessful_expectations"):
        assert ours.statistics[key] == ref["statistics"][key]
    from include.retrainer.validation import _dedupe, _json_safe, _normalise_expectation

    exps = _dedupe([_normalise_expectation(e, "x") for e in expectations])
    assert len(ours.results) == len(exps) == len(ref["results"])
    for exp, record, (success, observed, unexpected, partial) in zip(exps, ours.results, ref["results"]):
        assert record["success"] is success, exp
        if observed is not None:
            assert record["observed_value"] == json.loads(json.dumps(observed, default=str)), exp
        failure = next(
            (f for f in ours.failed_expectations if f["type"] == exp["type"] and f["kwargs"] == exp["kwargs"]), None
        )
        assert (failure is None) is success, exp
        if failure is not None and unexpected is not None:
            assert failure["details"]["unexpected_count"] == unexpected
            assert failure["details"].get("partial_unexpected_list", []) == _json_safe(list(partial or []))[:10]


def test_suite_is_reused_while_unchanged_and_replaced_when_changed(expectations):
    from include.retrainer import validation

    df = make_churn_frame()
    validate_batch(df, expectations, "churn_reuse")
    first = validation._gx_runtime().suites["churn_reuse"]
    validate_batch(df, expectations, "churn_reuse")
    assert validation._gx_runtime().suites["churn_reuse"] is first  # registered once

    # Same name, other expectations: the new suite is what runs (tighter charges range fails).
    tighter = [dict(e) for e in expectations] + [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "monthly_charges", "max_value": 20}}
    ]
    report = validate_batch(df, tighter, "churn_reuse")
    assert validation._gx_runtime().suites["churn_reuse"] is not first
    assert not report.success
    assert _failed(report, "expect_column_values_to_be_between", "monthly_charges")
    assert validate_batch(df, expectations, "churn_reuse").success


def _gx_summary_run(df: pd.DataFrame, suite_name: str, result_format: dict) -> tuple[list[dict], str]:
    """GX's validator on ``df`` with ``result_format``: each result dict and the rendered page."""
    import re

    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView
    from great_expectations.validator.v1_validator import Validator

    from include.retrainer import validation

    runtime = validation._gx_runtime()
    prepared = runtime.suites[suite_name]
    validator = Validator(
        batch_definition=runtime.batch_definition, batch_parameters={"dataframe": df}, result_format=result_format
    )
    try:
        result = validator.validate_expectation_suite(prepared.suite)
    finally:
        validation._release_batches(runtime)
    results = sorted(
        (prepared.index_by_id[str(r.expectation_config.id)], r.success, r.result, r.exception_info)
        for r in result.results
    )
    html = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result))
    # Random element ids and GX's load time differ from run to run whatever the format.
    html = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", html)
    html = re.sub(r"\d{8}T\d{6}\.\d{6}Z", "<time>", html)
    return json.loads(json.dumps(results, default=str)), html


@pytest.mark.parametrize("scenario", ["clean", "bad_values", "text_in_numeric", "missing_column"])
def test_result_format_changes_nothing_gx_returns_or_renders(expectations, scenario):
    """Our result format only stops GX computing the index query SUMMARY discards anyway."""
    from include.retrainer import validation

    df = make_churn_frame(seed=5)
    if scenario == "bad_values":  # some in the counts table (few distinct values), a flood of others
        df.loc[df.index[:3], "region"] = "mars"
        df.loc[df.index[10:200], "contract"] = "lifetime"
        df.loc[df.index[:40], "monthly_charges"] = 5000.0
    elif scenario == "text_in_numeric":
        df["tenure_months"] = df["tenure_months"].astype(object)
        df.loc[df.index[:7], "tenure_months"] = "n/a"
    elif scenario == "missing_column":
        df = df.drop(columns=["region"])
    validate_batch(df, expectations, "churn_format")  # registers the suite
    ours = _gx_summary_run(df, "churn_format", validation._RESULT_FORMAT)
    plain = _gx_summary_run(df, "churn_format", {"result_format": "SUMMARY", "partial_unexpected_count": 10})
    assert ours[0] == plain[0]
    assert ours[1] == plain[1]


@pytest.mark.parametrize("scenario", ["clean", "unknown_values", "nulls_and_empty", "missing_column", "empty"])
def test_text_as_category_changes_nothing_gx_returns_or_renders(expectations, scenario):
    """GX computes the same results and renders the same page from the categorical frame."""
    from include.retrainer import validation

    df = make_churn_frame(seed=9)
    if scenario == "unknown_values":
        df.loc[df.index[:3], "region"] = "mars"
        df.loc[df.index[10:200], "contract"] = "lifetime"
    elif scenario == "nulls_and_empty":
        df.loc[df.index[:9], "contract"] = None
        df.loc[df.index[20:23], "payment_method"] = ""
    elif scenario == "missing_column":
        df = df.drop(columns=["region"])
    elif scenario == "empty":
        df = df.iloc[0:0]
    assert isinstance(df["contract"].dtype, pd.StringDtype)
    exps = validation._dedupe([validation._normalise_expectation(e, "x") for e in expectations])
    typed = validation._text_columns_as_category(df, exps)
    assert isinstance(typed["contract"].dtype, pd.CategoricalDtype) and df["contract"].dtype == "str"
    validate_batch(df, expectations, "churn_typed")  # registers the suite
    fmt = validation._RESULT_FORMAT
    assert _gx_summary_run(typed, "churn_typed", fmt) == _gx_summary_run(df, "churn_typed", fmt)


def test_text_stays_text_when_another_check_looks_at_it(expectations):
    from include.retrainer import validation

    df = make_churn_frame()
    regex = {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "region", "regex": "^[a-z]+$"}}
    typed = validation._text_columns_as_category(df, [*expectations, regex])
    assert typed["region"].dtype == "str" and typed["contract"].dtype == "category"
    conditional = {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "contract", "row_condition": 'region=="north"', "condition_parser": "pandas"},
    }
    assert validation._text_columns_as_category(df, [*expectations, conditional]) is df


def test_warm_up_prepares_what_validate_batch_uses(expectations, tmp_path):
    """warm_up registers the very suite validate_batch then runs, and keeps one page view."""
    from include.retrainer import validation

    validation.warm_up("churn_warm", expectations)
    runtime = validation._gx_runtime()
    prepared, view = runtime.suites["churn_warm"], runtime.page_view
    assert view is not None
    df = make_churn_frame(seed=3)
    df.loc[df.index[:60], "monthly_charges"] = 5000.0
    warm = validate_batch(df, expectations, "churn_warm", data_docs_dir=tmp_path / "a")
    assert runtime.suites["churn_warm"] is prepared and runtime.page_view is view
    cold = validate_batch(df, expectations, "churn_cold", data_docs_dir=tmp_path / "b")
    assert not warm.success
    assert {**warm.to_dict(), "data_docs_index": None, "suite_name": ""} == {
        **cold.to_dict(),
        "data_docs_index": None,
        "suite_name": "",
    }


def test_the_validated_frame_is_not_kept_alive(expectations):
    """The per-process GX context must not pin the last batch (it can be millions of rows)."""
    import gc
    import weakref

    df = make_churn_frame()
    validate_batch(df, expectations, "churn_weekly")
    ref = weakref.ref(df)
    del df
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_duplicate_row_count_equals_pandas(seed):
    from include.retrainer.validation import _count_duplicated_rows

    rng = np.random.default_rng(seed)
    df = make_churn_frame(300, seed=seed)
    df = pd.concat([df, df.sample(40, random_state=seed), df.iloc[:5]], ignore_index=True)
    df.loc[rng.choice(len(df), 30), "usage_hours"] = np.nan  # NaN equals NaN for duplicated()
    df["contract"] = df["contract"].astype("category")
    assert _count_duplicated_rows(df) == int(df.duplicated().sum()) > 0
    assert _count_duplicated_rows(make_churn_frame(50, seed=seed)) == 0
    # Unhashable cells: pandas cannot compare the rows (TypeError), reported as no duplicates.
    lists = pd.DataFrame({"a": [[1], [1]], "b": [1, 1]})
    with pytest.raises(TypeError):
        lists.duplicated()
    assert _count_duplicated_rows(lists) == 0


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_duplicate_row_count_equals_pandas_when_timestamps_repeat(tz):
    """The sort-based check of an int/timestamp first column: repeats, NaT pairs, near misses."""
    from include.retrainer.validation import _count_duplicated_rows

    df = make_churn_frame(400, seed=4)
    df["event_ts"] = df["event_ts"].dt.tz_localize(tz)
    assert _count_duplicated_rows(df) == int(df.duplicated().sum()) == 0  # all timestamps distinct
    same_ts = df.copy()
    same_ts.loc[same_ts.index[10:14], "event_ts"] = same_ts["event_ts"].iloc[0]  # other columns differ
    assert _count_duplicated_rows(same_ts) == int(same_ts.duplicated().sum()) == 0
    copies = pd.concat([df, df.iloc[[3, 3, 7]]], ignore_index=True)
    assert _count_duplicated_rows(copies) == int(copies.duplicated().sum()) == 3
    nat = pd.concat([df, df.iloc[[5, 6]]], ignore_index=True)
    nat.loc[[5, 6, len(df), len(df) + 1], "event_ts"] = pd.NaT  # two NaT rows, each with a copy
    assert _count_duplicated_rows(nat) == int(nat.duplicated().sum()) == 2
    many = pd.concat([df] * 2, ignore_index=True)  # more repeated values than compared one by one
    assert _count_duplicated_rows(many) == int(many.duplicated().sum()) == len(df)
    ints = pd.DataFrame({"a": [3, 1, 3, 2, 1], "b": [0, 0, 0, 1, 1]})
    assert _count_duplicated_rows(ints) == int(ints.duplicated().sum()) == 1
    # Already in time order (the path that skips the sort): repeats adjacent, NaT first.
    assert df["event_ts"].is_monotonic_increasing
    in_order = copies.sort_values("event_ts", kind="stable", ignore_index=True)
    assert _count_duplicated_rows(in_order) == int(in_order.duplicated().sum()) == 3
    nat_first = nat.sort_values("event_ts", kind="stable", na_position="first", ignore_index=True)
    assert nat_first["event_ts"].array.asi8[0] == nat_first["event_ts"].array.asi8[3]  # NaT is the smallest int64
    assert _count_duplicated_rows(nat_first) == int(nat_first.duplicated().sum()) == 2
    ties = same_ts.sort_values("event_ts", kind="stable", ignore_index=True)  # equal stamps, rows differ
    assert _count_duplicated_rows(ties) == int(ties.duplicated().sum()) == 0


def test_numeric_type_check_across_dtypes():
    """Verify NUMERIC_TYPE_LIST against what GX 1.24 actually reports for each pandas 3 dtype."""
    n = 20
    df = pd.DataFrame(
        {
            "int64": np.arange(n, dtype="int64"),
            "int32": np.arange(n, dtype="int32"),
            "uint8": np.arange(n, dtype="uint8"),
            "float64": np.linspace(0, 1, n),
            "float32": np.linspace(0, 1, n).astype("float32"),
            "Int64": pd.array([*range(n - 1), None], dtype="Int64"),
            "Float64": pd.array([*([0.5] * (n - 1)), None], dtype="Float64"),
            "object_numbers": pd.Series([1, 2.5, *([3] * (n - 2))], dtype=object),
            "arrow_int": pd.array(range(n), dtype="int64[pyarrow]"),
            "str_abc": ["abc"] * n,
            "str_digits": ["1"] * n,
            "object_mixed": pd.Series([1, "abc", *([2] * (n - 2))], dtype=object),
            "category": pd.Categorical(["a", "b"] * (n // 2)),
            "bool": [True, False] * (n // 2),
            "boolean": pd.array([*([True, False] * (n // 2 - 1)), True, None], dtype="boolean"),
            "datetime": pd.date_range("2024-01-01", periods=n),
        }
    )
    # True/False columns are numeric features (make add-model takes them so; training reads 0/1).
    numeric_ok = ["int64", "int32", "uint8", "float64", "float32", "Int64", "Float64", "object_numbers", "arrow_int"]
    numeric_ok += ["bool", "boolean"]
    numeric_bad = ["str_abc", "str_digits", "object_mixed", "category", "datetime"]
    assert str(df["str_abc"].dtype) == "str"  # the pandas-3 behaviour this guards against
    exps = schema_expectations(numeric_ok + numeric_bad, [], "int64")
    report = validate_batch(df, exps, "dtype_matrix")
    verdict = {
        r["column"]: r["success"] for r in report.results if r["type"] == "expect_column_values_to_be_in_type_list"
    }
    assert verdict == {**{c: True for c in numeric_ok}, **{c: False for c in numeric_bad}}
    mixed = _failed(report, "expect_column_values_to_be_in_type_list", "object_mixed")
    assert mixed["details"]["unexpected_count"] == 1
    assert df["arrow_int"].dtype == "int64[pyarrow]"  # caller's frame untouched


def test_empty_batch_fails_row_count(expectations):
    report = validate_batch(make_churn_frame().iloc[0:0], expectations, "churn_weekly")
    assert not report.success
    failure = _failed(report, "expect_table_row_count_to_be_between", None)
    assert failure["observed_value"] == 0
    assert report.rows == 0


# ----------------------------------------------------------------------- built-in schema


def test_schema_expectations_content():
    exps = schema_expectations(["a", "b"], ["c"], "y", timestamp="ts", categorical_values={"c": ["x", "z"]})
    by_type: dict[str, list[dict]] = {}
    for e in exps:
        by_type.setdefault(e["type"], []).append(e["kwargs"])
    assert [k["column"] for k in by_type["expect_column_to_exist"]] == ["a", "b", "c", "y", "ts"]
    assert by_type["expect_column_values_to_not_be_null"] == [{"column": "y"}]
    assert [k["column"] for k in by_type["expect_column_values_to_be_in_type_list"]] == ["a", "b"]
    assert by_type["expect_column_values_to_be_in_type_list"][0]["type_list"] == list(NUMERIC_TYPE_LIST)
    assert by_type["expect_table_row_count_to_be_between"] == [{"min_value": 1, "max_value": None}]
    assert by_type["expect_column_values_to_be_in_set"] == [{"column": "c", "value_set": ["x", "z"], "mostly": 0.99}]
    # Target listed as numeric too must not produce duplicate existence checks.
    again = schema_expectations(["y"], [], "y")
    assert [e["kwargs"]["column"] for e in again if e["type"] == "expect_column_to_exist"] == ["y"]
    check_expectations(exps)  # GX accepts every built-in


def test_schema_expectations_rejects_string_instead_of_list():
    with pytest.raises(TypeError):
        schema_expectations("abc", [], "y")


# ------------------------------------------------------------------------------ suite files


def test_churn_suite_file_loads_and_is_valid_gx():
    exps = load_suite_file(CHURN_SUITE, validate=True)
    raw = json.loads(CHURN_SUITE.read_text())
    assert raw["name"] and isinstance(raw["meta"], dict)
    assert len(exps) == len(raw["expectations"])
    assert all(set(e) <= {"type", "kwargs", "meta"} for e in exps)
    in_set = {e["kwargs"]["column"]: e["kwargs"] for e in exps if e["type"] == "expect_column_values_to_be_in_set"}
    assert in_set["churned"]["value_set"] == [0, 1] and "mostly" not in in_set["churned"]
    assert in_set["region"]["mostly"] == 0.99


def test_plain_list_suite_file(tmp_path):
    path = tmp_path / "plain.json"
    path.write_text(json.dumps([{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]))
    assert load_suite_file(path) == [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]


def test_missing_suite_file_raises_naming_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(SuiteError, match="does not exist") as info:
        load_suite_file(path)
    assert str(path) in str(info.value)


def test_bad_json_suite_file_raises_naming_path(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"expectations": [')
    with pytest.raises(SuiteError, match="not valid JSON") as info:
        load_suite_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content, problem",
    [
        ({"name": "x"}, "no 'expectations' list"),
        ({"expectations": {"type": "expect_column_to_exist"}}, "must be a list"),
        ("just a string", "expected a suite object"),
        ([{"kwargs": {"column": "a"}}], "missing or non-string 'type'"),
        ([{"type": "expect_column_to_exist", "kwargs": ["a"]}], "'kwargs' must be an object"),
        ([{"type": "column_exists", "kwargs": {}}], "unknown expectation type 'column_exists'"),
    ],
)
def test_bad_suite_structure_raises_naming_path(tmp_path, content, problem):
    path = tmp_path / "structure.json"
    path.write_text(json.dumps(content))
    with pytest.raises(SuiteError, match=problem) as info:
        load_suite_file(path)
    assert str(path) in str(info.value)


def test_unknown_expectation_type_raises_naming_path(tmp_path):
    path = tmp_path / "unknown.json"
    path.write_text(json.dumps({"name": "s", "expectations": [{"type": "expect_column_to_be_awesome", "kwargs": {}}]}))
    # Structure-only load does not need GX ...
    assert load_suite_file(path)[0]["type"] == "expect_column_to_be_awesome"
    # ... validating it does, and names the file and the type.
    with pytest.raises(SuiteError, match="unknown expectation type 'expect_column_to_be_awesome'") as info:
        load_suite_file(path, validate=True)
    assert str(path) in str(info.value)


def test_check_expectations_rejects_bad_kwargs():
    with pytest.raises(SuiteError, match=r"expectation #1 \(expect_column_values_to_be_between\).*mostly"):
        check_expectations(
            [
                {"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
                {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0, "mostly": 5}},
            ],
            source="suite 'demo'",
        )
    with pytest.raises(SuiteError, match="value_set"):
        check_expectations([{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "a"}}])


def test_validate_batch_raises_suite_error_for_unknown_type():
    with pytest.raises(SuiteError, match="expect_nothing_at_all"):
        validate_batch(pd.DataFrame({"a": [1]}), [{"type": "expect_nothing_at_all", "kwargs": {}}], "s")


def test_module_import_does_not_import_gx_or_pandas():
    code = (
        "import sys, include.retrainer.validation as v; "
        "bad = [m for m in ('great_expectations', 'pandas', 'numpy') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_offending_values_shown_skip_every_kind_of_null():
    """A nullable Int64/boolean column's pd.NA, like NaN and None, is no example of a bad value
    (pd.NA != pd.NA raises instead of being True: it crashed the report of a Parquet file)."""
    from include.retrainer.validation import _examples

    shown = _examples([pd.NA, 3, None, float("nan"), pd.NaT, "x", 3])
    assert "3" in shown and "'x'" in shown and "NA" not in shown and "nan" not in shown
