"""Step ``compare_models``: champion and challenger on the same held-out rows; promote or reject.

The decision is :func:`include.retrainer.loop.judge`'s (the statistics of
:mod:`include.retrainer.compare`, the slice and fairness gates); this step loads the models,
stores the paired predictions and the comparison report, and handles the re-run of an
interval whose challenger is already champion.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from include.retrainer.config import ModelSpec
from include.retrainer.layout import RunLayout
from include.retrainer.steps.context import RunContext, StepResult, interval_end_of
from include.retrainer.steps.train import TrainResult
from include.retrainer.storage import ObjectStore, json_safe

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ComparisonResult(StepResult):
    """The comparison's decision and the numbers the summary reports.

    The judgement's further detail (e.g. ``primary_metric``, ``challenger_estimate``) rides in
    ``extra``, unchanged, like the stored report."""

    #: "promote" | "reject" | "reinstate" (an earlier champion serves the held-out rows better
    #: than the week's winner: ``reinstated_version`` becomes champion, the challenger is
    #: rejected) | "skip" (nothing was trained)
    decision: str = "reject"
    reasons: list[str] = field(default_factory=list)
    challenger_version: str | None = None
    champion_version: str | None = None
    reinstated_version: str | None = None
    #: Earlier champions judged against the week's winner (``loop.Reinstatement.to_dict``), or None.
    reinstatement: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    mcnemar: dict[str, Any] | None = None
    #: The McNemar guard's verdict (``compare.MCNEMAR_VERDICTS``): ``outvoted`` when the
    #: challenger was more often wrong but significantly better on the primary metric.
    mcnemar_verdict: str | None = None
    paired_test: dict[str, Any] | None = None
    policy: str | None = None
    outcome_code: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    cold_start: bool = False
    stale: bool = False
    already_champion: bool = False
    insufficient_data: bool = False
    holdout_rows: int | None = None
    slices: dict[str, Any] | None = None
    fairness: dict[str, Any] | None = None
    report_uri: str | None = None
    predictions_uri: str | None = None


def _with_verdict(stored: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """A stored comparison reused by a re-run, with the McNemar guard's verdict (one stored before
    ``mcnemar_verdict`` existed gets it derived, so b > c beside "promoted" is still explained)."""
    from include.retrainer.compare import mcnemar_verdict_of

    return {**stored, "mcnemar_verdict": mcnemar_verdict_of(stored, spec.comparison.alpha)}


def compare_models(
    store: ObjectStore, tracking_uri: str, spec: ModelSpec, ctx: RunContext, trained: TrainResult
) -> ComparisonResult:
    """Score champion and challenger on the same held-out rows; decide promote or reject."""
    import pandas as pd

    from include.retrainer import loop, registry

    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    if trained.challenger_version is None and trained.reinstated_version is not None:
        # The drift step judged earlier champions on the batch and one serves it better than the
        # champion: nothing was trained, that version is champion again (the promote step).
        instead = dict(trained.reinstatement or {})
        moved: dict[str, Any] = {
            "decision": "reinstate",
            "reasons": [str(instead.get("reason") or trained.reason)],
            "reinstated_version": str(trained.reinstated_version),
            "champion_version": instead.get("champion_version"),
            "challenger_version": None,
            "reinstatement": instead,
        }
        store.put_json(paths.comparison, moved)
        return ComparisonResult.of({**json_safe(moved), "report_uri": paths.comparison})
    if trained.challenger_version is None:
        # Not enough data to train: a named outcome, nothing to compare or promote.
        out: dict[str, Any] = {
            "decision": "skip",
            "reasons": [trained.reason or "no challenger was trained"],
            "insufficient_data": trained.insufficient_data,
            "challenger_version": None,
        }
        store.put_json(paths.comparison, out)
        return ComparisonResult.of({**out, "report_uri": paths.comparison})
    client = registry.client_for(tracking_uri)
    challenger_v = str(trained.challenger_version)
    challenger = registry.get_version(client, spec.name, challenger_v)
    if challenger is None:
        raise registry.RegistryError(f"challenger version {challenger_v} of '{spec.name}' no longer exists")
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    if not trained.holdout_uri:
        raise ValueError(f"the training result of v{challenger_v} names no holdout_uri: nothing to compare on")
    holdout = store.read_parquet(trained.holdout_uri)
    target = spec.features.target
    y = holdout[target].to_numpy()

    if champion is not None and champion.tag("reinstated_instead_of") == challenger_v:
        # Re-run of an interval whose run reinstated an earlier champion: same end state.
        prior = store.get_json_or_none(paths.comparison)
        if not (prior and prior.get("reinstated_version") == champion.version):
            prior = {  # the stored comparison is gone: rebuilt from the version's tags
                "decision": "reinstate",
                "reasons": [
                    f"version {champion.version} is already champion again (re-run of the interval that "
                    f"reinstated it instead of v{challenger_v})"
                ],
                "reinstated_version": champion.version,
                "champion_version": champion.tag("reinstated_replacing") or None,
                "challenger_version": challenger_v,
            }
        out = _with_verdict({**prior, "already_champion": True}, spec)
        store.put_json(paths.comparison, out)
        return ComparisonResult.of({**out, "report_uri": paths.comparison})
    if champion is not None and champion.version == challenger_v:
        # Re-run of an interval whose challenger was already promoted: same end state.
        result: dict[str, Any] = {
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
            out = _with_verdict({**prior, "already_champion": True}, spec)
        store.put_json(paths.comparison, out)
        return ComparisonResult.of({**out, "report_uri": paths.comparison})

    challenger_state = loop.ModelState(
        model=registry.load_model(tracking_uri, spec.name, challenger_v),
        train=None,
        holdout=holdout,
        trained_through=interval_end_of(challenger) or ctx.interval_end,
        baseline={},
        importance={},
    )
    champion_state = None
    if champion is not None:
        trained_through = interval_end_of(champion) or dt.datetime.min.replace(tzinfo=dt.UTC)
        reinstated_for = (
            champion.tag("reinstated_for_interval_end") if champion.tag("decision") == "reinstated" else None
        )
        if reinstated_for:
            # Serving again since that week: a backfilled older week's challenger is as stale
            # against it as against a model trained then.
            trained_through = max(trained_through, dt.datetime.fromisoformat(reinstated_for))
        champion_state = loop.ModelState(
            model=registry.load_model(tracking_uri, spec.name, champion.version),
            train=None,
            holdout=None,
            trained_through=trained_through,
            baseline={},
            importance={},
        )
    judgement = loop.judge(spec, champion_state, challenger_state)
    out = judgement.to_dict()
    if champion is not None and champion_state is not None and not judgement.stale:
        out.update(
            _reinstatement(
                store,
                client,
                tracking_uri,
                spec,
                champion.version,
                challenger_v,
                judgement,
                challenger_state if judgement.promote else champion_state,
                holdout,
            )
        )
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
    extra = {
        col: holdout[col].to_numpy()
        for col in dict.fromkeys(gate_columns)
        if col in holdout.columns and col not in judgement.predictions and col != "y_true"
    }
    store.write_parquet(paths.predictions, pd.DataFrame({"y_true": y, **judgement.predictions, **extra}))
    store.put_json(paths.comparison, out)
    log.info(
        "scored champion v%s and challenger v%s on %d held-out rows; decision=%s: %s",
        out["champion_version"],
        challenger_v,
        len(holdout),
        out["decision"],
        "; ".join(out["reasons"]),
    )
    return ComparisonResult.of({**json_safe(out), "report_uri": paths.comparison})


def _reinstatement(
    store: ObjectStore,
    client: Any,
    tracking_uri: str,
    spec: ModelSpec,
    champion_v: str,
    challenger_v: str,
    judgement: Any,
    winner: Any,
    holdout: Any,
) -> dict[str, Any]:
    """Judge the last ``comparison.reinstate_earlier`` champions against the week's winner.

    Returns the comparison's updates: ``{}`` when off (or no earlier champion can be loaded),
    else ``reinstatement`` (every candidate's numbers) and, when one wins, ``decision``
    "reinstate", ``reinstated_version`` and its reason first. Not under
    ``promotion.approval: required``: a person decides every move there (the rollback DAG
    restores an earlier version).
    """
    from include.retrainer import loop
    from include.retrainer.steps.reinstate import earlier_champion_states, first_day, reinstatement_allowed

    if not reinstatement_allowed(spec):
        return {}
    candidates = earlier_champion_states(
        store, client, tracking_uri, spec, {champion_v, challenger_v}, first_day(holdout)
    )
    if not candidates:
        return {}
    role = "challenger" if judgement.promote else "champion"
    found = loop.reinstate_earlier_champion(spec, winner, role, candidates, holdout)
    log.info("earlier champions %s judged against the %s: %s", [c[0] for c in candidates], role, found.reason)
    update: dict[str, Any] = {"reinstatement": found.to_dict()}
    if found.key is not None:
        update.update(
            decision="reinstate",
            reinstated_version=str(found.key),
            reasons=[found.reason, *judgement.reasons],
        )
    return update
