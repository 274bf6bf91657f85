"""Quarantine: daily partitions that failed validation, kept aside without touching raw data.

When a batch fails validation, the days that fail on their own are quarantined: their
files are *copied* to ``<artifacts>/<model>/quarantine/dt=YYYY-MM-DD/`` with a
``record.json`` (the failed expectations, the run, when). The raw partitions stay where
they are, unmodified.

Later runs choose, with the run param ``quarantine``:
  * ``skip`` (default): leave quarantined days out of the batch and of training windows;
  * ``include``: take them back in; if they now pass validation (fixed upstream, or the
    suite was corrected) they are released, otherwise the run fails again.
Released records are kept (status ``released``), so the history of a day is never lost.
"""

from __future__ import annotations

import datetime as dt

from include.retrainer.config import ModelSpec
from include.retrainer.layout import ModelLayout
from include.retrainer.storage import ObjectStore, split_uri

QUARANTINED = "quarantined"
RELEASED = "released"
POLICIES = ("skip", "include")


def quarantine_prefix(spec: ModelSpec) -> str:
    return ModelLayout.of(spec).quarantine


def record_uri(spec: ModelSpec, day: str) -> str:
    return ModelLayout.of(spec).quarantine_record(day)


def quarantine_day(store: ObjectStore, spec: ModelSpec, day: str, files: list[dict], report: dict, run_id: str) -> dict:
    """Copy a day's files aside and record why; raw data is only read."""
    base = f"{quarantine_prefix(spec)}/dt={day}"
    copies = []
    for f in files:
        name = f["uri"].rsplit("/", 1)[-1]
        dst = f"{base}/files/{name}"
        store.copy(f["uri"], dst)
        copies.append({"source": f["uri"], "source_etag": f["etag"], "copy": dst})
    record = {
        "model": spec.name,
        "day": day,
        "status": QUARANTINED,
        "files": copies,
        "failed_expectations": report.get("failed_expectations", []),
        "summary": report.get("summary"),
        "quarantined_by_run": run_id,
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    store.put_json(record_uri(spec, day), record)
    return record


def quarantined_days(store: ObjectStore, spec: ModelSpec) -> dict[str, dict]:
    """Days currently in quarantine (status quarantined), with their records."""
    bucket, prefix = split_uri(quarantine_prefix(spec) + "/")
    out = {}
    for obj in store.iter_objects(bucket, prefix):
        if obj.key.endswith("/record.json"):
            record = store.get_json(obj.uri)
            if record.get("status") == QUARANTINED:
                out[record["day"]] = record
    return out


def release_day(store: ObjectStore, spec: ModelSpec, day: str, run_id: str, reason: str) -> dict | None:
    record = store.get_json_or_none(record_uri(spec, day))
    if not record or record.get("status") != QUARANTINED:
        return None
    record.update(
        status=RELEASED, released_by_run=run_id, release_reason=reason, released_at=dt.datetime.now(dt.UTC).isoformat()
    )
    store.put_json(record_uri(spec, day), record)
    return record
