"""Read daily partitions ``<prefix>/dt=YYYY-MM-DD/*.parquet|csv`` for a time range.

Raw data is only ever read here, never modified. Every file read is recorded with its
ETag so that a model version can name exactly what it was trained on.
"""

from __future__ import annotations

import collections
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

from include.retrainer.config import PARTITION_COLUMN, DataSpec
from include.retrainer.errors import PermanentError
from include.retrainer.storage import ObjectInfo, ObjectStore, join_key

DATA_SUFFIXES = (".parquet", ".csv")


class NoPartitionsError(PermanentError, RuntimeError):
    """No data partition exists for the requested range."""


class BadPartitionError(PermanentError, RuntimeError):
    """A partition file cannot be read (corrupt, empty, wrong format)."""


class BatchTooLargeError(PermanentError, RuntimeError):
    """The batch exceeds the configured row limit (``data.max_rows``)."""


def partition_dates(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """UTC calendar days d with start <= d < end (a day belongs to the interval holding its 00:00)."""

    def utc(t: dt.datetime) -> dt.datetime:
        return t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC)

    start, end = utc(start), utc(end)
    day = start.date() if start.time() == dt.time(0) else start.date() + dt.timedelta(days=1)
    out = []
    while dt.datetime.combine(day, dt.time(0), dt.UTC) < end:
        out.append(day)
        day += dt.timedelta(days=1)
    return out


def partition_prefix(data: DataSpec, day: dt.date) -> str:
    return join_key(data.prefix, f"dt={day.isoformat()}") + "/"


def list_partition_files(store: ObjectStore, data: DataSpec, days: list[dt.date]) -> dict[dt.date, list[ObjectInfo]]:
    """Data files per day (days without files are omitted). Hidden and marker files are ignored."""
    found: dict[dt.date, list[ObjectInfo]] = {}
    for day in days:
        files = [
            o
            for o in store.iter_objects(data.bucket, partition_prefix(data, day))
            if o.key.lower().endswith(DATA_SUFFIXES) and not o.key.rsplit("/", 1)[-1].startswith((".", "_"))
        ]
        if data.format != "auto":
            files = [o for o in files if o.key.lower().endswith("." + data.format)]
        if files:
            found[day] = sorted(files, key=lambda o: o.key)
    return found


#: Delimiters a CSV export commonly uses; a header split by another one than
#: ``data.csv_delimiter`` means the setting (or the export) is wrong.
_CSV_DELIMITERS = (",", ";", "\t", "|")


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (parser errors often span several)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _check_csv_header(payload: bytes, obj: ObjectInfo, delimiter: str) -> None:
    """Refuse a CSV whose header is split by another delimiter than the configured one.

    Parsing such a file "succeeds" with one wide column (or fails deep in the parser),
    and the run would then stop at validation with every column reported missing: the
    real cause -- the delimiter -- is cheaper to name here, from the first line alone.
    """
    header = payload[:65536].split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    if delimiter in header:
        return
    seen = [d for d in _CSV_DELIMITERS if d != delimiter and d in header]
    if seen:
        shown = ", ".join(repr(d) for d in seen)
        raise BadPartitionError(
            f"cannot read {obj.uri}: its header is delimited by {shown}, not by data.csv_delimiter="
            f"{delimiter!r} (header: {header[:120]!r}); fix the export or set data.csv_delimiter"
        )


def _refuse_repeated_columns(obj: ObjectInfo, names: list[str]) -> None:
    """Refuse a file whose header names a column twice.

    Which of the two is the feature is unknowable; pandas would silently rename the second CSV
    column (``a.1``) or carry both Parquet columns under one label, and later steps would
    read the wrong one or fail far from the cause.
    """
    counts = collections.Counter(names)
    repeated = sorted(n for n, k in counts.items() if k > 1)
    if repeated:
        shown = ", ".join(repr(n) for n in repeated[:10])
        raise BadPartitionError(
            f"cannot read {obj.uri}: its header names {len(repeated)} column(s) more than once: {shown}; "
            "rename or drop the repeats upstream"
        )


def _csv_header_names(payload: bytes, delimiter: str) -> list[str]:
    import csv

    text = payload[:65536].decode("utf-8", errors="replace").lstrip("\ufeff")
    first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return [name for name in first if name]  # pandas names empty ones itself ("Unnamed: 3")


def _read_file(store: ObjectStore, obj: ObjectInfo, data: DataSpec, max_rows: int | None = None) -> Any:
    """Read one partition file into a DataFrame.

    ``max_rows``: refuse (BatchTooLargeError) as soon as the file is known to hold more
    rows than this -- from the Parquet footer before anything is decoded, and for CSV by
    parsing at most ``max_rows + 1`` rows -- so an oversized file never gets materialised.
    """
    import pandas as pd

    payload = store.get_bytes(obj.uri)
    if not payload:
        raise BadPartitionError(f"empty file (0 bytes): {obj.uri}")
    is_parquet = obj.key.lower().endswith(".parquet")
    try:
        if is_parquet:
            import pyarrow.parquet as pq

            # The footer alone gives the row count: refuse before decoding any column.
            parquet = pq.ParquetFile(io.BytesIO(payload))
            rows = parquet.metadata.num_rows
            if max_rows is not None and rows > max_rows:
                raise BatchTooLargeError(f"{obj.uri} holds {rows:,} rows")
            _refuse_repeated_columns(obj, parquet.schema_arrow.names)
            return pd.read_parquet(io.BytesIO(payload))
        _check_csv_header(payload, obj, data.csv_delimiter)
        _refuse_repeated_columns(obj, _csv_header_names(payload, data.csv_delimiter))
        nrows = None if max_rows is None else max_rows + 1
        frame = pd.read_csv(io.BytesIO(payload), sep=data.csv_delimiter, nrows=nrows)
    except (BatchTooLargeError, BadPartitionError):
        raise
    except Exception as exc:  # pyarrow/pandas raise many types for corrupt input
        kind = "Parquet" if is_parquet else f"CSV (delimiter {data.csv_delimiter!r})"
        raise BadPartitionError(f"cannot read {obj.uri} as {kind}: {_one_line(exc)}") from None
    if max_rows is not None and len(frame) > max_rows:
        raise BatchTooLargeError(f"{obj.uri} holds more than {max_rows:,} rows")
    if frame.shape[1] == 1 and len(str(frame.columns[0])) > 0 and any(d in str(frame.columns[0]) for d in ";|\t"):
        raise BadPartitionError(
            f"cannot read {obj.uri}: one column {frame.columns[0]!r} found; "
            f"the file is probably not delimited by {data.csv_delimiter!r} (set data.csv_delimiter)"
        )
    return frame


def _too_large(data: DataSpec, limit: int, read: int, days: list[dt.date], detail: str) -> str:
    setting = f"data.max_rows={limit:,}" if limit == data.max_rows else f"max_rows={limit:,}"
    return (
        f"batch too large: the partitions of {days[0]} .. {days[-1]} exceed {setting} rows "
        f"({read:,} rows read, then {detail}); refusing to load it (raise data.max_rows or "
        "use a shorter schedule interval)"
    )


@dataclass
class PartitionBatch:
    frame: Any  # pandas.DataFrame with PARTITION_COLUMN added
    files: list[dict] = field(default_factory=list)  # [{uri, etag, size, dt, rows}]
    days_found: list[str] = field(default_factory=list)
    days_missing: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return int(len(self.frame))


def read_partitions(
    store: ObjectStore,
    data: DataSpec,
    start: dt.datetime,
    end: dt.datetime,
    *,
    max_rows: int | None = None,
    exclude_days: frozenset[str] | set[str] = frozenset(),
) -> PartitionBatch:
    """Read and concatenate every partition file for days in [start, end).

    ``exclude_days`` (ISO dates, e.g. quarantined days) are left out and reported as missing.
    """
    import pandas as pd

    days = partition_dates(start, end)
    listing = {d: f for d, f in list_partition_files(store, data, days).items() if d.isoformat() not in exclude_days}
    if not listing:
        skipped = sorted(d for d in exclude_days if days and days[0].isoformat() <= d <= days[-1].isoformat())
        raise NoPartitionsError(
            f"no data partitions under s3://{data.bucket}/{join_key(data.prefix)}/dt=... "
            f"for {days[0] if days else start.date()} .. {days[-1] if days else end.date()} "
            f"({len(days)} day(s) expected"
            + (f"; quarantined and skipped: {', '.join(skipped)}" if skipped else "")
            + ")"
        )
    limit = max_rows or data.max_rows
    frames, files, total = [], [], 0
    for day, objs in sorted(listing.items()):
        for obj in objs:
            try:
                frame = _read_file(store, obj, data, max_rows=limit - total)
            except BatchTooLargeError as exc:
                raise BatchTooLargeError(_too_large(data, limit, total, days, str(exc))) from None
            total += len(frame)
            frame[PARTITION_COLUMN] = day.isoformat()
            frames.append(frame)
            files.append({**obj.to_dict(), "dt": day.isoformat(), "rows": int(len(frame))})
    # Files that disagree on columns are concatenated as a union (missing values become null):
    # validation then reports the gap instead of columns being dropped silently.
    frame = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    return PartitionBatch(
        frame=frame,
        files=files,
        days_found=[d.isoformat() for d in sorted(listing)],
        days_missing=[d.isoformat() for d in days if d not in listing],
    )
