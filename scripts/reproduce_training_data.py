#!/usr/bin/env python
"""Reproduce a model version's exact training data, byte for byte, from the DVC remote.

The training task versions every training set with DVC and tags the MLflow run that logged
the model version with ``retrain.dvc_md5`` / ``retrain.dvc_remote`` (plus
``retrain.train_data_uri`` and ``retrain.train_data_etag``, the run's own copy; versions
registered before these moved to the run carry them as version tags). This command reads
those tags (version first, then its run), pulls the bytes for that md5 from the DVC remote, verifies the md5,
writes the file and reports whether the run's own copy in S3 (if it is still there)
is still the same data.

Example (from the project root, local stack running)::

    python scripts/reproduce_training_data.py --model churn --version champion
    python scripts/reproduce_training_data.py --model churn --version 3 --out /tmp/train.parquet

``--version`` also accepts an alias (``champion``, ``challenger``). Defaults come from
``MLFLOW_TRACKING_URI`` and ``RETRAIN_S3_ENDPOINT``, else the running local stack
(``.local/stack.json``), else 127.0.0.1:5000 / :9000; ``--s3-endpoint ''`` means AWS itself.
The file goes to ``--out``, else ``.local/output/<model>_v<version>_<file name>`` (the stack's
state folder): never into the repository. Credentials come from ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``; only for a local endpoint (127.0.0.1 / localhost) do they
default to ``test``/``test``, otherwise boto's default chain (profile, IAM role) applies.

The same bytes can be fetched with the plain DVC CLI: in an empty directory run
``dvc init --no-scm``, ``dvc remote add -d store <retrain.dvc_remote>``,
``dvc remote modify store endpointurl <endpoint>``, write ``train.parquet.dvc`` with
``outs: [{md5: '<retrain.dvc_md5>', hash: md5, path: train.parquet}]`` and ``dvc pull``.

Exit codes: 0 reproduced and verified; 1 the data could not be fetched or failed
verification; 2 the version does not exist or carries no DVC lineage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])
if _PROJECT_ROOT not in sys.path:
    sys.path.insert(0, _PROJECT_ROOT)

from include.retrainer import lineage, registry  # noqa: E402  (light: heavy libs load lazily)
from scripts import services  # noqa: E402

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_DEFAULT_TRACKING_URI = "http://127.0.0.1:5000"
_DEFAULT_S3_ENDPOINT = "http://127.0.0.1:9000"


def default_output_dir() -> Path:
    """The stack's state folder, never the repository root."""
    return Path(services.read_state().get("output_dir") or services.local_dir() / "output")


def build_parser() -> argparse.ArgumentParser:
    state = services.running_state()
    p = argparse.ArgumentParser(description="Reproduce a registered model version's exact training data from DVC.")
    p.add_argument("--model", required=True, help="registered model name, e.g. churn")
    p.add_argument("--version", required=True, help="model version number, or an alias such as champion")
    p.add_argument(
        "--out", default=None, help="output file (default: .local/output/<model>_v<version>_<tracked file name>)"
    )
    p.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or state.get("mlflow_tracking_uri") or _DEFAULT_TRACKING_URI,
        help=f"MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI, else the running stack's, "
        f"else {_DEFAULT_TRACKING_URI})",
    )
    p.add_argument(
        "--s3-endpoint",
        default=os.environ.get("RETRAIN_S3_ENDPOINT") or state.get("s3_endpoint") or _DEFAULT_S3_ENDPOINT,
        help=f"S3 endpoint of the DVC remote (default: $RETRAIN_S3_ENDPOINT, else the running stack's, "
        f"else {_DEFAULT_S3_ENDPOINT}; '' for AWS)",
    )
    p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    p.add_argument("--json", action="store_true", help="print the report as one JSON object instead of text")
    return p


def is_local_endpoint(endpoint_url: str | None) -> bool:
    if not endpoint_url:
        return False
    return (urlparse(endpoint_url).hostname or "").lower() in _LOCAL_HOSTS


def credentials(endpoint_url: str | None) -> tuple[str | None, str | None, str | None]:
    """Key, secret, token from the environment; dummy ``test`` keys only for a local endpoint."""
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    token = os.environ.get("AWS_SESSION_TOKEN")
    if is_local_endpoint(endpoint_url):
        key = key or "test"
        secret = secret or "test"
    return key, secret, token


def s3_client(endpoint_url: str | None, region: str) -> Any:
    import boto3

    key, secret, token = credentials(endpoint_url)
    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if key and secret:
        kwargs.update(aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)
    return boto3.client("s3", **kwargs)


def resolve_version(client: Any, model: str, version: str) -> registry.VersionInfo | None:
    if version.isdigit():
        return registry.get_version(client, model, version)
    return registry.get_alias(client, model, version)


def compare_with_current(endpoint_url: str | None, region: str, uri: str | None, sha256: str) -> dict[str, Any]:
    """Is the run's own copy at ``retrain.train_data_uri`` still these bytes?"""
    from include.retrainer.storage import ObjectStore

    if not uri:
        return {"status": "unknown", "detail": "version has no retrain.train_data_uri tag"}
    try:
        store = ObjectStore(s3_client(endpoint_url, region))
        info = store.head(uri)
        if info is None:
            return {"status": "missing", "detail": f"{uri} no longer exists"}
        current = store.get_bytes(uri)
    except Exception as exc:  # reporting only: the reproduction itself already succeeded
        return {"status": "unreadable", "detail": f"{uri}: {type(exc).__name__}: {exc}"}
    same = hashlib.sha256(current).hexdigest() == sha256
    return {
        "status": "identical" if same else "different",
        "detail": f"{uri} ({len(current)} bytes, ETag {info.etag})",
        "etag": info.etag,
    }


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    endpoint = args.s3_endpoint or None
    client = registry.client_for(args.tracking_uri)
    version = resolve_version(client, args.model, args.version)
    if version is None:
        print(
            f"error: model '{args.model}' has no version or alias '{args.version}' at {args.tracking_uri}",
            file=sys.stderr,
        )
        return 2
    md5, remote = version.lineage_tag(client, "dvc_md5"), version.lineage_tag(client, "dvc_remote")
    if not md5 or not remote:
        print(
            f"error: {args.model} v{version.version} carries no DVC lineage "
            f"(tags {registry.TAG}dvc_md5={md5!r}, {registry.TAG}dvc_remote={remote!r} on the version and its run "
            f"{version.run_id}); "
            "it was registered before training data was versioned with DVC",
            file=sys.stderr,
        )
        return 2

    key, secret, token = credentials(endpoint)
    try:
        data = lineage.fetch_training_data(
            md5,
            remote_url=remote,
            endpoint_url=endpoint,
            access_key_id=key,
            secret_access_key=secret,
            session_token=token,
            region=args.region,
        )
    except lineage.LineageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    tracked_name = Path(version.lineage_tag(client, "dvc_path") or "train.parquet").name
    out = Path(args.out) if args.out else default_output_dir() / f"{args.model}_v{version.version}_{tracked_name}"
    write_atomically(out, data)
    sha256 = hashlib.sha256(data).hexdigest()
    recorded_etag = (version.lineage_tag(client, "train_data_etag") or "").strip('"') or None
    # A single-part upload's ETag is the MD5 of the object: a direct check that these are
    # the bytes the training task wrote (multipart ETags contain '-' and cannot be compared).
    etag_check = None if not recorded_etag or "-" in recorded_etag else recorded_etag == md5
    current = compare_with_current(endpoint, args.region, version.lineage_tag(client, "train_data_uri"), sha256)
    report = {
        "model": args.model,
        "version": version.version,
        "out": str(out.resolve()),
        "size": len(data),
        "md5": md5,
        "sha256": sha256,
        "dvc_remote": remote,
        "dvc_object": lineage.object_url(remote, md5),
        "train_data_uri": version.lineage_tag(client, "train_data_uri"),
        "train_data_etag": recorded_etag,
        "recorded_etag_matches": etag_check,
        "current_object": current["status"],
        "current_object_detail": current["detail"],
        "code_version": version.lineage_tag(client, "code_version"),
        "config_hash": version.lineage_tag(client, "config_hash"),
    }
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    etag_text = {True: "matches these bytes", False: "DOES NOT match these bytes", None: "not comparable"}[etag_check]
    print(f"{args.model} v{version.version}: training data reproduced from DVC ({report['dvc_object']})")
    print(f"  wrote   {report['out']}")
    print(f"  size    {len(data)} bytes")
    print(f"  md5     {md5} (verified)")
    print(f"  sha256  {sha256}")
    print(f"  recorded ETag {recorded_etag}: {etag_text}")
    print(f"  current object at train_data_uri: {current['status']} - {current['detail']}")
    print(f"  code {report['code_version']}, config {report['config_hash']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
