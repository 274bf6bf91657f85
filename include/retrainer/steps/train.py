"""Step ``train_challenger``: fit, version the data (DVC), log and register (MLflow).

Idempotent: the version is keyed by (model, interval, config hash, code version), so a retry
or re-run reuses the registered version instead of adding one (a forced run gets its own key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.retrainer.config import ModelSpec
from include.retrainer.intervals import to_utc
from include.retrainer.layout import RunLayout
from include.retrainer.steps.context import (
    RunContext,
    StepResult,
    code_version,
    excluded_days,
    experiment_name,
    idempotency_key,
    interval_end_of,
)
from include.retrainer.storage import ObjectStore, interval_token, json_safe, parquet_bytes
from include.retrainer.tasks import RunParam

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainResult(StepResult):
    """The registered challenger (``challenger_version`` None when there was too little data)."""

    challenger_version: str | None = None
    run_id: str | None = None
    idempotency_key: str | None = None
    reused: bool = False
    train_rows: int = 0
    holdout_rows: int = 0
    train_uri: str | None = None
    holdout_uri: str | None = None
    lineage_uri: str | None = None
    model_card_uri: str | None = None
    window_start: Any = None  # datetime from the step; Airflow's XCom serde returns it as one
    window_weeks: int | None = None
    evaluation: dict[str, Any] | None = None
    forced: bool = False
    insufficient_data: bool = False
    reason: str | None = None
    #: Not trained because the drift step found an earlier champion that serves the batch better
    #: (its ``reinstatement``): the comparison step passes it on to the promote step.
    reinstated_version: str | None = None
    reinstatement: dict[str, Any] | None = None

    @classmethod
    def insufficient(cls, reason: str) -> TrainResult:
        return cls(insufficient_data=True, reason=reason)


def train_challenger(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, *, raw_store: ObjectStore | None = None
) -> TrainResult:
    """Fit the estimator on the training window, log to MLflow, register a version, alias challenger."""
    from include.retrainer import lineage as dvc_lineage
    from include.retrainer import loop, registry

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    key = idempotency_key(spec, ctx)
    forced = bool(ctx.params.get(RunParam.FORCE_RETRAIN))
    instead = (store.get_json_or_none(paths.drift) or {}).get("reinstatement") or {}
    if instead.get("reinstated") and not forced:
        # The drift step found an earlier champion that serves this batch better than the
        # champion: it serves again and no retrain is paid for (the promote step moves it).
        reason = f"not trained: {instead.get('reason')}"
        log.info("%s", reason)
        return TrainResult(reason=reason, reinstated_version=str(instead["reinstated"]), reinstatement=instead)
    if forced:
        # A forced run trains a new version even if this interval already has one (e.g. after a
        # labelling fix); retries of the same forced run still reuse theirs.
        key = hashlib.sha256(f"{key}|forced|{ctx.run_id}".encode()).hexdigest()[:24]
    # This version's own folder: a forced re-run or a changed config never overwrites the files
    # an earlier version's tags point to (its drift reference, holdout and model card).
    files = paths.training(key)
    client = registry.client_for(tracking_uri)
    existing = registry.find_versions(client, spec.name, idempotency_key=key)
    if existing:
        # A retry or re-run of a registered version: its files are left exactly as it was trained
        # (the raw data may have changed since; its tags and DVC md5 must keep matching them).
        log.info("version %s already registered for this interval/config/code: reusing it", existing[0].version)
        registry.move_alias(client, spec.name, registry.CHALLENGER, existing[0].version)
        return _reused(store, client, existing[0], key, forced)
    try:
        window, window_start, window_end, (train, holdout, evaluation) = _training_window(
            store, spec, ctx, raw_store or store
        )
    except loop.InsufficientData as exc:
        log.warning("not training: %s", exc)
        return TrainResult.insufficient(f"insufficient data: {exc}")
    train, evaluation, prefit = _since_change(
        store, tracking_uri, spec, client, window.frame, train, holdout, evaluation
    )
    holdout_from = evaluation["holdout_from"]
    train_bytes = parquet_bytes(train)
    train_etag = store.put_bytes(files.train, train_bytes)
    holdout_etag = store.write_parquet(files.holdout, holdout)
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
        "train_data_uri": files.train,
        "train_data_etag": train_etag,
        "holdout_uri": files.holdout,
        "holdout_etag": holdout_etag,
        "config_hash": spec.config_hash(),
        "code_version": code_version(),
        "source_spec": Path(spec.source_path).name,
    }
    store.put_json(files.lineage, lineage)

    from include.retrainer import training
    from include.retrainer.compare import compute_metrics

    try:
        state = loop.fit_challenger(spec, train, holdout, evaluation, ctx.interval_end, model=prefit)
    except loop.InsufficientData as exc:
        log.warning("not training: %s", exc)
        return TrainResult.insufficient(f"insufficient data: {exc}")
    pipeline = state.model
    pred, proba = training.predict(pipeline, holdout, spec)
    metrics = compute_metrics(holdout[spec.features.target].to_numpy(), pred, proba, state.classes)
    example = training.prepare_features(train.head(5), spec)
    card = {
        "model": spec.name,
        "trained_through": ctx.interval_end,
        "baseline": state.baseline,
        "importance": state.importance,
        "evaluation": state.evaluation,  # incl. data_from and, for a short window, data_gain
        "classes": [str(c) for c in state.classes],
        # Day-to-day variation of its scores on its training rows: prediction drift's yardstick.
        "score_variation": loop.score_variation_to_json(state.score_variation),
        # The gate signals that asked for this model and the metric drop they measured (the
        # follow-up signal reads both).
        **({"trigger": [], "trigger_drop": {}} if forced else gate_trigger(store, paths.drift)),
    }
    store.put_json(files.model_card, card)
    # Every lineage tag goes on the MLflow run; the version keeps the few people filter on
    # (registry.VERSION_TAG_KEYS). Readers use VersionInfo.lineage_tag (version, then run).
    training_tags = {
        registry.TAG + "model": spec.name,
        registry.TAG + "dag_id": ctx.dag_id,
        registry.TAG + "dag_run_id": ctx.run_id,
        registry.TAG + "data_interval_start": ctx.interval_start.isoformat(),
        registry.TAG + "data_interval_end": ctx.interval_end.isoformat(),
        registry.TAG + "train_data_uri": files.train,
        registry.TAG + "train_data_etag": train_etag,
        registry.TAG + "holdout_uri": files.holdout,
        registry.TAG + "lineage_uri": files.lineage,
        registry.TAG + "config_hash": spec.config_hash(),
        registry.TAG + "code_version": code_version(),
        registry.TAG + "train_rows": str(len(train)),
        registry.TAG + "validated": "true",
        registry.TAG + "dvc_md5": dvc_record.md5,
        registry.TAG + "dvc_remote": dvc_record.remote_url,
        registry.TAG + "dvc_path": dvc_record.path,
        registry.TAG + "partitions": str(len(window.files)),
        registry.TAG + "partitions_sha256": partitions_digest,
        registry.TAG + "model_card_uri": files.model_card,
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
            # The first day trained on when the window was cut at a change (README "Training on
            # the new regime"); the window's first day otherwise.
            "trained_from": evaluation.get("data_from") or window_start.date().isoformat(),
        },
        metrics={f"holdout_{k}": v for k, v in metrics.items()},
        run_tags=training_tags,
        version_tags={k: v for k, v in training_tags.items() if k[len(registry.TAG) :] in registry.VERSION_TAG_KEYS},
        artifacts={"lineage.json": json_safe(lineage), "model_card.json": json_safe(card)},
        idempotency_key=key,
        description=spec.description,
    )
    registry.move_alias(client, spec.name, registry.CHALLENGER, version.version)
    return TrainResult(
        challenger_version=version.version,
        run_id=version.run_id,
        idempotency_key=key,
        reused=False,
        train_rows=int(len(train)),
        holdout_rows=int(len(holdout)),
        train_uri=files.train,
        holdout_uri=files.holdout,
        lineage_uri=files.lineage,
        model_card_uri=files.model_card,
        window_start=window_start,
        window_weeks=round((window_end.timestamp() - window_start.timestamp()) / (7 * 86400)),
        evaluation=evaluation,
        forced=forced,
    )


def _reused(store: ObjectStore, client: Any, version: Any, key: str, forced: bool) -> TrainResult:
    """The registered version's result, from its own records (nothing is read from raw data)."""
    lineage_uri = version.lineage_tag(client, "lineage_uri")
    lineage = (store.get_json_or_none(lineage_uri) if lineage_uri else None) or {}
    holdout_uri = version.lineage_tag(client, "holdout_uri")
    # Lineage written before intervals.to_utc returned plain datetimes may hold a naive start.
    window_start, window_end = (
        to_utc(dt.datetime.fromisoformat(str(v))) if v else None
        for v in (lineage.get("window_start"), lineage.get("window_end"))
    )
    weeks = None
    if window_start and window_end:
        weeks = round((window_end - window_start).total_seconds() / (7 * 86400))
    return TrainResult(
        challenger_version=version.version,
        run_id=version.run_id,
        idempotency_key=key,
        reused=True,
        train_rows=int(version.lineage_tag(client, "train_rows") or 0),
        holdout_rows=int(len(store.read_parquet(holdout_uri))) if holdout_uri else 0,
        train_uri=version.lineage_tag(client, "train_data_uri"),
        holdout_uri=holdout_uri,
        lineage_uri=lineage_uri,
        model_card_uri=version.lineage_tag(client, "model_card_uri"),
        window_start=window_start,
        window_weeks=weeks,
        evaluation=lineage.get("evaluation"),
        forced=forced,
    )


def _training_window(
    store: ObjectStore, spec: ModelSpec, ctx: RunContext, raw_store: ObjectStore
) -> tuple[Any, dt.datetime, dt.datetime, tuple[Any, Any, dict[str, Any]]]:
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
        rows, first = None, None
        try:
            window = read_partitions(raw_store, spec.data, window_start, window_end, exclude_days=skip)
            target = spec.features.target
            # Rows without a label neither train nor score a model: the rate is of labelled rows.
            rows = int(window.frame[target].notna().sum()) if target in window.frame else len(window.frame)
            first = dt.date.fromisoformat(min(window.days_found)) if window.days_found else None
            return window, window_start, window_end, loop.select_holdout(window.frame, spec)
        except (loop.InsufficientData, NoPartitionsError) as exc:
            if weeks >= widest:
                if isinstance(exc, NoPartitionsError):
                    raise
                suffix = (
                    f" (window widened to {weeks} weeks, training.max_window_weeks={widest})"
                    if weeks > spec.training.window_weeks
                    else ""
                )
                # Too few rows at this rate, not badly spread ones: say how wide a window they need.
                hint = (
                    None if rows is None else training.short_of_rows_hint(rows, first, window_end.date(), weeks, spec)
                )
                if hint:
                    suffix += f"; {hint}"
                raise loop.InsufficientData(f"{exc}{suffix}") from None
            log.info("window of %d week(s) too small (%s): widening to %d", weeks, exc, weeks + 1)
            weeks += 1


def _since_change(
    store: ObjectStore,
    tracking_uri: str,
    spec: ModelSpec,
    client: Any,
    frame: Any,
    train: Any,
    holdout: Any,
    evaluation: dict,
) -> tuple[Any, dict, Any | None]:
    """(training rows, evaluation, fitted pipeline or None): ``loop.train_on_regime`` with the champion.

    The champion as the regime search needs it: its model, the end of its training window, and
    from its model card the day it was itself trained from. No champion or
    ``training.window_from_change: false``: the whole window, unchanged. A champion that cannot
    be read (the drift step has reported why): the whole window, and ``evaluation.regime.kept``
    says so. The rows chosen depend on the champion at training time; its version is recorded
    (``evaluation.regime.champion_version``, in the lineage and on the model card).
    """
    from include.retrainer import loop, registry

    if not spec.training.window_from_change:
        return train, evaluation, None
    version = None
    try:
        champion = registry.get_alias(client, spec.name, registry.CHAMPION)
        if champion is None:
            return train, evaluation, None
        version = str(champion.version)
        ended = interval_end_of(champion)
        if ended is None:
            raise ValueError("its data interval end is not recorded")
        card_uri = champion.lineage_tag(client, "model_card_uri")
        card = store.get_json_or_none(card_uri) if card_uri else None
        state = loop.ModelState(
            model=registry.load_model(tracking_uri, spec.name, champion.version),
            train=None,
            holdout=None,
            trained_through=ended,
            baseline={},
            importance={},
            evaluation=(card or {}).get("evaluation") or {},
        )
    except Exception as exc:  # an optional refinement never blocks training
        why = f"whole window: champion v{version} could not be read ({type(exc).__name__}: {exc})"
        log.warning("%s", why)
        return train, {**evaluation, "regime": {"from": None, "source": None, "kept": why}}, None
    rows, info, model = loop.train_on_regime(spec, state, frame, train, holdout, evaluation)
    regime = info.get("regime") or {}
    if regime:
        info = {**info, "regime": {**regime, "champion_version": version}}
    log.info(
        "champion v%s: %s; %s",
        version,
        (regime.get("detection") or {}).get("reason") or "no change tested",
        f"training on the {len(rows)} rows since {regime['from']}"
        if regime.get("from")
        else regime.get("kept", "whole window"),
    )
    return rows, info, model


def gate_trigger(store: ObjectStore, drift_uri: str) -> dict:
    """``{"trigger", "trigger_drop"}`` of this run's retrain, from its drift report (``drift.json``).

    ``trigger``: the gate signals that decided it; ``trigger_drop``: the largest drop of the
    primary metric one of them measured (``loop.trigger_drop``; ``{}`` when none did).
    """
    from include.retrainer import loop

    report = store.get_json_or_none(drift_uri) or {}
    rule, signals = report.get("rule"), report.get("signals")
    return {"trigger": list(loop.deciding_signals(rule, signals)), "trigger_drop": loop.trigger_drop(rule, signals)}
