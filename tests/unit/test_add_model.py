"""`make add-model`: inference, the generated suite and YAML, and all-or-nothing writes.

The S3 side runs against moto's in-process mock; the generated YAML and suite are checked
with the project's own loaders (config.load_spec, validation.load_suite_file)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.retrainer import onboarding
from include.retrainer.config import load_spec
from include.retrainer.onboarding import OnboardingError
from scripts import add_model as cli
from tests.user_file_helper import stationary_rows


def make_frame(days: int = 15, per_day: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = pd.Timestamp("2026-03-02")  # a Monday: the first week is partial
    ts = start + pd.to_timedelta(np.sort(rng.integers(0, days * 86400, n)), unit="s")
    amount = rng.gamma(2.0, 30.0, n)
    plan = rng.choice(["basic", "pro", "team"], n)
    return pd.DataFrame(
        {
            "order_id": np.arange(1000, 1000 + n),
            "created_at": ts.strftime("%Y-%m-%d %H:%M:%S"),
            "amount": amount,
            "items": rng.integers(1, 9, n),
            "plan": plan,
            "note": [f"free text {i}" for i in range(n)],
            "country": "DE",
            "label": np.where(amount + rng.normal(0, 20, n) > 60, "yes", "no"),
        }
    )


@pytest.fixture()
def dirs(tmp_path):
    models, suites = tmp_path / "include" / "models", tmp_path / "include" / "suites"
    models.mkdir(parents=True)
    suites.mkdir(parents=True)
    return models, suites


# --------------------------------------------------------------------------- inference
def test_infer_finds_timestamp_target_and_feature_kinds():
    df = make_frame()
    inf = onboarding.infer(df, "orders")
    assert inf.timestamp == "created_at" and inf.target == "label"
    assert inf.classes == ("no", "yes") and inf.is_binary
    assert inf.numeric == ("amount", "items") and inf.categorical == ("plan",)
    dropped = {d.column: d.reason for d in inf.dropped}
    assert set(dropped) == {"order_id", "note", "country"}
    assert "identifier" in dropped["order_id"] and "constant" in dropped["country"]
    assert inf.first_day == dt.date(2026, 3, 2) and inf.rows == len(df)
    assert inf.naive_timestamps is True


def test_daily_partitions_cover_every_row_once_by_utc_day():
    df = make_frame()
    df["created_at"] = (
        pd.to_datetime(df["created_at"]).dt.tz_localize("Europe/Berlin").dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    )
    inf = onboarding.infer(df, "orders")
    assert inf.naive_timestamps is False
    parts = onboarding.daily_partitions(df, inf)
    assert sum(len(p) for p in parts.values()) == len(df)
    utc_days = pd.to_datetime(df["created_at"], utc=True, format="mixed").dt.date
    expected = utc_days.value_counts().to_dict()  # oracle: pandas' own UTC conversion
    assert {d: len(p) for d, p in parts.items()} == expected
    for day, part in parts.items():
        assert (part["created_at"].dt.date == day).all()
        assert part["created_at"].is_monotonic_increasing
        assert str(part["created_at"].dtype) == "datetime64[us, UTC]"


@pytest.mark.parametrize(
    ("mutate", "kwargs", "message"),
    [
        (lambda df: df.drop(columns=["created_at"]), {}, "no timestamp column"),
        (lambda df: df, {"target": "nope"}, "target column 'nope' not found"),
        (lambda df: df, {"timestamp": "amount"}, "does not hold dates/times"),
        (lambda df: df.assign(label="yes"), {}, "single class"),
        (lambda df: df.drop(columns=["label"]), {}, "pass TARGET="),
        (lambda df: df.assign(label=np.linspace(0, 1, len(df))), {}, "classifiers"),
        (
            lambda df: df.assign(items=[str(i) if k % 10 else "n/a" for k, i in enumerate(df["items"])]),
            {},
            "column 'items' has mixed types",
        ),
        (
            lambda df: df.assign(created_at=df["created_at"].where(df.index != 5, "soon")),
            {"timestamp": "created_at"},
            "does not hold dates/times",
        ),
    ],
)
def test_bad_tables_fail_with_a_named_problem(mutate, kwargs, message):
    with pytest.raises(OnboardingError, match=message):
        onboarding.infer(mutate(make_frame()), "orders", **kwargs)


def test_read_table_rejects_empty_and_unknown_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(OnboardingError, match="empty"):
        onboarding.read_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,c\n")
    with pytest.raises(OnboardingError, match="no data rows"):
        onboarding.read_table(header_only)
    other = tmp_path / "data.xlsx"
    other.write_bytes(b"x")
    with pytest.raises(OnboardingError, match="unsupported file type"):
        onboarding.read_table(other)


# --------------------------------------------------------------------------- suite
def test_suite_bounds_contain_the_sample_and_follow_the_documented_slack():
    df = make_frame()
    df.loc[df.index % 20 == 0, "plan"] = None  # 5 % nulls
    inf = onboarding.infer(df, "orders")
    suite = onboarding.build_suite(df, inf)
    by = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    rng = by[("expect_column_values_to_be_between", "amount")]
    lo, hi = df["amount"].min(), df["amount"].max()
    assert rng["min_value"] <= lo and rng["max_value"] >= hi
    assert rng["min_value"] >= 0  # never negative in the sample: the bound stays at >= 0
    assert rng["max_value"] <= hi + 0.11 * (hi - lo) + 1e-9
    assert by[("expect_column_values_to_not_be_null", "plan")]["mostly"] == pytest.approx(1 - (2 * 0.05 + 0.02))
    assert "mostly" not in by[("expect_column_values_to_not_be_null", "amount")]
    assert by[("expect_column_values_to_be_in_set", "plan")]["value_set"] == ["basic", "pro", "team"]
    assert by[("expect_column_values_to_be_in_set", "label")] == {"column": "label", "value_set": ["no", "yes"]}
    json.dumps(suite)  # JSON-able as written to disk


def test_generated_suite_passes_on_its_own_sample_and_fails_on_broken_data():
    from include.retrainer.validation import validate_batch as run_validation

    df = make_frame()
    inf = onboarding.infer(df, "orders")
    parts = onboarding.daily_partitions(df, inf)
    suite = onboarding.build_suite(df, inf, parts)
    week = pd.concat(list(parts.values())[:7], ignore_index=True)
    assert run_validation(week, suite["expectations"], suite_name="orders").success
    broken = week.assign(amount=week["amount"] * 1000)  # a unit change upstream
    assert not run_validation(broken, suite["expectations"], suite_name="orders").success


# --------------------------------------------------------------------------- the command
def write_csv(tmp_path: Path, df: pd.DataFrame) -> Path:
    path = tmp_path / "orders.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture()
def s3():
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        client.create_bucket(Bucket="raw-data")
        yield client


def keys(client, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="raw-data", Prefix=prefix).get("Contents", []))


def test_add_model_uploads_daily_partitions_and_writes_valid_files(tmp_path, dirs, s3):
    models, suites = dirs
    df = make_frame()
    result = cli.add_model(
        "orders", write_csv(tmp_path, df), s3_client=s3, models_dir=models, suites_dir=suites, say=lambda *_: None
    )
    spec = load_spec(result.spec_path)  # the real loader, suite path resolved relative to the YAML
    assert spec.features.numeric == ["amount", "items"] and spec.features.categorical == ["plan"]
    assert spec.comparison.primary_metric == "roc_auc" and spec.data.format == "parquet"
    assert spec.suite_path.resolve() == (suites / "orders.json").resolve()
    assert spec.start_date == dt.date(2026, 3, 1)  # Sunday before the first (Monday) day
    assert spec.training.max_window_weeks == 12  # 600 rows over 15 days: the usual widening
    written = keys(s3)
    assert all(k.startswith("orders/dt=") and k.endswith("/part-000.parquet") for k in written)
    assert len(written) == df["created_at"].str[:10].nunique()
    back = pd.concat(
        pd.read_parquet(io.BytesIO(s3.get_object(Bucket="raw-data", Key=k)["Body"].read())) for k in written
    )
    assert len(back) == len(df) and sorted(back["amount"]) == sorted(df["amount"])
    assert not list(models.glob(".*")) and not list(suites.glob(".*"))  # no temp files left


def test_add_model_refuses_existing_raw_data_and_touches_nothing(tmp_path, dirs, s3):
    models, suites = dirs
    s3.put_object(Bucket="raw-data", Key="orders/dt=2020-01-01/part-000.csv", Body=b"precious")
    with pytest.raises(OnboardingError, match="already holds data"):
        cli.add_model(
            "orders",
            write_csv(tmp_path, make_frame()),
            s3_client=s3,
            models_dir=models,
            suites_dir=suites,
            say=lambda *_: None,
        )
    assert keys(s3) == ["orders/dt=2020-01-01/part-000.csv"]
    assert s3.get_object(Bucket="raw-data", Key="orders/dt=2020-01-01/part-000.csv")["Body"].read() == b"precious"
    assert list(models.iterdir()) == [] and list(suites.iterdir()) == []


def test_failed_upload_is_rolled_back(tmp_path, dirs, s3):
    models, suites = dirs
    calls = {"n": 0}
    real_copy = s3.copy_object

    def flaky_copy(**kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise ConnectionError("network dropped")
        return real_copy(**kw)

    s3.copy_object = flaky_copy
    with pytest.raises(cli.StorageFailure, match="rolled back"):
        cli.add_model(
            "orders",
            write_csv(tmp_path, make_frame()),
            s3_client=s3,
            models_dir=models,
            suites_dir=suites,
            say=lambda *_: None,
        )
    assert keys(s3) == []  # neither staged nor copied objects remain
    assert list(models.iterdir()) == [] and list(suites.iterdir()) == []


def test_bad_file_writes_nothing_and_cli_exits_2(tmp_path, dirs, s3, capsys):
    models, suites = dirs
    path = write_csv(tmp_path, make_frame().drop(columns=["created_at"]))
    code = cli.main(
        [
            "--name",
            "orders",
            "--data",
            str(path),
            "--s3-endpoint",
            "http://127.0.0.1:1",
            "--models-dir",
            str(models),
            "--suites-dir",
            str(suites),
        ]
    )
    assert code == 2 and "no timestamp column" in capsys.readouterr().err
    assert list(models.iterdir()) == [] and list(suites.iterdir()) == []


def test_existing_spec_name_is_refused(tmp_path, dirs, s3):
    models, suites = dirs
    (models / "orders.yaml").write_text("name: orders\n")
    with pytest.raises(OnboardingError, match="already exists"):
        cli.add_model(
            "orders",
            write_csv(tmp_path, make_frame()),
            s3_client=s3,
            models_dir=models,
            suites_dir=suites,
            say=lambda *_: None,
        )
    assert keys(s3) == []


def test_multiclass_gets_macro_roc_auc_and_dry_run_writes_nothing(tmp_path, dirs):
    models, suites = dirs
    df = make_frame().assign(
        label=lambda d: pd.cut(d["amount"], [-1, 30, 90, 1e9], labels=["low", "mid", "high"]).astype(str)
    )
    result = cli.add_model(
        "orders",
        write_csv(tmp_path, df),
        s3_client=None,
        models_dir=models,
        suites_dir=suites,
        dry_run=True,
        say=lambda *_: None,
    )
    assert result.dry_run and result.inference.classes == ("high", "low", "mid")
    assert list(models.iterdir()) == [] and list(suites.iterdir()) == []
    # Every class ranks alike (one-vs-rest macro ROC AUC), not accuracy, which a rare class barely moves.
    import yaml

    from include.retrainer.config import parse_spec

    text = onboarding.render_spec(result.inference, "include/expectations/orders.json", source_name="orders.csv")
    raw = yaml.safe_load(text)
    raw["validation"].pop("suite")  # not written by a dry run
    assert parse_spec(raw, "orders.yaml").comparison.primary_metric == "roc_auc"
    assert "primary_metric: roc_auc            # 3 classes: one-vs-rest macro" in text


def test_a_file_of_few_rows_a_week_lets_the_window_widen_until_a_model_fits(tmp_path):
    """Found on a real file (a city's daily weather, one row a day): 12 weeks held 84 of the 300
    rows a model needs, so the DAG would have waited for ever. The YAML now lets the window widen
    as far as the file's rate needs, with a margin, and says so."""
    import yaml

    from include.retrainer.config import parse_spec

    inf = onboarding.infer(make_frame(days=140, per_day=1), "daily")
    widest, comment = onboarding.widest_window(inf, 4)
    assert widest == 54  # 300 rows at 7 a week take 43 weeks; x 1.25 for weeks that vary
    assert comment.startswith("~7.0 labelled rows a week: a model needs 300")
    # Half the rows without a label: the rate that counts is of the labelled ones.
    half = make_frame(days=140, per_day=2)
    half.loc[half.index % 2 == 1, "label"] = None
    assert onboarding.widest_window(onboarding.infer(half, "half"), 4)[0] == 54
    (tmp_path / "daily.json").write_text("{}")
    text = onboarding.render_spec(inf, "daily.json", "daily.csv")
    spec = parse_spec(yaml.safe_load(text), tmp_path / "daily.yaml")
    assert spec.training.max_window_weeks == 54
    # The retrain cost is offered, commented out: the YAML states none until its owner does.
    assert (
        "# retrain_cost: 0.01          # what one retrain costs you, in roc_auc-weeks; with it and `rule: cost`" in text
    )
    assert spec.drift.gate.retrain_cost is None and spec.drift.gate.rule == "any"
    # Rarer than one row in ten weeks: no window may grow that far; the comment says what to lower.
    sparse = onboarding.infer(make_frame(days=2000, per_day=1).iloc[::100].reset_index(drop=True), "sparse")
    widest, comment = onboarding.widest_window(sparse, 4)
    assert widest == 520 and "lower training.min_train_rows/min_holdout_rows" in comment


def test_help_matches_readme():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    help_text = cli.build_parser().format_help()
    for flag in ("--name", "--data", "--timestamp", "--target", "--s3-endpoint", "--dry-run"):
        assert flag in help_text
    assert "make add-model NAME=" in readme and "scripts/add_model.py --help" in readme


# --------------------------------------------------------------------------- staleness
def rotating_frame(weeks: int, turn: float, per_day: int = 60, seed: int = 0) -> pd.DataFrame:
    """Events whose label depends on a direction that turns by ``turn`` radians a week."""
    rng = np.random.default_rng(seed)
    n = weeks * 7 * per_day
    start = pd.Timestamp("2026-01-04")  # a Sunday
    seconds = np.sort(rng.integers(0, weeks * 7 * 86400, n))
    angle = turn * (seconds / (7 * 86400))
    a, b = rng.normal(size=n), rng.normal(size=n)
    logit = 3.0 * (np.cos(angle) * a + np.sin(angle) * b)
    return pd.DataFrame(
        {
            "created_at": (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S"),
            "a": a,
            "b": b,
            "label": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


def _dry_run_yaml(tmp_path, dirs, df, full: bool = False, **kwargs) -> tuple[dict, str, list[str]]:
    """(the YAML's drift.gate, or with ``full`` the whole YAML; its text; the printed lines)."""
    import yaml

    models, suites = dirs
    lines: list[str] = []
    cli.add_model(
        "orders",
        write_csv(tmp_path, df),
        s3_client=None,
        models_dir=models,
        suites_dir=suites,
        dry_run=True,
        say=lines.append,
        **kwargs,
    )
    text = "\n".join(lines).split("---- model YAML ----\n", 1)[1]
    spec = yaml.safe_load(text)
    return (spec if full else spec["drift"]["gate"]), text, lines


def test_the_age_limit_follows_how_fast_a_model_goes_stale_on_the_file(tmp_path, dirs):
    """A model of a concept that turns every week falls behind fast; one of a fixed concept does
    not: add-model measures it on the file (include/retrainer/staleness.py), writes the rate,
    and the age limit follows it (config.GateSpec.refresh_age_weeks), with the figures in the
    comment. The age limit itself is not written, so a retrain cost stated later prices the
    refresh at the cost-optimal interval, uncapped."""
    from include.retrainer.config import GateSpec

    # window=False: the staleness measurement alone (the window's own test is below).
    turning, text, lines = _dry_run_yaml(tmp_path, dirs, rotating_frame(18, 0.3), window=False)
    assert "max_champion_age_weeks" not in turning and turning["staleness_rate"] > 0.02
    assert GateSpec(**turning).refresh_age_weeks() == 1
    assert "a model falls +0." in text and "Mean lead of a 1-week-old model over one 2 weeks old +" in text
    assert "#   rule any: a champion 1 week old is refreshed even without drift" in text
    assert "# max_champion_age_weeks: 1   # set it to fix the age limit instead" in text
    assert any(line.startswith("  staleness  on this file a model falls") for line in lines)
    # Stating a cost: the cost-optimal interval at the measured rate, not capped by the rule-any age.
    priced = GateSpec(
        **{**turning, "rule": "cost", "retrain_cost": 0.5}
    )  # as uncommenting retrain_cost with rule: cost
    assert priced.refresh_age_weeks() == pytest.approx((2 * 0.5 / turning["staleness_rate"]) ** 0.5)
    assert priced.refresh_age_weeks() > 2

    fixed, _, _ = _dry_run_yaml(tmp_path, dirs, rotating_frame(18, 0.0, seed=1), window=False)
    assert fixed["staleness_rate"] < 0.0025
    assert GateSpec(**fixed).refresh_age_weeks() >= 5


def test_no_staleness_or_a_short_file_keeps_the_default_age_limit(tmp_path, dirs):
    skipped, text, _ = _dry_run_yaml(tmp_path, dirs, rotating_frame(18, 0.3), staleness=False, window=False)
    assert skipped["max_champion_age_weeks"] == 4 and "staleness_rate" not in skipped
    assert "make add-model" not in text.split("gate:", 1)[1].split("training:", 1)[0]
    short, text, _ = _dry_run_yaml(tmp_path, dirs, make_frame(days=15))
    assert short["max_champion_age_weeks"] == 4 and "staleness_rate" not in short
    assert "# make add-model: staleness not measured (" in text and "the prior 0.0025 a week is kept" in text


def test_a_measurement_that_fails_keeps_the_default_and_onboarding_goes_on(tmp_path, dirs, monkeypatch):
    import benchmarks.user_data as user_data

    def broken(*args, **kwargs):
        raise RuntimeError("scoring blew up\non a week")

    monkeypatch.setattr(user_data, "measure_staleness", broken)
    monkeypatch.setattr(user_data, "measure_window", broken)
    gate, text, _ = _dry_run_yaml(tmp_path, dirs, rotating_frame(18, 0.3))
    assert gate["max_champion_age_weeks"] == 4 and "staleness_rate" not in gate
    assert "staleness not measured (the measurement failed: RuntimeError: scoring blew up on a week)" in text
    assert "window_weeks: 4" in text
    assert "4 weeks, the default (the measurement failed: RuntimeError: scoring blew up on a week)" in text


def test_the_window_is_the_one_that_served_best_on_the_file_and_no_window_keeps_four_weeks(tmp_path, dirs):
    """include/retrainer/window.py: a stationary file with ~100 rows a week trains better models
    on more weeks; the YAML says so in numbers, and the widest window is at least that."""
    steady = stationary_rows(30, 15)
    spec, text, lines = _dry_run_yaml(tmp_path, dirs, steady, staleness=False, full=True)
    assert spec["training"]["window_weeks"] in (8, 16)
    assert spec["training"]["max_window_weeks"] >= spec["training"]["window_weeks"]
    assert "# measured by make add-model on this file's weeks: " in text
    assert "(the highest lower confidence bound of the lead, above 0: roc_auc on the week after" in text
    assert any(line.startswith(f"  window     {spec['training']['window_weeks']} weeks (") for line in lines)
    kept, text, lines = _dry_run_yaml(tmp_path, dirs, steady, staleness=False, window=False, full=True)
    assert kept["training"]["window_weeks"] == 4 and "make add-model" not in text.split("training:", 1)[1]
    assert not any(line.startswith("  window") for line in lines)


def test_a_tiny_rate_is_written_as_a_plain_decimal():
    """YAML 1.1 reads 5e-05 as a string; the YAML writes 0.00005."""
    import yaml

    from include.retrainer.staleness import StalenessEstimate

    inf = onboarding.infer(make_frame(days=140, per_day=5), "orders")
    est = StalenessEstimate(-0.002, 0.0001, 40, 4, ((2, -0.002),), 0.0025, 0.00005, 12)
    gate = yaml.safe_load(onboarding.render_spec(inf, "x.json", "orders.csv", staleness=est))["drift"]["gate"]
    assert gate["staleness_rate"] == 0.00005 and isinstance(gate["staleness_rate"], float)
    from include.retrainer.config import GateSpec

    assert "max_champion_age_weeks" not in gate and GateSpec(**gate).refresh_age_weeks() == 12
    text = onboarding.render_spec(inf, "x.json", "orders.csv", staleness=est)
    assert "the longest: at this rate a model falls 0.001 behind a fresh one in 12 weeks" in text


# ------------------------------------------------------------ files as spreadsheets export them
def test_day_first_dates_are_read_day_first_and_a_column_mixing_orders_is_named(tmp_path):
    df = make_frame(days=20)
    when = pd.to_datetime(df["created_at"])
    df["created_at"] = when.dt.strftime("%d/%m/%Y %H:%M")  # 05/03/2026 is 5 March, not 3 May
    inf = onboarding.infer(onboarding.read_table(write_csv(tmp_path, df)), "orders")
    assert (inf.first_day, inf.last_day) == (when.min().date(), when.max().date())
    parts = onboarding.daily_partitions(df, inf)
    assert sorted(parts) == sorted(set(when.dt.date))
    df.loc[0, "created_at"] = "03/25/2026 10:00"  # one value month first
    mixed = onboarding.read_table(write_csv(tmp_path, df))
    with pytest.raises(OnboardingError, match="writes dates both day first .* and month first .*'03/25/2026 10:00'"):
        onboarding.infer(mixed, "orders")
    with pytest.raises(OnboardingError, match="'created_at' does not hold dates/times .* both day first"):
        onboarding.infer(mixed, "orders", timestamp="created_at")
    # A column of clock times or scores is no date at all, whatever its fields: left out, no error.
    clean = make_frame(days=20).assign(clock=lambda f: [f"{h}.{m}.00" for h, m in zip(f.index % 24, f.index % 60)])
    assert onboarding.infer(clean, "orders").timestamp == "created_at"
    # One decision for the whole column: the labelled rows alone (the upload) are read as the file was.
    inf = onboarding.infer(df.iloc[1:], "orders")
    assert inf.day_first and onboarding.daily_partitions(df.iloc[1:].head(3), inf).keys() <= set(when.dt.date)


def test_rows_without_a_time_are_named_and_empty_lines_and_a_byte_order_mark_are_not_data(tmp_path):
    df = make_frame(days=15)
    path = tmp_path / "orders.csv"
    # Excel's "CSV UTF-8": a byte-order mark before the first name, empty lines at the end.
    path.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode() + b",,,,,\n,,,,,\n")
    read = onboarding.read_table(path)
    assert list(read.columns) == list(df.columns) and len(read) == len(df)
    assert onboarding.infer(read, "orders").timestamp == "created_at"
    read.loc[[3, 7], "created_at"] = None
    with pytest.raises(OnboardingError, match=r"2 row\(s\) have no created_at \(data rows 4, 8\)"):
        onboarding.infer(read, "orders")


def test_a_class_spelled_several_ways_is_named_not_trained_as_several():
    df = make_frame(days=15)
    df.loc[[1, 4], "label"] = ["yes ", "NO"]  # besides "yes" and "no"
    with pytest.raises(
        OnboardingError, match="spells one class several ways .*'yes' / 'yes '; 'NO' / 'no'; write each class one way"
    ):
        onboarding.infer(df, "orders")


def test_column_names_that_are_not_plain_words_survive_the_yaml(tmp_path, dirs):
    names = {"created_at": "Created at #", "amount": "Amount (€)", "label": "Churned? #"}
    df = make_frame(days=15).rename(columns=names)
    spec, _, _ = _dry_run_yaml(tmp_path, dirs, df, full=True, staleness=False, window=False, target="Churned? #")
    assert spec["features"]["timestamp"] == "Created at #" and spec["features"]["target"] == "Churned? #"
    assert onboarding._yaml_name("on") == '"on"' and onboarding._yaml_name("No") == '"No"'  # YAML 1.1 booleans
    assert "Amount (€)" in spec["features"]["numeric"]


def test_unlabelled_rows_are_not_uploaded_and_the_note_says_why(tmp_path, dirs, s3):
    models, suites = dirs
    df = make_frame(days=15)
    target = "label"
    df.loc[df.index % 10 == 0, target] = None
    lines: list[str] = []
    cli.add_model(
        "orders", write_csv(tmp_path, df), s3_client=s3, models_dir=models, suites_dir=suites, say=lines.append
    )
    back = pd.concat(
        pd.read_parquet(io.BytesIO(s3.get_object(Bucket="raw-data", Key=k)["Body"].read())) for k in keys(s3)
    )
    assert len(back) == int(df[target].notna().sum()) and back[target].notna().all()
    assert any("have no target value: left out (make add-model does not upload them" in line for line in lines)
