"""Tests for include/demo/data.py and scripts/seed_demo.py.

The statistical properties the demo relies on (stable days look alike, the drift event
is detectable and makes retraining pay off, shuffled labels are unlearnable) are
checked empirically against independent oracles: scipy's KS test, sklearn models and
statsmodels' McNemar test.  S3 writing is exercised against a real moto server process.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from statsmodels.stats.contingency_tables import mcnemar

from include.demo import data as dd

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START = date(2026, 1, 4)
ROWS = 1000
CHURN_FEATURES = dd.CHURN_NUMERIC + dd.CHURN_CATEGORICAL
TICKET_FEATURES = dd.TICKETS_NUMERIC + dd.TICKETS_CATEGORICAL


def _model(categorical: list[str]) -> Pipeline:
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), categorical)],
        remainder="passthrough",
    )
    return Pipeline([("pre", pre), ("clf", HistGradientBoostingClassifier(max_iter=100, random_state=0))])


def _days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


@pytest.fixture(scope="module")
def churn_frames() -> dict[date, pd.DataFrame]:
    """Three stable weeks followed by one drifted week (drift starts on day 21)."""
    return dd.generate_churn(START, 28, rows_per_day=ROWS, seed=42, drift_start=START + timedelta(days=21))


def _concat(frames: dict[date, pd.DataFrame], days: list[date]) -> pd.DataFrame:
    return pd.concat([frames[d] for d in days], ignore_index=True)


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_frames() -> None:
    a = dd.generate_churn(START, 3, rows_per_day=300, seed=5, drift_start=START + timedelta(days=2))
    b = dd.generate_churn(START, 3, rows_per_day=300, seed=5, drift_start=START + timedelta(days=2))
    assert list(a) == list(b) == _days(START, 3)
    for day in a:
        pd.testing.assert_frame_equal(a[day], b[day])


def test_single_day_regenerates_identically_alone() -> None:
    drift = START + timedelta(days=3)
    shuffled = START + timedelta(days=1)
    bulk = dd.generate_churn(START, 5, rows_per_day=400, seed=11, drift_start=drift, shuffle_label_days=[shuffled])
    for day in bulk:
        alone = dd.generate_churn_day(day, 400, 11, drifted=day >= drift, shuffle_labels=day == shuffled)
        pd.testing.assert_frame_equal(bulk[day], alone)
    tickets = dd.generate_tickets(START, 3, rows_per_day=200, seed=3, drift_start=drift)
    pd.testing.assert_frame_equal(
        tickets[START + timedelta(days=2)], dd.generate_tickets_day(START + timedelta(days=2), 200, 3)
    )


def test_different_seeds_and_days_differ() -> None:
    base = dd.generate_churn_day(START, 300, 1)
    other_seed = dd.generate_churn_day(START, 300, 2)
    next_day = dd.generate_churn_day(START + timedelta(days=1), 300, 1)
    assert not base["monthly_charges"].equals(other_seed["monthly_charges"])
    assert not base["monthly_charges"].equals(next_day["monthly_charges"])


# --------------------------------------------------------------------------- schema
def test_churn_schema_and_ranges(churn_frames: dict[date, pd.DataFrame]) -> None:
    df = churn_frames[START]
    assert list(df.columns) == CHURN_FEATURES + [dd.CHURN_TARGET, dd.CHURN_TIMESTAMP]
    assert len(df) == ROWS
    assert df["tenure_months"].dtype == np.int64 and df["support_calls"].dtype == np.int64
    assert df["monthly_charges"].dtype == np.float64 and df["usage_hours"].dtype == np.float64
    assert df[dd.CHURN_TARGET].dtype == np.int64
    for col in dd.CHURN_CATEGORICAL:
        assert pd.api.types.is_string_dtype(df[col]), col
    assert str(df[dd.CHURN_TIMESTAMP].dtype) == "datetime64[us, UTC]"
    assert df.notna().all().all()

    assert df["tenure_months"].between(0, 72).all()
    assert df["monthly_charges"].between(20, 120).all()
    assert (df["support_calls"] >= 0).all() and (df["usage_hours"] >= 0).all()
    assert set(df[dd.CHURN_TARGET].unique()) == {0, 1}
    assert set(df["contract"]) == set(dd.CHURN_CONTRACTS)
    assert set(df["payment_method"]) == set(dd.CHURN_PAYMENT_METHODS)
    assert set(df["region"]) == set(dd.CHURN_REGIONS)

    ts = df[dd.CHURN_TIMESTAMP]
    assert ts.is_monotonic_increasing
    assert (ts >= pd.Timestamp("2026-01-04", tz="UTC")).all() and (ts < pd.Timestamp("2026-01-05", tz="UTC")).all()


def test_contract_mix_and_base_churn_rate(churn_frames: dict[date, pd.DataFrame]) -> None:
    stable = _concat(churn_frames, _days(START, 21))
    mix = stable["contract"].value_counts(normalize=True)
    assert mix["month-to-month"] == pytest.approx(0.55, abs=0.02)
    assert mix["one-year"] == pytest.approx(0.25, abs=0.02)
    assert mix["two-year"] == pytest.approx(0.20, abs=0.02)
    assert 0.20 <= stable[dd.CHURN_TARGET].mean() <= 0.30
    # electronic check is the churny payment method
    by_payment = stable.groupby("payment_method")[dd.CHURN_TARGET].mean()
    assert by_payment.idxmax() == "electronic_check"


def test_drifted_charges_leave_the_seen_range(churn_frames: dict[date, pd.DataFrame]) -> None:
    post = _concat(churn_frames, _days(START + timedelta(days=21), 7))
    assert post["monthly_charges"].max() <= 220
    assert (post["monthly_charges"] > 120).mean() > 0.3
    assert (post["monthly_charges"] > 130).mean() > 0.2
    # the concept changed: expensive customers now churn far more than the rest
    high = post.loc[post["monthly_charges"] > 130, dd.CHURN_TARGET].mean()
    low = post.loc[post["monthly_charges"] <= 130, dd.CHURN_TARGET].mean()
    assert high > low + 0.3


# --------------------------------------------------------------------------- statistics
def test_stable_weeks_are_statistically_alike(churn_frames: dict[date, pd.DataFrame]) -> None:
    week1 = _concat(churn_frames, _days(START, 7))
    week2 = _concat(churn_frames, _days(START + timedelta(days=7), 7))
    for col in dd.CHURN_NUMERIC:
        assert ks_2samp(week1[col], week2[col]).statistic < 0.05, col


def test_drift_is_large_on_charges_and_calls(churn_frames: dict[date, pd.DataFrame]) -> None:
    pre = _concat(churn_frames, _days(START + timedelta(days=14), 7))
    post = _concat(churn_frames, _days(START + timedelta(days=21), 7))
    assert ks_2samp(pre["monthly_charges"], post["monthly_charges"]).statistic > 0.3
    assert ks_2samp(pre["support_calls"], post["support_calls"]).statistic > 0.3
    # unaffected columns stay put
    assert ks_2samp(pre["tenure_months"], post["tenure_months"]).statistic < 0.05
    assert ks_2samp(pre["usage_hours"], post["usage_hours"]).statistic < 0.05


def test_relationship_is_learnable(churn_frames: dict[date, pd.DataFrame]) -> None:
    train = _concat(churn_frames, _days(START, 7))
    later = churn_frames[START + timedelta(days=12)]
    model = _model(dd.CHURN_CATEGORICAL).fit(train[CHURN_FEATURES], train[dd.CHURN_TARGET])
    auc = roc_auc_score(later[dd.CHURN_TARGET], model.predict_proba(later[CHURN_FEATURES])[:, 1])
    assert auc >= 0.80


def test_retraining_on_post_drift_data_significantly_beats_champion(churn_frames: dict[date, pd.DataFrame]) -> None:
    drift_start = START + timedelta(days=21)
    champion_train = _concat(churn_frames, _days(START + timedelta(days=14), 7))
    # challenger window: the last 2 stable days + the first 5 drifted days
    challenger_train = _concat(churn_frames, _days(drift_start - timedelta(days=2), 7))
    held_out = dd.generate_churn_day(drift_start + timedelta(days=6), 4000, 42, drifted=True)

    champion = _model(dd.CHURN_CATEGORICAL).fit(champion_train[CHURN_FEATURES], champion_train[dd.CHURN_TARGET])
    challenger = _model(dd.CHURN_CATEGORICAL).fit(challenger_train[CHURN_FEATURES], challenger_train[dd.CHURN_TARGET])
    y = held_out[dd.CHURN_TARGET].to_numpy()
    old_ok = champion.predict(held_out[CHURN_FEATURES]) == y
    new_ok = challenger.predict(held_out[CHURN_FEATURES]) == y

    b = int((old_ok & ~new_ok).sum())  # champion right, challenger wrong
    c = int((~old_ok & new_ok).sum())  # champion wrong, challenger right
    table = [[int((old_ok & new_ok).sum()), b], [c, int((~old_ok & ~new_ok).sum())]]
    result = mcnemar(table, exact=False, correction=True)
    assert c > 2 * b, table
    assert result.pvalue < 0.05
    assert new_ok.mean() - old_ok.mean() > 0.05


def test_shuffled_labels_are_unlearnable() -> None:
    days = _days(START, 5)
    shuffled = dd.generate_churn(START, 5, rows_per_day=ROWS, seed=42, shuffle_label_days=days)
    intact = dd.generate_churn(START, 5, rows_per_day=ROWS, seed=42)
    for day in days:
        # features identical, only the label order changed
        pd.testing.assert_frame_equal(
            shuffled[day].drop(columns=dd.CHURN_TARGET), intact[day].drop(columns=dd.CHURN_TARGET)
        )
        assert shuffled[day][dd.CHURN_TARGET].sum() == intact[day][dd.CHURN_TARGET].sum()
        assert not shuffled[day][dd.CHURN_TARGET].equals(intact[day][dd.CHURN_TARGET])

    train = _concat(shuffled, days)
    test = dd.generate_churn_day(START + timedelta(days=8), 3000, 42)
    model = _model(dd.CHURN_CATEGORICAL).fit(train[CHURN_FEATURES], train[dd.CHURN_TARGET])
    auc = roc_auc_score(test[dd.CHURN_TARGET], model.predict_proba(test[CHURN_FEATURES])[:, 1])
    assert 0.45 <= auc <= 0.58


# --------------------------------------------------------------------------- tickets
def test_tickets_schema_three_classes_and_learnable() -> None:
    drift_start = START + timedelta(days=7)
    frames = dd.generate_tickets(START, 10, rows_per_day=600, seed=7, drift_start=drift_start)
    df = frames[START]
    assert list(df.columns) == TICKET_FEATURES + [dd.TICKETS_TARGET, dd.TICKETS_TIMESTAMP]
    for col in ("message_length", "customer_age_days", "attachments"):
        assert df[col].dtype == np.int64, col
    assert df["response_hours"].dtype == np.float64
    assert pd.api.types.is_string_dtype(df[dd.TICKETS_TARGET])

    train = _concat(frames, _days(START, 6))
    assert set(train[dd.TICKETS_TARGET]) == set(dd.TICKETS_CLASSES) == {"low", "medium", "high"}
    assert train[dd.TICKETS_TARGET].value_counts(normalize=True).min() > 0.1

    test = frames[START + timedelta(days=6)]
    model = _model(dd.TICKETS_CATEGORICAL).fit(train[TICKET_FEATURES], train[dd.TICKETS_TARGET])
    pred = model.predict(test[TICKET_FEATURES])
    acc = accuracy_score(test[dd.TICKETS_TARGET], pred)
    majority = test[dd.TICKETS_TARGET].value_counts(normalize=True).max()
    assert acc > 0.6 and acc > majority + 0.1

    post = _concat(frames, _days(drift_start, 3))
    assert ks_2samp(train["message_length"], post["message_length"]).statistic > 0.3
    assert ks_2samp(train["response_hours"], post["response_hours"]).statistic > 0.3
    # the old model degrades on drifted tickets
    assert accuracy_score(post[dd.TICKETS_TARGET], model.predict(post[TICKET_FEATURES])) < acc - 0.1


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="rows"):
        dd.generate_churn_day(START, 0, 1)
    with pytest.raises(ValueError, match="seed"):
        dd.generate_churn_day(START, 10, -1)
    with pytest.raises(ValueError, match="format"):
        dd.write_partitions(object(), "b", "p", {START: dd.generate_churn_day(START, 5, 1)}, fmt="json")
    with pytest.raises(ValueError, match="files_per_day"):
        dd.write_partitions(object(), "b", "p", {START: dd.generate_churn_day(START, 2, 1)}, files_per_day=3)
    assert dd.partition_key("/churn/", START, 2, "csv") == "churn/dt=2026-01-04/part-002.csv"


# --------------------------------------------------------------------------- S3 via moto
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real ``moto_server`` process on a free local port, stopped at teardown."""
    candidates = [Path(sys.executable).parent / "moto_server", PROJECT_ROOT / ".venv" / "bin" / "moto_server"]
    exe = next((p for p in candidates if p.exists()), None)
    if exe is None:
        pytest.fail(f"moto_server executable not found in {[str(p) for p in candidates]}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited early with code {proc.returncode}")
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # any HTTP answer means the server is up
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer on {url} within 30s")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture()
def s3(moto_endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _keys(client, bucket: str, prefix: str = "") -> list[str]:
    resp = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def test_write_partitions_parquet_roundtrip_and_idempotent(s3) -> None:
    s3.create_bucket(Bucket="raw-data")
    frames = dd.generate_churn(START, 3, rows_per_day=500, seed=42)
    uris = dd.write_partitions(s3, "raw-data", "churn", frames)

    expected = [f"churn/dt=2026-01-0{d}/part-000.parquet" for d in (4, 5, 6)]
    assert uris == [f"s3://raw-data/{k}" for k in expected]
    assert _keys(s3, "raw-data", "churn/") == expected

    body = s3.get_object(Bucket="raw-data", Key=expected[1])["Body"].read()
    back = pd.read_parquet(io.BytesIO(body))
    pd.testing.assert_frame_equal(back, frames[START + timedelta(days=1)])

    etags = {k: s3.head_object(Bucket="raw-data", Key=k)["ETag"] for k in expected}
    again = dd.generate_churn(START, 3, rows_per_day=500, seed=42)  # regenerated, not the same objects
    assert dd.write_partitions(s3, "raw-data", "churn", again) == uris
    assert {k: s3.head_object(Bucket="raw-data", Key=k)["ETag"] for k in expected} == etags
    assert _keys(s3, "raw-data", "churn/") == expected


def test_write_partitions_csv_multiple_files(s3) -> None:
    s3.create_bucket(Bucket="csv-data")
    frames = dd.generate_tickets(START, 2, rows_per_day=301, seed=7)
    uris = dd.write_partitions(s3, "csv-data", "tickets", frames, fmt="csv", files_per_day=3)
    assert len(uris) == 6
    keys = _keys(s3, "csv-data", "tickets/dt=2026-01-05/")
    assert keys == [f"tickets/dt=2026-01-05/part-00{i}.csv" for i in range(3)]
    parts = [
        pd.read_csv(io.BytesIO(s3.get_object(Bucket="csv-data", Key=k)["Body"].read()), parse_dates=["event_ts"])
        for k in keys
    ]
    back = pd.concat(parts, ignore_index=True)
    back["event_ts"] = back["event_ts"].dt.as_unit("us")
    pd.testing.assert_frame_equal(back, frames[START + timedelta(days=1)])


def test_seed_demo_cli(moto_endpoint: str, s3) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    cmd = [
        sys.executable,
        "scripts/seed_demo.py",
        "--endpoint-url", moto_endpoint,
        "--bucket", "cli-bucket",
        "--prefix", "churn",
        "--start", "2026-01-04",
        "--weeks", "2",
        "--rows-per-day", "50",
        "--drift-week", "2",
        "--create-bucket",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "week 1: 2026-01-04..2026-01-10 rows=350 drifted=no"
    assert lines[1] == "week 2: 2026-01-11..2026-01-17 rows=350 drifted=yes"
    keys = _keys(s3, "cli-bucket", "churn/")
    assert len(keys) == 14 and keys[0] == "churn/dt=2026-01-04/part-000.parquet"
    drifted = pd.read_parquet(io.BytesIO(s3.get_object(Bucket="cli-bucket", Key=keys[7])["Body"].read()))
    pd.testing.assert_frame_equal(drifted, dd.generate_churn_day(date(2026, 1, 11), 50, 42, drifted=True))

    # re-running against the existing bucket is fine; a drift week beyond --weeks is a usage error
    assert subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=120).returncode == 0
    bad_cmd = list(cmd)
    bad_cmd[bad_cmd.index("--weeks") + 1] = "1"
    bad = subprocess.run(bad_cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--drift-week 2 is after the last generated week (1)" in bad.stderr
