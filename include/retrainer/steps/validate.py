"""Step ``validate_batch``: the model's Great Expectations suite over the batch.

A failing batch stops the run (``DataValidationFailed``, permanent) after its failing days
are quarantined; raw data is never touched.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from include.retrainer.config import PARTITION_COLUMN, ModelSpec
from include.retrainer.errors import PermanentError
from include.retrainer.layout import RunLayout
from include.retrainer.steps.context import RunContext, StepResult, quarantine_policy
from include.retrainer.storage import ObjectStore, interval_token

log = logging.getLogger(__name__)


class DataValidationFailed(PermanentError, RuntimeError):
    """The batch failed its expectation suite: the run stops, nothing is trained."""


@dataclass(frozen=True, kw_only=True)
class ValidationResult(StepResult):
    """What ``validate_batch`` found; on a failed run the summary rebuilds it from the stored report."""

    success: bool = False
    failed_expectations: list[Any] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    report_uri: str | None = None
    data_docs_uri: str | None = None
    quarantined_days: list[str] = field(default_factory=list)
    quarantined_rows: int = 0
    released_days: list[str] = field(default_factory=list)


def suite_expectations(spec: ModelSpec) -> list[dict[str, Any]]:
    from include.retrainer import validation

    feats = spec.features
    expectations: list[dict[str, Any]] = []
    if spec.validation.schema_checks:
        expectations += validation.schema_expectations(feats.numeric, feats.categorical, feats.target, feats.timestamp)
        # Attributes (e.g. sensitive columns of the fairness gate) are not trained on, but declared: they must exist.
        expectations += [{"type": "expect_column_to_exist", "kwargs": {"column": c}} for c in feats.attributes]
    if spec.suite_path is not None:
        expectations += validation.load_suite_file(spec.suite_path)
    expectations += [e.model_dump() for e in spec.validation.expectations]
    return expectations


def validate_batch(store: ObjectStore, spec: ModelSpec, ctx: RunContext, batch_uri: str) -> ValidationResult:
    """Validate the batch with the model's suite; store the report and Data Docs; fail on failure."""
    from include.retrainer import validation

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    expectations = suite_expectations(spec)
    suite_name = f"{spec.name}_suite"
    # ``import great_expectations`` costs seconds and the batch download is mostly waiting on
    # the network and Arrow's decoder (both release the GIL): a background thread imports GX,
    # builds the context, compiles the Data Docs templates and registers the suite while the
    # batch is read. Nothing is skipped -- validate_batch below validates every expectation --
    # and it waits on the same lock if the warm-up is not done. A warm-up failure (e.g. a bad
    # suite) is left to validate_batch, which raises it in this thread with its full message.
    # The warm-up also freezes the objects GX's import created out of the garbage collector's
    # reach (``freeze_gc``): a task process validates once, and a full collection walking them
    # would otherwise land inside the validation.
    import pandas  # noqa: F401  (both sides need it: imported once, here, before they overlap)

    warm_up = threading.Thread(target=_warm_up, args=(validation, suite_name, expectations), name="gx-warm-up")
    warm_up.start()
    try:
        batch = store.read_parquet(batch_uri)
    finally:
        warm_up.join()
    days = sorted(str(d) for d in batch[PARTITION_COLUMN].unique())
    frame = batch.drop(columns=[PARTITION_COLUMN])
    with tempfile.TemporaryDirectory() as docs_dir:
        report = validation.validate_batch(
            frame,
            expectations,
            suite_name,
            data_docs_dir=docs_dir,
            run_name=interval_token(ctx.interval_start, ctx.interval_end),
            run_time=ctx.interval_end,
        )
        store.replace_dir(docs_dir, paths.data_docs)  # overwrite, never accumulate per re-run
    result = ValidationResult(
        success=report.success,
        failed_expectations=report.failed_expectations,
        statistics=report.statistics,
        summary=report.summary_line(),
        notes=list(getattr(report, "notes", []) or []),
        report_uri=paths.validation,
        data_docs_uri=f"{paths.data_docs}/index.html",
    )
    if not report.success:
        # The batch's own findings (not the quarantine fields this very call decides).
        found = {
            k: v
            for k, v in result.to_xcom().items()
            if k not in ("quarantined_days", "quarantined_rows", "released_days")
        }
        quarantined = quarantine_failing_days(store, spec, ctx, batch, found)
        rows = int(batch[PARTITION_COLUMN].astype(str).isin(quarantined).sum())
        store.put_json(
            paths.validation,
            {**report.to_dict(), "summary": result.summary, "quarantined_days": quarantined, "quarantined_rows": rows},
        )
        where = f"; quarantined day(s): {', '.join(quarantined)}" if quarantined else ""
        raise DataValidationFailed(result.summary + where)
    store.put_json(paths.validation, {**report.to_dict(), "summary": result.summary})
    if quarantine_policy(ctx) == "include":
        from include.retrainer.quarantine import release_day

        released = [d for d in days if release_day(store, spec, d, ctx.run_id, "passed validation when taken back in")]
        result = replace(result, released_days=released)
        if released:
            log.info("released from quarantine: %s", ", ".join(released))
    log.info(result.summary)
    return result


def _warm_up(validation: Any, suite_name: str, expectations: list[dict[str, Any]]) -> None:
    try:
        validation.warm_up(suite_name, expectations, freeze_gc=True)
    except Exception:  # validate_batch meets the same problem and raises it properly
        log.debug("GX warm-up failed; validate_batch will report the cause", exc_info=True)


def quarantine_failing_days(
    store: ObjectStore, spec: ModelSpec, ctx: RunContext, frame: Any, result: dict[str, Any]
) -> list[str]:
    """Quarantine the days that fail validation on their own (all days if none does alone).

    ``frame`` is the batch with its partition-date column."""
    from include.retrainer import validation
    from include.retrainer.quarantine import quarantine_day

    manifest = store.get_json_or_none(RunLayout.of(spec, ctx.interval_start, ctx.interval_end).manifest) or {}
    files_by_day: dict[str, list[dict]] = {}
    for f in manifest.get("files", []):
        files_by_day.setdefault(f["dt"], []).append(f)
    expectations = suite_expectations(spec)
    failing = []
    for day, part in frame.groupby(PARTITION_COLUMN):
        day_report = validation.validate_batch(part.drop(columns=[PARTITION_COLUMN]), expectations, f"{spec.name}_day")
        if not day_report.success:
            failing.append((str(day), {**day_report.to_dict(), "summary": day_report.summary_line()}))
    if not failing:  # only the whole batch fails (e.g. a row-count or mostly-threshold rule)
        failing = [(str(d), {**result}) for d in sorted(frame[PARTITION_COLUMN].unique())]
    for day, report in failing:
        quarantine_day(store, spec, day, files_by_day.get(day, []), report, ctx.run_id)
    log.warning("quarantined %d day(s): %s", len(failing), ", ".join(d for d, _ in failing))
    return [d for d, _ in failing]
