"""The data interval a run works on.

Scheduled and backfilled runs carry their interval. A manual run triggered without a
logical date (the UI's default in Airflow 3) has none, or an empty one: it then works on
the last complete schedule interval before the moment it was triggered, so it behaves like
the scheduled run for that interval (same artefact keys, same idempotency key).
"""

from __future__ import annotations

import datetime as dt

CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
#: Interval used by DAGs without a cron schedule.
DEFAULT_CRON = CRON_PRESETS["@weekly"]


def to_utc(t: dt.datetime) -> dt.datetime:
    """A plain aware UTC ``datetime`` (naive input is read as UTC).

    Never a pendulum DateTime, which Airflow hands out: pendulum's arithmetic drops a
    non-pendulum tzinfo (``interval_end - timedelta(weeks=4)`` came out naive in a real run,
    so the training window's start lost its offset).
    """
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    u = t.astimezone(dt.UTC)
    return dt.datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=dt.UTC)


def last_complete_interval(reference: dt.datetime, schedule: str | None) -> tuple[dt.datetime, dt.datetime]:
    """[previous-but-one boundary, previous boundary] of the cron schedule at ``reference``."""
    from croniter import croniter

    cron = CRON_PRESETS.get(schedule or "", schedule or DEFAULT_CRON)
    if not croniter.is_valid(cron):
        cron = DEFAULT_CRON
    reference = to_utc(reference)
    # On a boundary, the interval ending there is complete (as Airflow aligns manual runs).
    on_boundary = reference.second == 0 and reference.microsecond == 0 and croniter.match(cron, reference)
    end = reference if on_boundary else to_utc(croniter(cron, reference).get_prev(dt.datetime))
    start = to_utc(croniter(cron, end).get_prev(dt.datetime))
    return start.replace(fold=0), end.replace(fold=0)


def resolve_interval(
    start: dt.datetime | None,
    end: dt.datetime | None,
    run_after: dt.datetime | None,
    schedule: str | None,
) -> tuple[dt.datetime, dt.datetime]:
    if start is not None and end is not None and to_utc(start) < to_utc(end):
        return to_utc(start), to_utc(end)
    reference = run_after or end or start or dt.datetime.now(dt.UTC)
    return last_complete_interval(reference, schedule)
