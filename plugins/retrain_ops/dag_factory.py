"""Build one retraining DAG from one model spec (``include/models/<name>.yaml``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TriggerRule

from include.retrainer.config import ModelSpec
from include.retrainer.intervals import CRON_PRESETS
from include.retrainer.tasks import RunParam, TaskId
from retrain_ops.notifiers import run_story_callbacks
from retrain_ops.operators import (
    BatchValidateOperator,
    ChallengerRejectOperator,
    ChallengerTrainOperator,
    ChampionPromoteOperator,
    DriftDetectOperator,
    ModelCompareOperator,
    PartitionFetchOperator,
    PartitionSensor,
    PromotionBranchOperator,
    RetrainBranchOperator,
    RunSummarizeOperator,
)
from retrain_ops.outcome import FORCED_TASK, OUTCOME_DOCS, OUTCOME_TASKS, RunOutcomeOperator

PROMOTION_POOL = "model_promotion"
TRAINING_POOL = "model_training"


def run_params() -> dict[str, Param]:
    """Typed params: the UI's trigger form validates them before any task runs."""
    return {
        RunParam.FORCE_RETRAIN: Param(
            False,
            type="boolean",
            title="Force retraining",
            description="Train a challenger even when the drift gate does not trip (e.g. after a labelling fix). "
            "The challenger is still compared with the champion before any promotion.",
        ),
        RunParam.QUARANTINE: Param(
            "skip",
            type="string",
            enum=["skip", "include"],
            title="Quarantined partitions",
            description="skip: leave days quarantined by an earlier failed validation out of the batch and the "
            "training window. include: take them back in; days that now pass validation are released.",
        ),
        RunParam.ALLOW_PROMOTION: Param(
            True,
            type="boolean",
            title="Allow promotion",
            description="When false, the challenger is trained and evaluated but the champion never moves "
            "(a dry run of the promotion decision).",
        ),
    }


def doc_md(spec: ModelSpec) -> str:
    feats = spec.features
    s3 = f"s3://{spec.artifacts.bucket}/{spec.artifacts.prefix}/{spec.name}/<interval>/summary.json"
    return f"""
### Retraining: `{spec.name}`

{spec.description or ""}

Weekly loop for the MLflow registered model **`{spec.name}`** (spec: `{spec.source_path.split("/")[-1]}`):

1. **fetch_batch**: daily partitions `s3://{spec.data.bucket}/{spec.data.prefix}/dt=YYYY-MM-DD/` of the data interval.
2. **validate_batch**: Great Expectations suite; a failure stops the run (report and Data Docs kept).
3. **detect_drift**: batch vs the champion's training data ({spec.drift.numeric_method} for numeric,
   {spec.drift.categorical_method} for categorical features, {spec.drift.correction} correction).
4. **decide_retrain**: retrain on drift, cold start or `force_retrain`; otherwise skip.
5. **train_challenger**: `{spec.training.estimator}` on {spec.training.window_weeks} week(s), last
   {spec.training.holdout_days} day(s) held out; registered with alias `challenger`.
6. **compare_models**: same holdout rows, primary metric `{spec.comparison.primary_metric}`, floor
   {spec.comparison.floor}, policy `{spec.comparison.policy}`, McNemar alpha {spec.comparison.alpha}.
7. {approval_doc(spec)}**promote_challenger / reject_challenger**: moves alias `champion` (pool `{PROMOTION_POOL}`) or tags the rejection.
8. **summarize_run**: writes `{s3}` for every run, skipped and failed ones included, and the
   HTML report beside it (also logged to MLflow); sets the run note; sends notifications.
9. **decide_outcome**: exactly one `mark_*` task succeeds per run (promoted, rejected,
   skipped_no_drift, skipped_insufficient_data; plus `mark_forced_run` on forced runs).

Target `{feats.target}`; numeric {", ".join(feats.numeric) or "-"}; categorical {", ".join(feats.categorical) or "-"}.

**Params**: `force_retrain` (train even without drift), `allow_promotion` (false = evaluate only),
`quarantine` (`skip` quarantined days, or `include` them again).
"""


def approval_doc(spec: ModelSpec) -> str:
    if not spec.promotion.required:
        return ""
    effect = "promoted" if spec.promotion.on_timeout == "promote" else "not promoted"
    return (
        f"**approve_promotion** (human approval, Required Actions; no answer within "
        f"{spec.promotion.approval_timeout:g} h: {effect}), then "
    )


def timetable(schedule: str | None) -> CronDataIntervalTimetable | None:
    """Data-interval semantics: a run covers [data_interval_start, data_interval_end).

    Airflow 3 maps a cron string to a trigger timetable with an empty interval by default;
    the retraining loop reads exactly the partitions of a period, so it needs real intervals
    (backfills then also address periods by their start).
    """
    if schedule is None:
        return None
    return CronDataIntervalTimetable(CRON_PRESETS.get(schedule, schedule), timezone="UTC")


def default_args(spec: ModelSpec) -> dict[str, Any]:
    """Owner and retries (with exponential backoff) shared by every DAG a spec makes."""
    return {
        "owner": spec.owner,
        "retries": spec.retries,
        "retry_delay": dt.timedelta(minutes=spec.retry_delay_minutes),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=max(spec.retry_delay_minutes * 8, 5)),
    }


def build_retrain_dag(spec: ModelSpec) -> DAG:
    start = dt.datetime.combine(spec.start_date, dt.time(0), dt.UTC)
    with DAG(
        dag_id=spec.dag_id,
        description=(spec.description or f"Retrain {spec.name}")[:200],
        schedule=timetable(spec.schedule),
        start_date=start,
        catchup=spec.catchup,
        max_active_runs=spec.max_active_runs,
        default_args=default_args(spec),
        tags=sorted({"retraining", *spec.tags}),
        params=run_params(),
        doc_md=doc_md(spec),
        render_template_as_native_obj=False,
    ) as dag:
        common: dict[str, Any] = {"spec": spec}
        fetch = PartitionFetchOperator(task_id=TaskId.FETCH_BATCH, **common)
        if spec.data.missing_data == "wait":
            wait = PartitionSensor(
                task_id=TaskId.WAIT_FOR_PARTITIONS,
                spec=spec,
                mode="reschedule",
                poke_interval=spec.data.wait_poke_minutes * 60,
                timeout=spec.data.wait_timeout_minutes * 60,
            )
            wait >> fetch
        # Results travel as XComArgs (``task.output``): Airflow resolves them when it renders the
        # consuming task, and passing one also sets the dependency.
        validate = BatchValidateOperator(task_id=TaskId.VALIDATE_BATCH, batch=fetch.output, **common)
        drift = DriftDetectOperator(task_id=TaskId.DETECT_DRIFT, batch=fetch.output, **common)
        branch = RetrainBranchOperator(
            task_id=TaskId.DECIDE_RETRAIN,
            drift=drift.output,
            train_task_id=TaskId.TRAIN_CHALLENGER,
            skip_task_id=TaskId.SKIP_RETRAIN,
        )
        skip = EmptyOperator(task_id=TaskId.SKIP_RETRAIN)
        train = ChallengerTrainOperator(task_id=TaskId.TRAIN_CHALLENGER, pool=TRAINING_POOL, **common)
        compare = ModelCompareOperator(task_id=TaskId.COMPARE_MODELS, trained=train.output, **common)
        approve = approval_task(spec)
        decide = PromotionBranchOperator(
            task_id=TaskId.DECIDE_PROMOTION,
            comparison=compare.output,
            promote_task_id=approve.task_id if approve is not None else TaskId.PROMOTE_CHALLENGER,
            reject_task_id=TaskId.REJECT_CHALLENGER,
        )
        promote = ChampionPromoteOperator(
            task_id=TaskId.PROMOTE_CHALLENGER,
            comparison=compare.output,
            approval=approve.output if approve is not None else None,
            pool=PROMOTION_POOL,
            **common,
        )
        reject = ChallengerRejectOperator(task_id=TaskId.REJECT_CHALLENGER, comparison=compare.output, **common)
        producers = [fetch, validate, drift, train, compare, promote, reject, *([approve] if approve else [])]
        summarize = RunSummarizeOperator(
            task_id=TaskId.SUMMARIZE_RUN,
            # A skipped or failed task's return value resolves to None, which the summary expects.
            results={task.task_id: task.output for task in producers},
            trigger_rule=TriggerRule.ALL_DONE,
            **run_story_callbacks(spec, notify_settings(spec)),
            **common,
        )
        fetch >> validate >> drift >> branch >> [train, skip]
        if approve is None:
            train >> compare >> decide >> [promote, reject]
        else:  # a person approves (or not) between the gates and the champion move
            train >> compare >> decide >> [approve, reject]
            approve >> promote
        # The summary waits for every task, whatever its outcome.
        [t for t in dag.tasks if t is not summarize] >> summarize
        # The grid's outcome rows: only after a summary (a failed run leaves them upstream_failed).
        outcome = RunOutcomeOperator(task_id=TaskId.DECIDE_OUTCOME, summary=summarize.output)
        (
            summarize
            >> outcome
            >> [
                EmptyOperator(task_id=task_id, doc_md=OUTCOME_DOCS[task_id])
                for task_id in dict.fromkeys((*OUTCOME_TASKS.values(), FORCED_TASK))
            ]
        )
    return dag


def approval_task(spec: ModelSpec) -> Any:
    """The human approval task when the spec requires one (``promotion.approval: required``), else None.

    Imported only then: DAGs without approval are built exactly as before."""
    if not spec.promotion.required:
        return None
    from retrain_ops.approval import PromotionApproveOperator

    return PromotionApproveOperator(
        task_id=TaskId.APPROVE_PROMOTION,
        spec=spec,
        response_timeout=dt.timedelta(hours=spec.promotion.approval_timeout),
        doc_md=f"A person approves or rejects the promotion of a challenger that passed every gate "
        f"(Required Actions). No answer within {spec.promotion.approval_timeout:g} h: "
        f"{'promoted' if spec.promotion.on_timeout == 'promote' else 'not promoted'}.",
    )


def notify_settings(spec: ModelSpec) -> Any:
    """The spec's ``notify:`` block; None until the schema has one (then nothing is sent)."""
    return getattr(spec, "notify", None)
