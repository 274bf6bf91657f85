"""Step ``approve_promotion`` (models with ``promotion.approval: required``): ask a person, or not.

:func:`prepare_approval` runs before the task parks (reuse an earlier decision, expire a
stale request, or open one with a report of the pending decision); :func:`finish_approval`
turns the response (or the timeout) into a decision, re-checking that the request is still
the newest. Decisions are :class:`include.retrainer.approval.ApprovalDecision` dicts.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from include.retrainer.config import ModelSpec
from include.retrainer.layout import ModelLayout, RunLayout
from include.retrainer.locking import LeaseLock
from include.retrainer.steps.compare import ComparisonResult
from include.retrainer.steps.context import RunContext, interval_end_of
from include.retrainer.steps.summary import RunResults, build_summary
from include.retrainer.storage import ObjectStore
from include.retrainer.tasks import RunParam

log = logging.getLogger(__name__)


def _approval_base(spec: ModelSpec, ctx: RunContext, version: str | None) -> dict[str, Any]:
    return {
        "model": spec.name,
        "data_interval_start": ctx.interval_start.isoformat(),
        "data_interval_end": ctx.interval_end.isoformat(),
        "challenger_version": version,
        "dag_run_id": ctx.run_id,
    }


def approval_lock(store: ObjectStore, spec: ModelSpec, owner: str) -> LeaseLock:
    """Serialises updates of the model's newest-request marker (short critical sections)."""
    return LeaseLock(store, ModelLayout.of(spec).approvals_lock, owner, ttl_seconds=120, wait_seconds=120)


def _champion_interval_end(client: Any, spec: ModelSpec) -> tuple[str | None, dt.datetime | None]:
    from include.retrainer import registry

    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    return (champion.version if champion else None), interval_end_of(champion)


def _expiry_reason(
    client: Any, spec: ModelSpec, ctx: RunContext, newest: dict[str, Any] | None, **request: Any
) -> str | None:
    """Why this run's request is no longer the one to decide (a newer request, a newer champion), if so."""
    from include.retrainer import approval

    champ_v, champ_end = _champion_interval_end(client, spec)
    return approval.expiry_reason(
        interval_start=ctx.interval_start,
        interval_end=ctx.interval_end,
        newest_request=newest,
        champion_version=champ_v,
        champion_interval_end=champ_end,
        run_id=ctx.run_id,
        **request,
    )


def recorded_approval(
    store: ObjectStore, spec: ModelSpec, ctx: RunContext, version: str | None
) -> dict[str, Any] | None:
    """The decision an earlier run of this (model, interval, challenger version) recorded, if any."""
    from include.retrainer.approval import ApprovalDecision

    if version is None:
        return None
    raw = store.get_json_or_none(RunLayout.of(spec, ctx.interval_start, ctx.interval_end).approval(version))
    if not raw:
        return None
    decision = ApprovalDecision.from_dict(raw)
    return decision.reused_by().to_dict() if decision.final else None


def save_approval(store: ObjectStore, spec: ModelSpec, ctx: RunContext, decision: Any) -> dict[str, Any]:
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


def prepare_approval(
    store: ObjectStore,
    tracking_uri: str,
    spec: ModelSpec,
    ctx: RunContext,
    results: RunResults,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Before asking a person: reuse an earlier decision, expire a stale request, or open one.

    Returns ``{"ask": False, "decision": {...}}`` when no one needs to be asked, else
    ``{"ask": True, "subject", "body", "request"}`` after recording the request (the model's
    newest-request marker, ``approval_request_v<version>.json``) and writing a report of the
    pending decision (``report.html``, replaced by the final one when the run ends).
    """
    from include.retrainer import approval, registry
    from include.retrainer.public_urls import PublicUrls

    compared = results.comparison or ComparisonResult()
    comparison = compared.to_xcom()  # the request's text shows the comparison as stored
    version = str(compared.challenger_version) if compared.challenger_version is not None else None
    base = _approval_base(spec, ctx, version)
    if version is None or compared.decision != "promote":
        return {"ask": False, "decision": approval.not_requested(base, "no challenger passed the gates").to_dict()}
    earlier = recorded_approval(store, spec, ctx, version)
    if earlier is not None:
        log.info(
            "challenger v%s: reusing the decision recorded by run %s: %s",
            version,
            earlier.get("dag_run_id"),
            earlier.get("reason"),
        )
        return {"ask": False, "decision": earlier}
    if not bool(ctx.params.get(RunParam.ALLOW_PROMOTION, True)):
        return {
            "ask": False,
            "decision": approval.not_requested(
                base, f"not requested: promotion disabled by run param {RunParam.ALLOW_PROMOTION}=false"
            ).to_dict(),
        }
    if compared.already_champion:
        return {
            "ask": False,
            "decision": approval.not_requested(base, f"not requested: v{version} is already champion").to_dict(),
        }
    client = registry.client_for(tracking_uri)
    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    now = now or dt.datetime.now(dt.UTC)
    superseded = approval.superseded_reason(ctx.interval_start, ctx.interval_end, now)
    if superseded and spec.promotion.expire_superseded:
        log.warning("challenger v%s: %s", version, superseded)
        return {"ask": False, "decision": save_approval(store, spec, ctx, approval.expired(base, superseded, at=now))}
    timeout_at = now + dt.timedelta(hours=spec.promotion.approval_timeout)
    request = {
        **base,
        "requested_at": now.isoformat(),
        "timeout_at": timeout_at.isoformat(),
        "champion_version": compared.champion_version,
        "timeout_hours": spec.promotion.approval_timeout,
        "on_timeout": spec.promotion.on_timeout,
        "approvers": list(spec.promotion.approvers),
    }
    with approval_lock(store, spec, owner=f"{ctx.dag_id}/{ctx.run_id}"):
        newest = store.get_json_or_none(paths.newest_approval_request)
        stale = _expiry_reason(client, spec, ctx, newest)
        if stale:
            log.warning("challenger v%s: %s", version, stale)
            decision = approval.expired(request, stale, at=now)
            return {"ask": False, "decision": save_approval(store, spec, ctx, decision)}
        if approval.newer_request(newest, request):
            store.put_json(paths.newest_approval_request, request)
    store.put_json(paths.approval_request(version), request)

    # The report of the pending decision, so the request can link to it.
    pending = build_summary(spec, ctx, results=results, failed_tasks={}, champion_after=compared.champion_version)
    pending.update(
        {
            "decision": "awaiting_approval",
            "decision_code": "awaiting_approval",
            "headline": f"Awaiting approval: challenger v{version} passed every gate. "
            f"Comparison: {'; '.join(map(str, compared.reasons))}.",
            "approval": {**request, "outcome": "pending", "required": True},
            "summary_uri": paths.summary,
        }
    )
    links, report_uri = _pending_report(store, client, spec, pending, PublicUrls.from_env())
    subject = approval.request_subject(
        spec.name, version, compared.champion_version, ctx.interval_start, ctx.interval_end
    )
    body = approval.request_body(
        model=spec.name,
        headline=pending["headline"],
        comparison=comparison,
        links=links,
        report_uri=report_uri,
        timeout_hours=spec.promotion.approval_timeout,
        on_timeout=spec.promotion.on_timeout,
        timeout_at=request["timeout_at"],
    )
    return {"ask": True, "subject": subject, "body": body, "request": request}


def _pending_report(
    store: ObjectStore, client: Any, spec: ModelSpec, pending: dict[str, Any], urls: Any
) -> tuple[dict[str, str], str]:
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
    comparison = (
        store.get_json_or_none(get_path(pending, "artifacts", "comparison"))
        if get_path(pending, "artifacts", "comparison")
        else None
    )
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


def finish_approval(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, version: str, response: dict[str, Any]
) -> dict[str, Any]:
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
    stale = _expiry_reason(
        registry.client_for(tracking_uri),
        spec,
        ctx,
        newest,
        challenger_version=version,
        requested_at=request.get("requested_at"),
    )
    decision = approval.resolve_response(
        base={**request, "dag_run_id": ctx.run_id},
        chosen_options=response.get("chosen_options"),
        params_input=response.get("params_input"),
        responded_by=response.get("responded_by_user"),
        responded_at=response.get("responded_at"),
        timed_out=bool(response.get("timedout")),
        on_timeout=spec.promotion.on_timeout,
        timeout_hours=spec.promotion.approval_timeout,
        stale_reason=stale,
    )
    log.info("challenger v%s: %s", version, decision.reason)
    return save_approval(store, spec, ctx, decision)
