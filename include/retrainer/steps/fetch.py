"""Step ``fetch_batch``: the interval's daily partitions as one Parquet batch."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from include.retrainer.config import ModelSpec
from include.retrainer.layout import RunLayout
from include.retrainer.steps.context import RunContext, StepResult, excluded_days
from include.retrainer.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FetchResult(StepResult):
    batch_uri: str = ""
    manifest_uri: str = ""
    rows: int | None = None
    files: int = 0
    days_found: list[str] = field(default_factory=list)
    days_missing: list[str] = field(default_factory=list)
    days_quarantined_skipped: list[str] = field(default_factory=list)


def fetch_batch(
    store: ObjectStore, spec: ModelSpec, ctx: RunContext, *, raw_store: ObjectStore | None = None
) -> FetchResult:
    """Read every daily partition of the interval and store the combined batch as Parquet.

    ``raw_store`` reads the raw partitions (the data connection) when it differs from
    ``store``, which holds the artefacts."""
    from include.retrainer.fetch import read_partitions

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    skip = excluded_days(store, spec, ctx)
    batch = read_partitions(raw_store or store, spec.data, ctx.interval_start, ctx.interval_end, exclude_days=skip)
    quarantined_skipped = sorted(d for d in skip if d in batch.days_missing)
    store.write_parquet(paths.batch, batch.frame)
    manifest = {
        "model": spec.name,
        "data_interval_start": ctx.interval_start,
        "data_interval_end": ctx.interval_end,
        "rows": batch.rows,
        "files": batch.files,
        "days_found": batch.days_found,
        "days_missing": batch.days_missing,
        "days_quarantined_skipped": quarantined_skipped,
    }
    store.put_json(paths.manifest, manifest)
    if quarantined_skipped:
        log.warning("left out quarantined day(s) (run param quarantine=skip): %s", ", ".join(quarantined_skipped))
    if batch.days_missing:
        log.warning("no partition for %d day(s): %s", len(batch.days_missing), ", ".join(batch.days_missing))
    log.info("fetched %d rows from %d file(s) into %s", batch.rows, len(batch.files), paths.batch)
    return FetchResult(
        batch_uri=paths.batch,
        manifest_uri=paths.manifest,
        rows=batch.rows,
        files=len(batch.files),
        days_found=batch.days_found,
        days_missing=batch.days_missing,
        days_quarantined_skipped=quarantined_skipped,
    )
