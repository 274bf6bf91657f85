"""A lease lock in object storage, so champion moves are serialized across workers.

The Airflow pool ``model_promotion`` already runs one promotion at a time within one
Airflow; the lease also covers manual tasks, other Airflow deployments and retries after a
worker died mid-promotion.

Protocol (one JSON object per lock, never deleted once created):

* **acquire**: read the object with its ETag. Absent -> create it with ``If-None-Match: *``.
  Released, or expired -> overwrite it with ``If-Match: <the ETag just read>``. Of any
  number of contenders that read the same state, the storage server lets exactly one
  conditional write through; the others get 412 and re-read. There is no
  delete-then-create step, so a contender can never remove a lease somebody else has just
  taken (the bug this replaces: two holders at once in 4-8 of 20 rounds of 8 threads).
  The winner reads the object back once to confirm (see *moto* below).
* **fencing token**: the body carries ``fence``, incremented on every acquisition (kept
  across releases because release rewrites the object instead of deleting it). The
  promotion tags the version it promotes with it.
* **renew**: a heartbeat thread rewrites the lease every ``ttl/3`` with ``If-Match`` on
  the ETag of our previous write. A 412 means somebody took the lease over: the lock
  becomes LOST at once. Transient errors are retried until the lease would have expired
  by our own (conservative, monotonic) clock, then the lock becomes LOST too.
* **ensure_held**: the check just before a protected action (the alias move) is one more
  conditional renewal: if it succeeds we held the lease at that instant and have a full
  TTL ahead; otherwise :class:`LeaseLost` (retryable) and the action does not happen.
* **release**: a conditional write of a ``released`` record against the ETag of our last
  write. A holder that lost the lease, or an instance that never held it, changes nothing.

Expiry is judged on the storage server's clock: ``Date`` of the read minus the object's
``Last-Modified``, both whole seconds, so a lease counts as expired only when that age is
at least ``ttl + 1`` s. A worker with a skewed clock can neither break a live lease early
nor keep a dead one alive.

Residual window: MLflow has no compare-and-set on aliases (``set_registered_model_alias``
moves unconditionally, no expected-version argument; the nearest upstream request,
mlflow/mlflow#3016 "Atomic Chained Stage Transitioning", was about stages and closed
without one; none for aliases was found). Between the last
successful ``ensure_held`` and the moment MLflow applies the alias move, the holder must
not be frozen for longer than the TTL (GC pause, SIGSTOP, VM suspend); the heartbeat keeps
renewing while the process runs, so a slow MLflow call alone does not open the window.
The fencing token on the promoted version makes any such overlap visible afterwards.

moto (the local S3 stand-in, 5.2.5) honours ``If-Match`` / ``If-None-Match`` on PutObject
and ``If-Match`` on DeleteObject, but checks the condition in the request handler and then
writes without a lock: two requests that interleave exactly between check and write can
both succeed. Measured with 8 threads racing one conditional PUT: 0 double grants in 100
rounds at Python's default thread switch interval, 6 in 200 with the moto server's switch
interval forced to 1 us. Under that same stress the lease itself (with its read-back
after acquiring) had 0 double holders in 200 rounds; the read-back narrows the window but
cannot close it. AWS S3 and MinIO evaluate the condition atomically, which this protocol
relies on in production.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from include.retrainer.storage import ObjectStore, VersionedObject

log = logging.getLogger(__name__)

#: Whole-second timestamps on both sides of an age measurement: add this before calling a
#: lease expired, so a lease is never broken early.
_CLOCK_GRANULARITY_S = 1.0


class LockTimeout(RuntimeError):
    """The lock stayed held by someone else for longer than we were willing to wait."""


class LeaseLost(RuntimeError):
    """We no longer hold the lease (taken over after expiring, or not renewable): the protected
    action was not done. Not permanent: a retry acquires the lease again and re-checks."""


@dataclass(frozen=True)
class LeaseRecord:
    """What the lock object says, as read at one instant."""

    state: str  # "held" | "released"
    owner: str
    token: str
    fence: int
    ttl_seconds: float
    acquired_at: str
    write_id: str
    etag: str
    age_seconds: float | None  # on the storage server's clock; None when it cannot be measured

    @property
    def expired(self) -> bool:
        if self.age_seconds is None:
            return False  # never break a lease whose age is unknown; it can still be released
        return self.age_seconds >= self.ttl_seconds + _CLOCK_GRANULARITY_S

    @property
    def free(self) -> bool:
        return self.state == "released" or self.expired

    @classmethod
    def parse(cls, obj: VersionedObject, default_ttl: float) -> LeaseRecord:
        try:
            body = json.loads(obj.data)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            body = {}  # unreadable: treat as held by an unknown owner until it expires
        ttl = body.get("ttl_seconds")
        if ttl is None and body.get("acquired_at") and body.get("expires_at"):
            # Written by the earlier lock format, which stored only the two instants.
            try:
                ttl = (
                    dt.datetime.fromisoformat(body["expires_at"]) - dt.datetime.fromisoformat(body["acquired_at"])
                ).total_seconds()
            except (TypeError, ValueError):
                ttl = None
        try:
            fence = int(body.get("fence") or 0)
        except (TypeError, ValueError):
            fence = 0
        return cls(
            state="released" if body.get("state") == "released" else "held",
            owner=str(body.get("owner", "?")),
            token=str(body.get("token", "")),
            fence=fence,
            ttl_seconds=float(default_ttl if ttl is None else ttl),
            acquired_at=str(body.get("acquired_at", "?")),
            write_id=str(body.get("write_id", "")),
            etag=obj.etag,
            age_seconds=_age_seconds(obj),
        )


def _age_seconds(obj: VersionedObject) -> float | None:
    if obj.last_modified is None:
        return None
    # The server's own Date header; the worker's clock only when the server sent none.
    now = obj.server_time or dt.datetime.now(dt.UTC)
    return (now - obj.last_modified).total_seconds()


class LeaseLock:
    """Mutual exclusion through one object in S3-compatible storage; see the module doc.

    ``with LeaseLock(...) as lock:`` acquires (waiting up to ``wait_seconds``), renews in
    the background while the block runs, and releases on exit. Call :meth:`ensure_held`
    immediately before the action the lock protects; :attr:`fence` is the fencing token.
    """

    IDLE, HELD, LOST, RELEASED = "idle", "held", "lost", "released"

    def __init__(
        self,
        store: ObjectStore,
        uri: str,
        owner: str,
        ttl_seconds: float = 600,
        wait_seconds: float = 300,
        poll_seconds: float = 0.5,
        *,
        renew_every: float | None = None,
        heartbeat: bool = True,
    ):
        if ttl_seconds < 0 or wait_seconds < 0 or poll_seconds <= 0:
            raise ValueError(f"lease {uri}: ttl_seconds and wait_seconds must be >= 0 and poll_seconds > 0")
        self.store, self.uri, self.owner = store, uri, owner
        self.ttl, self.wait, self.poll = float(ttl_seconds), float(wait_seconds), float(poll_seconds)
        self.renew_every = float(renew_every) if renew_every is not None else self.ttl / 3
        self.heartbeat = heartbeat and self.ttl > 0 and self.renew_every > 0
        self.token = uuid.uuid4().hex
        self._mutex = threading.RLock()
        self._state = self.IDLE
        self._lost_reason = ""
        self._etag = ""
        self._fence = 0
        self._acquired_at = ""
        self._valid_until = 0.0  # monotonic; our conservative view of when the lease expires
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state --------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def fence(self) -> int:
        """Fencing token of our acquisition (0 before the first one)."""
        return self._fence

    def current(self) -> LeaseRecord | None:
        """The lock object as stored now (None if it was never created)."""
        obj = self.store.get_versioned(self.uri)
        return LeaseRecord.parse(obj, self.ttl) if obj is not None else None

    # -- writing ------------------------------------------------------------------------
    def _body(self, state: str, fence: int, write_id: str) -> bytes:
        now = dt.datetime.now(dt.UTC)
        body = {
            "schema": 2,
            "state": state,
            "owner": self.owner,
            "token": self.token,
            "fence": fence,
            "ttl_seconds": self.ttl,
            "acquired_at": self._acquired_at or now.isoformat(),
            "written_at": now.isoformat(),
            # For people reading the object; expiry itself is judged on the server's clock.
            "expires_at": (now + dt.timedelta(seconds=self.ttl)).isoformat(),
            "write_id": write_id,
        }
        return json.dumps(body, sort_keys=True).encode()

    def _write(self, state: str, fence: int, expected_etag: str | None) -> str | None:
        """One conditional write; the new ETag, or None if the object was not as expected.

        boto3 retries a request whose answer was lost; the retry then fails its precondition
        although the first attempt succeeded. So a failed condition is checked against what
        is stored: our own ``write_id`` there means the write did happen.
        """
        write_id = uuid.uuid4().hex
        data = self._body(state, fence, write_id)
        if expected_etag is None:
            etag = self.store.create_if_absent(self.uri, data)
        else:
            etag = self.store.replace_if_match(self.uri, data, expected_etag)
        if etag is None:
            now = self.current()
            if now is not None and now.write_id == write_id:
                return now.etag
        return etag

    # -- acquire ------------------------------------------------------------------------
    def acquire(self) -> int:
        """Take the lease, waiting up to ``wait_seconds`` for a live holder; returns the fence."""
        if self._state == self.HELD:
            raise RuntimeError(f"lease {self.uri} is already held by this LeaseLock ({self.owner})")
        deadline = time.monotonic() + self.wait
        while True:
            obj = self.store.get_versioned(self.uri)
            record = LeaseRecord.parse(obj, self.ttl) if obj is not None else None
            if record is None or record.free:
                fence = (record.fence if record else 0) + 1
                self._acquired_at = dt.datetime.now(dt.UTC).isoformat()
                started = time.monotonic()
                etag = self._write("held", fence, record.etag if record else None)
                if etag is not None and self._confirmed(etag):
                    self._on_acquired(etag, fence, started, record)
                    return fence
                self._acquired_at = ""
                continue  # another contender won this state: re-read to learn who
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"lock {self.uri} held by {record.owner} since {record.acquired_at} (fence {record.fence}); "
                    f"gave up after {self.wait:.0f}s"
                )
            time.sleep(self.poll)

    def _confirmed(self, etag: str) -> bool:
        """Read back our write: catches the double grant of a store whose conditions are not
        atomic (moto); on S3 and MinIO it always confirms."""
        now = self.store.get_versioned(self.uri)
        return now is not None and now.etag == etag

    def _on_acquired(self, etag: str, fence: int, started: float, previous: LeaseRecord | None) -> None:
        with self._mutex:
            self._etag, self._fence, self._state, self._lost_reason = etag, fence, self.HELD, ""
            self._valid_until = started + self.ttl
        if previous is not None and previous.state == "held":
            log.warning(
                "lease %s: took over the expired lease of %s (fence %d, %.0fs old, ttl %.0fs)",
                self.uri,
                previous.owner,
                previous.fence,
                previous.age_seconds or -1,
                previous.ttl_seconds,
            )
        log.info("lease %s acquired by %s (fence %d)", self.uri, self.owner, fence)
        if self.heartbeat:
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._heartbeat, args=(self._stop,), name=f"lease-heartbeat-{self.owner}", daemon=True
            )
            self._thread.start()

    # -- renew --------------------------------------------------------------------------
    def _mark_lost(self, reason: str) -> None:
        self._state, self._lost_reason = self.LOST, reason
        log.error("lease %s LOST by %s (fence %d): %s", self.uri, self.owner, self._fence, reason)

    def _renew(self) -> None:
        """Extend the lease with a conditional write; LeaseLost if it is no longer ours."""
        with self._mutex:
            if self._state != self.HELD:
                raise LeaseLost(
                    f"lease {self.uri} is not held by {self.owner} "
                    f"({self._state}{': ' + self._lost_reason if self._lost_reason else ''})"
                )
            started = time.monotonic()
            etag = self._write("held", self._fence, self._etag)
            if etag is None:
                other = self.current()
                who = (
                    f"now {other.state} by {other.owner} with fence {other.fence}"
                    if other is not None
                    else "the lock object is gone"
                )
                self._mark_lost(f"taken over after our lease expired ({who})")
                raise LeaseLost(f"lease {self.uri} of {self.owner} (fence {self._fence}) was lost: {who}")
            self._etag, self._valid_until = etag, started + self.ttl

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.renew_every):
            try:
                self._renew()
            except LeaseLost:
                return
            except Exception as exc:  # storage hiccup: keep trying while the lease can still be ours
                with self._mutex:
                    if self._state != self.HELD:
                        return
                    if time.monotonic() >= self._valid_until:
                        self._mark_lost(f"could not renew before the lease expired: {exc}")
                        return
                log.warning("lease %s: renewal failed, will retry: %s", self.uri, exc)

    def ensure_held(self) -> int:
        """Prove, right now, that the lease is ours (a conditional renewal) and return the fence.

        Raises :class:`LeaseLost` if it was taken over, lost earlier, or cannot be confirmed."""
        try:
            self._renew()
        except LeaseLost:
            raise
        except Exception as exc:
            raise LeaseLost(f"cannot confirm lease {self.uri} of {self.owner}: {exc}") from exc
        return self._fence

    # -- release ------------------------------------------------------------------------
    def _stop_heartbeat(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, self.renew_every))

    def release(self) -> bool:
        """Give the lease back if it is still ours; True when we released it.

        Never raises (it runs in ``__exit__``, where an error would hide the real one): a
        lease that cannot be released expires after its TTL.
        """
        self._stop_heartbeat()
        with self._mutex:
            if self._state != self.HELD:
                if self._state == self.LOST:
                    log.warning("lease %s: not releasing, it was lost (%s)", self.uri, self._lost_reason)
                return False
            try:
                etag = self._write("released", self._fence, self._etag)
            except Exception as exc:
                self._state = self.RELEASED
                log.warning("lease %s: release failed, it expires after %.0fs: %s", self.uri, self.ttl, exc)
                return False
            self._state = self.RELEASED
            if etag is None:
                log.warning("lease %s: taken over before release (fence %d); left untouched", self.uri, self._fence)
                return False
            return True

    def __enter__(self) -> LeaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"LeaseLock({self.uri!r}, owner={self.owner!r}, state={self._state}, fence={self._fence})"
