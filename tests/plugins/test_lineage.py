"""Training-data lineage with DVC against the real moto S3 server (and MLflow for the CLI).

Oracles are independent of DVC: ``hashlib`` for hashes, boto3 reading the object DVC 3's
documented layout (``files/md5/<2>/<30>``) predicts, and S3 bucket versioning to prove a
second push uploads nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from include.retrainer import lineage
from include.retrainer.lineage import LineageError

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "dvc-store"
SECRET = "s3cr3t-must-never-be-printed"  # moto accepts any credentials


def parquet_bytes(seed: int, rows: int = 500) -> bytes:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, rows),
            "charges": rng.normal(70, 20, rows).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "churned": rng.integers(0, 2, rows),
        }
    )
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, compression="snappy")
    return buf.getvalue()


def remote_kwargs(endpoint: str, bucket: str = BUCKET) -> dict:
    prefix = f"lineage-test-{uuid.uuid4().hex[:10]}"
    return {
        "remote_url": f"s3://{bucket}/{prefix}",
        "endpoint_url": endpoint,
        "access_key_id": "test",
        "secret_access_key": SECRET,
    }


def keys_under(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def prefix_of(remote_url: str) -> str:
    return remote_url.split("/", 3)[3]


def test_version_uses_dvc_layout_and_round_trips(moto_server, s3, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    data = parquet_bytes(1)
    kw = remote_kwargs(moto_server)
    env_before = {k: v for k, v in os.environ.items() if k.startswith("DVC_")}

    record = lineage.version_training_data(data, file_name="train.parquet", **kw)

    md5 = hashlib.md5(data).hexdigest()
    assert record.md5 == md5
    assert record.size == len(data)
    assert record.path == "train.parquet"
    assert record.remote_url == kw["remote_url"]
    prefix = prefix_of(kw["remote_url"])
    expected_key = f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"
    assert keys_under(s3, BUCKET, prefix) == [expected_key]
    assert s3.get_object(Bucket=BUCKET, Key=expected_key)["Body"].read() == data
    assert record.object_url == f"s3://{BUCKET}/{expected_key}"
    assert record.to_dict() == {
        "md5": md5,
        "size": len(data),
        "remote_url": kw["remote_url"],
        "path": "train.parquet",
        "object_url": f"s3://{BUCKET}/{expected_key}",
    }

    fetched = lineage.fetch_training_data(md5, **kw)
    assert fetched == data
    assert hashlib.sha256(fetched).hexdigest() == hashlib.sha256(data).hexdigest()

    # Credentials live in a deleted temp repo only; the process environment is restored.
    out, err = capfd.readouterr()
    assert SECRET not in out + err + caplog.text
    assert {k: v for k, v in os.environ.items() if k.startswith("DVC_")} == env_before


def test_versioning_twice_uploads_nothing(moto_server, s3):
    bucket = f"lineage-versioned-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    data = parquet_bytes(2)
    kw = remote_kwargs(moto_server, bucket)

    first = lineage.version_training_data(data, file_name="train.parquet", **kw)
    second = lineage.version_training_data(data, file_name="train.parquet", **kw)

    assert first == second
    versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
    assert [v["Key"] for v in versions] == [f"{prefix_of(kw['remote_url'])}/files/md5/{first.md5[:2]}/{first.md5[2:]}"]

    other = parquet_bytes(3)
    third = lineage.version_training_data(other, file_name="train.parquet", **kw)
    assert third.md5 == hashlib.md5(other).hexdigest() != first.md5
    assert len(s3.list_object_versions(Bucket=bucket).get("Versions", [])) == 2


def test_fetch_rejects_corrupt_object(moto_server, s3):
    data = parquet_bytes(4)
    kw = remote_kwargs(moto_server)
    record = lineage.version_training_data(data, file_name="train.parquet", **kw)
    key = record.object_url.split("/", 3)[3]
    s3.put_object(Bucket=BUCKET, Key=key, Body=data[:-10] + b"0123456789")

    with pytest.raises(LineageError, match=rf"md5 mismatch for {record.object_url}.*expected {record.md5}"):
        lineage.fetch_training_data(record.md5, **kw)


def test_fetch_missing_md5_names_object(moto_server):
    kw = remote_kwargs(moto_server)
    missing = hashlib.md5(b"never versioned " + uuid.uuid4().bytes).hexdigest()
    with pytest.raises(
        LineageError, match=rf"md5 {missing} is not in DVC remote {kw['remote_url']}.*files/md5/{missing[:2]}/"
    ):
        lineage.fetch_training_data(missing, **kw)


def test_fetch_all_digit_md5_is_not_read_as_a_number(moto_server):
    # YAML would load an unquoted all-digit md5 as an int; the error must still name the md5.
    kw = remote_kwargs(moto_server)
    with pytest.raises(LineageError, match="md5 1234567890123456789012345678901[2] is not in DVC remote"):
        lineage.fetch_training_data("12345678901234567890123456789012", **kw)


@pytest.mark.parametrize("bad", ["", "abc", "g" * 32, "0" * 31, "../" + "0" * 29])
def test_fetch_rejects_malformed_md5(bad):
    with pytest.raises(LineageError, match="not a DVC md5"):
        lineage.fetch_training_data(
            bad, remote_url="s3://dvc-store/x", endpoint_url=None, access_key_id=None, secret_access_key=None
        )


@pytest.mark.parametrize("name", ["", "dir/train.parquet", ".hidden", "train.parquet.dvc"])
def test_version_rejects_unsafe_file_names(name):
    with pytest.raises(LineageError, match="plain file name"):
        lineage.version_training_data(
            b"x",
            file_name=name,
            remote_url="s3://dvc-store/x",
            endpoint_url=None,
            access_key_id=None,
            secret_access_key=None,
        )


@pytest.mark.parametrize("url", ["/tmp/remote", "gs://bucket/x", "s3://"])
def test_rejects_non_s3_remotes(url):
    with pytest.raises(LineageError, match="s3://bucket"):
        lineage.version_training_data(
            b"x", file_name="t.parquet", remote_url=url, endpoint_url=None, access_key_id=None, secret_access_key=None
        )


def test_version_into_missing_bucket_fails_clearly(moto_server):
    kw = remote_kwargs(moto_server, bucket=f"no-such-bucket-{uuid.uuid4().hex[:8]}")
    with pytest.raises(LineageError, match=rf"could not version train.parquet .* in DVC remote {kw['remote_url']}"):
        lineage.version_training_data(b"payload", file_name="train.parquet", **kw)


def test_s3_settings_from_client(moto_server, s3):
    settings = lineage.s3_settings_from_client(s3)
    assert settings["endpoint_url"] == moto_server
    assert (settings["access_key_id"], settings["secret_access_key"]) == ("test", "test")
    assert settings["region"] == "us-east-1"


# --------------------------------------------------------------------------------------
# the documented command, end to end against MLflow + moto
# --------------------------------------------------------------------------------------
def run_cli(*args: str, tracking_uri: str, endpoint: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "reproduce_training_data.py"),
            *args,
            "--tracking-uri",
            tracking_uri,
            "--s3-endpoint",
            endpoint,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": ""},  # the script must find the project on its own
    )


def test_cli_reproduces_model_version_training_data(moto_server, s3, mlflow_server, tmp_path, capsys, monkeypatch):
    from mlflow import MlflowClient

    data = parquet_bytes(5, rows=2000)
    kw = remote_kwargs(moto_server)
    record = lineage.version_training_data(data, file_name="train.parquet", **kw)
    train_key = f"lineage-test/{uuid.uuid4().hex[:8]}/train.parquet"
    etag = s3.put_object(Bucket="retrain-artifacts", Key=train_key, Body=data)["ETag"].strip('"')
    train_uri = f"s3://retrain-artifacts/{train_key}"

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    name = f"lineage_cli_{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    tags = {
        "retrain.dvc_md5": record.md5,
        "retrain.dvc_remote": record.remote_url,
        "retrain.dvc_path": record.path,
        "retrain.train_data_uri": train_uri,
        "retrain.train_data_etag": etag,
        "retrain.code_version": "0.0.0+test",
        "retrain.config_hash": "cfg123",
    }
    mv = client.create_model_version(name, source=f"s3://mlflow-artifacts/{name}/model", tags=tags)
    client.create_model_version(name, source=f"s3://mlflow-artifacts/{name}/model2")  # no lineage tags
    client.set_registered_model_alias(name, "champion", str(mv.version))

    out = tmp_path / "repro.parquet"
    result = run_cli(
        "--model",
        name,
        "--version",
        str(mv.version),
        "--out",
        str(out),
        "--json",
        tracking_uri=mlflow_server,
        endpoint=moto_server,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    assert report["md5"] == hashlib.md5(data).hexdigest()
    assert report["size"] == len(data)
    assert report["current_object"] == "identical"
    assert report["recorded_etag_matches"] is True
    assert (report["code_version"], report["config_hash"]) == ("0.0.0+test", "cfg123")

    # In process from here (the same main() the command runs; saves interpreter start-ups).
    from scripts import reproduce_training_data as cli

    common = ["--tracking-uri", mlflow_server, "--s3-endpoint", moto_server]

    # By alias, text output, default file name under the stack's state folder (never the
    # working directory); the run's own copy has since been overwritten.
    s3.put_object(Bucket="retrain-artifacts", Key=train_key, Body=parquet_bytes(6))
    workdir = tmp_path / "alias"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("RETRAIN_LOCAL_DIR", str(tmp_path / "local"))
    assert cli.main(["--model", name, "--version", "champion", *common]) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "local" / "output" / f"{name}_v{mv.version}_train.parquet").read_bytes() == data
    assert list(workdir.iterdir()) == []
    assert f"sha256  {hashlib.sha256(data).hexdigest()}" in text
    assert f"md5     {hashlib.md5(data).hexdigest()} (verified)" in text
    assert "current object at train_data_uri: different" in text

    # Current layout: the lineage tags live on the MLflow run only (the version keeps a few);
    # the command reads them through the version's run. The run's config hash differs from the
    # old-style version's, so the report shows which tags were read.
    exp = client.create_experiment(f"exp_{name}")
    run = client.create_run(exp, tags={**tags, "retrain.config_hash": "cfg-on-run"})
    client.set_terminated(run.info.run_id)
    capsys.readouterr()  # MLflow prints "View run ... at <url>" on ending a run: not the command's output
    on_run = client.create_model_version(
        name, source=f"s3://mlflow-artifacts/{name}/model3", run_id=run.info.run_id, tags={"retrain.validated": "true"}
    )
    assert "retrain.dvc_md5" not in client.get_model_version(name, str(on_run.version)).tags
    s3.put_object(Bucket="retrain-artifacts", Key=train_key, Body=data)  # the run's copy, unchanged again
    run_out = tmp_path / "from_run.parquet"
    assert cli.main(["--model", name, "--version", str(on_run.version), "--out", str(run_out), "--json", *common]) == 0
    from_run = json.loads(capsys.readouterr().out)
    assert run_out.read_bytes() == data
    assert (from_run["md5"], from_run["train_data_uri"], from_run["config_hash"]) == (
        record.md5,
        train_uri,
        "cfg-on-run",
    )
    assert from_run["recorded_etag_matches"] is True and from_run["current_object"] == "identical"

    # Failure paths.
    assert cli.main(["--model", name, "--version", "2", "--out", str(tmp_path / "x"), *common]) == 2
    assert "carries no DVC lineage" in capsys.readouterr().err
    assert cli.main(["--model", name, "--version", "99", *common]) == 2
    assert "has no version or alias '99'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

    # Corrupted remote object: exit code 1, no output file.
    s3.put_object(Bucket=BUCKET, Key=record.object_url.split("/", 3)[3], Body=b"tampered")
    bad_out = tmp_path / "bad.parquet"
    assert cli.main(["--model", name, "--version", str(mv.version), "--out", str(bad_out), *common]) == 1
    assert "md5 mismatch" in capsys.readouterr().err
    assert not bad_out.exists()


# -- where the DVC remote comes from ----------------------------------------------------
class _Spec:
    def __init__(self, name: str, lineage_conf=None):
        self.name = name
        if lineage_conf is not None:
            self.lineage = lineage_conf


@pytest.mark.parametrize(
    ("spec", "connection", "env", "expected"),
    [
        # Nothing configured: the one documented default, one folder per model.
        (_Spec("churn"), None, {}, "s3://dvc-store/churn"),
        (_Spec("churn"), None, {"RETRAIN_DVC_REMOTE": "team-dvc"}, "s3://team-dvc/churn"),
        (_Spec("churn"), "s3://lake/dvc/", {"RETRAIN_DVC_REMOTE": "team-dvc"}, "s3://lake/dvc/churn"),
        # The model's own remote wins over connection and environment, and is used as given.
        (
            _Spec("churn", {"dvc_remote": "s3://churn-data/versions"}),
            "s3://lake/dvc",
            {"RETRAIN_DVC_REMOTE": "x-y"},
            "s3://churn-data/versions",
        ),
        (_Spec("churn", type("L", (), {"dvc_remote": "churn-only"})()), None, {}, "s3://churn-only"),
        # Blank values do not count as configured.
        (_Spec("churn", {"dvc_remote": ""}), "  ", {"RETRAIN_DVC_REMOTE": ""}, "s3://dvc-store/churn"),
    ],
)
def test_dvc_remote_comes_from_configuration(spec, connection, env, expected):
    assert lineage.dvc_remote_for(spec, connection_remote=connection, env=env) == expected


@pytest.mark.parametrize("bad", ["http://host/bucket", "s3://", "Bad_Bucket", "s3://ok-bucket/../escape", "gs://b/x"])
def test_dvc_remote_refuses_what_is_not_an_s3_bucket(bad):
    from include.retrainer.errors import PermanentError

    with pytest.raises(lineage.DvcRemoteConfigError, match="RETRAIN_DVC_REMOTE") as refused:
        lineage.dvc_remote_for(_Spec("churn"), env={"RETRAIN_DVC_REMOTE": bad})
    assert isinstance(refused.value, PermanentError) and isinstance(refused.value, LineageError)


def test_the_default_bucket_is_written_in_one_place_only():
    """``dvc-store`` may appear in code only as ``lineage.DEFAULT_DVC_BUCKET``."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("include", "plugins", "dags")
        for path in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "dvc-store" in line and not line.startswith("DEFAULT_DVC_BUCKET = ")
    ]
    assert offenders == []


def test_object_store_hook_reads_the_remote_from_the_connection_extra(moto_server, monkeypatch):
    from retrain_ops.hooks import ObjectStoreHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_DVC_TEST",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "test",
                "password": "test",
                "extra": {"endpoint_url": moto_server, "region_name": "us-east-1", "dvc_remote": "s3://lake/dvc"},
            }
        ),
    )
    store = ObjectStoreHook(aws_conn_id="dvc_test").store
    assert store.dvc_remote == "s3://lake/dvc"
    assert lineage.dvc_remote_for(_Spec("churn"), connection_remote=store.dvc_remote, env={}) == "s3://lake/dvc/churn"
    assert ObjectStoreHook(aws_conn_id="s3_data").store.dvc_remote is None  # the test connection sets none


def test_object_store_hook_shares_one_client_per_connection_and_rebuilds_it_when_the_connection_changes(
    moto_server, monkeypatch
):
    from retrain_ops.hooks import ObjectStoreHook

    def connection(extra: dict) -> str:
        base = {"endpoint_url": moto_server, "region_name": "us-east-1"}
        return json.dumps({"conn_type": "aws", "login": "test", "password": "test", "extra": {**base, **extra}})

    monkeypatch.setenv("AIRFLOW_CONN_SHARED_TEST", connection({"dvc_remote": "s3://lake/a"}))
    first, second = ObjectStoreHook(aws_conn_id="shared_test").store, ObjectStoreHook(aws_conn_id="shared_test").store
    assert first.client is second.client  # built once per process and connection
    assert first.credentials is not None and first.credentials.access_key == "test"
    first.put_bytes("s3://retrain-artifacts/shared-client-probe.txt", b"x")
    assert second.get_bytes("s3://retrain-artifacts/shared-client-probe.txt") == b"x"

    # Any edit of the connection (here its extra) gives a new client carrying the new settings.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHARED_TEST",
        connection({"dvc_remote": "s3://lake/b", "config_kwargs": {"retries": {"max_attempts": 2}}}),
    )
    changed = ObjectStoreHook(aws_conn_id="shared_test").store
    assert changed.client is not first.client
    assert changed.dvc_remote == "s3://lake/b"
    assert changed.client.meta.config.retries["total_max_attempts"] == 3
    assert first.client.meta.config.retries["total_max_attempts"] == 5  # our default: 4 retries

    # A forked child (e.g. a worker forking a task process) builds its own: the parent's client
    # and its connection pool are never shared across the fork.
    import retrain_ops.hooks as hooks

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports how many clients it inherited, then exits at once
        os.write(write, str(len(hooks._S3_CLIENTS)).encode())
        os._exit(0)
    os.close(write)
    inherited = os.read(read, 16).decode()
    os.waitpid(pid, 0)
    assert hooks._S3_CLIENTS and inherited == "0"
