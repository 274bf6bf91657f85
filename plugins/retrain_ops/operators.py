"""Operators of the retraining DAG.

Shaped like a provider's operators (e.g. the Amazon provider's ``operators/sns.py``):
keyword-only arguments stored unchanged, upstream results and connection ids as
``template_fields`` (the DAG factory passes XComArgs, ``task.output``, which Airflow resolves
when it renders the task), hooks as ``cached_property`` and no I/O in ``__init__``. Each
``execute`` resolves the run context, calls one function of ``include.retrainer.steps`` and
returns a small JSON dict (URIs, ids, metrics). Failures are recorded next to the run's
artefacts before they propagate, so the run summary can say in one line what went wrong.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator, BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.retrainer.logs import run_logged
from include.retrainer.tasks import DECISION_XCOM_KEY, RunParam, TaskId
from retrain_ops.links import (
    ChallengerVersionLink,
    ChampionVersionLink,
    DataDocsLink,
    MlflowRunLink,
    RunReportLink,
    ValidationReportLink,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.retrainer.config import ModelSpec
    from retrain_ops.hooks import MlflowHook, ObjectStoreHook


def _is_permanent(exc: BaseException) -> bool:
    """A retry cannot fix it (bad data or configuration): the task fails at once, no retries.

    Decided by type (``include.retrainer.errors.PermanentError``), never by class name: a
    library's ValueError, a network error or a lost lease goes to Airflow's retries."""
    from include.retrainer.errors import PermanentError

    return isinstance(exc, PermanentError)


def run_context(context: Context, schedule: str | None) -> Any:
    """The (dag, run, data interval, params) a task works on, from the Airflow context."""
    from include.retrainer.intervals import resolve_interval
    from include.retrainer.steps import RunContext

    dag_run = context["dag_run"]
    start, end = resolve_interval(
        context.get("data_interval_start"),
        context.get("data_interval_end"),
        getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None),
        schedule,
    )
    params = {k: v for k, v in (context.get("params") or {}).items()}
    return RunContext(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        interval_start=start,
        interval_end=end,
        params=params,
        try_number=getattr(context.get("ti"), "try_number", 1) or 1,
    )


class RetrainBaseOperator(BaseOperator):
    """Shared plumbing: connections, run context, failure records."""

    ui_color = "#e8f4ea"
    template_fields: Sequence[str] = ("s3_conn_id", "mlflow_conn_id")

    def __init__(
        self,
        *,
        spec: ModelSpec,
        s3_conn_id: str | None = None,
        mlflow_conn_id: str = "mlflow_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.s3_conn_id = s3_conn_id
        self.mlflow_conn_id = mlflow_conn_id

    # Hooks are built on first use, never in __init__ (no I/O at parse time).
    @cached_property
    def artifacts_hook(self) -> ObjectStoreHook:
        """The artefacts' store (``s3_conn_id``, else the spec's ``artifacts.conn_id``)."""
        from retrain_ops.hooks import ObjectStoreHook

        return ObjectStoreHook(aws_conn_id=self.s3_conn_id or self.spec.artifacts_conn_id)

    @cached_property
    def data_hook(self) -> ObjectStoreHook:
        """The raw partitions' store (the spec's ``data.conn_id``)."""
        from retrain_ops.hooks import ObjectStoreHook

        return ObjectStoreHook(aws_conn_id=self.spec.data.conn_id)

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        from retrain_ops.hooks import MlflowHook

        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def object_store(self) -> Any:
        return self.artifacts_hook.store

    def data_store(self) -> Any:
        return self.data_hook.store

    def tracking_uri(self) -> str:
        return self.mlflow_hook.tracking_uri

    def execute(self, context: Context) -> Any:
        ctx = run_context(context, self.spec.schedule)
        started = time.monotonic()
        try:
            result = run_logged(self.log, self.task_id, ctx, self.run_step, context, ctx)
        except AirflowSkipException:
            raise
        except Exception as exc:
            self._record_failure(ctx, exc, time.monotonic() - started)
            if _is_permanent(exc):
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
            raise
        if isinstance(result, dict):  # the run summary's `durations` (and the step-duration metric)
            result = {**result, "duration_seconds": round(time.monotonic() - started, 3)}
        return result

    def run_step(self, context: Context, ctx: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _record_failure(self, ctx: Any, exc: BaseException, seconds: float | None = None) -> None:
        """Best effort: write what went wrong where the summary task will find it."""
        from include.retrainer.layout import RunLayout

        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
        self.log.error("%s failed: %s", self.task_id, message)
        try:
            paths = RunLayout.of(self.spec, ctx.interval_start, ctx.interval_end)
            self.object_store().put_json(
                paths.error(self.task_id),
                {
                    "task_id": self.task_id,
                    "dag_run_id": ctx.run_id,
                    "try_number": ctx.try_number,
                    "error": message,
                    "duration_seconds": None if seconds is None else round(seconds, 3),
                    "at": dt.datetime.now(dt.UTC).isoformat(),
                },
            )
        except Exception as record_exc:  # storage may be what failed
            self.log.warning("could not record the failure in object storage: %s", record_exc)


class PartitionFetchOperator(RetrainBaseOperator):
    """Reads every daily partition of the data interval into one Parquet batch."""

    def run_step(self, context: Context, ctx: Any) -> dict:
        from include.retrainer import steps

        # Raw data may live behind another connection than the artefacts.
        return steps.fetch_batch(self.object_store(), self.spec, ctx, raw_store=self.data_store()).to_xcom()


class BatchValidateOperator(RetrainBaseOperator):
    """Validates the batch with the model's Great Expectations suite; fails the run on failure.

    :param batch: the fetch step's result (an XComArg of ``fetch_batch``).
    """

    operator_extra_links = (ValidationReportLink(), DataDocsLink())
    template_fields: Sequence[str] = (*RetrainBaseOperator.template_fields, "batch")

    def __init__(self, *, batch: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def run_step(self, context: Context, ctx: Any) -> dict:
        from include.retrainer import steps

        batch = steps.FetchResult.of(self.batch)
        return steps.validate_batch(self.object_store(), self.spec, ctx, batch.batch_uri).to_xcom()


class DriftDetectOperator(RetrainBaseOperator):
    """Measures drift of the batch against the champion's training data.

    :param batch: the fetch step's result (an XComArg of ``fetch_batch``).
    """

    template_fields: Sequence[str] = (*RetrainBaseOperator.template_fields, "batch")

    def __init__(self, *, batch: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def run_step(self, context: Context, ctx: Any) -> dict:
        from include.retrainer import steps

        batch = steps.FetchResult.of(self.batch)
        return steps.detect_drift(self.object_store(), self.tracking_uri(), self.spec, ctx, batch.batch_uri).to_xcom()


class RetrainBranchOperator(BaseBranchOperator):
    """Chooses ``train_task_id`` on drift, cold start or ``force_retrain``; else ``skip_task_id``.

    :param drift: the drift step's result (an XComArg of ``detect_drift``).
    """

    ui_color = "#fff3cd"
    template_fields: Sequence[str] = ("drift",)

    def __init__(self, *, drift: Any, train_task_id: str, skip_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drift = drift
        self.train_task_id = train_task_id
        self.skip_task_id = skip_task_id

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        from include.retrainer.steps import DriftResult, decide_retrain

        force = bool((context.get("params") or {}).get(RunParam.FORCE_RETRAIN, False))
        decision = decide_retrain(DriftResult.of(self.drift or {}), force)
        self.log.info("retrain=%s: %s", decision.retrain, decision.reason)
        # The return value of a branch operator is the branch; the decision goes under its own key.
        context["ti"].xcom_push(key=DECISION_XCOM_KEY, value=decision.to_xcom())
        return self.train_task_id if decision.retrain else self.skip_task_id


class ChallengerTrainOperator(RetrainBaseOperator):
    """Trains the challenger on the training window and registers it in MLflow."""

    ui_color = "#d1ecf1"
    operator_extra_links = (MlflowRunLink(), ChallengerVersionLink())

    def run_step(self, context: Context, ctx: Any) -> dict:
        from include.retrainer import steps

        store = self.object_store()
        return steps.train_challenger(store, self.tracking_uri(), self.spec, ctx, raw_store=self.data_store()).to_xcom()


class ModelCompareOperator(RetrainBaseOperator):
    """Scores champion and challenger on the same holdout; McNemar + metric thresholds.

    :param trained: the training step's result (an XComArg of ``train_challenger``).
    """

    operator_extra_links = (ChallengerVersionLink(),)
    template_fields: Sequence[str] = (*RetrainBaseOperator.template_fields, "trained")

    def __init__(self, *, trained: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trained = trained

    def run_step(self, context: Context, ctx: Any) -> dict:
        from include.retrainer import steps

        trained = steps.TrainResult.of(self.trained)
        return steps.compare_models(self.object_store(), self.tracking_uri(), self.spec, ctx, trained).to_xcom()


class PromotionBranchOperator(BaseBranchOperator):
    """Follows the comparison's decision: ``promote_task_id`` (promote, reinstate) or ``reject_task_id``.

    :param comparison: the comparison step's result (an XComArg of ``compare_models``).
    """

    ui_color = "#fff3cd"
    template_fields: Sequence[str] = ("comparison",)

    def __init__(self, *, comparison: Any, promote_task_id: str, reject_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.comparison = comparison
        self.promote_task_id = promote_task_id
        self.reject_task_id = reject_task_id

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        comparison = self.comparison or {}
        if comparison.get("decision") == "skip":  # nothing was trained: reject_challenger skips itself
            return self.reject_task_id
        # "reinstate": the champion moves too (to an earlier champion), through the promote task.
        moves = comparison.get("decision") in ("promote", "reinstate")
        return self.promote_task_id if moves else self.reject_task_id


class ChampionPromoteOperator(RetrainBaseOperator):
    """Moves alias ``champion`` to the challenger (compare-and-set), records the move.

    :param comparison: the comparison step's result (an XComArg of ``compare_models``).
    :param approval: the human decision (an XComArg of ``approve_promotion``) for models with
        ``promotion.approval: required``; None otherwise.
    """

    ui_color = "#c3e6cb"
    operator_extra_links = (ChampionVersionLink(),)
    template_fields: Sequence[str] = (*RetrainBaseOperator.template_fields, "comparison", "approval")

    def __init__(self, *, comparison: Any, approval: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.comparison = comparison
        self.approval = approval

    def run_step(self, context: Context, ctx: Any) -> dict:
        from include.retrainer import steps

        allow = bool((context.get("params") or {}).get(RunParam.ALLOW_PROMOTION, True))
        comparison = steps.ComparisonResult.of(self.comparison)
        if self.spec.promotion.required and not self.approval:  # the human decision of approve_promotion
            raise AirflowFailException(
                f"promotion.approval is required but {TaskId.APPROVE_PROMOTION} returned no decision"
            )
        return steps.promote_challenger(
            self.object_store(), self.tracking_uri(), self.spec, ctx, comparison, allow, approval=self.approval or None
        ).to_xcom()


class ChallengerRejectOperator(RetrainBaseOperator):
    """Tags the challenger as rejected with the reasons; the champion is untouched.

    :param comparison: the comparison step's result (an XComArg of ``compare_models``).
    """

    ui_color = "#f5c6cb"
    operator_extra_links = (ChallengerVersionLink(),)
    template_fields: Sequence[str] = (*RetrainBaseOperator.template_fields, "comparison")

    def __init__(self, *, comparison: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.comparison = comparison

    def run_step(self, context: Context, ctx: Any) -> dict:
        from include.retrainer import steps

        comparison = steps.ComparisonResult.of(self.comparison)
        if comparison.challenger_version is None:
            # Nothing was trained (e.g. insufficient data): nothing to reject; the summary says why.
            raise AirflowSkipException("no challenger: " + "; ".join(comparison.reasons))
        return steps.reject_challenger(self.tracking_uri(), self.spec, ctx, comparison).to_xcom()


class RunSummarizeOperator(RetrainBaseOperator):
    """Writes summary.json for every run (skipped and failed ones too); fails a failed run.

    Runs with trigger rule ``all_done``. As the DAG's only leaf it decides the run's final
    state, so it re-raises when an upstream task failed: a broken run never looks green.

    :param results: task id -> that step's result (XComArgs of the result tasks); a task that
        was skipped or failed resolves to None.
    """

    ui_color = "#e2e3e5"
    # Resolved from the run story (XCom "story"), so they exist on failed runs too.
    operator_extra_links = (
        RunReportLink(),
        MlflowRunLink(),
        ChallengerVersionLink(),
        ChampionVersionLink(),
        DataDocsLink(),
    )
    links_from_story = True
    template_fields: Sequence[str] = (*RetrainBaseOperator.template_fields, "results")

    def __init__(self, *, results: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def execute(self, context: Context) -> Any:
        from include.retrainer import steps

        started = time.monotonic()
        ctx = run_context(context, self.spec.schedule)
        ti = context["ti"]
        results = dict(self.results)
        # Pulled by hand: an XComArg with a key other than return_value raises XComNotFound when the
        # branch never ran (a run that failed before it), and this task runs on every outcome.
        results[TaskId.DECIDE_RETRAIN] = ti.xcom_pull(task_ids=TaskId.DECIDE_RETRAIN, key=DECISION_XCOM_KEY)
        failed, failed_durations = self._failed_tasks(context, ctx)
        store = self.object_store()
        try:
            tracking_uri = self.tracking_uri()
        except Exception as exc:  # connection missing: still write the summary
            self.log.warning("no MLflow connection: %s", exc)
            tracking_uri = None
        summary = steps.summarize_run(
            store, tracking_uri, self.spec, ctx, steps.RunResults.from_xcom(results), failed, failed_durations
        )
        self.log.info(
            "run summary: decision=%s; %s -> %s",
            summary["decision"],
            summary["summary_uri"],
            "; ".join(summary["reasons"]),
        )
        from retrain_ops.metrics import emit_run_metrics  # never raises: monitoring cannot fail a run

        emit_run_metrics(summary, self.spec.comparison.primary_metric, log=self.log)
        from retrain_ops.story import tell_run_story  # report, MLflow copies, links, run note; never raises

        story = tell_run_story(self, context, store, tracking_uri, summary)
        if summary["decision"] == "failed":
            raise AirflowFailException("run failed: " + "; ".join(summary["reasons"]))
        return {
            "decision": summary["decision"],
            "decision_code": summary.get("decision_code"),
            "trigger": summary.get("trigger"),
            "summary_uri": summary["summary_uri"],
            "champion_version_after": summary["champion_version_after"],
            "headline": summary.get("headline"),
            **story,
            # As the other steps' results carry it (the step's own time; benchmarks read it).
            "duration_seconds": round(time.monotonic() - started, 3),
        }

    def _failed_tasks(self, context: Context, ctx: Any) -> tuple[dict[str, str], dict[str, float]]:
        """Upstream tasks that failed in this run, with their recorded error line and duration."""
        from include.retrainer.layout import RunLayout

        ti = context["ti"]
        states = ti.get_task_states(dag_id=ctx.dag_id, run_ids=[ctx.run_id]).get(ctx.run_id, {})
        failed = [t for t, s in states.items() if t != self.task_id and s in ("failed", "upstream_failed")]
        hard_failed = [t for t in failed if states[t] == "failed"]
        out: dict[str, str] = {}
        durations: dict[str, float] = {}
        store = self.object_store()
        paths = RunLayout.of(self.spec, ctx.interval_start, ctx.interval_end)
        for task_id in hard_failed:
            record = None
            try:
                record = store.get_json_or_none(paths.error(task_id))
            except Exception as exc:
                self.log.warning("cannot read the failure record of %s: %s", task_id, exc)
            if record and record.get("dag_run_id") == ctx.run_id:
                out[task_id] = record.get("error", "failed")
                if isinstance(record.get("duration_seconds"), (int, float)):
                    durations[task_id] = float(record["duration_seconds"])
            else:
                out[task_id] = "failed (see the task log)"
        if failed and not hard_failed:
            out["run"] = "upstream tasks did not run: " + ", ".join(sorted(failed))
        return out, durations


class PartitionSensor(BaseSensorOperator):
    """Waits until at least one data partition of the interval exists (reschedule mode)."""

    def __init__(self, *, spec: ModelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def poke(self, context: Context) -> bool:
        from include.retrainer.fetch import list_partition_files, partition_dates
        from retrain_ops.hooks import ObjectStoreHook

        ctx = run_context(context, self.spec.schedule)
        store = ObjectStoreHook(aws_conn_id=self.spec.data.conn_id).store
        found = list_partition_files(store, self.spec.data, partition_dates(ctx.interval_start, ctx.interval_end))
        self.log.info("%d of the interval's days have partitions", len(found))
        return bool(found)
