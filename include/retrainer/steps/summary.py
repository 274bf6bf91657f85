"""Step ``summarize_run``: the run summary (docs/run-summary.md), assembled from the steps' results.

Runs on every outcome (trigger rule ``all_done``): a step that was skipped or failed has no
result (None), and a failed validation is read back from its stored report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from include.retrainer.config import ModelSpec
from include.retrainer.layout import RunLayout
from include.retrainer.steps.compare import ComparisonResult
from include.retrainer.steps.context import RunContext, StepResult, code_version
from include.retrainer.steps.drift import REPORT_DETAIL_KEYS, DriftResult, RetrainDecision
from include.retrainer.steps.fetch import FetchResult
from include.retrainer.steps.promote import PromotionResult
from include.retrainer.steps.train import TrainResult
from include.retrainer.steps.validate import ValidationResult
from include.retrainer.storage import ObjectStore, json_safe
from include.retrainer.tasks import TaskId

log = logging.getLogger(__name__)

SUMMARY_SCHEMA_VERSION = 8

#: The fields of each step's result that the summary's sections carry (docs/run-summary.md).
PARTITION_KEYS = ("days_found", "days_missing", "days_quarantined_skipped")
VALIDATION_KEYS = (
    "success",
    "failed_expectations",
    "quarantined_days",
    "quarantined_rows",
    "notes",
    "released_days",
    "report_uri",
    "data_docs_uri",
)
DRIFT_KEYS = (
    "reinstatement",
    "gate",
    "reason",
    "code",
    "cold_start",
    "rule",
    "signals",
    "champion_age_weeks",
    "reference",
    "importance",
    "features",
    "report_uri",
)
COMPARISON_KEYS = ("policy", "outcome_code", "paired_test", "mcnemar_verdict", "checks", "holdout_rows", "stale")


@dataclass(frozen=True)
class RunResults:
    """Every step's result in one run (None where the step left none)."""

    fetch: FetchResult | None
    validation: ValidationResult | None
    drift: DriftResult | None
    decision: RetrainDecision | None
    trained: TrainResult | None
    comparison: ComparisonResult | None
    promoted: PromotionResult | None
    rejected: PromotionResult | None
    #: The decision ``approve_promotion`` returned (an ``ApprovalDecision`` dict; None without approval).
    approval: dict[str, Any] | None = None

    @property
    def outcome(self) -> PromotionResult | None:
        return self.promoted or self.rejected

    def by_task(self) -> dict[str, StepResult]:
        """The results present, by the task id that produced them."""
        pairs: list[tuple[str, StepResult | None]] = [
            (TaskId.FETCH_BATCH, self.fetch),
            (TaskId.VALIDATE_BATCH, self.validation),
            (TaskId.DETECT_DRIFT, self.drift),
            (TaskId.DECIDE_RETRAIN, self.decision),
            (TaskId.TRAIN_CHALLENGER, self.trained),
            (TaskId.COMPARE_MODELS, self.comparison),
            (TaskId.PROMOTE_CHALLENGER, self.promoted),
            (TaskId.REJECT_CHALLENGER, self.rejected),
        ]
        return {task: result for task, result in pairs if result is not None}

    @classmethod
    def from_xcom(cls, by_task: Mapping[str, Mapping[str, Any] | None]) -> RunResults:
        """From the XCom values of the run's tasks, keyed by task id."""
        return cls(
            fetch=FetchResult.from_xcom(by_task.get(TaskId.FETCH_BATCH)),
            validation=ValidationResult.from_xcom(by_task.get(TaskId.VALIDATE_BATCH)),
            drift=DriftResult.from_xcom(by_task.get(TaskId.DETECT_DRIFT)),
            decision=RetrainDecision.from_xcom(by_task.get(TaskId.DECIDE_RETRAIN)),
            trained=TrainResult.from_xcom(by_task.get(TaskId.TRAIN_CHALLENGER)),
            comparison=ComparisonResult.from_xcom(by_task.get(TaskId.COMPARE_MODELS)),
            promoted=PromotionResult.from_xcom(by_task.get(TaskId.PROMOTE_CHALLENGER)),
            rejected=PromotionResult.from_xcom(by_task.get(TaskId.REJECT_CHALLENGER)),
            approval=_as_dict(by_task.get(TaskId.APPROVE_PROMOTION)),
        )


def trained_since(trained: Any) -> str | None:
    """One line when a new regime was tried for the challenger (``loop.regime_reason``), else None."""
    from include.retrainer.loop import regime_reason

    return regime_reason(getattr(trained, "evaluation", None))


def _as_dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(value) if value else None


def build_summary(
    spec: ModelSpec,
    ctx: RunContext,
    *,
    results: RunResults,
    failed_tasks: dict[str, str],
    champion_after: str | None,
    durations: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Assemble the run summary (schema: docs/run-summary.md) from the steps' results.

    ``durations`` are seconds of steps that left no result (failed ones, from their error
    records); steps that returned a result carry ``duration_seconds`` in it."""
    fetch, val, drift, branch = results.fetch, results.validation, results.drift, results.decision
    trained, comparison, outcome = results.trained, results.comparison, results.outcome

    reasons: list[str] = []
    code = None
    if failed_tasks:
        decision = "failed"
        reasons += [f"{task} failed: {msg}" for task, msg in failed_tasks.items()]
    elif branch is not None and not branch.retrain:
        decision, code = "skipped", "no_retrain_needed"
        reasons.append(branch.reason or "no retraining needed")
    elif trained is not None and trained.insufficient_data:
        decision, code = "skipped", "insufficient_data"
        reasons.append(trained.reason or "insufficient data")
    elif outcome is not None:
        decision = "promoted" if outcome.promoted else "rejected"
        code = decision
        if comparison is not None and comparison.decision == "reinstate":
            # The champion moved back to an earlier one (any challenger rejected), or that move was
            # refused (the champion changed meanwhile, a dry run): nothing moved.
            code = "reinstated" if outcome.promoted else "reinstatement_refused"
        trained_one = trained is not None and trained.challenger_version is not None
        if branch is not None and branch.reason:
            reasons.append(f"{'retrained' if trained_one else 'retrain wanted, none trained'}: {branch.reason}")
        tried = trained_since(trained)
        if trained_one and tried:
            reasons.append(tried)
        reasons += outcome.reasons
    else:
        decision = "failed"
        reasons.append("run ended before a decision was made")

    trigger = None
    if branch is not None and branch.retrain:
        trigger = "forced" if branch.forced else ((drift.code if drift else None) or "signals")
    approval = approval_summary(spec, results.approval, outcome.approval if outcome else None)
    title = headline(decision, code, reasons, trigger)
    if approval and approval.get("outcome") not in (None, "not_requested") and decision in ("promoted", "rejected"):
        title = approval_headline(decision, approval, reasons, trigger) or title
    champion_before = drift.champion_version if drift else None
    if outcome is not None and outcome.champion_before is not None:
        champion_before = outcome.champion_before
    compared = comparison is not None and comparison.decision != "skip"
    return json_safe(
        {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "model": spec.name,
            "dag_id": ctx.dag_id,
            "dag_run_id": ctx.run_id,
            "data_interval_start": ctx.interval_start,
            "data_interval_end": ctx.interval_end,
            "rows": fetch.rows if fetch else None,
            "partitions": fetch.pick(*PARTITION_KEYS) if fetch else {k: [] for k in PARTITION_KEYS},
            "validation": val.pick(*VALIDATION_KEYS) if val else None,
            "drift": drift.pick(*DRIFT_KEYS) if drift else None,
            "decision": decision,
            "decision_code": code or decision,
            "trigger": trigger,
            "reasons": reasons,
            "headline": title,
            "champion_version_before": champion_before,
            "champion_version_after": champion_after,
            "challenger_version": trained.challenger_version if trained else None,
            "reinstated_version": comparison.reinstated_version if comparison and code == "reinstated" else None,
            "reinstatement": comparison.reinstatement if comparison else None,
            "metrics": (comparison.metrics if comparison else None) or {"champion": {}, "challenger": {}},
            "mcnemar": comparison.mcnemar if comparison else None,
            "comparison": comparison.pick(*COMPARISON_KEYS) if comparison and compared else None,
            "slices": comparison.slices if comparison else None,
            "fairness": comparison.fairness if comparison else None,
            "evaluation": trained.evaluation if trained else None,
            "training_window": None
            if trained is None or trained.challenger_version is None
            else {
                "start": trained.window_start,
                "weeks": trained.window_weeks,
                "forced": bool(trained.forced),
                # The first day trained on when the window was cut at a change (else null).
                "since": ((trained.evaluation or {}).get("regime") or {}).get("from"),
            },
            "approval": approval,
            "params": ctx.params,
            "artifacts": {
                k: v
                for k, v in {
                    "batch": fetch.batch_uri if fetch else None,
                    "train": trained.train_uri if trained else None,
                    "holdout": trained.holdout_uri if trained else None,
                    "lineage": trained.lineage_uri if trained else None,
                    "model_card": trained.model_card_uri if trained else None,
                    "comparison": comparison.report_uri if comparison else None,
                    "predictions": comparison.predictions_uri if comparison else None,
                }.items()
                if v
            },
            "mlflow_run_id": trained.run_id if trained else None,
            "durations": step_durations(results, durations),
            "code_version": code_version(),
            "config_hash": spec.config_hash(),
        }
    )


def step_durations(results: RunResults, extra: dict[str, float] | None = None) -> dict[str, float]:
    """Seconds each step took, by task id: from its result's ``duration_seconds``, else ``extra``."""
    out = {task: float(seconds) for task, seconds in (extra or {}).items() if isinstance(seconds, (int, float))}
    for task, result in results.by_task().items():
        seconds = result.duration_seconds
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            out[task] = round(float(seconds), 3)
    return dict(sorted(out.items()))


def approval_summary(
    spec: ModelSpec, requested: Mapping[str, Any] | None, applied: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The summary's ``approval`` object: null when the spec does not require approval."""
    if not spec.promotion.required:
        return None
    decision = (
        applied
        or requested
        or {"outcome": "not_requested", "reason": "not requested: no challenger reached the approval step"}
    )
    keys = (
        "outcome",
        "reason",
        "decided_by",
        "decided_by_id",
        "decided_at",
        "comment",
        "requested_at",
        "timeout_at",
        "challenger_version",
        "reused",
        "dag_run_id",
    )
    return {
        "required": True,
        **{k: decision.get(k) for k in keys},
        "comment": decision.get("comment") or "",
        "reused": bool(decision.get("reused")),
        "timeout_hours": spec.promotion.approval_timeout,
        "on_timeout": spec.promotion.on_timeout,
    }


def approval_headline(
    decision: str, approval: Mapping[str, Any], reasons: list[str], trigger: str | None
) -> str | None:
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
    if code == "reinstated":
        lead = next((r for r in reasons if r.startswith("earlier champion ")), first)
        rest = "; ".join(r for r in reasons if r and r != lead)
        return f"Reinstated an earlier champion ({trigger or 'retrained'}): {lead}." + (
            f" Also: {rest}." if rest else ""
        )
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
    results: RunResults,
    failed_tasks: dict[str, str],
    durations: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Build the run summary from task results plus the reports in storage, write it, return it.

    ``durations``: seconds of steps without a result (failed ones), see :func:`build_summary`."""
    paths = RunLayout.of(spec, ctx.interval_start, ctx.interval_end)
    if results.validation is None and TaskId.VALIDATE_BATCH in failed_tasks:
        report = store.get_json_or_none(paths.validation)
        if report is not None:
            results = replace(
                results,
                validation=ValidationResult.of(
                    {**report, "report_uri": paths.validation, "data_docs_uri": f"{paths.data_docs}/index.html"}
                ),
            )
    if results.drift is not None:
        report = store.get_json_or_none(paths.drift) or {}
        results = replace(
            results, drift=replace(results.drift, **{k: report[k] for k in REPORT_DETAIL_KEYS if k in report})
        )
    champion_after = None
    if tracking_uri:
        try:
            from include.retrainer import registry

            current = registry.get_alias(registry.client_for(tracking_uri), spec.name, registry.CHAMPION)
            champion_after = current.version if current else None
        except Exception as exc:  # registry down: the summary still gets written
            log.warning("could not read the current champion (champion_version_after left null): %s", exc)
    summary = build_summary(
        spec, ctx, results=results, failed_tasks=failed_tasks, champion_after=champion_after, durations=durations
    )
    summary["summary_uri"] = paths.summary
    # Another run of the same interval (e.g. a forced retrain) keeps the earlier run's summary:
    # it is archived, and the new one names it, so nothing is silently overwritten.
    earlier = store.get_json_or_none(paths.summary)
    if (
        earlier
        and earlier.get("dag_run_id") not in (None, ctx.run_id)
        and any(earlier.get(k) != summary.get(k) for k in ("decision", "decision_code", "challenger_version", "params"))
    ):  # a plain re-run with the same outcome replaces it (idempotent re-runs add no artefacts)
        archived = paths.previous_summary(str(earlier["dag_run_id"]))
        store.put_json(archived, earlier)
        summary["supersedes"] = {
            "dag_run_id": earlier["dag_run_id"],
            "decision": earlier.get("decision"),
            "summary_uri": archived,
        }
    store.put_json(paths.summary, summary)
    run_id = summary.get("mlflow_run_id")
    if run_id and tracking_uri:
        try:
            from include.retrainer import registry

            registry.client_for(tracking_uri).log_dict(run_id, summary, "summary.json")
        except Exception as exc:  # the S3 copy is the contract; MLflow holds a convenience copy
            log.warning("could not log summary.json to MLflow run %s: %s", run_id, exc)
    return summary
