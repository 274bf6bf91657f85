"""Write daily partitions ``<prefix>/dt=YYYY-MM-DD/part-NNN.parquet|csv``: the layout fetch reads.

Used by ``make add-model`` (a user's table cut into daily partitions) and by the demo
seeding. Serialisation is deterministic, so writing the same frames again produces
byte-identical objects (same ETag). boto3 is never imported here: the caller passes a client.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

_SUPPORTED_FORMATS = ("parquet", "csv")


def _as_date(value: date, name: str = "day") -> date:
    """Normalise ``datetime``/``date`` to a plain ``date`` (datetime is a date subclass,
    and mixing them would silently break dict lookups)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}: {value!r}")


def partition_key(prefix: str, day: date, part: int = 0, fmt: str = "parquet") -> str:
    """Object key for one file of a daily partition: ``<prefix>/dt=YYYY-MM-DD/part-NNN.<fmt>``.

    Leading/trailing slashes on ``prefix`` are ignored; an empty prefix puts the
    partitions at the bucket root.
    """
    if fmt not in _SUPPORTED_FORMATS:
        raise ValueError(f"unsupported format {fmt!r}; expected one of {_SUPPORTED_FORMATS}")
    day = _as_date(day)
    clean = prefix.strip("/")
    name = f"dt={day.isoformat()}/part-{part:03d}.{fmt}"
    return f"{clean}/{name}" if clean else name


def _serialise(df: pd.DataFrame, fmt: str) -> bytes:
    """Deterministic bytes for ``df`` (no index, no write timestamps in the payload)."""
    buf = io.BytesIO()
    if fmt == "parquet":
        df.to_parquet(buf, engine="pyarrow", index=False, compression="snappy")
    else:
        buf.write(df.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return buf.getvalue()


def write_partitions(
    s3_client: Any,
    bucket: str,
    prefix: str,
    frames: dict[date, pd.DataFrame],
    fmt: str = "parquet",
    files_per_day: int = 1,
) -> list[str]:
    """Upload ``frames`` as daily partitions and return the written ``s3://`` URIs.

    Each day's frame is split into ``files_per_day`` contiguous chunks written as
    ``<prefix>/dt=YYYY-MM-DD/part-000.<fmt>``, ``part-001`` ...  Serialisation is
    deterministic, so writing the same frames again produces byte-identical objects
    (same ETag): re-seeding is idempotent.

    Args:
        s3_client: a boto3 S3 client (only ``put_object`` is used).
        bucket: target bucket (must exist).
        prefix: key prefix, e.g. ``"churn"``.
        frames: ``{day: DataFrame}``; written in calendar order.
        fmt: ``"parquet"`` or ``"csv"``.
        files_per_day: number of files per partition (>= 1, <= rows of each day).
    """
    if fmt not in _SUPPORTED_FORMATS:
        raise ValueError(f"unsupported format {fmt!r}; expected one of {_SUPPORTED_FORMATS}")
    if not bucket:
        raise ValueError("bucket must be a non-empty bucket name")
    if isinstance(files_per_day, bool) or not isinstance(files_per_day, (int, np.integer)) or files_per_day < 1:
        raise ValueError(f"files_per_day must be a positive integer, got {files_per_day!r}")
    files_per_day = int(files_per_day)
    content_type = "application/vnd.apache.parquet" if fmt == "parquet" else "text/csv"

    uris: list[str] = []
    for day in sorted(frames, key=lambda d: _as_date(d, "frames key")):
        df = frames[day]
        if len(df) < files_per_day:
            raise ValueError(
                f"partition {_as_date(day)} has {len(df)} rows, fewer than files_per_day={files_per_day}; "
                "refusing to write empty part files"
            )
        bounds = np.linspace(0, len(df), files_per_day + 1).round().astype(int)
        for part in range(files_per_day):
            chunk = df.iloc[bounds[part] : bounds[part + 1]].reset_index(drop=True)
            key = partition_key(prefix, day, part, fmt)
            s3_client.put_object(Bucket=bucket, Key=key, Body=_serialise(chunk, fmt), ContentType=content_type)
            uris.append(f"s3://{bucket}/{key}")
    return uris
