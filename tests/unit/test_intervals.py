"""Data intervals: scheduled runs keep theirs; manual runs without one take the last complete week."""

from __future__ import annotations

import datetime as dt

import pytest

from include.retrainer.fetch import partition_dates
from include.retrainer.intervals import last_complete_interval, resolve_interval
from include.retrainer.storage import interval_token, join_key
from include.retrainer.training import holdout_start, training_window

UTC = dt.UTC


def test_scheduled_interval_is_kept():
    s, e = dt.datetime(2026, 1, 4, tzinfo=UTC), dt.datetime(2026, 1, 11, tzinfo=UTC)
    assert resolve_interval(s, e, None, "@weekly") == (s, e)


@pytest.mark.parametrize(
    "triggered,expected_start",
    [
        (dt.datetime(2026, 11, 27, 11, 0, tzinfo=UTC), dt.datetime(2026, 11, 15, tzinfo=UTC)),  # a Friday
        (dt.datetime(2026, 11, 22, 0, 0, tzinfo=UTC), dt.datetime(2026, 11, 15, tzinfo=UTC)),  # exactly on the boundary
        (dt.datetime(2026, 11, 22, 0, 1, tzinfo=UTC), dt.datetime(2026, 11, 15, tzinfo=UTC)),
    ],
)
def test_manual_run_without_interval_takes_last_complete_week(triggered, expected_start):
    start, end = resolve_interval(triggered, triggered, triggered, "@weekly")  # Airflow's empty interval
    assert (start, end) == (expected_start, expected_start + dt.timedelta(weeks=1))
    assert resolve_interval(None, None, triggered, "@weekly") == (start, end)


def test_matches_airflows_own_manual_interval():
    """Our fallback equals what Airflow's data-interval timetable infers for a manual run."""
    from airflow.timetables.interval import CronDataIntervalTimetable
    from pendulum import DateTime

    tt = CronDataIntervalTimetable("0 0 * * 0", timezone="UTC")
    for when in (dt.datetime(2026, 11, 27, 11, tzinfo=UTC), dt.datetime(2026, 3, 1, tzinfo=UTC)):
        inferred = tt.infer_manual_data_interval(run_after=DateTime.instance(when))
        assert last_complete_interval(when, "@weekly") == (inferred.start, inferred.end)


def test_partition_days_are_half_open():
    s, e = dt.datetime(2026, 1, 4, tzinfo=UTC), dt.datetime(2026, 1, 11, tzinfo=UTC)
    days = partition_dates(s, e)
    assert days[0] == dt.date(2026, 1, 4) and days[-1] == dt.date(2026, 1, 10) and len(days) == 7


def test_training_window_and_holdout():
    end = dt.datetime(2026, 1, 25, tzinfo=UTC)
    assert training_window(end, 2) == (dt.datetime(2026, 1, 11, tzinfo=UTC), end)
    assert holdout_start(end, 2) == dt.date(2026, 1, 23)


def test_keys_cannot_escape_their_prefix():
    assert join_key("runs", "churn", "x.json") == "runs/churn/x.json"
    with pytest.raises(ValueError, match="escape"):
        join_key("runs", "../../raw-data/x")
    assert (
        interval_token(dt.datetime(2026, 1, 4, tzinfo=UTC), dt.datetime(2026, 1, 11, tzinfo=UTC))
        == "20260104T000000Z_20260111T000000Z"
    )


def test_intervals_are_plain_utc_datetimes_so_window_arithmetic_keeps_the_offset():
    import pendulum

    from include.retrainer.intervals import to_utc

    # What Airflow hands a task: pendulum DateTimes. pendulum's own arithmetic drops a stdlib
    # tzinfo (measured: the training window's start came out naive in a real run).
    start, end = resolve_interval(
        pendulum.datetime(2026, 11, 22, tz="UTC"), pendulum.datetime(2026, 11, 29, tz="UTC"), None, "@weekly"
    )
    assert type(start) is dt.datetime and type(end) is dt.datetime
    window_start, window_end = training_window(end, 4)
    assert window_start.isoformat() == "2026-11-01T00:00:00+00:00" and window_end.tzinfo is not None
    assert to_utc(pendulum.datetime(2026, 11, 29, 1, tz="Europe/Paris")).isoformat() == "2026-11-29T00:00:00+00:00"
    assert to_utc(dt.datetime(2026, 11, 29)).tzinfo is dt.UTC
