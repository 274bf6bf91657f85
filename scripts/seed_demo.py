#!/usr/bin/env python
"""Seed S3 (MinIO / moto / AWS) with synthetic daily partitions for the retraining demo.

Writes ``<prefix>/dt=YYYY-MM-DD/part-NNN.<fmt>`` for ``--weeks`` weeks starting at
``--start``, optionally with a drift event starting on the first day of
``--drift-week`` (1-based), so the orchestrator has stable weeks to train a champion
on and drifted weeks that should trigger a retrain and a promotion.

Seeding is idempotent: the same arguments produce byte-identical objects.

Example (from the project root)::

    python scripts/seed_demo.py --bucket raw-data --prefix churn --start 2026-01-04 --weeks 6 \\
        --rows-per-day 2000 --drift-week 4 --create-bucket      # into the running local stack

The endpoint is ``--endpoint-url``, else ``$RETRAIN_S3_ENDPOINT``, else the running local
stack's (``.local/stack.json``), else AWS (``--endpoint-url ''`` forces AWS).

Credentials come from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``; only for a
local endpoint (127.0.0.1 / localhost) do they default to ``test``/``test``, so a
typo can never silently send dummy credentials to a real service.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# Allow `python scripts/seed_demo.py` even when PYTHONPATH is not set to the project root.
_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])
if _PROJECT_ROOT not in sys.path:
    sys.path.insert(0, _PROJECT_ROOT)

from include.demo.data import generate_churn, generate_tickets, write_partitions  # noqa: E402

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_DEFAULT_ROWS = {"churn": 2000, "tickets": 1500}
_DEFAULT_SEED = {"churn": 42, "tickets": 7}


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from exc


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Seed S3 with synthetic daily partitions for the retraining demo.")
    p.add_argument(
        "--endpoint-url",
        default=None,
        help="S3 endpoint (default: $RETRAIN_S3_ENDPOINT, else the running local stack's from "
        ".local/stack.json, else AWS; '' forces AWS)",
    )
    p.add_argument("--bucket", required=True, help="target bucket, e.g. raw-data")
    p.add_argument("--prefix", default=None, help="key prefix (default: the dataset name)")
    p.add_argument("--start", type=_iso_date, required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--weeks", type=_positive_int, default=6, help="number of weeks to generate (default 6)")
    p.add_argument(
        "--rows-per-day", type=_positive_int, default=None, help="rows per day (default 2000 churn / 1500 tickets)"
    )
    p.add_argument(
        "--drift-week", type=_positive_int, default=None, help="1-based week whose first day starts the drift event"
    )
    p.add_argument("--dataset", choices=["churn", "tickets"], default="churn")
    p.add_argument("--format", dest="fmt", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--files-per-day", type=_positive_int, default=1, help="files per daily partition (default 1)")
    p.add_argument("--seed", type=int, default=None, help="base seed (default 42 churn / 7 tickets)")
    p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    p.add_argument("--create-bucket", action="store_true", help="create the bucket if it does not exist")
    return p


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """True when the endpoint points at this machine (MinIO/moto dev stack)."""
    if not endpoint_url:
        return False
    return (urlparse(endpoint_url).hostname or "").lower() in _LOCAL_HOSTS


def make_s3_client(endpoint_url: str | None, region: str) -> Any:
    """boto3 S3 client; dummy ``test`` credentials are only ever used for local endpoints."""
    import boto3  # heavy import kept out of module import time

    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if is_local_endpoint(endpoint_url):
        key = key or "test"
        secret = secret or "test"
    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if key and secret:  # otherwise let boto3's default credential chain decide (profiles, IAM roles)
        kwargs["aws_access_key_id"] = key
        kwargs["aws_secret_access_key"] = secret
    return boto3.client("s3", **kwargs)


def ensure_bucket(client: Any, bucket: str, region: str) -> None:
    """Create ``bucket`` unless it already exists (idempotent)."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    params: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.drift_week is not None and args.drift_week > args.weeks:
        parser.error(f"--drift-week {args.drift_week} is after the last generated week ({args.weeks})")

    days = 7 * args.weeks
    rows = args.rows_per_day or _DEFAULT_ROWS[args.dataset]
    seed = _DEFAULT_SEED[args.dataset] if args.seed is None else args.seed
    prefix = args.prefix if args.prefix is not None else args.dataset
    drift_start = None if args.drift_week is None else args.start + timedelta(days=7 * (args.drift_week - 1))

    if args.dataset == "churn":
        frames = generate_churn(args.start, days, rows_per_day=rows, seed=seed, drift_start=drift_start)
    else:
        frames = generate_tickets(args.start, days, rows_per_day=rows, seed=seed, drift_start=drift_start)

    endpoint = args.endpoint_url
    if endpoint is None:
        from scripts import services

        endpoint = os.environ.get("RETRAIN_S3_ENDPOINT") or services.running_state().get("s3_endpoint")
    client = make_s3_client(endpoint or None, args.region)
    if args.create_bucket:
        ensure_bucket(client, args.bucket, args.region)

    ordered = sorted(frames)
    total_files = 0
    for week in range(args.weeks):
        week_days = ordered[7 * week : 7 * (week + 1)]
        week_frames = {d: frames[d] for d in week_days}
        uris = write_partitions(
            client, args.bucket, prefix, week_frames, fmt=args.fmt, files_per_day=args.files_per_day
        )
        total_files += len(uris)
        n_rows = sum(len(f) for f in week_frames.values())
        drifted = drift_start is not None and week_days[0] >= drift_start
        print(
            f"week {week + 1}: {week_days[0].isoformat()}..{week_days[-1].isoformat()} "
            f"rows={n_rows} drifted={'yes' if drifted else 'no'}",
            flush=True,
        )
    print(
        f"wrote {total_files} {args.fmt} files for dataset={args.dataset} to s3://{args.bucket}/{prefix.strip('/')}/",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
