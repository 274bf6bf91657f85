"""One function per DAG task: explicit inputs in, a small JSON-safe dict out.

Operators in ``plugins/`` resolve connections and the run context, then call exactly one
of these. Everything a later task needs travels through object storage (URIs returned
here) or MLflow; nothing relies on a worker's local files.

Idempotency: every artefact is keyed by (model, data interval) and overwritten on a
re-run; model versions are keyed by (model, interval, config hash, code version).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.retrainer import __version__
from include.retrainer.config import PARTITION_COLUMN, ModelSpec
from include.retrainer.errors import PermanentError
from include.retrainer.layout import ModelLayout, RunLayout
from include.retrainer.storage import ObjectStore, interval_token, json_safe, parquet_bytes

log = logging.getLogger(__name__)

SUMMARY_SCHEMA_VERSION = 3


class DataValidationFailed(PermanentError, RuntimeError):
    """The batch failed its expectation suite: the run stops, nothing is trained."""


@dataclass(frozen=True)
class RunContext:
    dag_id: str
    run_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    params: dict = field(default_factory=dict)
    try_number: int = 1


def code_version() -> str:
    """Package version plus the git commit when the code is a checkout (else the version alone)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def idempotency_key(spec: ModelSpec, ctx: RunContext) -> str:
    blob = "|".join(
        [spec.name, ctx.interval_start.isoformat(), ctx.interval_end.isoformat(), spec.config_hash(), code_version()]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def experiment_name(spec: ModelSpec) -> str:
    return f"retrain_{spec.name}"


# --------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------
def quarantine_policy(ctx: RunContext) -> str:
    from include.retrainer.quarantine import POLICIES

    policy = str(ctx.params.get("quarantine", "skip"))
    if policy not in POLICIES:
        raise ValueError(f"run param quarantine={policy!r}: expected one of {', '.join(POLICIES)}")
    return policy


def excluded_days(store: ObjectStore, spec: ModelSpec, ctx: RunContext) -> set[str]:
    """Quarantined days to leave out, per the run's quarantine policy."""
    from include.retrainer.quarantine import quarantined_days

    return set(quarantined_days(store, spec)) if quarantine_policy(ctx) == "skip" else set()


def fetch_batch(store: ObjectStore, spec: ModelSpec, ctx: RunContext, *, raw_store: ObjectStore | None = None) -> dict:
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
    return {
        "batch_uri": paths.batch,
        "manifest_uri": paths.manifest,
        "rows": batch.rows,
        "files": len(batch.files),
        "days_found": batch.days_found,
        "days_missing": batch.days_missing,
        "days_quarantined_skipped": quarantined_skipped,
    }


# --------------------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------------------
def suite_expectations(spec: ModelSpec) -> list[dict]:
    from include.retrainer import validation

    feats = spec.features
    expectations: list[dict] = []
    if spec.validation.schema_checks:
        expectations += validation.schema_expectations(feats.numeric, feats.categorical, feats.target, feats.timestamp)
        # Attributes (e.g. sensitive columns of the fairness gate) are not trained on, but declared: they must exist.
        expectations += [{"type": "expect_column_to_exist", "kwargs": {"column": c}} for c in feats.attributes]
    if spec.suite_path is not None:
        expectations += validation.load_suite_file(spec.suite_path)
    expectations += [e.model_dump() for e in spec.validation.expectations]
    return expectations


def validate_batch(store: ObjectStore, spec: ModelSpec, ctx: RunContext, batch_uri: str) -> dict:
    """Validate the batch with the model's suite; store the report and Data Docs; fail on failure."""
    from include.retrainer import validation

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    batch = store.read_parquet(batch_uri)
    days = sorted(str(d) for d in batch[PARTITION_COLUMN].unique())
    frame = batch.drop(columns=[PARTITION_COLUMN])
    with tempfile.TemporaryDirectory() as docs_dir:
        report = validation.validate_batch(
            frame, suite_expectations(spec), f"{spec.name}_suite", data_docs_dir=docs_dir,
            run_name=interval_token(ctx.interval_start, ctx.interval_end), run_time=ctx.interval_end,
        )
        store.replace_dir(docs_dir, paths.data_docs)  # overwrite, never accumulate per re-run
    result = {
        "success": report.success,
        "failed_expectations": report.failed_expectations,
        "statistics": report.statistics,
        "summary": report.summary_line(),
        "notes": list(getattr(report, "notes", []) or []),
        "report_uri": paths.validation,
        "data_docs_uri": f"{paths.data_docs}/index.html",
    }
    if not report.success:
        result["quarantined_days"] = quarantine_failing_days(store, spec, ctx, batch, result)
        result["quarantined_rows"] = int(batch[PARTITION_COLUMN].astype(str).isin(result["quarantined_days"]).sum())
        store.put_json(paths.validation, {**report.to_dict(), "summary": result["summary"],
                                          "quarantined_days": result["quarantined_days"],
                                          "quarantined_rows": result["quarantined_rows"]})
        where = f"; quarantined day(s): {', '.join(result['quarantined_days'])}" if result["quarantined_days"] else ""
        raise DataValidationFailed(result["summary"] + where)
    store.put_json(paths.validation, {**report.to_dict(), "summary": result["summary"]})
    if quarantine_policy(ctx) == "include":
        from include.retrainer.quarantine import release_day

        released = [d for d in days if release_day(store, spec, d, ctx.run_id, "passed validation when taken back in")]
        result["released_days"] = released
        if released:
            log.info("released from quarantine: %s", ", ".join(released))
    log.info(result["summary"])
    return result


def quarantine_failing_days(store: ObjectStore, spec: ModelSpec, ctx: RunContext, frame: Any, result: dict) -> list[str]:
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


# --------------------------------------------------------------------------------------
# drift
# --------------------------------------------------------------------------------------
def drift_reference(store: ObjectStore, spec: ModelSpec, version: Any, train_uri: str) -> Any:
    """The data-drift reference of a model version: the ``ReferenceSummary`` of its training rows.

    Read from the object store when an earlier run (any worker) stored it, else computed from
    the training data once and stored (``include/retrainer/reference_cache.py``: keyed by the
    version, the training data's URI and ETag, the compared columns and the row-choosing drift
    settings; a corrupt or missing summary is recomputed). On a hit the training rows are not
    read at all. ``detect_drift`` reports exactly the same with the summary as with the rows.
    """
    from include.retrainer import loop
    from include.retrainer.reference_cache import load_reference_summary, summary_uri

    feats = spec.features
    settings = loop.drift_settings(spec)
    info = store.head(train_uri)
    uri = summary_uri(ModelLayout.of(spec), str(version), train_uri, info.etag if info else None,
                      feats.numeric, feats.categorical, settings)
    return load_reference_summary(store, uri, feats.numeric, feats.categorical, settings,
                                  lambda: store.read_parquet(train_uri)).summary


def load_champion_state(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, champion: Any, client: Any | None = None
) -> tuple[Any, str | None]:
    """The champion as the decision loop sees it (model, drift reference, held-out rows, card).

    ``train`` is the drift reference of its training rows (:func:`drift_reference`: a
    ``ReferenceSummary``, cached per champion), which is all the gate reads of them.

    Returns ``(state, None)`` or ``(None, why)`` when its lineage cannot be read (then the
    gate retrains to re-establish it). Champions registered before the model card existed get
    their baseline measured now on their held-out rows and equal feature weights. The lineage
    tags are read from the version, else from its MLflow run (``VersionInfo.lineage_tag``).
    """
    from include.retrainer import loop, registry

    client = client if client is not None else registry.client_for(tracking_uri)
    feats = spec.features
    reference_uri = champion.lineage_tag(client, "train_data_uri")
    holdout_uri = champion.lineage_tag(client, "holdout_uri")
    missing = [name for name, uri in (("train_data_uri", reference_uri), ("holdout_uri", holdout_uri))
               if not uri or not store.exists(uri)]
    if missing:
        return None, (
            f"no reference data: champion v{champion.version} has no readable training-data lineage "
            f"(tag(s) {', '.join(registry.TAG + m for m in missing)} on the version or its run {champion.run_id}); "
            "retraining to re-establish lineage"
        )
    columns = [*feats.feature_columns, feats.target, PARTITION_COLUMN]
    reference = drift_reference(store, spec, champion.version, reference_uri)
    holdout = store.read_parquet(holdout_uri)
    model = registry.load_model(tracking_uri, spec.name, champion.version)
    card_uri = champion.lineage_tag(client, "model_card_uri")
    card = store.get_json_or_none(card_uri) if card_uri else None
    if card is None:
        log.info("champion v%s has no model card: measuring its baseline now, equal feature weights",
                 champion.version)
        card = {"baseline": loop.baseline_estimate(model, holdout, spec), "importance": {}}
    trained_through = _interval_end(champion) or dt.datetime.min.replace(tzinfo=dt.UTC)
    state = loop.ModelState(
        model=model,
        train=reference,
        holdout=holdout[[c for c in columns if c in holdout.columns]],
        trained_through=trained_through,
        baseline=card.get("baseline") or {},
        importance=card.get("importance") or {},
    )
    return state, None


def load_rejected_since(store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, champion: Any,
                        state: Any) -> Any:
    """The latest challenger rejected after the champion and before this interval, if any.

    Retraining on that data was tried and did not help, so the gate measures change since then
    (see ``loop.assess``). Found through the ``challenger`` alias, which stays on a rejected
    version; only a version trained on an interval ending after the champion's and before this
    run's counts, so re-runs and backfills of older weeks decide as before.
    """
    from include.retrainer import loop, registry

    client = registry.client_for(tracking_uri)
    candidate = registry.get_alias(client, spec.name, registry.CHALLENGER)
    if candidate is None or candidate.version == champion.version or candidate.tag("decision") != "rejected":
        return None
    end = _interval_end(candidate)
    if end is None or not (state.trained_through < end < ctx.interval_end):
        return None
    train_uri, holdout_uri = candidate.lineage_tag(client, "train_data_uri"), candidate.lineage_tag(client, "holdout_uri")
    if not train_uri or not holdout_uri or not store.exists(train_uri) or not store.exists(holdout_uri):
        return None
    log.info("challenger v%s (data to %s) was rejected: the gate measures change since its data",
             candidate.version, end.date().isoformat())
    return loop.ModelState(model=None, train=drift_reference(store, spec, candidate.version, train_uri),
                           holdout=store.read_parquet(holdout_uri), trained_through=end, baseline={}, importance={})


def detect_drift(store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, batch_uri: str) -> dict:
    """Assess the champion on the batch: every gate signal, and whether to retrain."""
    from include.retrainer import loop, registry

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    client = registry.client_for(tracking_uri)
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    if champion is not None and _trained_on_interval(champion, ctx):
        # A re-run of an interval whose own model is already champion: judge the batch against
        # the champion it replaced, as the first run did, so the re-run reaches the same decision.
        previous = champion.tag("replaced_version")
        log.info("champion v%s was trained for this interval: evaluating against v%s it replaced",
                 champion.version, previous or "-")
        champion = registry.get_version(client, spec.name, previous) if previous else None
    base = {"champion_version": champion.version if champion else None, "report_uri": paths.drift}
    if champion is None:
        outcome = loop.assess(spec, None, None, ctx.interval_end)
        report = {"gate": True, "reason": outcome.reason, "code": outcome.code, "signals": [], "features": {}}
        store.put_json(paths.drift, report)
        log.info("gate: %s", outcome.reason)
        return {**base, **report, "cold_start": True, "drifted": []}
    state, why_not = load_champion_state(store, tracking_uri, spec, champion, client)
    if state is None:
        report = {"gate": True, "reason": why_not, "code": "no_lineage", "signals": [], "features": {}}
        store.put_json(paths.drift, report)
        return {**base, **report, "cold_start": False, "drifted": []}
    batch = store.read_parquet(batch_uri)
    since = load_rejected_since(store, tracking_uri, spec, ctx, champion, state)
    outcome = loop.assess(spec, state, batch, ctx.interval_end, since=since)
    drift_report = outcome.drift_report or {}
    out = {
        "gate": outcome.retrain,
        "reason": outcome.reason,
        "code": outcome.code,
        "rule": outcome.rule,
        "signals": [dict(s) for s in outcome.signals],
        "champion_age_weeks": round(loop.champion_age_weeks(state, ctx.interval_end), 3),
        "features": drift_report.get("features", {}),
        "drifted": drift_report.get("drifted", []),
        "importance": state.importance,
        "reference_uri": champion.lineage_tag(client, "train_data_uri"),  # cached: no second read
        "reference": outcome.reference,
        "reference_version": champion.version,
        "reference_rows": int(len(state.train)),
        "batch_rows": int(len(batch)),
    }
    store.put_json(paths.drift, out)
    log.info("read %d reference rows (champion v%s) and %d batch rows; gate retrain=%s: %s",
             len(state.train), champion.version, len(batch), outcome.retrain, outcome.reason)
    return {
        **base,
        "gate": bool(outcome.retrain),
        "reason": outcome.reason,
        "code": outcome.code,
        "cold_start": False,
        "drifted": list(drift_report.get("drifted", [])),
        "signals": [{k: sig.get(k) for k in ("name", "status", "statistic", "threshold", "p_value", "summary")}
                    for sig in outcome.signals],
    }


def _trained_on_interval(version, ctx: RunContext) -> bool:
    start, end = version.tag("data_interval_start"), version.tag("data_interval_end")
    return bool(start and end) and (
        dt.datetime.fromisoformat(start) == ctx.interval_start and dt.datetime.fromisoformat(end) == ctx.interval_end
    )


def decide_retrain(drift: dict, force_retrain: bool) -> tuple[bool, str]:
    if force_retrain:
        return True, "forced by run param force_retrain=true" + (f" ({drift['reason']})" if drift.get("reason") else "")
    if drift.get("gate"):
        return True, drift["reason"]
    return False, f"skipped: {drift.get('reason', 'no drift')}"


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------
def train_challenger(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, *, raw_store: ObjectStore | None = None
) -> dict:
    """Fit the estimator on the training window, log to MLflow, register a version, alias challenger."""
    from include.retrainer import lineage as dvc_lineage
    from include.retrainer import loop, registry

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    key = idempotency_key(spec, ctx)
    forced = bool(ctx.params.get("force_retrain"))
    if forced:
        # A forced run trains a new version even if this interval already has one (e.g. after a
        # labelling fix); retries of the same forced run still reuse theirs.
        key = hashlib.sha256(f"{key}|forced|{ctx.run_id}".encode()).hexdigest()[:24]
    try:
        window, window_start, window_end, (train, holdout, evaluation) = _training_window(store, spec, ctx, raw_store or store)
    except loop.InsufficientData as exc:
        log.warning("not training: %s", exc)
        return {"challenger_version": None, "insufficient_data": True, "reason": f"insufficient data: {exc}"}
    holdout_from = evaluation["holdout_from"]
    train_bytes = parquet_bytes(train)
    train_etag = store.put_bytes(paths.train, train_bytes)
    holdout_etag = store.write_parquet(paths.holdout, holdout)
    # Version the exact training bytes with DVC (content-addressed: a re-run pushes nothing new).
    dvc_record = dvc_lineage.version_training_data(
        train_bytes,
        file_name="train.parquet",
        remote_url=dvc_lineage.dvc_remote_for(spec, connection_remote=store.dvc_remote),
        **dvc_lineage.s3_settings_from_client(store.client, store.credentials),
    )
    partitions_digest = hashlib.sha256(
        json.dumps(sorted((f["uri"], f["etag"]) for f in window.files)).encode()
    ).hexdigest()
    lineage = {
        "model": spec.name,
        "idempotency_key": key,
        "data_interval_start": ctx.interval_start,
        "data_interval_end": ctx.interval_end,
        "window_start": window_start,
        "window_end": window_end,
        "holdout_from": holdout_from,
        "evaluation": evaluation,
        "partitions": window.files,
        "partitions_sha256": partitions_digest,
        "dvc": dvc_record.to_dict(),
        "train_data_uri": paths.train,
        "train_data_etag": train_etag,
        "holdout_uri": paths.holdout,
        "holdout_etag": holdout_etag,
        "config_hash": spec.config_hash(),
        "code_version": code_version(),
        "source_spec": Path(spec.source_path).name,
    }
    store.put_json(paths.lineage, lineage)

    client = registry.client_for(tracking_uri)
    existing = registry.find_versions(client, spec.name, idempotency_key=key)
    if existing:
        version = existing[0]
        reused = True
        log.info("version %s already registered for this interval/config/code: reusing it", version.version)
    else:
        from include.retrainer import training
        from include.retrainer.compare import compute_metrics

        try:
            state = loop.fit_challenger(spec, train, holdout, evaluation, ctx.interval_end)
        except loop.InsufficientData as exc:
            log.warning("not training: %s", exc)
            return {"challenger_version": None, "insufficient_data": True, "reason": f"insufficient data: {exc}"}
        pipeline = state.model
        pred, proba = training.predict(pipeline, holdout, spec)
        metrics = compute_metrics(holdout[spec.features.target].to_numpy(), pred, proba, state.classes)
        example = training.prepare_features(train.head(5), spec)
        card = {
            "model": spec.name,
            "trained_through": ctx.interval_end,
            "baseline": state.baseline,
            "importance": state.importance,
            "evaluation": evaluation,
            "classes": [str(c) for c in state.classes],
        }
        store.put_json(paths.model_card, card)
        # Every lineage tag goes on the MLflow run; the version keeps the few people filter on
        # (registry.VERSION_TAG_KEYS). Readers use VersionInfo.lineage_tag (version, then run).
        training_tags = {
            registry.TAG + "model": spec.name,
            registry.TAG + "dag_id": ctx.dag_id,
            registry.TAG + "dag_run_id": ctx.run_id,
            registry.TAG + "data_interval_start": ctx.interval_start.isoformat(),
            registry.TAG + "data_interval_end": ctx.interval_end.isoformat(),
            registry.TAG + "train_data_uri": paths.train,
            registry.TAG + "train_data_etag": train_etag,
            registry.TAG + "holdout_uri": paths.holdout,
            registry.TAG + "lineage_uri": paths.lineage,
            registry.TAG + "config_hash": spec.config_hash(),
            registry.TAG + "code_version": code_version(),
            registry.TAG + "train_rows": str(len(train)),
            registry.TAG + "validated": "true",
            registry.TAG + "dvc_md5": dvc_record.md5,
            registry.TAG + "dvc_remote": dvc_record.remote_url,
            registry.TAG + "dvc_path": dvc_record.path,
            registry.TAG + "partitions": str(len(window.files)),
            registry.TAG + "partitions_sha256": partitions_digest,
            registry.TAG + "model_card_uri": paths.model_card,
            **({registry.TAG + "forced_by_run": ctx.run_id} if forced else {}),
        }
        version = registry.log_and_register(
            tracking_uri=tracking_uri,
            name=spec.name,
            experiment_name=experiment_name(spec),
            run_name=f"train_{interval_token(ctx.interval_start, ctx.interval_end)}",
            pipeline=pipeline,
            input_example=example,
            params={
                "estimator": spec.training.estimator,
                **{f"estimator.{k}": v for k, v in spec.training.params.items()},
                "window_weeks": round((window_end.timestamp() - window_start.timestamp()) / (7 * 86400)),
                "holdout_days": spec.training.holdout_days,
                "window_start": window_start.isoformat(),
                "window_end": window_end.isoformat(),
                "train_rows": len(train),
                "holdout_rows": len(holdout),
            },
            metrics={f"holdout_{k}": v for k, v in metrics.items()},
            run_tags=training_tags,
            version_tags={k: v for k, v in training_tags.items() if k[len(registry.TAG):] in registry.VERSION_TAG_KEYS},
            artifacts={"lineage.json": json_safe(lineage), "model_card.json": json_safe(card)},
            idempotency_key=key,
            description=spec.description,
        )
        reused = False
    registry.move_alias(client, spec.name, registry.CHALLENGER, version.version)
    return {
        "challenger_version": version.version,
        "run_id": version.run_id,
        "idempotency_key": key,
        "reused": reused,
        "train_rows": int(len(train)),
        "holdout_rows": int(len(holdout)),
        "train_uri": paths.train,
        "holdout_uri": paths.holdout,
        "lineage_uri": paths.lineage,
        "window_start": window_start,
        "window_weeks": round((window_end.timestamp() - window_start.timestamp()) / (7 * 86400)),
        "evaluation": evaluation,
        "forced": forced,
    }


def _training_window(
    store: ObjectStore, spec: ModelSpec, ctx: RunContext, raw_store: ObjectStore
) -> tuple[Any, dt.datetime, dt.datetime, tuple]:
    """Read the training window and split it; too few rows widens it a week at a time.

    Up to ``training.max_window_weeks`` (default: no widening). Raises ``loop.InsufficientData``
    when even the widest window cannot give ``min_train_rows`` + ``min_holdout_rows``.
    """
    from include.retrainer import loop, training
    from include.retrainer.fetch import NoPartitionsError, read_partitions

    weeks = spec.training.window_weeks
    widest = spec.training.max_window_weeks or weeks
    skip = excluded_days(store, spec, ctx)
    while True:
        window_start, window_end = training.training_window(ctx.interval_end, weeks)
        try:
            window = read_partitions(raw_store, spec.data, window_start, window_end, exclude_days=skip)
            return window, window_start, window_end, loop.select_holdout(window.frame, spec)
        except (loop.InsufficientData, NoPartitionsError) as exc:
            if weeks >= widest:
                if isinstance(exc, NoPartitionsError):
                    raise
                suffix = f" (window widened to {weeks} weeks, training.max_window_weeks={widest})" if weeks > spec.training.window_weeks else ""
                raise loop.InsufficientData(f"{exc}{suffix}") from None
            log.info("window of %d week(s) too small (%s): widening to %d", weeks, exc, weeks + 1)
            weeks += 1


# --------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------
def _interval_end(version) -> dt.datetime | None:
    raw = version.tag("data_interval_end") if version else None
    return dt.datetime.fromisoformat(raw) if raw else None


def compare_models(store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, trained: dict) -> dict:
    """Score champion and challenger on the same held-out rows; decide promote or reject."""
    import pandas as pd

    from include.retrainer import loop, registry

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    if trained.get("challenger_version") is None:
        # Not enough data to train: a named outcome, nothing to compare or promote.
        out = {"decision": "skip", "reasons": [trained.get("reason", "no challenger was trained")],
               "insufficient_data": bool(trained.get("insufficient_data")), "challenger_version": None}
        store.put_json(paths.comparison, out)
        return {**out, "report_uri": paths.comparison}
    client = registry.client_for(tracking_uri)
    challenger_v = str(trained["challenger_version"])
    challenger = registry.get_version(client, spec.name, challenger_v)
    if challenger is None:
        raise registry.RegistryError(f"challenger version {challenger_v} of '{spec.name}' no longer exists")
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    holdout = store.read_parquet(trained["holdout_uri"])
    target = spec.features.target
    y = holdout[target].to_numpy()

    if champion is not None and champion.version == challenger_v:
        # Re-run of an interval whose challenger was already promoted: same end state.
        result = {
            "decision": "promote",
            "reasons": [f"version {challenger_v} is already champion (re-run of a promoted interval)"],
            "metrics": {},
            "mcnemar": None,
            "cold_start": False,
            "already_champion": True,
        }
        before = challenger.tag("replaced_version")
        out = {**result, "champion_version": before, "challenger_version": challenger_v}
        prior = store.get_json_or_none(paths.comparison)
        if prior and prior.get("challenger_version") == challenger_v:
            out = {**prior, "already_champion": True}
        store.put_json(paths.comparison, out)
        return {**out, "report_uri": paths.comparison}

    challenger_state = loop.ModelState(
        model=registry.load_model(tracking_uri, spec.name, challenger_v), train=None, holdout=holdout,
        trained_through=_interval_end(challenger) or ctx.interval_end, baseline={}, importance={},
    )
    champion_state = None
    if champion is not None:
        champion_state = loop.ModelState(
            model=registry.load_model(tracking_uri, spec.name, champion.version), train=None, holdout=None,
            trained_through=_interval_end(champion) or dt.datetime.min.replace(tzinfo=dt.UTC),
            baseline={}, importance={},
        )
    judgement = loop.judge(spec, champion_state, challenger_state)
    out = judgement.to_dict()
    out.update(
        {
            "champion_version": champion.version if champion else None,
            "challenger_version": challenger_v,
            "holdout_rows": int(len(holdout)),
            "predictions_uri": paths.predictions,
            "stale": judgement.stale,
        }
    )
    # The slice and sensitive columns too, so anyone can recompute the per-slice tests and disparities.
    c = spec.comparison
    gate_columns = [*(c.slices.columns if c.slices else []), *(c.fairness.sensitive if c.fairness else [])]
    extra = {col: holdout[col].to_numpy() for col in dict.fromkeys(gate_columns)
             if col in holdout.columns and col not in judgement.predictions and col != "y_true"}
    store.write_parquet(paths.predictions, pd.DataFrame({"y_true": y, **judgement.predictions, **extra}))
    store.put_json(paths.comparison, out)
    log.info("scored champion v%s and challenger v%s on %d held-out rows; decision=%s: %s",
             out["champion_version"], challenger_v, len(holdout), out["decision"], "; ".join(out["reasons"]))
    return {**json_safe(out), "report_uri": paths.comparison}


# --------------------------------------------------------------------------------------
# approval (promotion.approval: required)
# --------------------------------------------------------------------------------------
def _approval_base(spec: ModelSpec, ctx: RunContext, version: str | None) -> dict:
    return {"model": spec.name, "data_interval_start": ctx.interval_start.isoformat(),
            "data_interval_end": ctx.interval_end.isoformat(), "challenger_version": version,
            "dag_run_id": ctx.run_id}


def approval_lock(store: ObjectStore, spec: ModelSpec, owner: str):
    """Serialises updates of the model's newest-request marker (short critical sections)."""
    from include.retrainer.locking import LeaseLock

    return LeaseLock(store, ModelLayout.of(spec).approvals_lock, owner,
                     ttl_seconds=120, wait_seconds=120)


def _champion_interval_end(client: Any, spec: ModelSpec) -> tuple[str | None, dt.datetime | None]:
    from include.retrainer import registry

    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    return (champion.version if champion else None), _interval_end(champion)


def recorded_approval(store: ObjectStore, spec: ModelSpec, ctx: RunContext, version: str | None) -> dict | None:
    """The decision an earlier run of this (model, interval, challenger version) recorded, if any."""
    from include.retrainer.approval import ApprovalDecision

    if version is None:
        return None
    raw = store.get_json_or_none(RunLayout.of(spec, ctx.interval_start, ctx.interval_end).approval(version))
    if not raw:
        return None
    decision = ApprovalDecision.from_dict(raw)
    return decision.reused_by().to_dict() if decision.final else None


def save_approval(store: ObjectStore, spec: ModelSpec, ctx: RunContext, decision: Any) -> dict:
    """Persist a final decision; the first one recorded for the key wins (a racing retry reuses it)."""
    if not decision.final or decision.challenger_version is None:
        return decision.to_dict()
    uri = RunLayout.of(spec, ctx.interval_start, ctx.interval_end).approval(decision.challenger_version)
    earlier = recorded_approval(store, spec, ctx, decision.challenger_version)
    if earlier is not None:
        return earlier
    store.put_json(uri, decision.to_dict())
    from include.retrainer.history import record_approval

    try:  # the model's append-only log of decisions (scripts/champion_history.py --approvals)
        record_approval(store, spec, decision.to_dict())
    except Exception as exc:  # the per-interval record above is the one the pipeline relies on
        log.warning("could not append the decision to the approvals log: %s", exc)
    return decision.to_dict()


def prepare_approval(store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext,
                     results: dict[str, Any], now: dt.datetime | None = None) -> dict:
    """Before asking a person: reuse an earlier decision, expire a stale request, or open one.

    Returns ``{"ask": False, "decision": {...}}`` when no one needs to be asked, else
    ``{"ask": True, "subject", "body", "request"}`` after recording the request (the model's
    newest-request marker, ``approval_request_v<version>.json``) and writing a report of the
    pending decision (``report.html``, replaced by the final one when the run ends).
    """
    from include.retrainer import approval, registry
    from include.retrainer.public_urls import PublicUrls

    comparison = results.get("compare_models") or {}
    version = comparison.get("challenger_version")
    version = str(version) if version is not None else None
    base = _approval_base(spec, ctx, version)
    if version is None or comparison.get("decision") != "promote":
        return {"ask": False, "decision": approval.not_requested(base, "no challenger passed the gates").to_dict()}
    earlier = recorded_approval(store, spec, ctx, version)
    if earlier is not None:
        log.info("challenger v%s: reusing the decision recorded by run %s: %s", version, earlier.get("dag_run_id"),
                 earlier.get("reason"))
        return {"ask": False, "decision": earlier}
    if not bool(ctx.params.get("allow_promotion", True)):
        return {"ask": False, "decision": approval.not_requested(
            base, "not requested: promotion disabled by run param allow_promotion=false").to_dict()}
    if comparison.get("already_champion"):
        return {"ask": False, "decision": approval.not_requested(
            base, f"not requested: v{version} is already champion").to_dict()}
    client = registry.client_for(tracking_uri)
    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    now = now or dt.datetime.now(dt.timezone.utc)
    superseded = approval.superseded_reason(ctx.interval_start, ctx.interval_end, now)
    if superseded and spec.promotion.expire_superseded:
        log.warning("challenger v%s: %s", version, superseded)
        return {"ask": False, "decision": save_approval(store, spec, ctx, approval.expired(base, superseded, at=now))}
    timeout_at = now + dt.timedelta(hours=spec.promotion.approval_timeout)
    request = {**base, "requested_at": now.isoformat(), "timeout_at": timeout_at.isoformat(),
               "champion_version": comparison.get("champion_version"),
               "timeout_hours": spec.promotion.approval_timeout, "on_timeout": spec.promotion.on_timeout,
               "approvers": list(spec.promotion.approvers)}
    with approval_lock(store, spec, owner=f"{ctx.dag_id}/{ctx.run_id}"):
        newest = store.get_json_or_none(paths.newest_approval_request)
        champ_v, champ_end = _champion_interval_end(client, spec)
        stale = approval.expiry_reason(interval_start=ctx.interval_start, interval_end=ctx.interval_end,
                                       newest_request=newest, champion_version=champ_v,
                                       champion_interval_end=champ_end, run_id=ctx.run_id)
        if stale:
            log.warning("challenger v%s: %s", version, stale)
            decision = approval.expired(request, stale, at=now)
            return {"ask": False, "decision": save_approval(store, spec, ctx, decision)}
        if approval.newer_request(newest, request):
            store.put_json(paths.newest_approval_request, request)
    store.put_json(paths.approval_request(version), request)

    # The report of the pending decision, so the request can link to it.
    pending = build_summary(spec, ctx, results=results, failed_tasks={}, champion_after=comparison.get("champion_version"))
    pending.update({"decision": "awaiting_approval", "decision_code": "awaiting_approval",
                    "headline": f"Awaiting approval: challenger v{version} passed every gate. "
                                f"Comparison: {'; '.join(map(str, comparison.get('reasons') or []))}.",
                    "approval": {**request, "outcome": "pending", "required": True},
                    "summary_uri": paths.summary})
    links, report_uri = _pending_report(store, client, spec, pending, PublicUrls.from_env())
    subject = approval.request_subject(spec.name, version, comparison.get("champion_version"), ctx.interval_start,
                                       ctx.interval_end)
    body = approval.request_body(model=spec.name, headline=pending["headline"], comparison=comparison, links=links,
                                 report_uri=report_uri, timeout_hours=spec.promotion.approval_timeout,
                                 on_timeout=spec.promotion.on_timeout, timeout_at=request["timeout_at"])
    return {"ask": True, "subject": subject, "body": body, "request": request}


def _pending_report(store: ObjectStore, client: Any, spec: ModelSpec, pending: dict, urls: Any) -> tuple[dict, str]:
    """Write report.html for the pending decision (S3, and the training run in MLflow); its links."""
    from include.retrainer.report import render_report
    from include.retrainer.run_story import REPORT_FILE, report_uri_for

    report_uri = report_uri_for(pending["summary_uri"])
    links: dict[str, str] = {}
    run_id = pending.get("mlflow_run_id")
    if pending.get("challenger_version") is not None:
        url = urls.model_version(spec.name, pending["challenger_version"])
        if url:
            links["Challenger version"] = url
    comparison = store.get_json_or_none(get_path(pending, "artifacts", "comparison")) if get_path(
        pending, "artifacts", "comparison") else None
    page = render_report(pending, comparison=comparison, links=links)
    try:
        store.put_bytes(report_uri, page.encode("utf-8"), "text/html; charset=utf-8")
        links = {"Run report": urls.object(report_uri), **links} if urls.object(report_uri) else links
    except Exception as exc:  # the request is still made, without the report link
        log.warning("could not write the pending report %s: %s", report_uri, exc)
    if run_id:
        try:
            client.log_text(run_id, page, REPORT_FILE)
            exp = client.get_run(run_id).info.experiment_id
            url = urls.mlflow_artifact(run_id, exp, REPORT_FILE)
            if url:
                links = {"Run report": url, **{k: v for k, v in links.items() if k != "Run report"}}
        except Exception as exc:
            log.warning("could not log the pending report to MLflow run %s: %s", run_id, exc)
    return {k: v for k, v in links.items() if v}, report_uri


def get_path(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def finish_approval(store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, version: str,
                    response: dict) -> dict:
    """A response arrived (or the timeout): decide, re-checking that the request is still the newest.

    ``response``: ``chosen_options``, ``params_input``, ``responded_by_user``, ``responded_at``,
    ``timedout`` (Airflow's HITL event payload).
    """
    from include.retrainer import approval, registry

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    earlier = recorded_approval(store, spec, ctx, version)
    if earlier is not None:  # a retry after the decision was saved
        return earlier
    request = store.get_json_or_none(paths.approval_request(version)) or {**_approval_base(spec, ctx, version)}
    newest = store.get_json_or_none(paths.newest_approval_request)
    champ_v, champ_end = _champion_interval_end(registry.client_for(tracking_uri), spec)
    stale = approval.expiry_reason(interval_start=ctx.interval_start, interval_end=ctx.interval_end,
                                   newest_request=newest, champion_version=champ_v, champion_interval_end=champ_end,
                                   run_id=ctx.run_id, challenger_version=version,
                                   requested_at=request.get("requested_at"))
    decision = approval.resolve_response(
        base={**request, "dag_run_id": ctx.run_id}, chosen_options=response.get("chosen_options"),
        params_input=response.get("params_input"), responded_by=response.get("responded_by_user"),
        responded_at=response.get("responded_at"), timed_out=bool(response.get("timedout")),
        on_timeout=spec.promotion.on_timeout, timeout_hours=spec.promotion.approval_timeout, stale_reason=stale,
    )
    log.info("challenger v%s: %s", version, decision.reason)
    return save_approval(store, spec, ctx, decision)


# --------------------------------------------------------------------------------------
# promote / reject
# --------------------------------------------------------------------------------------
def champion_lock(store: ObjectStore, spec: ModelSpec, owner: str, **lease_options: Any):
    """The lease every move of ``champion`` (promotion, rollback) holds while it checks and moves.

    Call ``ensure_held()`` on it right before the alias move; ``lease_options`` go to
    :class:`~include.retrainer.locking.LeaseLock` (ttl_seconds, wait_seconds, ...)."""
    from include.retrainer.locking import LeaseLock

    return LeaseLock(store, ModelLayout.of(spec).champion_lock, owner, **lease_options)



def promote_challenger(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, comparison: dict, allow_promotion: bool = True,
    approval: dict | None = None,
) -> dict:
    """Move alias champion to the challenger, compare-and-set against the evaluated champion.

    Under the champion lock: re-read the champion; promote only if it is still the one the
    comparison used, otherwise reject with that reason (the run can be re-run to re-evaluate).
    ``approval`` (models with ``promotion.approval: required``): the human decision; anything
    but an approval (or ``on_timeout: promote``) rejects with its reason.
    """
    from include.retrainer import history, registry
    from include.retrainer.approval import ApprovalDecision, approval_tags

    client = registry.client_for(tracking_uri)
    challenger_v = str(comparison["challenger_version"])
    expected = comparison.get("champion_version")
    expected = str(expected) if expected is not None else None
    decision = ApprovalDecision.from_dict(approval) if approval else None
    extra = {"approval": decision.to_dict()} if decision else {}
    if not allow_promotion:
        return {**reject_challenger(tracking_uri, spec, ctx, comparison, approval=approval,
                                    extra_reason="promotion disabled by run param allow_promotion=false"), **extra}
    with champion_lock(store, spec, owner=f"{ctx.dag_id}/{ctx.run_id}") as lease:
        current = registry.get_alias(client, spec.name, registry.CHAMPION)
        current_v = current.version if current else None
        if current_v == challenger_v:  # a retry after the alias already moved: finish the bookkeeping
            _complete_promotion_records(store, client, spec, ctx, challenger_v, list(comparison.get("reasons", [])),
                                        approval=extra.get("approval"))
            return {"promoted": True, "champion_before": expected, "champion_after": challenger_v,
                    "reasons": list(comparison.get("reasons", [])), **extra}
        if decision is not None and not decision.allows_promotion:
            return {**reject_challenger(tracking_uri, spec, ctx, comparison, extra_reason=decision.reason,
                                        approval=approval), **extra}
        if current_v != expected:
            moved = (f"{decision.reason}, but " if decision is not None else "") + (
                f"champion changed during evaluation (compared against v{expected}, now v{current_v}); "
                "not promoting a challenger that was not compared with the current champion (re-run to re-evaluate)")
            return {**reject_challenger(tracking_uri, spec, ctx, comparison, extra_reason=moved, approval=approval),
                    **extra}
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        reasons = list(comparison.get("reasons", [])) + ([decision.reason] if decision is not None else [])
        fence = lease.ensure_held()  # LeaseLost (retryable) before any tag if the lease was taken over
        _record_reasons(client, spec, challenger_v, "promoted", reasons)
        registry.set_tags(client, spec.name, challenger_v, {
            registry.TAG + "decision": "promoted",
            registry.TAG + "promoted_at": now,
            registry.TAG + "promoted_by_run": ctx.run_id,
            registry.TAG + "replaced_version": current_v or "",
            registry.TAG + "fencing_token": str(fence),
            **({registry.TAG + k: v for k, v in approval_tags(decision).items()} if decision is not None else {}),
        })
        # MLflow moves aliases unconditionally: prove the lease is ours just before (locking module doc).
        lease.ensure_held()
        # The single call that moves production: the old version loses the alias atomically.
        registry.move_alias(client, spec.name, registry.CHAMPION, challenger_v)
        if current_v:
            registry.set_tags(client, spec.name, current_v, {
                registry.TAG + "replaced_by": challenger_v,
                registry.TAG + "demoted_at": now,
            })
        history.record_move(
            store, spec, {
                "action": "promote", "from_version": current_v, "to_version": challenger_v, "dag_id": ctx.dag_id,
                "dag_run_id": ctx.run_id, "data_interval_start": ctx.interval_start,
                "data_interval_end": ctx.interval_end, "reasons": reasons, "at": now, **extra,
            },
        )
    log.info("promoted v%s to champion (was %s)", challenger_v, current_v)
    return {"promoted": True, "champion_before": current_v, "champion_after": challenger_v, "reasons": reasons,
            **extra}


def _complete_promotion_records(store: ObjectStore, client: Any, spec: ModelSpec, ctx: RunContext,
                                version: str, reasons: list[str], approval: dict | None = None) -> None:
    """After a crash between moving the alias and recording it: tag the replaced version and
    write the history record, once (the promotion tags on ``version`` are set before the move)."""
    from include.retrainer import history, registry

    promoted = registry.get_version(client, spec.name, version)
    if promoted is None or promoted.tag("promoted_by_run") != ctx.run_id:
        return  # promoted by another run (or rolled forward manually): nothing of ours to finish
    previous = promoted.tag("replaced_version") or None
    at = promoted.tag("promoted_at") or dt.datetime.now(dt.UTC).isoformat()
    if previous:
        old = registry.get_version(client, spec.name, previous)
        if old is not None and old.tag("replaced_by") != version:
            registry.set_tags(client, spec.name, previous, {registry.TAG + "replaced_by": version,
                                                             registry.TAG + "demoted_at": at})
    recorded = any(m.get("to_version") == version and m.get("dag_run_id") == ctx.run_id and m.get("action") == "promote"
                   for m in history.list_history(store, spec))
    if not recorded:
        history.record_move(store, spec, {
            "action": "promote", "from_version": previous, "to_version": version, "dag_id": ctx.dag_id,
            "dag_run_id": ctx.run_id, "data_interval_start": ctx.interval_start,
            "data_interval_end": ctx.interval_end, "reasons": reasons, "at": at,
            **({"approval": approval} if approval else {}),
        })


def _record_reasons(client: Any, spec: ModelSpec, version: str, decision: str, reasons: list[str]) -> None:
    """The comparison's reasons, on the challenger's MLflow run (the version's description,
    written by the run story, says why in prose; the version keeps only ``retrain.decision``)."""
    from include.retrainer import registry

    info = registry.get_version(client, spec.name, version)
    if info is None or not info.run_id:
        log.warning("v%s of '%s' has no MLflow run: its %s reasons stay in the run summary only",
                    version, spec.name, decision)
        return
    registry.set_run_tags(client, info.run_id, {registry.TAG + "decision_reasons": "; ".join(reasons)})


def reject_challenger(tracking_uri: str, spec: ModelSpec, ctx: RunContext, comparison: dict, extra_reason: str | None = None,
                      approval: dict | None = None) -> dict:
    """Tag the challenger with the rejection; the champion is untouched."""
    from include.retrainer import registry
    from include.retrainer.approval import ApprovalDecision, approval_tags

    client = registry.client_for(tracking_uri)
    challenger_v = str(comparison["challenger_version"])
    reasons = list(comparison.get("reasons", [])) + ([extra_reason] if extra_reason else [])
    _record_reasons(client, spec, challenger_v, "rejected", reasons)
    tags = approval_tags(ApprovalDecision.from_dict(approval)) if approval else {}
    registry.set_tags(client, spec.name, challenger_v, {
        registry.TAG + "decision": "rejected",
        registry.TAG + "rejected_by_run": ctx.run_id,
        **{registry.TAG + k: v for k, v in tags.items()},
    })
    current = registry.get_alias(client, spec.name, registry.CHAMPION)
    log.info("rejected v%s: %s", challenger_v, "; ".join(reasons))
    return {"promoted": False, "champion_before": current.version if current else None,
            "champion_after": current.version if current else None, "reasons": reasons}


# --------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------
def build_summary(
    spec: ModelSpec,
    ctx: RunContext,
    *,
    results: dict[str, Any],
    failed_tasks: dict[str, str],
    champion_after: str | None,
    durations: dict[str, float] | None = None,
) -> dict:
    """Assemble the run summary (schema: docs/run-summary.md) from the tasks' results.

    ``durations`` are seconds of steps that left no result (failed ones, from their error
    records); steps that returned a result carry ``duration_seconds`` in it."""
    fetch = results.get("fetch_batch") or {}
    val = results.get("validate_batch")
    drift = results.get("detect_drift")
    branch = results.get("decide_retrain") or {}
    trained = results.get("train_challenger")
    comparison = results.get("compare_models") or {}
    outcome = results.get("promote_challenger") or results.get("reject_challenger")

    reasons: list[str] = []
    code = None
    if failed_tasks:
        decision = "failed"
        reasons += [f"{task} failed: {msg}" for task, msg in failed_tasks.items()]
    elif branch and not branch.get("retrain"):
        decision, code = "skipped", "no_retrain_needed"
        reasons.append(branch.get("reason", "no retraining needed"))
    elif trained is not None and trained.get("insufficient_data"):
        decision, code = "skipped", "insufficient_data"
        reasons.append(trained.get("reason", "insufficient data"))
    elif outcome is not None:
        decision = "promoted" if outcome.get("promoted") else "rejected"
        code = decision
        if branch.get("reason"):
            reasons.append(f"retrained: {branch['reason']}")
        reasons += outcome.get("reasons", [])
    else:
        decision = "failed"
        reasons.append("run ended before a decision was made")

    trigger = None
    if branch and branch.get("retrain"):
        trigger = "forced" if branch.get("forced") else ((drift or {}).get("code") or "signals")
    approval = approval_summary(spec, results.get("approve_promotion"), (outcome or {}).get("approval"))
    title = headline(decision, code, reasons, trigger)
    if approval and approval.get("outcome") not in (None, "not_requested") and decision in ("promoted", "rejected"):
        title = approval_headline(decision, approval, reasons, trigger) or title
    champion_before = (drift or {}).get("champion_version")
    if outcome is not None and outcome.get("champion_before") is not None:
        champion_before = outcome["champion_before"]
    return json_safe({
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "model": spec.name,
        "dag_id": ctx.dag_id,
        "dag_run_id": ctx.run_id,
        "data_interval_start": ctx.interval_start,
        "data_interval_end": ctx.interval_end,
        "rows": fetch.get("rows"),
        "partitions": {
            "days_found": fetch.get("days_found", []),
            "days_missing": fetch.get("days_missing", []),
            "days_quarantined_skipped": fetch.get("days_quarantined_skipped", []),
        },
        "validation": None if val is None else {
            "success": bool(val.get("success")),
            "failed_expectations": val.get("failed_expectations", []),
            "quarantined_days": val.get("quarantined_days", []),
            "quarantined_rows": int(val.get("quarantined_rows") or 0),
            "notes": val.get("notes", []),
            "released_days": val.get("released_days", []),
            "report_uri": val.get("report_uri"),
            "data_docs_uri": val.get("data_docs_uri"),
        },
        "drift": None if drift is None else {
            "gate": bool(drift.get("gate")),
            "reason": drift.get("reason"),
            "code": drift.get("code"),
            "cold_start": bool(drift.get("cold_start")),
            "rule": drift.get("rule"),
            "signals": drift.get("signals", []),
            "champion_age_weeks": drift.get("champion_age_weeks"),
            "reference": drift.get("reference"),
            "importance": drift.get("importance", {}),
            "features": drift.get("features", {}),
            "report_uri": drift.get("report_uri"),
        },
        "decision": decision,
        "decision_code": code or decision,
        "trigger": trigger,
        "reasons": reasons,
        "headline": title,
        "champion_version_before": champion_before,
        "champion_version_after": champion_after,
        "challenger_version": (trained or {}).get("challenger_version"),
        "metrics": comparison.get("metrics") or {"champion": {}, "challenger": {}},
        "mcnemar": comparison.get("mcnemar"),
        "comparison": None if not comparison or comparison.get("decision") == "skip" else {
            "policy": comparison.get("policy"),
            "outcome_code": comparison.get("outcome_code"),
            "paired_test": comparison.get("paired_test"),
            "checks": comparison.get("checks", {}),
            "holdout_rows": comparison.get("holdout_rows"),
            "stale": bool(comparison.get("stale")),
        },
        "slices": comparison.get("slices"),
        "fairness": comparison.get("fairness"),
        "evaluation": (trained or {}).get("evaluation"),
        "training_window": None if not trained or trained.get("challenger_version") is None else {
            "start": trained.get("window_start"),
            "weeks": trained.get("window_weeks"),
            "forced": bool(trained.get("forced")),
        },
        "approval": approval,
        "params": ctx.params,
        "artifacts": {k: v for k, v in {
            "batch": fetch.get("batch_uri"),
            "train": (trained or {}).get("train_uri"),
            "holdout": (trained or {}).get("holdout_uri"),
            "lineage": (trained or {}).get("lineage_uri"),
            "comparison": comparison.get("report_uri"),
            "predictions": comparison.get("predictions_uri"),
        }.items() if v},
        "mlflow_run_id": (trained or {}).get("run_id"),
        "durations": step_durations(results, durations),
        "code_version": code_version(),
        "config_hash": spec.config_hash(),
    })


def step_durations(results: dict[str, Any], extra: dict[str, float] | None = None) -> dict[str, float]:
    """Seconds each step took, by task id: from its result's ``duration_seconds``, else ``extra``."""
    out = {task: float(seconds) for task, seconds in (extra or {}).items() if isinstance(seconds, (int, float))}
    for task, result in results.items():
        seconds = result.get("duration_seconds") if isinstance(result, dict) else None
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            out[task] = round(float(seconds), 3)
    return dict(sorted(out.items()))


def approval_summary(spec: ModelSpec, requested: dict | None, applied: dict | None) -> dict | None:
    """The summary's ``approval`` object: null when the spec does not require approval."""
    if not spec.promotion.required:
        return None
    decision = applied or requested or {"outcome": "not_requested",
                                        "reason": "not requested: no challenger reached the approval step"}
    keys = ("outcome", "reason", "decided_by", "decided_by_id", "decided_at", "comment", "requested_at",
            "timeout_at", "challenger_version", "reused", "dag_run_id")
    return {"required": True, **{k: decision.get(k) for k in keys},
            "comment": decision.get("comment") or "", "reused": bool(decision.get("reused")),
            "timeout_hours": spec.promotion.approval_timeout, "on_timeout": spec.promotion.on_timeout}


def approval_headline(decision: str, approval: dict, reasons: list[str], trigger: str | None) -> str | None:
    """The headline when a person (or the approval timeout/expiry) had the last word."""
    comparison = "; ".join(r for r in reasons[1:] if r and r != approval.get("reason"))
    if decision == "promoted":
        return f"Promoted ({trigger or 'retrained'}), {approval.get('reason')}. Comparison: {comparison}."
    if approval.get("outcome") in ("rejected", "timed_out", "expired"):
        return f"Not promoted ({trigger or 'retrained'}): {approval.get('reason')}. Gates passed: {comparison}."
    return None  # approved, but the champion moved: the standard headline names that reason


def headline(decision: str, code: str | None, reasons: list[str], trigger: str | None) -> str:
    """One paragraph a person reads first: what happened and the main reason, with numbers."""
    first = reasons[0] if reasons else ""
    if decision == "promoted":
        why = "; ".join(r for r in reasons[1:] if r) or first
        return f"Promoted ({trigger or 'retrained'}): {first}. Comparison: {why}."
    if decision == "rejected":
        return f"Rejected ({trigger or 'retrained'}): {first}. Comparison: {'; '.join(reasons[1:])}."
    if decision == "skipped":
        label = "insufficient data" if code == "insufficient_data" else "no retraining needed"
        return f"Skipped ({label}): {first}."
    return f"Failed: {'; '.join(reasons)}."


def summarize_run(
    store: ObjectStore,
    tracking_uri: str | None,
    spec: ModelSpec,
    ctx: RunContext,
    results: dict[str, Any],
    failed_tasks: dict[str, str],
    durations: dict[str, float] | None = None,
) -> dict:
    """Build the run summary from task results plus the reports in storage, write it, return it.

    ``durations``: seconds of steps without a result (failed ones), see :func:`build_summary`."""
    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    results = dict(results)
    if results.get("validate_batch") is None and "validate_batch" in failed_tasks:
        report = store.get_json_or_none(paths.validation)
        if report is not None:
            results["validate_batch"] = {**report, "report_uri": paths.validation,
                                         "data_docs_uri": f"{paths.data_docs}/index.html"}
    if results.get("detect_drift") is not None:
        report = store.get_json_or_none(paths.drift) or {}
        results["detect_drift"] = {**results["detect_drift"], **{
            k: report[k] for k in ("features", "signals", "rule", "champion_age_weeks", "importance", "reference")
            if k in report}}
    champion_after = None
    if tracking_uri:
        try:
            from include.retrainer import registry

            current = registry.get_alias(registry.client_for(tracking_uri), spec.name, registry.CHAMPION)
            champion_after = current.version if current else None
        except Exception as exc:  # registry down: the summary still gets written
            log.warning("could not read the current champion (champion_version_after left null): %s", exc)
    summary = build_summary(spec, ctx, results=results, failed_tasks=failed_tasks, champion_after=champion_after,
                            durations=durations)
    summary["summary_uri"] = paths.summary
    # Another run of the same interval (e.g. a forced retrain) keeps the earlier run's summary:
    # it is archived, and the new one names it, so nothing is silently overwritten.
    earlier = store.get_json_or_none(paths.summary)
    if earlier and earlier.get("dag_run_id") not in (None, ctx.run_id) and any(
        earlier.get(k) != summary.get(k) for k in ("decision", "challenger_version", "params")
    ):  # a plain re-run with the same outcome replaces it (idempotent re-runs add no artefacts)
        archived = paths.previous_summary(str(earlier["dag_run_id"]))
        store.put_json(archived, earlier)
        summary["supersedes"] = {"dag_run_id": earlier["dag_run_id"], "decision": earlier.get("decision"),
                                 "summary_uri": archived}
    store.put_json(paths.summary, summary)
    run_id = summary.get("mlflow_run_id")
    if run_id and tracking_uri:
        try:
            from include.retrainer import registry

            registry.client_for(tracking_uri).log_dict(run_id, summary, "summary.json")
        except Exception as exc:  # the S3 copy is the contract; MLflow holds a convenience copy
            log.warning("could not log summary.json to MLflow run %s: %s", run_id, exc)
    return summary
