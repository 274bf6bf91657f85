"""A partition file whose header names a column twice is refused with its name, before pandas renames it."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.retrainer.config import DataSpec
from include.retrainer.fetch import BadPartitionError, _read_file
from include.retrainer.storage import ObjectStore
from include.retrainer.validation import _count_duplicated_rows


@pytest.fixture
def store(s3):
    s3.create_bucket(Bucket="cols")
    return ObjectStore(s3)


def _put(store, s3, key: str, payload: bytes):
    s3.put_object(Bucket="cols", Key=key, Body=payload)
    return store.head(f"s3://cols/{key}")


def _data(**kw) -> DataSpec:
    return DataSpec(bucket="cols", prefix="x", **kw)


def test_csv_with_a_repeated_column_is_refused_by_name(store, s3):
    obj = _put(store, s3, "x/dt=2026-11-01/part-000.csv", b"ts,a,b,a\n2026-11-01,1,2,3\n")
    with pytest.raises(BadPartitionError, match=r"part-000.csv: its header names 1 column\(s\) more than once: 'a'"):
        _read_file(store, obj, _data())


def test_csv_unnamed_columns_are_not_repeats(store, s3):
    # pandas names empty header cells itself ("Unnamed: 0"); an exported index often has none
    obj = _put(store, s3, "x/dt=2026-11-02/part-000.csv", b",ts,a,\n0,2026-11-02,1,5\n")
    frame = _read_file(store, obj, _data())
    assert list(frame.columns[1:3]) == ["ts", "a"] and frame.shape == (1, 4)


def test_parquet_with_a_repeated_column_is_refused_by_name(store, s3):
    table = pa.table([pa.array([1, 2]), pa.array([3, 4]), pa.array([5, 6])], names=["ts", "b", "b"])
    buf = io.BytesIO()
    pq.write_table(table, buf)
    obj = _put(store, s3, "x/dt=2026-11-03/part-000.parquet", buf.getvalue())
    with pytest.raises(BadPartitionError, match=r"more than once: 'b'"):
        _read_file(store, obj, _data())


def test_duplicate_row_count_handles_repeated_labels():
    # A frame built in code (not read by fetch) may still repeat a label: count, do not crash.
    df = pd.DataFrame([[1, 2, 2], [1, 2, 2], [1, 3, 2]], columns=["a", "b", "b"])
    assert _count_duplicated_rows(df) == int(df.duplicated().sum()) == 1
