"""Steps ``detect_drift`` and ``decide_retrain``: assess the champion on the batch, then branch.

``detect_drift`` measures every gate signal against the champion's training data (the
statistics are :mod:`include.retrainer.loop`'s, shared with the replay benchmark) and stores
the full report; ``decide_retrain`` turns its verdict and the run's ``force_retrain`` into
the branch.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from include.retrainer.config import PARTITION_COLUMN, ModelSpec
from include.retrainer.layout import ModelLayout, RunLayout
from include.retrainer.steps.context import RunContext, StepResult, interval_end_of
from include.retrainer.storage import ObjectStore
from include.retrainer.tasks import RunParam

log = logging.getLogger(__name__)

#: Keys of the stored drift report the run summary adds to the task's (smaller) result.
REPORT_DETAIL_KEYS = ("features", "signals", "rule", "champion_age_weeks", "importance", "reference")


@dataclass(frozen=True, kw_only=True)
class DriftResult(StepResult):
    """The gate's verdict; the per-feature detail lives in the stored report (``report_uri``)."""

    champion_version: str | None = None
    report_uri: str | None = None
    gate: bool = False
    reason: str | None = None
    code: str | None = None
    cold_start: bool = False
    drifted: list[str] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    # From the stored report (see REPORT_DETAIL_KEYS): present in the summary, not in the XCom.
    features: dict[str, Any] = field(default_factory=dict)
    rule: str | None = None
    champion_age_weeks: float | None = None
    importance: dict[str, Any] = field(default_factory=dict)
    reference: Any = None
    #: Earlier champions judged against the champion on this batch because the gate wants a
    #: retrain (``loop.Reinstatement.to_dict`` plus the batch, the trigger and the champion);
    #: ``reinstated`` set: no challenger is trained, that version is champion again.
    reinstatement: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class RetrainDecision(StepResult):
    """What ``decide_retrain`` chose (pushed under its own XCom key: the branch is its return value)."""

    retrain: bool = False
    reason: str = ""
    forced: bool = False


def drift_reference(store: ObjectStore, spec: ModelSpec, version: Any, train_uri: str) -> Any:
    """The data-drift reference of a model version: the ``ReferenceSummary`` of its training rows.

    Read from the object store when an earlier run (any worker) stored it, else computed from
    the training data once and stored (``include/retrainer/reference_cache.py``: keyed by the
    version, the training data's URI and ETag, the compared columns and the row-choosing drift
    settings; a corrupt or missing summary is recomputed). On a hit the training rows are not
    read at all. ``detect_drift`` reports exactly the same with the summary as with the rows.
    """
    from include.retrainer.reference_cache import load_reference_summary, summary_uri

    feats = spec.features
    settings = spec.drift
    info = store.head(train_uri)
    uri = summary_uri(
        ModelLayout.of(spec),
        str(version),
        train_uri,
        info.etag if info else None,
        feats.numeric,
        feats.categorical,
        settings,
    )
    return load_reference_summary(
        store, uri, feats.numeric, feats.categorical, settings, lambda: store.read_parquet(train_uri)
    ).summary


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
    missing = [
        name
        for name, uri in (("train_data_uri", reference_uri), ("holdout_uri", holdout_uri))
        if not uri or not store.exists(uri)
    ]
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
        log.info("champion v%s has no model card: measuring its baseline now, equal feature weights", champion.version)
        card = {"baseline": loop.baseline_estimate(model, holdout, spec), "importance": {}}
    trained_through = interval_end_of(champion) or dt.datetime.min.replace(tzinfo=dt.UTC)
    trigger = tuple(card.get("trigger") or ())
    asked = card.get("trigger_drop")  # absent from cards written before it was recorded
    if champion.tag("decision") in ("rollback_target", "reinstated") and trigger:
        # Restored by a person (rollback) or by a comparison (reinstated): the change it once
        # answered is not what it serves now, and a follow-up retrain would undo that choice.
        # It ages and decays as any other.
        log.info(
            "champion v%s was restored (%s): no follow-up on its trigger %s",
            champion.version,
            champion.tag("decision"),
            trigger,
        )
        trigger, asked = (), {}
    state = loop.ModelState(
        model=model,
        train=reference,
        holdout=holdout[[c for c in columns if c in holdout.columns]],
        trained_through=trained_through,
        baseline=card.get("baseline") or {},
        importance=card.get("importance") or {},
        evaluation=card.get("evaluation") or {},
        score_variation=loop.score_variation_from_json(card.get("score_variation")),
        trigger=trigger,
        trigger_drop=asked if isinstance(asked, dict) else {},
        gain=loop.promotion_gain(_comparison_of(store, spec, champion)),
        served=load_served(store, spec, champion),
    )
    return state, None


def load_served(store: ObjectStore, spec: ModelSpec, champion: Any) -> tuple[dict, ...]:
    """The champion version's served history: its primary metric on each batch it was assessed on.

    One object per week under ``<model>/served/v<version>/`` (written by :func:`detect_drift`),
    oldest first; ``loop.assess`` keeps the weeks before the interval it decides, so a re-run
    or a backfill decides as the first run did. Only records of this very version count: each
    names the MLflow run behind it, so a registry rebuilt beside a kept bucket (a new v1) never
    pools the old v1's weeks. An unreadable record is skipped, with a log line.
    """
    from include.retrainer.storage import split_uri

    bucket, prefix = split_uri(ModelLayout.of(spec).served_metrics(champion.version) + "/")
    weeks = []
    for obj in sorted(store.iter_objects(bucket, prefix), key=lambda o: o.key):
        try:
            record = store.get_json(obj.uri)
        except Exception as exc:  # a corrupt record loses one week of history, not the run
            log.warning("served-metric record %s not read (%s): skipped", obj.uri, exc)
            continue
        if not isinstance(record, dict):
            log.warning("served-metric record %s is not an object: skipped", obj.uri)
        elif record.get("run_id") != champion.run_id:
            log.warning(
                "served-metric record %s belongs to run %s, not v%s's run %s: skipped",
                obj.uri,
                record.get("run_id"),
                champion.version,
                champion.run_id,
            )
        else:
            weeks.append(record)
    return tuple(weeks)


def record_served(
    store: ObjectStore,
    spec: ModelSpec,
    champion: Any,
    trained_through: dt.datetime,
    ctx: RunContext,
    served: dict | None,
) -> None:
    """Store the champion's metric on this week's batch (a re-run of the week overwrites it).

    Only for a week after the champion's own data: a re-run of an older week, judged against a
    later champion, is not a week that version served.
    """
    if not served or ctx.interval_end <= trained_through:
        return
    uri = ModelLayout.of(spec).served_week(champion.version, ctx.interval_start, ctx.interval_end)
    record = {
        **served,
        "version": str(champion.version),
        "run_id": champion.run_id,
        "interval_start": ctx.interval_start.isoformat(),
    }
    store.put_json(uri, record)


def _comparison_of(store: ObjectStore, spec: ModelSpec, version: Any) -> dict | None:
    """The comparison that promoted ``version`` (``comparison.json`` of the run it was trained in)."""
    start, end = version.tag("data_interval_start"), version.tag("data_interval_end")
    if not (start and end):
        return None
    uri = RunLayout.of(spec, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)).comparison
    comparison = store.get_json_or_none(uri)
    # A forced re-run of the interval overwrites the file with another version's comparison.
    if comparison is None or str(comparison.get("challenger_version")) != str(version.version):
        return None
    return comparison


def load_rejected_since(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, champion: Any, state: Any
) -> Any:
    """The latest challenger rejected after the champion and before this interval, if any.

    Retraining on that data was tried and did not help, so the gate measures change since then
    (see ``loop.assess``). Searched among the versions tagged ``decision=rejected`` (not only
    the one the ``challenger`` alias points at now): a version counts when it was trained on an
    interval ending after the champion's and before this run's, and the latest such one is
    taken. So a re-run or backfill of an older week finds the attempt its first run found, even
    after newer weeks have moved the alias on.
    """
    from include.retrainer import loop, registry

    client = registry.client_for(tracking_uri)
    found = []
    for version in registry.find_versions(client, spec.name, decision="rejected"):
        end = interval_end_of(version)
        if version.version != champion.version and end is not None and state.trained_through < end < ctx.interval_end:
            found.append((end, int(version.version), version))
    marker = reinstated_instead_of_retraining(champion)
    if marker is not None and state.trained_through < marker[0] < ctx.interval_end:
        if not found or marker[0] >= max(f[0] for f in found):
            return _since_reinstatement(store, spec, champion, *marker)
    if not found:
        return None
    end, _, candidate = max(found, key=lambda f: (f[0], f[1]))
    train_uri, holdout_uri = (
        candidate.lineage_tag(client, "train_data_uri"),
        candidate.lineage_tag(client, "holdout_uri"),
    )
    if not train_uri or not holdout_uri or not store.exists(train_uri) or not store.exists(holdout_uri):
        return None
    log.info(
        "challenger v%s (data to %s) was rejected: the gate measures change since its data",
        candidate.version,
        end.date().isoformat(),
    )
    card_uri = candidate.lineage_tag(client, "model_card_uri")
    card = (store.get_json_or_none(card_uri) if card_uri else None) or {}
    return loop.ModelState(
        model=None,
        train=drift_reference(store, spec, candidate.version, train_uri),
        holdout=store.read_parquet(holdout_uri),
        trained_through=end,
        baseline={},
        importance={},
        evaluation=card.get("evaluation") or {},
        trigger=tuple(card.get("trigger") or ()),
    )


def reinstated_instead_of_retraining(champion: Any) -> tuple[dt.datetime, str, tuple[str, ...]] | None:
    """(interval end, batch URI, trigger) when ``champion`` was reinstated instead of a retrain.

    The gate wanted a retrain that week and an earlier champion served the batch better, so no
    challenger was trained: that batch is then what "change since" is measured from, as a
    rejected challenger's data is after a rejection (the age counts from that week too).
    """
    if champion.tag("decision") != "reinstated" or not champion.tag("reinstated_batch_uri"):
        return None
    end = champion.tag("reinstated_for_interval_end")
    if not end:
        return None
    trigger = tuple(t for t in (champion.tag("reinstated_trigger") or "").split(",") if t)
    return dt.datetime.fromisoformat(end), str(champion.tag("reinstated_batch_uri")), trigger


def _since_reinstatement(
    store: ObjectStore, spec: ModelSpec, champion: Any, end: dt.datetime, batch_uri: str, trigger: tuple[str, ...]
) -> Any:
    from include.retrainer import loop

    if not store.exists(batch_uri):
        log.warning(
            "the batch v%s was reinstated on (%s) is gone: change is measured from its own data",
            champion.version,
            batch_uri,
        )
        return None
    log.info(
        "champion v%s was reinstated instead of a retrain for the week ending %s: the gate measures change since that batch",
        champion.version,
        end.date().isoformat(),
    )
    feats = spec.features
    batch = store.read_parquet(batch_uri)
    columns = [*feats.feature_columns, feats.target, PARTITION_COLUMN]
    return loop.ModelState(
        model=None,
        train=drift_reference(store, spec, f"{champion.version}_reinstated_{end.date().isoformat()}", batch_uri),
        holdout=batch[[c for c in columns if c in batch.columns]],
        trained_through=end,
        baseline={},
        importance={},
        evaluation={"since": loop.REINSTATED_ON},
        trigger=trigger,
    )


def _check_earlier_champions(
    store: ObjectStore,
    client: Any,
    tracking_uri: str,
    spec: ModelSpec,
    ctx: RunContext,
    champion: Any,
    state: Any,
    batch: Any,
    batch_uri: str,
    outcome: Any,
) -> dict[str, Any] | None:
    """The gate wants a retrain: does an earlier champion serve this labelled batch better?

    Judged as after training (``loop.reinstate_earlier_champion``: superiority at alpha / N
    against the champion, McNemar guard, slice and fairness gates), on the whole batch, which
    neither the champion nor any earlier champion trained on. Not for a forced run (the user
    asked for a new model), when reinstatement is off (``reinstatement_allowed``), or when only
    signals asking for newer data decided (``loop.earlier_champions_before_training``).
    """
    from include.retrainer import loop, registry
    from include.retrainer.steps.reinstate import earlier_champion_states, first_day, reinstatement_allowed

    if not outcome.retrain or ctx.params.get(RunParam.FORCE_RETRAIN) or not reinstatement_allowed(spec):
        return None
    if not loop.earlier_champions_before_training(outcome.trigger):
        log.info("retrain asked for newer data (%s): earlier champions are judged after training", outcome.trigger)
        return None
    newest = data_end_of_champion(champion)
    if newest is not None and ctx.interval_end <= newest:
        # A backfill of a week older than the champion's data: never replaces it (the stale rule).
        log.info("week ends %s, not after champion v%s's data: no reinstatement", ctx.interval_end, champion.version)
        return None
    if registry.find_versions(client, spec.name, data_interval_end=ctx.interval_end.isoformat()):
        # A re-run of a week that trained a challenger: it decides as that run did (train reuses it).
        log.info("a version was trained for this interval: its comparison decides, not a reinstatement")
        return None
    labelled = batch[batch[spec.features.target].notna()]
    candidates = earlier_champion_states(
        store, client, tracking_uri, spec, {str(champion.version)}, first_day(labelled)
    )
    if not candidates:
        return None
    found = loop.reinstate_earlier_champion(
        spec, state, "champion", candidates, labelled, loop.BATCH_ROWS, interval_end=ctx.interval_end
    )
    log.info(
        "before retraining, earlier champions %s judged on the batch: %s", [c[0] for c in candidates], found.reason
    )
    return {
        **found.to_dict(),
        "reinstated": None if found.key is None else str(found.key),
        "champion_version": str(champion.version),
        "batch_uri": batch_uri,
        "trigger": list(outcome.trigger),
        "judged_on": "batch",
    }


def detect_drift(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, batch_uri: str
) -> DriftResult:
    """Assess the champion on the batch: every gate signal, and whether to retrain."""
    from include.retrainer import loop, registry

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    client = registry.client_for(tracking_uri)
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    reinstated_here = champion is not None and _reinstated_for(champion) == ctx.interval_end
    if champion is not None and (_trained_on_interval(champion, ctx) or reinstated_here):
        # A re-run of an interval whose own model is already champion: judge the batch against
        # the champion it replaced, as the first run did, so the re-run reaches the same decision.
        previous = champion.tag("reinstated_replacing" if reinstated_here else "replaced_version")
        log.info(
            "champion v%s was made champion for this interval: evaluating against v%s it replaced",
            champion.version,
            previous or "-",
        )
        champion = registry.get_version(client, spec.name, previous) if previous else None
    base = {"champion_version": champion.version if champion else None, "report_uri": paths.drift}
    if champion is None:
        outcome = loop.assess(spec, None, None, ctx.interval_end)
        report = {"gate": True, "reason": outcome.reason, "code": outcome.code, "signals": [], "features": {}}
        store.put_json(paths.drift, report)
        log.info("gate: %s", outcome.reason)
        return DriftResult.of({**base, **report, "cold_start": True, "drifted": []})
    state, why_not = load_champion_state(store, tracking_uri, spec, champion, client)
    if state is None:
        report = {"gate": True, "reason": why_not, "code": "no_lineage", "signals": [], "features": {}}
        store.put_json(paths.drift, report)
        return DriftResult.of({**base, **report, "cold_start": False, "drifted": []})
    batch = store.read_parquet(batch_uri)
    since = load_rejected_since(store, tracking_uri, spec, ctx, champion, state)
    outcome = loop.assess(spec, state, batch, ctx.interval_end, since=since)
    # A week before the champion's newest data (its training, or the week it was reinstated for)
    # is a backfill, not a week it served in this tenure.
    record_served(store, spec, champion, data_end_of_champion(champion) or state.trained_through, ctx, outcome.served)
    reinstatement = _check_earlier_champions(
        store, client, tracking_uri, spec, ctx, champion, state, batch, batch_uri, outcome
    )
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
        "served": outcome.served,
        "reinstatement": reinstatement,
    }
    store.put_json(paths.drift, out)
    log.info(
        "read %d reference rows (champion v%s) and %d batch rows; gate retrain=%s: %s",
        len(state.train),
        champion.version,
        len(batch),
        outcome.retrain,
        outcome.reason,
    )
    return DriftResult(
        champion_version=base["champion_version"],
        report_uri=paths.drift,
        gate=bool(outcome.retrain),
        reason=outcome.reason,
        code=outcome.code,
        cold_start=False,
        drifted=list(drift_report.get("drifted", [])),
        signals=[
            {k: sig.get(k) for k in ("name", "status", "statistic", "threshold", "p_value", "summary")}
            for sig in outcome.signals
        ],
        reinstatement=reinstatement,
    )


def _reinstated_for(version: Any) -> dt.datetime | None:
    """The interval end a version was reinstated for (None unless its decision is ``reinstated``)."""
    end = version.tag("reinstated_for_interval_end") if version.tag("decision") == "reinstated" else None
    return dt.datetime.fromisoformat(end) if end else None


def data_end_of_champion(version: Any) -> dt.datetime | None:
    """The newest data a champion answers for: its training interval's end, or the interval it was
    reinstated for when later (a backfilled older week never replaces it)."""
    ends = [e for e in (interval_end_of(version), _reinstated_for(version)) if e is not None]
    return max(ends) if ends else None


def _trained_on_interval(version: Any, ctx: RunContext) -> bool:
    start, end = version.tag("data_interval_start"), version.tag("data_interval_end")
    return bool(start and end) and (
        dt.datetime.fromisoformat(start) == ctx.interval_start and dt.datetime.fromisoformat(end) == ctx.interval_end
    )


def decide_retrain(drift: DriftResult, force_retrain: bool) -> RetrainDecision:
    """Step ``decide_retrain``: retrain on the gate's call, or when the run forces it."""
    if force_retrain:
        reason = f"forced by run param {RunParam.FORCE_RETRAIN}=true" + (f" ({drift.reason})" if drift.reason else "")
        return RetrainDecision(retrain=True, reason=reason, forced=True)
    if drift.gate:
        return RetrainDecision(retrain=True, reason=drift.reason or "", forced=False)
    return RetrainDecision(retrain=False, reason=f"skipped: {drift.reason or 'no drift'}", forced=False)
