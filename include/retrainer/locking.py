"""A lease lock in object storage, so champion moves are serialized across workers.

The Airflow pool ``model_promotion`` already runs one promotion at a time within one
Airflow; the lease also covers manual tasks, other Airflow deployments and retries after a
worker died mid-promotion. It relies on S3 conditional writes (``If-None-Match: *``),
which AWS S3, MinIO and moto support. A lease whose holder died expires after ``ttl``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

from include.retrainer.storage import ObjectStore


class LockTimeout(RuntimeError):
    """The lock stayed held by someone else for longer than we were willing to wait."""


class LeaseLock:
    def __init__(self, store: ObjectStore, uri: str, owner: str, ttl_seconds: float = 600, wait_seconds: float = 300,
                 poll_seconds: float = 0.5):
        self.store, self.uri, self.owner = store, uri, owner
        self.ttl, self.wait, self.poll = ttl_seconds, wait_seconds, poll_seconds
        self.token = uuid.uuid4().hex

    def _body(self) -> bytes:
        now = dt.datetime.now(dt.timezone.utc)
        return json.dumps({
            "owner": self.owner,
            "token": self.token,
            "acquired_at": now.isoformat(),
            "expires_at": (now + dt.timedelta(seconds=self.ttl)).isoformat(),
        }).encode()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        holder: dict = {}
        while True:
            if self.store.put_if_absent(self.uri, self._body()):
                return
            holder = self.store.get_json_or_none(self.uri) or {}
            expires = holder.get("expires_at")
            if expires and dt.datetime.fromisoformat(expires) < dt.datetime.now(dt.timezone.utc):
                # The holder died without releasing: break the expired lease and try again.
                self.store.delete(self.uri)
                continue
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"lock {self.uri} held by {holder.get('owner', '?')} since {holder.get('acquired_at', '?')}; "
                    f"gave up after {self.wait:.0f}s"
                )
            time.sleep(self.poll)

    def release(self) -> None:
        holder = self.store.get_json_or_none(self.uri) or {}
        if holder.get("token") == self.token:
            self.store.delete(self.uri)

    def __enter__(self) -> "LeaseLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
