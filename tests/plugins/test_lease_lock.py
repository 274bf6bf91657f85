"""The champion lease on the real local S3 endpoint (moto server over HTTP).

What the storage server does with conditional requests is checked first (the lease is
built on it), then the lease itself: one holder per round among 8 racing contenders,
release by a non-holder changes nothing, a holder that outlived its TTL cannot act, and
renewal keeps a long holder's lease alive.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config

from include.retrainer.locking import LeaseLock, LeaseLost, LockTimeout
from include.retrainer.storage import ObjectStore, split_uri

BUCKET = "retrain-artifacts"


def _own_store(endpoint: str) -> ObjectStore:
    """A store with its own boto3 client (and connection pool), like a separate worker."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )
    return ObjectStore(client)


def _uri() -> str:
    return f"s3://{BUCKET}/tests/locks/{uuid.uuid4().hex}.lock"


def _dead_lease(store: ObjectStore, uri: str, fence: int) -> None:
    """The lease of a worker that died long ago (its TTL ran out; no heartbeat renews it)."""
    store.put_bytes(
        uri,
        json.dumps(
            {
                "state": "held",
                "owner": "dead-worker",
                "token": "dead",
                "fence": fence,
                "ttl_seconds": -60,
                "acquired_at": "2026-01-01T00:00:00+00:00",
                "expires_at": "2026-01-01T00:00:01+00:00",
                "write_id": uuid.uuid4().hex,
            }
        ).encode(),
        "application/json",
    )


# -- the storage server's conditional requests ---------------------------------------------
def test_s3_endpoint_honours_if_match_on_put_and_delete(store):
    uri = _uri()
    bucket, key = split_uri(uri)
    first = store.put_bytes(uri, b"v1")
    assert store.create_if_absent(uri, b"other") is None  # If-None-Match: * on an existing key
    assert store.replace_if_match(uri, b"v2", "0" * 32) is None  # wrong ETag: nothing written
    assert store.get_bytes(uri) == b"v1"
    second = store.replace_if_match(uri, b"v2", first)
    assert second is not None and second != first and store.get_bytes(uri) == b"v2"
    assert store.replace_if_match(uri, b"v3", first) is None  # a stale ETag no longer matches
    assert store.get_bytes(uri) == b"v2"
    assert store.delete_if_match(uri, first) is False  # conditional delete with a stale ETag
    assert store.exists(uri)
    assert store.delete_if_match(uri, second) is True
    assert not store.exists(uri)
    assert store.replace_if_match(uri, b"v4", second) is None  # If-Match on a missing key
    assert not store.exists(uri)
    # The raw HTTP answers, as S3 documents them: 412 for a failed condition.
    with pytest.raises(store.client.exceptions.ClientError) as failed:
        store.client.put_object(Bucket=bucket, Key=key + "x", Body=b"a", IfNoneMatch="*")
        store.client.put_object(Bucket=bucket, Key=key + "x", Body=b"b", IfNoneMatch="*")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_reads_carry_the_server_clock(store):
    uri = _uri()
    store.put_bytes(uri, b"x")
    obj = store.get_versioned(uri)
    assert obj.last_modified is not None and obj.server_time is not None
    assert 0 <= (obj.server_time - obj.last_modified).total_seconds() < 30


# -- the lease -------------------------------------------------------------------------
def test_eight_contenders_on_an_expired_lease_one_holder_every_round(moto_server, store):
    uri = _uri()
    stores = [_own_store(moto_server) for _ in range(8)]
    for rnd in range(20):
        _dead_lease(store, uri, fence=100 + rnd)
        barrier = threading.Barrier(len(stores))
        holders: list[LeaseLock] = []
        errors: list[BaseException] = []

        def contend(i: int, barrier=barrier, holders=holders, errors=errors) -> None:  # bound per round
            lock = LeaseLock(
                stores[i], uri, f"worker-{i}", ttl_seconds=60, wait_seconds=0, poll_seconds=0.05, heartbeat=False
            )
            barrier.wait()
            try:
                lock.acquire()
                holders.append(lock)
            except LockTimeout:
                pass
            except BaseException as exc:  # anything else fails the test below, with its cause
                errors.append(exc)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(holders) == 1, f"round {rnd}: {len(holders)} holders {[h.owner for h in holders]}"
        stored = json.loads(store.get_bytes(uri))
        assert (stored["token"], stored["fence"]) == (holders[0].token, 100 + rnd + 1)
        assert holders[0].fence == 100 + rnd + 1


def test_live_lease_excludes_and_release_frees_it_keeping_the_fence(store):
    uri = _uri()
    first = LeaseLock(store, uri, "first", ttl_seconds=60)
    assert first.acquire() == 1
    with pytest.raises(LockTimeout, match="held by first"):
        LeaseLock(store, uri, "second", wait_seconds=0.5, poll_seconds=0.1).acquire()
    assert first.release() is True
    assert store.get_json(uri)["state"] == "released"
    with LeaseLock(store, uri, "second", wait_seconds=1) as second:
        assert second.fence == 2  # the counter survived the release
        assert store.get_json(uri)["owner"] == "second"
    assert second.state == LeaseLock.RELEASED


def test_release_by_a_non_holder_changes_nothing(moto_server, store):
    uri = _uri()
    holder = LeaseLock(store, uri, "holder", ttl_seconds=60, heartbeat=False)
    holder.acquire()
    before = store.get_versioned(uri)

    never_acquired = LeaseLock(_own_store(moto_server), uri, "bystander", ttl_seconds=60)
    assert never_acquired.release() is False
    # A stale holder: it thinks it holds the lease, but its ETag is an old one.
    stale = LeaseLock(_own_store(moto_server), uri, "stale", ttl_seconds=60, heartbeat=False)
    stale._state, stale._etag, stale._fence = LeaseLock.HELD, "0" * 32, 1
    assert stale.release() is False

    after = store.get_versioned(uri)
    assert (after.etag, after.data) == (before.etag, before.data)
    assert json.loads(after.data)["owner"] == "holder"
    assert holder.ensure_held() == holder.fence
    assert holder.release() is True


def test_holder_paused_past_its_ttl_loses_the_lease(moto_server, store):
    uri = _uri()
    # A frozen process runs no heartbeat either: model it with heartbeat off.
    paused = LeaseLock(store, uri, "paused", ttl_seconds=1, heartbeat=False)
    paused.acquire()
    time.sleep(2.6)  # > ttl + 1 s of server-clock granularity
    taker = LeaseLock(_own_store(moto_server), uri, "taker", ttl_seconds=60, wait_seconds=5, poll_seconds=0.1)
    taker.acquire()
    assert taker.fence == paused.fence + 1
    with pytest.raises(LeaseLost, match="taker"):
        paused.ensure_held()
    assert paused.state == LeaseLock.LOST
    assert paused.release() is False
    assert store.get_json(uri)["owner"] == "taker"
    assert taker.ensure_held() == taker.fence
    taker.release()


def test_renewal_keeps_a_long_holder_safe(moto_server, store):
    uri = _uri()
    with LeaseLock(store, uri, "long", ttl_seconds=1.5, renew_every=0.3) as long_holder:
        # Three TTLs and more: without renewal the contender would take over (see below).
        with pytest.raises(LockTimeout, match="held by long"):
            LeaseLock(
                _own_store(moto_server), uri, "contender", ttl_seconds=60, wait_seconds=5, poll_seconds=0.2
            ).acquire()
        assert long_holder.state == LeaseLock.HELD
        assert long_holder.ensure_held() == long_holder.fence

    # The control: the same holder without a heartbeat loses the lease to the contender.
    silent = LeaseLock(store, uri, "silent", ttl_seconds=1.5, heartbeat=False)
    silent.acquire()
    contender = LeaseLock(_own_store(moto_server), uri, "contender", ttl_seconds=60, wait_seconds=5, poll_seconds=0.2)
    contender.acquire()
    with pytest.raises(LeaseLost):
        silent.ensure_held()
    contender.release()


def test_failed_renewal_marks_the_lock_lost(moto_server, store):
    uri = _uri()
    lock = LeaseLock(store, uri, "holder", ttl_seconds=60, renew_every=0.2)
    lock.acquire()
    # Somebody overwrites the lease (an operator's hand edit, a broken peer): the next
    # heartbeat's conditional write fails and the lock learns it is no longer the holder.
    _dead_lease(_own_store(moto_server), uri, fence=99)
    deadline = time.monotonic() + 5
    while lock.state == LeaseLock.HELD and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.state == LeaseLock.LOST
    with pytest.raises(LeaseLost):
        lock.ensure_held()
    assert lock.release() is False
    assert store.get_json(uri)["owner"] == "dead-worker"


def test_a_lease_in_the_earlier_format_is_respected_then_taken_over(store):
    uri = _uri()
    store.put_bytes(
        uri,
        json.dumps(
            {
                "owner": "old-code",
                "token": "t",
                "acquired_at": "2026-01-01T00:00:00+00:00",
                "expires_at": "2026-01-01T00:10:00+00:00",
            }
        ).encode(),
    )
    # Written just now with a 10-minute TTL (expires_at - acquired_at): still held.
    with pytest.raises(LockTimeout, match="held by old-code"):
        LeaseLock(store, uri, "new", wait_seconds=0.3, poll_seconds=0.1).acquire()
