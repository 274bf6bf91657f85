"""History of champion moves: one JSON object per move in object storage.

MLflow keeps no history of alias moves, so every promotion and rollback writes a record
``<artifacts>/<model>/champion_history/<UTC timestamp>_v<to>.json`` (run, from, to, why,
when). Objects are never rewritten, so the history is append-only.
"""

from __future__ import annotations

import datetime as dt

from include.retrainer.config import ModelSpec
from include.retrainer.layout import ModelLayout
from include.retrainer.storage import ObjectStore, json_safe, split_uri


def history_prefix(spec: ModelSpec) -> str:
    return ModelLayout.of(spec).champion_history


def record_move(store: ObjectStore, spec: ModelSpec, record: dict) -> str:
    at = record.get("at") or dt.datetime.now(dt.timezone.utc).isoformat()
    stamp = dt.datetime.fromisoformat(str(at)).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    uri = f"{history_prefix(spec)}/{stamp}_v{record.get('to_version')}.json"
    store.put_json(uri, json_safe({**record, "at": at, "model": spec.name}))
    return uri


def list_history(store: ObjectStore, spec: ModelSpec) -> list[dict]:
    """Every recorded move, oldest first."""
    bucket, prefix = split_uri(history_prefix(spec) + "/")
    return [store.get_json(o.uri) for o in sorted(store.iter_objects(bucket, prefix), key=lambda o: o.key)]
