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
from include.retrainer.storage import ObjectStore, interval_token, json_safe, parquet_bytes, s3_uri

log = logging.getLogger(__name__)

SUMMARY_SCHEMA_VERSION = 1


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


class RunPaths:
    """Where a (model, data interval) keeps its artefacts."""

    def __init__(self, spec: ModelSpec, start: dt.datetime, end: dt.datetime):
        self.bucket = spec.artifacts.bucket
        self.model_prefix = s3_uri(self.bucket, spec.artifacts.prefix, spec.name)
        self.base = f"{self.model_prefix}/{interval_token(start, end)}"

    def __getattr__(self, name: str) -> str:
        files = {
            "batch": "batch.parquet",
            "manifest": "batch_manifest.json",
            "validation": "validation.json",
            "drift": "drift.json",
            "train": "train.parquet",
            "holdout": "holdout.parquet",
            "lineage": "lineage.json",
            "comparison": "comparison.json",
            "predictions": "predictions.parquet",
            "decision": "decision.json",
            "summary": "summary.json",
        }
        if name in files:
            return f"{self.base}/{files[name]}"
        raise AttributeError(name)

    @property
    def data_docs(self) -> str:
        return f"{self.base}/data_docs"

    def error(self, task_id: str) -> str:
        return f"{self.base}/errors/{task_id}.json"


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


def fetch_batch(store: ObjectStore, spec: ModelSpec, ctx: RunContext) -> dict:
    """Read every daily partition of the interval and store the combined batch as Parquet."""
    from include.retrainer.fetch import read_partitions

    paths = RunPaths(spec, ctx.interval_start, ctx.interval_end)
    skip = excluded_days(store, spec, ctx)
    batch = read_partitions(store, spec.data, ctx.interval_start, ctx.interval_end, exclude_days=skip)
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
    if spec.suite_path is not None:
        expectations += validation.load_suite_file(spec.suite_path)
    expectations += [e.model_dump() for e in spec.validation.expectations]
    return expectations


def validate_batch(store: ObjectStore, spec: ModelSpec, ctx: RunContext, batch_uri: str) -> dict:
    """Validate the batch with the model's suite; store the report and Data Docs; fail on failure."""
    from include.retrainer import validation

    paths = RunPaths(spec, ctx.interval_start, ctx.interval_end)
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
        store.put_json(paths.validation, {**report.to_dict(), "summary": result["summary"],
                                          "quarantined_days": result["quarantined_days"]})
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

    manifest = store.get_json_or_none(RunPaths(spec, ctx.interval_start, ctx.interval_end).manifest) or {}
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
def drift_settings(spec: ModelSpec):
    from include.retrainer.drift import DriftSettings

    d = spec.drift
    return DriftSettings(
        numeric_method=d.numeric_method,
        categorical_method=d.categorical_method,
        alpha=d.alpha,
        correction=d.correction,
        ks_min_statistic=d.ks_min_statistic,
        chi2_min_cramers_v=d.chi2_min_cramers_v,
        psi_threshold=d.psi_threshold,
        wasserstein_threshold=d.wasserstein_threshold,
        psi_bins=d.psi_bins,
        min_rows=d.min_rows,
        max_rows=d.max_rows,
        gate_min_drifted_share=d.gate.min_drifted_share,
        gate_min_drifted_features=d.gate.min_drifted_features,
        critical_features=tuple(d.gate.critical_features),
    )


def detect_drift(store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, batch_uri: str) -> dict:
    """Compare the batch with the champion's training data (found through its lineage tag)."""
    from include.retrainer import registry
    from include.retrainer.drift import detect_drift as run_drift

    paths = RunPaths(spec, ctx.interval_start, ctx.interval_end)
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
        report = {"gate": True, "reason": f"cold start: model '{spec.name}' has no champion yet", "features": {}}
        store.put_json(paths.drift, report)
        return {**base, **report, "cold_start": True, "drifted": []}
    reference_uri = champion.tag("train_data_uri")
    if not reference_uri or not store.exists(reference_uri):
        report = {
            "gate": True,
            "reason": f"no reference data: champion v{champion.version} has no readable training-data lineage "
            f"(tag {registry.TAG}train_data_uri={reference_uri!r}); retraining to re-establish lineage",
            "features": {},
        }
        store.put_json(paths.drift, report)
        return {**base, **report, "cold_start": False, "drifted": []}
    feats = spec.features
    cols = feats.feature_columns
    reference = store.read_parquet(reference_uri, columns=cols)
    current = store.read_parquet(batch_uri, columns=cols)
    report = run_drift(reference, current, feats.numeric, feats.categorical, drift_settings(spec))
    out = report.to_dict()
    out["reference_uri"] = reference_uri
    out["reference_version"] = champion.version
    store.put_json(paths.drift, out)
    log.info("drift gate=%s: %s", report.gate, report.reason)
    return {
        **base,
        "gate": bool(report.gate),
        "reason": report.reason,
        "cold_start": False,
        "drifted": list(report.drifted),
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
def train_challenger(store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext) -> dict:
    """Fit the estimator on the training window, log to MLflow, register a version, alias challenger."""
    from include.retrainer import lineage as dvc_lineage
    from include.retrainer import registry, training
    from include.retrainer.compare import compute_metrics
    from include.retrainer.fetch import read_partitions

    paths = RunPaths(spec, ctx.interval_start, ctx.interval_end)
    key = idempotency_key(spec, ctx)
    window_start, window_end = training.training_window(ctx.interval_end, spec.training.window_weeks)
    window = read_partitions(store, spec.data, window_start, window_end, exclude_days=excluded_days(store, spec, ctx))
    train, holdout, holdout_from = training.split_holdout(window.frame, ctx.interval_end, spec.training.holdout_days)
    if len(holdout) < spec.training.min_holdout_rows:
        raise training.TrainingError(
            f"only {len(holdout)} holdout rows from {holdout_from} (training.min_holdout_rows={spec.training.min_holdout_rows})"
        )
    train_bytes = parquet_bytes(train)
    train_etag = store.put_bytes(paths.train, train_bytes)
    holdout_etag = store.write_parquet(paths.holdout, holdout)
    # Version the exact training bytes with DVC (content-addressed: a re-run pushes nothing new).
    dvc_record = dvc_lineage.version_training_data(
        train_bytes,
        file_name="train.parquet",
        remote_url=s3_uri(dvc_lineage.DEFAULT_DVC_BUCKET, spec.name),
        **dvc_lineage.s3_settings_from_client(store.client),
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
        pipeline = training.fit_pipeline(spec, train)
        pred, proba = training.predict(pipeline, holdout, spec)
        classes = list(pipeline.classes_)
        metrics = compute_metrics(holdout[spec.features.target].to_numpy(), pred, proba, classes)
        example = training.prepare_features(train.head(5), spec)
        version_tags = {
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
                "window_weeks": spec.training.window_weeks,
                "holdout_days": spec.training.holdout_days,
                "window_start": window_start.isoformat(),
                "window_end": window_end.isoformat(),
                "train_rows": len(train),
                "holdout_rows": len(holdout),
            },
            metrics={f"holdout_{k}": v for k, v in metrics.items()},
            run_tags={**version_tags},
            version_tags=version_tags,
            artifacts={"lineage.json": json_safe(lineage)},
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
    }


# --------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------
def comparison_settings(spec: ModelSpec):
    from include.retrainer.compare import ComparisonSettings

    c = spec.comparison
    return ComparisonSettings(
        primary_metric=c.primary_metric,
        floor=c.floor,
        min_improvement=c.min_improvement,
        alpha=c.alpha,
        policy=c.policy,
        non_inferiority_margin=c.non_inferiority_margin,
        exact_threshold=c.exact_threshold,
    )


def _interval_end(version) -> dt.datetime | None:
    raw = version.tag("data_interval_end") if version else None
    return dt.datetime.fromisoformat(raw) if raw else None


def compare_models(store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, trained: dict) -> dict:
    """Score champion and challenger on the same held-out rows; decide promote or reject."""
    import pandas as pd

    from include.retrainer import compare, registry, training

    paths = RunPaths(spec, ctx.interval_start, ctx.interval_end)
    client = registry.client_for(tracking_uri)
    challenger_v = str(trained["challenger_version"])
    challenger = registry.get_version(client, spec.name, challenger_v)
    if challenger is None:
        raise registry.RegistryError(f"challenger version {challenger_v} of '{spec.name}' no longer exists")
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    settings = comparison_settings(spec)
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

    challenger_model = registry.load_model(tracking_uri, spec.name, challenger_v)
    ch_pred, ch_proba = training.predict(challenger_model, holdout, spec)
    classes = list(challenger_model.classes_)
    predictions = pd.DataFrame({"y_true": y, "challenger_pred": ch_pred})

    stale_reason = None
    if champion is None:
        result = compare.evaluate_cold_start(y, ch_pred, settings, challenger_proba=ch_proba, classes=classes)
    else:
        champion_model = registry.load_model(tracking_uri, spec.name, champion.version)
        cp_pred, cp_proba = training.predict(champion_model, holdout, spec)
        if list(champion_model.classes_) != classes:
            cp_proba = None  # class sets differ (e.g. an unseen class): compare on labels only
            if settings.primary_metric in ("roc_auc", "log_loss"):
                raise compare_error(spec, champion_model.classes_, classes)
        predictions["champion_pred"] = cp_pred
        result = compare.compare_models(
            y, cp_pred, ch_pred, settings, champion_proba=cp_proba, challenger_proba=ch_proba, classes=classes
        )
        champ_end, chall_end = _interval_end(champion), _interval_end(challenger)
        if champ_end and chall_end and chall_end < champ_end:
            stale_reason = (
                f"stale challenger: trained on data up to {chall_end.isoformat()} but champion "
                f"v{champion.version} was trained on newer data up to {champ_end.isoformat()}"
            )
    out = result.to_dict()
    if stale_reason:
        out["decision"] = "reject"
        out["reasons"] = [*out["reasons"], stale_reason]
    out.update(
        {
            "champion_version": champion.version if champion else None,
            "challenger_version": challenger_v,
            "holdout_rows": int(len(holdout)),
            "predictions_uri": paths.predictions,
        }
    )
    store.write_parquet(paths.predictions, predictions)
    store.put_json(paths.comparison, out)
    log.info("decision=%s: %s", out["decision"], "; ".join(out["reasons"]))
    return {**json_safe(out), "report_uri": paths.comparison}


def compare_error(spec: ModelSpec, champion_classes: Any, challenger_classes: Any) -> RuntimeError:
    return RuntimeError(
        f"champion classes {list(champion_classes)} differ from challenger classes {list(challenger_classes)}: "
        f"comparison.primary_metric={spec.comparison.primary_metric} needs aligned probabilities; "
        "use a label metric (accuracy, f1, ...) or check the target column"
    )


# --------------------------------------------------------------------------------------
# promote / reject
# --------------------------------------------------------------------------------------
def champion_lock(store: ObjectStore, spec: ModelSpec, owner: str, **lease_options: Any):
    """The lease every move of ``champion`` (promotion, rollback) holds while it checks and moves.

    Call ``ensure_held()`` on it right before the alias move; ``lease_options`` go to
    :class:`~include.retrainer.locking.LeaseLock` (ttl_seconds, wait_seconds, ...)."""
    from include.retrainer.locking import LeaseLock

    return LeaseLock(store, f"{RunPaths(spec, _EPOCH, _EPOCH).model_prefix}/locks/champion.lock", owner, **lease_options)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def promote_challenger(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, comparison: dict, allow_promotion: bool = True
) -> dict:
    """Move alias champion to the challenger, compare-and-set against the evaluated champion.

    Under the champion lock: re-read the champion; promote only if it is still the one the
    comparison used, otherwise reject with that reason (the run can be re-run to re-evaluate).
    """
    from include.retrainer import history, registry

    client = registry.client_for(tracking_uri)
    challenger_v = str(comparison["challenger_version"])
    expected = comparison.get("champion_version")
    expected = str(expected) if expected is not None else None
    if not allow_promotion:
        return reject_challenger(tracking_uri, spec, ctx, comparison,
                                 extra_reason="promotion disabled by run param allow_promotion=false")
    with champion_lock(store, spec, owner=f"{ctx.dag_id}/{ctx.run_id}") as lease:
        current = registry.get_alias(client, spec.name, registry.CHAMPION)
        current_v = current.version if current else None
        if current_v == challenger_v:  # a retry after the alias already moved: finish the bookkeeping
            _complete_promotion_records(store, client, spec, ctx, challenger_v, list(comparison.get("reasons", [])))
            return {"promoted": True, "champion_before": expected, "champion_after": challenger_v,
                    "reasons": list(comparison.get("reasons", []))}
        if current_v != expected:
            return reject_challenger(
                tracking_uri, spec, ctx, comparison,
                extra_reason=f"champion changed during evaluation (compared against v{expected}, now v{current_v}); "
                "not promoting a challenger that was not compared with the current champion (re-run to re-evaluate)",
            )
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        reasons = list(comparison.get("reasons", []))
        fence = lease.ensure_held()  # LeaseLost (retryable) before any tag if the lease was taken over
        registry.set_tags(client, spec.name, challenger_v, {
            registry.TAG + "decision": "promoted",
            registry.TAG + "decision_reasons": "; ".join(reasons),
            registry.TAG + "promoted_at": now,
            registry.TAG + "promoted_by_run": ctx.run_id,
            registry.TAG + "replaced_version": current_v or "",
            registry.TAG + "fencing_token": str(fence),
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
                "data_interval_end": ctx.interval_end, "reasons": reasons, "at": now,
            },
        )
    log.info("promoted v%s to champion (was %s)", challenger_v, current_v)
    return {"promoted": True, "champion_before": current_v, "champion_after": challenger_v, "reasons": reasons}


def _complete_promotion_records(store: ObjectStore, client: Any, spec: ModelSpec, ctx: RunContext,
                                version: str, reasons: list[str]) -> None:
    """After a crash between moving the alias and recording it: tag the replaced version and
    write the history record, once (the promotion tags on ``version`` are set before the move)."""
    from include.retrainer import history, registry

    promoted = registry.get_version(client, spec.name, version)
    if promoted is None or promoted.tag("promoted_by_run") != ctx.run_id:
        return  # promoted by another run (or rolled forward manually): nothing of ours to finish
    previous = promoted.tag("replaced_version") or None
    at = promoted.tag("promoted_at") or dt.datetime.now(dt.timezone.utc).isoformat()
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
        })


def reject_challenger(tracking_uri: str, spec: ModelSpec, ctx: RunContext, comparison: dict, extra_reason: str | None = None) -> dict:
    """Tag the challenger with the rejection; the champion is untouched."""
    from include.retrainer import registry

    client = registry.client_for(tracking_uri)
    challenger_v = str(comparison["challenger_version"])
    reasons = list(comparison.get("reasons", [])) + ([extra_reason] if extra_reason else [])
    registry.set_tags(client, spec.name, challenger_v, {
        registry.TAG + "decision": "rejected",
        registry.TAG + "decision_reasons": "; ".join(reasons),
        registry.TAG + "rejected_by_run": ctx.run_id,
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
) -> dict:
    """Assemble the run summary (schema: docs/run-summary.md) from the tasks' results."""
    fetch = results.get("fetch_batch") or {}
    val = results.get("validate_batch")
    drift = results.get("detect_drift")
    branch = results.get("decide_retrain") or {}
    trained = results.get("train_challenger")
    comparison = results.get("compare_models") or {}
    outcome = results.get("promote_challenger") or results.get("reject_challenger")

    reasons: list[str] = []
    if failed_tasks:
        decision = "failed"
        reasons += [f"{task} failed: {msg}" for task, msg in failed_tasks.items()]
    elif branch and not branch.get("retrain"):
        decision = "skipped"
        reasons.append(branch.get("reason", "no retraining needed"))
    elif outcome is not None:
        decision = "promoted" if outcome.get("promoted") else "rejected"
        if branch.get("reason"):
            reasons.append(f"retrained: {branch['reason']}")
        reasons += outcome.get("reasons", [])
    else:
        decision = "failed"
        reasons.append("run ended before a decision was made")

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
            "notes": val.get("notes", []),
            "released_days": val.get("released_days", []),
            "report_uri": val.get("report_uri"),
            "data_docs_uri": val.get("data_docs_uri"),
        },
        "drift": None if drift is None else {
            "gate": bool(drift.get("gate")),
            "reason": drift.get("reason"),
            "cold_start": bool(drift.get("cold_start")),
            "features": drift.get("features", {}),
            "report_uri": drift.get("report_uri"),
        },
        "decision": decision,
        "reasons": reasons,
        "champion_version_before": champion_before,
        "champion_version_after": champion_after,
        "challenger_version": (trained or {}).get("challenger_version"),
        "metrics": comparison.get("metrics") or {"champion": {}, "challenger": {}},
        "mcnemar": comparison.get("mcnemar"),
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
        "code_version": code_version(),
        "config_hash": spec.config_hash(),
    })


def summarize_run(
    store: ObjectStore,
    tracking_uri: str | None,
    spec: ModelSpec,
    ctx: RunContext,
    results: dict[str, Any],
    failed_tasks: dict[str, str],
) -> dict:
    """Build the run summary from task results plus the reports in storage, write it, return it."""
    paths = RunPaths(spec, ctx.interval_start, ctx.interval_end)
    results = dict(results)
    if results.get("validate_batch") is None and "validate_batch" in failed_tasks:
        report = store.get_json_or_none(paths.validation)
        if report is not None:
            results["validate_batch"] = {**report, "report_uri": paths.validation,
                                         "data_docs_uri": f"{paths.data_docs}/index.html"}
    if results.get("detect_drift") is not None:
        report = store.get_json_or_none(paths.drift) or {}
        results["detect_drift"] = {**results["detect_drift"], "features": report.get("features", {})}
    champion_after = None
    if tracking_uri:
        try:
            from include.retrainer import registry

            current = registry.get_alias(registry.client_for(tracking_uri), spec.name, registry.CHAMPION)
            champion_after = current.version if current else None
        except Exception as exc:  # registry down: the summary still gets written
            log.warning("could not read the current champion (champion_version_after left null): %s", exc)
    summary = build_summary(spec, ctx, results=results, failed_tasks=failed_tasks, champion_after=champion_after)
    summary["summary_uri"] = paths.summary
    store.put_json(paths.summary, summary)
    run_id = summary.get("mlflow_run_id")
    if run_id and tracking_uri:
        try:
            from include.retrainer import registry

            registry.client_for(tracking_uri).log_dict(run_id, summary, "summary.json")
        except Exception as exc:  # the S3 copy is the contract; MLflow holds a convenience copy
            log.warning("could not log summary.json to MLflow run %s: %s", run_id, exc)
    return summary
