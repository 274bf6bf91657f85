"""History of champion moves: one JSON object per move in object storage.

MLflow keeps no history of alias moves, so every promotion and rollback writes a record
``<artifacts>/<model>/champion_history/<UTC timestamp>_v<to>.json`` (run, from, to, why,
when; for models that require approval also ``approval``: who decided, when, their comment).
Objects are never rewritten, so the history is append-only.

Human approval decisions (approved, rejected, timed out, expired) are logged the same way under
``<artifacts>/<model>/approvals/decisions/<UTC timestamp>_<interval>_v<version>.json``, whether
or not the champion moved.
"""

from __future__ import annotations

import datetime as dt

from include.retrainer.config import ModelSpec
from include.retrainer.layout import ModelLayout
from include.retrainer.storage import ObjectStore, json_safe, split_uri


def history_prefix(spec: ModelSpec) -> str:
    return ModelLayout.of(spec).champion_history


def record_move(store: ObjectStore, spec: ModelSpec, record: dict) -> str:
    at = record.get("at") or dt.datetime.now(dt.UTC).isoformat()
    stamp = dt.datetime.fromisoformat(str(at)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    uri = f"{history_prefix(spec)}/{stamp}_v{record.get('to_version')}.json"
    store.put_json(uri, json_safe({**record, "at": at, "model": spec.name}))
    return uri


def list_history(store: ObjectStore, spec: ModelSpec) -> list[dict]:
    """Every recorded move, oldest first."""
    bucket, prefix = split_uri(history_prefix(spec) + "/")
    return [store.get_json(o.uri) for o in sorted(store.iter_objects(bucket, prefix), key=lambda o: o.key)]


def approvals_prefix(spec: ModelSpec) -> str:
    return ModelLayout.of(spec).approval_decisions


def record_approval(store: ObjectStore, spec: ModelSpec, decision: dict) -> str:
    at = decision.get("decided_at") or dt.datetime.now(dt.UTC).isoformat()
    stamp = dt.datetime.fromisoformat(str(at)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    week = f"{str(decision.get('data_interval_start'))[:10]}_{str(decision.get('data_interval_end'))[:10]}"
    uri = f"{approvals_prefix(spec)}/{stamp}_{week}_v{decision.get('challenger_version')}.json"
    store.put_json(uri, json_safe({**decision, "model": spec.name}))
    return uri


def list_approvals(store: ObjectStore, spec: ModelSpec) -> list[dict]:
    """Every recorded approval decision, oldest first."""
    bucket, prefix = split_uri(approvals_prefix(spec) + "/")
    return [store.get_json(o.uri) for o in sorted(store.iter_objects(bucket, prefix), key=lambda o: o.key)]
