#!/usr/bin/env python
"""List every move of a model's ``champion`` alias (promotions, reinstatements and rollbacks), oldest first.

The history lives in object storage (MLflow keeps none for aliases), under the model's
artifacts location from its spec: ``s3://<artifacts.bucket>/<artifacts.prefix>/<model>/champion_history/``.

Example (from the project root)::

    python scripts/champion_history.py --model churn          # against the running `make run` stack
    python scripts/champion_history.py --model churn --json
    python scripts/champion_history.py --model churn --s3-endpoint https://s3.example.com

The spec is ``<models dir>/<model>.yaml`` where the models dir is ``--models-dir``, else
``$RETRAIN_MODELS_DIR``, else ``include/models``. The endpoint is ``--s3-endpoint``, else
``$RETRAIN_S3_ENDPOINT`` / ``$AWS_ENDPOINT_URL_S3`` / ``$AWS_ENDPOINT_URL``, else the running
local stack's (``.local/stack.json``), else AWS itself (``--s3-endpoint ''`` forces AWS). Credentials come from
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or boto3's usual chain); only for a local
endpoint (127.0.0.1 / localhost) do they default to ``test``/``test``.

Exit codes: 0 listed (possibly empty), 2 bad spec/arguments, 3 storage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])
if _PROJECT_ROOT not in sys.path:
    sys.path.insert(0, _PROJECT_ROOT)

from include.retrainer.config import ModelSpec, ModelSpecError, load_spec, models_dir  # noqa: E402
from scripts import services  # noqa: E402

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def find_spec(model: str, directory: str | None) -> ModelSpec:
    folder = Path(directory) if directory else models_dir()
    for suffix in (".yaml", ".yml"):
        path = folder / f"{model}{suffix}"
        if path.is_file():
            return load_spec(path)
    raise ModelSpecError(folder / f"{model}.yaml", None, f"no spec for model '{model}' in {folder}")


def default_endpoint() -> str | None:
    """The environment's endpoint, else the running local stack's, else None (AWS)."""
    for var in ("RETRAIN_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(var):
            return os.environ[var]
    return services.running_state().get("s3_endpoint")


def s3_client(endpoint: str | None) -> Any:
    import boto3

    kwargs: dict[str, Any] = {"region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
        if (urlparse(endpoint).hostname or "") in _LOCAL_HOSTS:
            # Only a local stand-in (moto/MinIO dev) may fall back to dummy credentials.
            kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "test")
            kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    return boto3.client("s3", **kwargs)


def _version(v: Any) -> str:
    return "-" if v in (None, "") else f"v{v}"


def format_move(move: dict) -> str:
    reasons = move.get("reasons") or ([move["reason"]] if move.get("reason") else [])
    run = move.get("dag_run_id") or "-"
    dag = move.get("dag_id")
    line = (
        f"{move.get('at', '?')}  {move.get('action', '?'):<9} "
        f"{_version(move.get('from_version')):>5} -> {_version(move.get('to_version')):<5}  "
        f"run {dag + '/' if dag else ''}{run}"
    )
    if reasons:
        line += "\n    " + "\n    ".join(str(r) for r in reasons)
    approval = move.get("approval")
    if isinstance(approval, dict):
        line += "\n    " + format_approval(approval).strip()
    return line


def format_approval(decision: dict) -> str:
    """One approval decision: when, outcome, who, interval, version, comment."""
    who = decision.get("decided_by") or "-"
    line = (
        f"{decision.get('decided_at') or '?'}  approval {decision.get('outcome', '?'):<17} by {who:<12} "
        f"{_version(decision.get('challenger_version')):>5}  week {str(decision.get('data_interval_start'))[:10]}"
        f"..{str(decision.get('data_interval_end'))[:10]}  run {decision.get('dag_run_id') or '-'}"
    )
    if decision.get("comment"):
        line += f'\n    comment: "{decision["comment"]}"'
    if decision.get("outcome") not in ("approved", "rejected") and decision.get("reason"):
        line += f"\n    {decision['reason']}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="List the champion history (promotions, reinstatements and rollbacks) of a model."
    )
    parser.add_argument("--model", required=True, help="model name (the spec file's stem, e.g. churn)")
    parser.add_argument("--models-dir", help="folder of model specs (default: $RETRAIN_MODELS_DIR or include/models)")
    parser.add_argument(
        "--s3-endpoint",
        default=None,
        help="S3 endpoint URL (default: $RETRAIN_S3_ENDPOINT / $AWS_ENDPOINT_URL_S3, else the running "
        "local stack's from .local/stack.json, else AWS; '' forces AWS)",
    )
    parser.add_argument("--json", action="store_true", help="print the records as a JSON list")
    parser.add_argument("--limit", type=int, default=0, help="only the last N moves (0 = all)")
    parser.add_argument(
        "--approvals",
        action="store_true",
        help="list the human approval decisions (promotion.approval: required) instead of the moves",
    )
    args = parser.parse_args(argv)

    try:
        spec = find_spec(args.model, args.models_dir)
    except ModelSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from botocore.exceptions import BotoCoreError, ClientError

    from include.retrainer.history import approvals_prefix, history_prefix, list_approvals, list_history
    from include.retrainer.storage import ObjectStore, StorageError

    where = (approvals_prefix(spec) if args.approvals else history_prefix(spec)) + "/"
    try:
        endpoint = default_endpoint() if args.s3_endpoint is None else (args.s3_endpoint or None)
        reader = list_approvals if args.approvals else list_history
        moves = reader(ObjectStore(s3_client(endpoint)), spec)
    except (BotoCoreError, ClientError, StorageError) as exc:
        what = "approval decisions" if args.approvals else "champion history"
        print(f"error: cannot read the {what} at {where}: {exc}", file=sys.stderr)
        return 3
    if args.limit > 0:
        moves = moves[-args.limit :]
    if args.approvals and not args.json:
        if not moves:
            print(f"no approval decisions recorded for model '{spec.name}' ({where})")
            return 0
        print(f"approval decisions of '{spec.name}' ({len(moves)}, oldest first; {where})")
        for decision in moves:
            print(format_approval(decision))
        return 0

    if args.json:
        print(json.dumps(moves, indent=2, sort_keys=True))
        return 0
    if not moves:
        print(f"no champion moves recorded for model '{spec.name}' ({where})")
        return 0
    print(f"champion history of '{spec.name}' ({len(moves)} move(s), oldest first; {where})")
    for move in moves:
        print(format_move(move))
    return 0


if __name__ == "__main__":
    sys.exit(main())
