"""SeaweedFS (``weed server``, the persistent object store of the Celery topology) does what
the project relies on: conditional writes for the champion lease (If-None-Match / If-Match on
PutObject, evaluated atomically under a race), multipart uploads, listing with prefixes,
delimiters and pagination, credentials enforced, and data that survives a restart.

One real ``weed server`` per module, on free ports, with its data in a temp dir.
"""

from __future__ import annotations

import json
import threading
import uuid

import boto3
import pytest
from botocore.config import Config

from include.retrainer.locking import LeaseLock, LockTimeout
from include.retrainer.storage import ObjectStore, split_uri
from scripts import services

BUCKET = "retrain-artifacts"
pytestmark = pytest.mark.timeout(600)


def _client(endpoint: str, key: str = "test", secret: str = "test"):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


class Weed:
    def __init__(self, data_dir, log):
        self.data_dir, self.log = data_dir, log
        self.port = services.free_port()
        self.ports: dict[str, int] = {}
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc, self.ports = services.start_seaweedfs(self.port, self.data_dir, self.log, ports=self.ports)

    def stop(self) -> None:
        if self.proc is not None:
            services.stop_group(self.proc.pid, grace=services.SEAWEED_STOP_GRACE)
            self.proc = None


@pytest.fixture(scope="module")
def weed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weed")
    server = Weed(folder / "data", folder / "weed.log")
    server.start()
    services.create_buckets(server.endpoint)
    yield server
    server.stop()


@pytest.fixture
def wstore(weed) -> ObjectStore:
    return ObjectStore(_client(weed.endpoint))


def _uri() -> str:
    return f"s3://{BUCKET}/tests/locks/{uuid.uuid4().hex}.lock"


def test_conditional_put_if_none_match_and_if_match(wstore):
    uri = _uri()
    bucket, key = split_uri(uri)
    first = wstore.create_if_absent(uri, b"v1")
    assert first is not None
    assert wstore.create_if_absent(uri, b"other") is None  # If-None-Match: * on an existing key
    assert wstore.get_bytes(uri) == b"v1"
    assert wstore.replace_if_match(uri, b"v2", "0" * 32) is None  # wrong ETag: nothing written
    assert wstore.get_bytes(uri) == b"v1"
    second = wstore.replace_if_match(uri, b"v2", first)
    assert second is not None and second != first and wstore.get_bytes(uri) == b"v2"
    assert wstore.replace_if_match(uri, b"v3", first) is None  # a stale ETag no longer matches
    assert wstore.get_bytes(uri) == b"v2"
    assert wstore.replace_if_match(f"{uri}.missing", b"v4", second) is None  # If-Match on a missing key
    assert not wstore.exists(f"{uri}.missing")
    with pytest.raises(wstore.client.exceptions.ClientError) as failed:
        wstore.client.put_object(Bucket=bucket, Key=key, Body=b"b", IfNoneMatch="*")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_conditional_put_under_a_race_lets_exactly_one_writer_through(weed):
    """8 clients race the same If-None-Match / If-Match write: the server must pick one."""
    stores = [ObjectStore(_client(weed.endpoint)) for _ in range(8)]
    base = f"s3://{BUCKET}/tests/race/{uuid.uuid4().hex}"
    for rnd in range(15):
        uri = f"{base}/{rnd}"
        seed = stores[0].create_if_absent(uri, b"seed") if rnd % 2 else None
        barrier = threading.Barrier(len(stores))
        winners: list[int] = []

        def write(i: int, barrier=barrier, uri=uri, seed=seed, winners=winners) -> None:  # this round's
            barrier.wait()
            body = f"writer-{i}".encode()
            etag = stores[i].replace_if_match(uri, body, seed) if seed else stores[i].create_if_absent(uri, body)
            if etag is not None:
                winners.append(i)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        kind = "If-Match" if seed else "If-None-Match"
        assert len(winners) == 1, f"round {rnd} ({kind}): {len(winners)} writers succeeded"
        assert stores[0].get_bytes(uri) == f"writer-{winners[0]}".encode()


def test_lease_lock_has_one_holder_per_round_on_seaweedfs(weed, wstore):
    uri = _uri()
    stores = [ObjectStore(_client(weed.endpoint)) for _ in range(6)]
    for rnd in range(8):
        wstore.put_bytes(
            uri,
            json.dumps(
                {
                    "state": "held",
                    "owner": "dead-worker",
                    "token": "dead",
                    "fence": 10 + rnd,
                    "ttl_seconds": -60,
                    "acquired_at": "2026-01-01T00:00:00+00:00",
                    "write_id": uuid.uuid4().hex,
                }
            ).encode(),
            "application/json",
        )
        barrier = threading.Barrier(len(stores))
        holders: list[LeaseLock] = []
        errors: list[BaseException] = []

        def contend(i: int, barrier=barrier, holders=holders, errors=errors) -> None:  # this round's
            lock = LeaseLock(
                stores[i], uri, f"worker-{i}", ttl_seconds=60, wait_seconds=0, poll_seconds=0.05, heartbeat=False
            )
            barrier.wait()
            try:
                lock.acquire()
                holders.append(lock)
            except LockTimeout:
                pass
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(holders) == 1, f"round {rnd}: {[h.owner for h in holders]}"
        assert json.loads(wstore.get_bytes(uri))["fence"] == 10 + rnd + 1
        holders[0].release()
        assert json.loads(wstore.get_bytes(uri))["state"] == "released"


def test_multipart_upload_and_listing(weed):
    client = _client(weed.endpoint)
    prefix = f"tests/mpu/{uuid.uuid4().hex}"
    part = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB, the S3 minimum for non-last parts
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}/big.bin")
    parts = []
    for n, body in enumerate((part, part, b"tail"), start=1):
        etag = client.upload_part(
            Bucket=BUCKET, Key=f"{prefix}/big.bin", UploadId=upload["UploadId"], PartNumber=n, Body=body
        )["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    client.complete_multipart_upload(
        Bucket=BUCKET, Key=f"{prefix}/big.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    got = client.get_object(Bucket=BUCKET, Key=f"{prefix}/big.bin")["Body"].read()
    assert got == part + part + b"tail"

    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        for name in ("a.parquet", "b.parquet"):
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/dt={day}/{name}", Body=b"x")
    top = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == [f"{prefix}/dt=2026-01-0{d}/" for d in (1, 2, 3)]
    assert [o["Key"] for o in top["Contents"]] == [f"{prefix}/big.bin"]
    keys, token = [], None
    while True:  # pagination, two keys per page
        page = client.list_objects_v2(
            Bucket=BUCKET, Prefix=f"{prefix}/dt=", MaxKeys=2, **({"ContinuationToken": token} if token else {})
        )
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]
    assert keys == sorted(
        f"{prefix}/dt={d}/{n}" for d in ("2026-01-01", "2026-01-02", "2026-01-03") for n in ("a.parquet", "b.parquet")
    )
    assert ObjectStore(client).head(f"s3://{BUCKET}/{prefix}/big.bin").size == len(got)


def test_unknown_credentials_are_refused(weed):
    client = _client(weed.endpoint, key="intruder", secret="wrong")
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.put_object(Bucket=BUCKET, Key="tests/intruder", Body=b"x")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_objects_survive_a_restart(weed):
    client = _client(weed.endpoint)
    key = f"tests/persist/{uuid.uuid4().hex}"
    client.put_object(Bucket=BUCKET, Key=key, Body=b"still here")
    weed.stop()
    # A clean stop (the filer closed its store, the volume server stopped), not a kill.
    assert "Shut down successfully" in weed.log.read_text(errors="replace")
    weed.start()
    client = _client(weed.endpoint)
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"still here"
    assert {b["Name"] for b in client.list_buckets()["Buckets"]} >= set(services.BUCKETS)
