"""Steps ``promote_challenger`` and ``reject_challenger``: act on the comparison's decision.

Promotion moves ``champion`` through :class:`~include.retrainer.champion.ChampionRegistry`
(lease, fencing token, tags, history), compare-and-set against the champion the comparison
used; a rejection tags the challenger and leaves the champion alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from include.retrainer.champion import ChampionMove, ChampionRegistry
from include.retrainer.config import ModelSpec
from include.retrainer.steps.compare import ComparisonResult
from include.retrainer.steps.context import RunContext, StepResult
from include.retrainer.storage import ObjectStore
from include.retrainer.tasks import RunParam

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PromotionResult(StepResult):
    """Where the champion was before and after (the same for a rejection), and why."""

    promoted: bool = False
    champion_before: str | None = None
    champion_after: str | None = None
    reasons: list[str] = field(default_factory=list)
    #: The human decision the move acted on (models with ``promotion.approval: required``).
    approval: dict[str, Any] | None = None


def promote_challenger(
    store: ObjectStore,
    tracking_uri: str,
    spec: ModelSpec,
    ctx: RunContext,
    comparison: ComparisonResult,
    allow_promotion: bool = True,
    approval: Mapping[str, Any] | None = None,
) -> PromotionResult:
    """Move alias champion to the challenger, compare-and-set against the evaluated champion.

    Under the champion lock: re-read the champion; promote only if it is still the one the
    comparison used, otherwise reject with that reason (the run can be re-run to re-evaluate).
    ``approval`` (models with ``promotion.approval: required``): the human decision; anything
    but an approval (or ``on_timeout: promote``) rejects with its reason.
    """
    from include.retrainer import registry
    from include.retrainer.approval import ApprovalDecision, approval_tags

    client = registry.client_for(tracking_uri)
    champions = ChampionRegistry(client, store, spec)
    expected = str(comparison.champion_version) if comparison.champion_version is not None else None
    decision = ApprovalDecision.from_dict(dict(approval)) if approval else None
    recorded = decision.to_dict() if decision else None

    def rejected(reason: str) -> PromotionResult:
        out = reject_challenger(tracking_uri, spec, ctx, comparison, extra_reason=reason, approval=approval)
        return replace(out, approval=recorded)

    if comparison.decision == "reinstate" and comparison.reinstated_version is not None:
        if not allow_promotion:
            off = f"reinstatement not made: promotion disabled by run param {RunParam.ALLOW_PROMOTION}=false"
            if comparison.challenger_version is None:
                current = champions.current()
                return PromotionResult(
                    promoted=False,
                    champion_before=current.version if current else None,
                    champion_after=current.version if current else None,
                    reasons=[*comparison.reasons, off],
                )
            return rejected(off)
        return _reinstate(champions, tracking_uri, spec, ctx, comparison, expected)
    if not allow_promotion:
        return rejected(f"promotion disabled by run param {RunParam.ALLOW_PROMOTION}=false")
    challenger_v = str(comparison.challenger_version)
    with champions.lock(owner=f"{ctx.dag_id}/{ctx.run_id}") as lease:
        current = champions.current()
        current_v = current.version if current else None
        if current_v == challenger_v:  # a retry after the alias already moved: finish the bookkeeping
            _complete_promotion_records(champions, ctx, challenger_v, list(comparison.reasons), approval=recorded)
            return PromotionResult(
                promoted=True,
                champion_before=expected,
                champion_after=challenger_v,
                reasons=list(comparison.reasons),
                approval=recorded,
            )
        if decision is not None and not decision.allows_promotion:
            return rejected(decision.reason)
        if current_v != expected:
            return rejected(
                (f"{decision.reason}, but " if decision is not None else "")
                + (
                    f"champion changed during evaluation (compared against v{expected}, now v{current_v}); "
                    "not promoting a challenger that was not compared with the current champion (re-run to re-evaluate)"
                )
            )
        now = dt.datetime.now(dt.UTC).isoformat()
        reasons = list(comparison.reasons) + ([decision.reason] if decision is not None else [])
        lease.ensure_held()  # LeaseLost (retryable) before any tag if the lease was taken over
        _record_reasons(client, spec, challenger_v, "promoted", reasons)
        champions.move(
            lease,
            challenger_v,
            fence_tag=registry.TAG + "fencing_token",
            mark={
                registry.TAG + "decision": "promoted",
                registry.TAG + "promoted_at": now,
                registry.TAG + "promoted_by_run": ctx.run_id,
                registry.TAG + "replaced_version": current_v or "",
                **({registry.TAG + k: v for k, v in approval_tags(decision).items()} if decision is not None else {}),
            },
        )
        if current_v:
            champions.tag(current_v, {registry.TAG + "replaced_by": challenger_v, registry.TAG + "demoted_at": now})
        champions.record(_promotion_move(ctx, current_v, challenger_v, reasons, now, recorded))
    log.info("promoted v%s to champion (was %s)", challenger_v, current_v)
    return PromotionResult(
        promoted=True, champion_before=current_v, champion_after=challenger_v, reasons=reasons, approval=recorded
    )


def _reinstate(
    champions: ChampionRegistry,
    tracking_uri: str,
    spec: ModelSpec,
    ctx: RunContext,
    comparison: ComparisonResult,
    expected: str | None,
) -> PromotionResult:
    """Move ``champion`` back to the earlier champion the comparison chose; reject the challenger.

    The same compare-and-set as a promotion: only while the champion is still the one compared.
    The reinstated version gets ``decision=reinstated``, ``reinstated_replacing`` (the champion it
    replaced: what a rollback returns to, and what a re-run of this interval is judged against),
    ``reinstated_for_interval_end`` and ``reinstated_instead_of`` (the rejected challenger, if one
    was trained); its ``replaced_version`` (its own first promotion's lineage) is left as it was.
    The target is tagged, then the alias moves (as for a promotion: a retry recognises its own
    move by those tags), then the challenger is tagged rejected and the move recorded; a retry
    after a crash finishes the bookkeeping. Readers act on the reinstatement tags only while the
    version is champion with ``decision=reinstated``.
    """
    from include.retrainer import registry

    target = str(comparison.reinstated_version)
    # None when the drift step reinstated it instead of a retrain (nothing was trained to reject).
    challenger_v = None if comparison.challenger_version is None else str(comparison.challenger_version)
    instead = comparison.reinstatement or {}
    # What the gate of later weeks measures change since (drift.reinstated_instead_of_retraining).
    marker = {
        registry.TAG + "reinstated_batch_uri": str(instead.get("batch_uri") or "") if challenger_v is None else "",
        registry.TAG + "reinstated_trigger": ",".join(map(str, instead.get("trigger") or ()))
        if challenger_v is None
        else "",
    }
    reasons = list(comparison.reasons)

    def refused(why: str) -> PromotionResult:
        if challenger_v is not None:
            return reject_challenger(tracking_uri, spec, ctx, comparison, extra_reason=why)
        log.warning("not reinstating v%s: %s", target, why)
        current = champions.current()
        current_v = current.version if current else None
        return PromotionResult(
            promoted=False, champion_before=current_v, champion_after=current_v, reasons=[*reasons, why]
        )

    if spec.promotion.required:  # the comparison never proposes it then; a person decides every move
        return refused(f"not reinstating v{target}: promotion.approval is required")
    with champions.lock(owner=f"{ctx.dag_id}/{ctx.run_id}") as lease:
        current = champions.current()
        current_v = current.version if current else None
        if current_v == target:
            done = champions.version(target)
            if (
                done is None
                or done.tag("decision") != "reinstated"
                or done.tag("reinstated_for_interval_end") != ctx.interval_end.isoformat()
            ):
                # Someone else (a rollback, another week's run) made it champion: not this interval's move.
                return refused(
                    f"champion changed during evaluation (compared against v{expected}, now v{current_v} by another "
                    "move); not recording a reinstatement this run did not make (re-run to re-evaluate)"
                )
            before = done.tag("reinstated_replacing") or None
            if done.tag("reinstated_by_run") != ctx.run_id:  # a re-run of the interval: same end state
                return PromotionResult(promoted=True, champion_before=before, champion_after=target, reasons=reasons)
            # A retry after the alias moved: finish the bookkeeping (each part is idempotent).
            at = done.tag("reinstated_at") or dt.datetime.now(dt.UTC).isoformat()
            if before:
                champions.tag(before, {registry.TAG + "replaced_by": target, registry.TAG + "demoted_at": at})
            if challenger_v is not None:
                reject_challenger(tracking_uri, spec, ctx, comparison)
            champions.record(_reinstatement_move(ctx, before, target, reasons, at))
            return PromotionResult(promoted=True, champion_before=before, champion_after=target, reasons=reasons)
        if current_v != expected:
            return refused(
                f"champion changed during evaluation (compared against v{expected}, now v{current_v}); "
                f"not reinstating v{target}, which was not compared with the current champion (re-run to re-evaluate)"
            )
        now = dt.datetime.now(dt.UTC).isoformat()
        champions.move(
            lease,
            target,
            fence_tag=registry.TAG + "fencing_token",
            mark={
                registry.TAG + "decision": "reinstated",
                registry.TAG + "reinstated_at": now,
                registry.TAG + "reinstated_by_run": ctx.run_id,
                registry.TAG + "reinstated_instead_of": challenger_v or "",
                registry.TAG + "reinstated_for_interval_end": ctx.interval_end.isoformat(),
                registry.TAG + "reinstated_replacing": current_v or "",
                **marker,
            },
        )
        if current_v:
            champions.tag(current_v, {registry.TAG + "replaced_by": target, registry.TAG + "demoted_at": now})
        if challenger_v is not None:
            reject_challenger(tracking_uri, spec, ctx, comparison)
        champions.record(_reinstatement_move(ctx, current_v, target, reasons, now))
    log.info("reinstated v%s as champion (was %s); challenger: %s", target, current_v, challenger_v or "none trained")
    return PromotionResult(promoted=True, champion_before=current_v, champion_after=target, reasons=reasons)


def _reinstatement_move(ctx: RunContext, before: str | None, after: str, reasons: list[str], at: str) -> ChampionMove:
    return ChampionMove(
        action="reinstate",
        from_version=before,
        to_version=after,
        dag_id=ctx.dag_id,
        dag_run_id=ctx.run_id,
        reasons=reasons,
        at=at or dt.datetime.now(dt.UTC).isoformat(),
        details={"data_interval_start": ctx.interval_start, "data_interval_end": ctx.interval_end},
    )


def _promotion_move(
    ctx: RunContext, before: str | None, after: str, reasons: list[str], at: str, approval: dict[str, Any] | None
) -> ChampionMove:
    return ChampionMove(
        action="promote",
        from_version=before,
        to_version=after,
        dag_id=ctx.dag_id,
        dag_run_id=ctx.run_id,
        reasons=reasons,
        at=at,
        details={
            "data_interval_start": ctx.interval_start,
            "data_interval_end": ctx.interval_end,
            **({"approval": approval} if approval else {}),
        },
    )


def _complete_promotion_records(
    champions: ChampionRegistry,
    ctx: RunContext,
    version: str,
    reasons: list[str],
    approval: dict[str, Any] | None = None,
) -> None:
    """After a crash between moving the alias and recording it: tag the replaced version and
    write the history record, once (the promotion tags on ``version`` are set before the move)."""
    from include.retrainer import registry

    promoted = champions.version(version)
    if promoted is None or promoted.tag("promoted_by_run") != ctx.run_id:
        return  # promoted by another run (or rolled forward manually): nothing of ours to finish
    previous = promoted.tag("replaced_version") or None
    at = promoted.tag("promoted_at") or dt.datetime.now(dt.UTC).isoformat()
    if previous:
        old = champions.version(previous)
        if old is not None and old.tag("replaced_by") != version:
            champions.tag(previous, {registry.TAG + "replaced_by": version, registry.TAG + "demoted_at": at})
    champions.record(_promotion_move(ctx, previous, version, reasons, at, approval))


def _record_reasons(client: Any, spec: ModelSpec, version: str, decision: str, reasons: list[str]) -> None:
    """The comparison's reasons, on the challenger's MLflow run (the version's description,
    written by the run story, says why in prose; the version keeps only ``retrain.decision``)."""
    from include.retrainer import registry

    info = registry.get_version(client, spec.name, version)
    if info is None or not info.run_id:
        log.warning(
            "v%s of '%s' has no MLflow run: its %s reasons stay in the run summary only", version, spec.name, decision
        )
        return
    registry.set_run_tags(client, info.run_id, {registry.TAG + "decision_reasons": "; ".join(reasons)})


def reject_challenger(
    tracking_uri: str,
    spec: ModelSpec,
    ctx: RunContext,
    comparison: ComparisonResult,
    extra_reason: str | None = None,
    approval: Mapping[str, Any] | None = None,
) -> PromotionResult:
    """Tag the challenger with the rejection; the champion is untouched."""
    from include.retrainer import registry
    from include.retrainer.approval import ApprovalDecision, approval_tags

    client = registry.client_for(tracking_uri)
    challenger_v = str(comparison.challenger_version)
    reasons = list(comparison.reasons) + ([extra_reason] if extra_reason else [])
    _record_reasons(client, spec, challenger_v, "rejected", reasons)
    tags = approval_tags(ApprovalDecision.from_dict(dict(approval))) if approval else {}
    registry.set_tags(
        client,
        spec.name,
        challenger_v,
        {
            registry.TAG + "decision": "rejected",
            registry.TAG + "rejected_by_run": ctx.run_id,
            **{registry.TAG + k: v for k, v in tags.items()},
        },
    )
    current = registry.get_alias(client, spec.name, registry.CHAMPION)
    log.info("rejected v%s: %s", challenger_v, "; ".join(reasons))
    current_v = current.version if current else None
    return PromotionResult(promoted=False, champion_before=current_v, champion_after=current_v, reasons=reasons)
