"""Object storage through the plain S3 API (AWS, MinIO and the local moto server alike).

``ObjectStore`` wraps a boto3 S3 client that the caller builds (in Airflow: the Amazon
provider's S3Hook, which knows the connection's endpoint and credentials). Keys are
always built with :func:`join_key`, which refuses anything that could climb out of the
configured prefix.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class StorageError(RuntimeError):
    """An object could not be read or written; the message names the URI."""


def join_key(*parts: str) -> str:
    """Join key parts with '/', refusing empty, absolute or '..' components."""
    out: list[str] = []
    for part in parts:
        for piece in str(part).split("/"):
            if piece in ("", "."):
                continue
            if piece == "..":
                raise ValueError(f"object key part {part!r} would escape its prefix")
            out.append(piece)
    return "/".join(out)


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in URI: {uri!r}")
    return bucket, key


def s3_uri(bucket: str, *parts: str) -> str:
    return f"s3://{bucket}/{join_key(*parts)}"


def interval_token(start: dt.datetime, end: dt.datetime) -> str:
    """Folder name for a data interval: ``20260104T000000Z_20260111T000000Z``."""

    def fmt(t: dt.datetime) -> str:
        if t.tzinfo is not None:
            t = t.astimezone(dt.UTC)
        return t.strftime("%Y%m%dT%H%M%SZ")

    return f"{fmt(start)}_{fmt(end)}"


def json_safe(obj: Any) -> Any:
    """Make numpy scalars, NaN/inf, dates and tuples JSON-serialisable (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any) -> bytes:
    return json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False).encode()


def parquet_bytes(frame: Any) -> bytes:
    """The one Parquet serialisation used for every artefact (snappy, no index)."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, compression="snappy")
    return buf.getvalue()


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    etag: str
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_dict(self) -> dict:
        return {"uri": self.uri, "etag": self.etag, "size": self.size}


@dataclass(frozen=True)
class VersionedObject:
    """One read of an object: its bytes, the ETag of exactly those bytes, and the server's clock.

    ``server_time`` is the response's HTTP ``Date`` (the storage server's clock, whole
    seconds) and ``last_modified`` the object's ``Last-Modified`` (same clock, whole
    seconds): comparing the two measures an object's age without trusting the worker's clock.
    """

    uri: str
    data: bytes
    etag: str
    last_modified: dt.datetime | None
    server_time: dt.datetime | None


def _quoted(etag: str) -> str:
    """ETags travel quoted in If-Match headers (RFC 9110); accept them either way."""
    return etag if etag.startswith('"') else f'"{etag}"'


def _http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class ObjectStore:
    def __init__(self, client: Any, *, dvc_remote: str | None = None, credentials: Any = None):
        self.client = client
        # What the client signs with (botocore ReadOnlyCredentials or None = the default
        # chain), given by whoever built the client: botocore has no public accessor for a
        # client's credentials (boto/botocore#3068 added only a private shim), and DVC needs
        # them to reach the same endpoint as the same identity.
        self.credentials = credentials
        # The connection's DVC remote base (extra ``dvc_remote``), carried here so the steps
        # can find it without Airflow; see ``lineage.dvc_remote_for``.
        self.dvc_remote = dvc_remote

    # -- listing ----------------------------------------------------------------------
    def iter_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(bucket, obj["Key"], obj["ETag"].strip('"'), int(obj["Size"]))

    def head(self, uri: str) -> ObjectInfo | None:
        bucket, key = split_uri(uri)
        try:
            r = self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(bucket, key, r["ETag"].strip('"'), int(r["ContentLength"]))

    def exists(self, uri: str) -> bool:
        return self.head(uri) is not None

    # -- bytes ------------------------------------------------------------------------
    def get_bytes(self, uri: str) -> bytes:
        bucket, key = split_uri(uri)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise StorageError(f"object not found: {uri}") from None

    def put_bytes(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Write (overwrite) one object; returns its ETag. Overwrite keeps re-runs idempotent."""
        bucket, key = split_uri(uri)
        r = self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return r["ETag"].strip('"')

    # -- conditional writes (leases) ---------------------------------------------------
    # S3 answers a failed precondition with 412 PreconditionFailed, a conditional write that
    # lost a race with another conditional write on the same key with 409
    # ConditionalRequestConflict, and If-Match on a missing key with 404 NoSuchKey: for a
    # caller all three mean "the object is not the one you expected", never a transient fault.
    _LOST_CONDITION = frozenset(
        {"PreconditionFailed", "ConditionalRequestConflict", "412", "409", "NoSuchKey", "404", "NotFound"}
    )

    def _condition_failed(self, exc: Exception) -> bool:
        response = getattr(exc, "response", None) or {}
        return response.get("Error", {}).get("Code") in self._LOST_CONDITION

    def get_versioned(self, uri: str) -> VersionedObject | None:
        """The object's bytes with the ETag they belong to and the server's clock; None if absent.

        One GET returns body and ETag together, so the pair is consistent (a HEAD followed by
        a GET could pair one version's ETag with another's bytes).
        """
        bucket, key = split_uri(uri)
        try:
            r = self.client.get_object(Bucket=bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        headers = r.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
        return VersionedObject(
            uri=uri,
            data=r["Body"].read(),
            etag=r["ETag"].strip('"'),
            last_modified=r.get("LastModified"),
            server_time=_http_date(headers.get("date")),
        )

    def create_if_absent(self, uri: str, data: bytes, content_type: str = "application/json") -> str | None:
        """Create the object only if no object exists at ``uri`` (``If-None-Match: *``).

        Returns the new ETag, or None when an object was already there (nothing written)."""
        bucket, key = split_uri(uri)
        try:
            r = self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*")
        except self.client.exceptions.ClientError as exc:
            if self._condition_failed(exc):
                return None
            raise
        return r["ETag"].strip('"')

    def put_if_absent(self, uri: str, data: bytes, content_type: str = "application/json") -> bool:
        """Create the object only if no object exists at ``uri`` (S3 conditional write)."""
        return self.create_if_absent(uri, data, content_type) is not None

    def replace_if_match(self, uri: str, data: bytes, etag: str, content_type: str = "application/json") -> str | None:
        """Overwrite the object only if its current ETag is ``etag`` (``If-Match``).

        Returns the new ETag, or None when the object changed or vanished since ``etag`` was
        read (nothing written). Atomic on AWS S3 and MinIO; see ``locking`` for moto."""
        bucket, key = split_uri(uri)
        try:
            r = self.client.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type, IfMatch=_quoted(etag)
            )
        except self.client.exceptions.ClientError as exc:
            if self._condition_failed(exc):
                return None
            raise
        return r["ETag"].strip('"')

    def delete_if_match(self, uri: str, etag: str) -> bool:
        """Delete the object only if its current ETag is ``etag``; False (nothing deleted) otherwise."""
        bucket, key = split_uri(uri)
        try:
            self.client.delete_object(Bucket=bucket, Key=key, IfMatch=_quoted(etag))
        except self.client.exceptions.ClientError as exc:
            if self._condition_failed(exc):
                return False
            raise
        return True

    def delete(self, uri: str) -> None:
        """Delete one of our own objects unconditionally; raw data is never deleted."""
        bucket, key = split_uri(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def replace_dir(self, local_dir: str, uri_prefix: str) -> int:
        """Make ``uri_prefix`` hold exactly the files of ``local_dir`` (our own artefacts only):
        upload, then delete objects a previous run left that this one did not write."""
        bucket, key_prefix = split_uri(uri_prefix.rstrip("/") + "/")
        before = {o.key for o in self.iter_objects(bucket, key_prefix)}
        written = self.upload_dir(local_dir, uri_prefix)
        from pathlib import Path

        now = {key_prefix + p.relative_to(local_dir).as_posix() for p in Path(local_dir).rglob("*") if p.is_file()}
        for key in sorted(before - now):
            self.client.delete_object(Bucket=bucket, Key=key)
        return written

    def copy(self, src_uri: str, dst_uri: str) -> None:
        sb, sk = split_uri(src_uri)
        db, dk = split_uri(dst_uri)
        self.client.copy_object(Bucket=db, Key=dk, CopySource={"Bucket": sb, "Key": sk})

    # -- JSON -------------------------------------------------------------------------
    def put_json(self, uri: str, obj: Any) -> str:
        return self.put_bytes(uri, dumps(obj), "application/json")

    def get_json(self, uri: str) -> Any:
        return json.loads(self.get_bytes(uri))

    def get_json_or_none(self, uri: str) -> Any:
        try:
            return self.get_json(uri)
        except StorageError:
            return None

    # -- tables -----------------------------------------------------------------------
    def write_parquet(self, uri: str, frame: Any) -> str:
        return self.put_bytes(uri, parquet_bytes(frame))

    def read_parquet(self, uri: str, columns: list[str] | None = None) -> Any:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.get_bytes(uri)), columns=columns)

    def upload_dir(self, local_dir: str, uri_prefix: str) -> int:
        """Upload every file below ``local_dir`` under ``uri_prefix``; returns the count."""
        import mimetypes
        from pathlib import Path

        root = Path(local_dir)
        n = 0
        for path in sorted(root.rglob("*")):
            if path.is_file():
                rel = path.relative_to(root).as_posix()
                ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                self.put_bytes(uri_prefix.rstrip("/") + "/" + join_key(rel), path.read_bytes(), ctype)
                n += 1
        return n
