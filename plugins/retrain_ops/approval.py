"""The approval task of models with ``promotion.approval: required`` (Airflow human-in-the-loop).

``approve_promotion`` runs after ``decide_promotion`` chose promotion and before
``promote_challenger``. It is a ``HITLOperator`` of the standard provider: on Airflow 3.3 the
task parks in the ``awaiting_input`` state and appears in the UI's Required Actions with the
decision summary (headline, metrics, reasons) and the links to the run's report; a person
picks Approve or Reject and may leave a comment. The scheduler's timeout sweep answers with
the default option after ``promotion.approval_timeout`` (Reject unless ``on_timeout: promote``).

The task never asks when it need not (``include.retrainer.steps.prepare_approval``): a
decision recorded for this (model, interval, challenger version) by an earlier run is
reused, a request older than the model's newest one expires at once, a dry run
(``allow_promotion=false``) or an already promoted challenger asks nobody. Whatever the
answer, the task succeeds and returns the decision; ``promote_challenger`` acts on it (and
re-checks that the champion is still the one compared against).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from include.retrainer.approval import APPROVE, COMMENT_PARAM, OPTIONS, REJECT
from include.retrainer.tasks import DECISION_XCOM_KEY, TaskId
from retrain_ops.operators import run_context

if TYPE_CHECKING:
    import datetime as dt

    from airflow.sdk import Context

    from include.retrainer.config import ModelSpec

#: Upstream results the request shows (and the pending report is built from).
REQUEST_INPUTS = (
    TaskId.FETCH_BATCH,
    TaskId.VALIDATE_BATCH,
    TaskId.DETECT_DRIFT,
    TaskId.TRAIN_CHALLENGER,
    TaskId.COMPARE_MODELS,
)


class PromotionApproveOperator(HITLOperator):
    """Asks a person to approve the challenger's promotion; returns the decision (a small dict)."""

    ui_color = "#fde2b8"

    def __init__(
        self,
        *,
        spec: ModelSpec,
        response_timeout: dt.timedelta,
        s3_conn_id: str | None = None,
        mlflow_conn_id: str = "mlflow_default",
        **kwargs: Any,
    ) -> None:
        promotion = spec.promotion
        # The form's fields only: the DAG's run params are not asked of the approver.
        kwargs.pop("params", None)
        super().__init__(
            subject=f"Approve promotion of {spec.name}",
            body="The request is written when the task runs.",
            options=list(OPTIONS),
            defaults=[APPROVE if promotion.on_timeout == "promote" else REJECT],
            multiple=False,
            params={
                COMMENT_PARAM: Param(
                    "",
                    type="string",
                    title="Comment",
                    description="Why you approve or reject: kept in the run summary, the "
                    "champion history and the model version's description.",
                )
            },
            assigned_users=[{"id": user, "name": user} for user in promotion.approvers] or None,
            response_timeout=response_timeout,
            **kwargs,
        )
        self.spec = spec
        self.s3_conn_id = s3_conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def object_store(self) -> Any:
        from retrain_ops.hooks import ObjectStoreHook

        return ObjectStoreHook(aws_conn_id=self.s3_conn_id or self.spec.artifacts_conn_id).store

    def tracking_uri(self) -> str:
        from retrain_ops.hooks import MlflowHook

        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id).tracking_uri

    def execute(self, context: Context) -> Any:
        from include.retrainer import steps

        ctx = run_context(context, self.spec.schedule)
        ti = context["ti"]
        # Pulled by task id: HITLOperator renders its own template fields (subject, body, ...) and
        # the request is built here, from every upstream result, before the task parks.
        results = {t: ti.xcom_pull(task_ids=t) for t in REQUEST_INPUTS}
        results[TaskId.DECIDE_RETRAIN] = ti.xcom_pull(task_ids=TaskId.DECIDE_RETRAIN, key=DECISION_XCOM_KEY)
        prepared = steps.prepare_approval(
            self.object_store(), self.tracking_uri(), self.spec, ctx, steps.RunResults.from_xcom(results)
        )
        if not prepared["ask"]:
            self.log.info("no approval asked: %s", prepared["decision"]["reason"])
            return prepared["decision"]
        self.subject = prepared["subject"]
        self.body = prepared["body"]
        self.log.info("asking for approval (answer in the UI's Required Actions): %s", self.subject)
        return super().execute(context)  # parks the task until a response or the timeout

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from include.retrainer import steps

        ctx = run_context(context, self.spec.schedule)
        comparison = steps.ComparisonResult.of(context["ti"].xcom_pull(task_ids=TaskId.COMPARE_MODELS) or {})
        version = str(comparison.challenger_version)
        if "error" in event:
            if event.get("error_type") != "timeout":
                return super().execute_complete(context, event)  # raises the provider's error
            event = {
                "chosen_options": [],
                "params_input": {},
                "responded_by_user": None,
                "responded_at": None,
                "timedout": True,
            }
        elif not event.get("timedout"):
            self.validate_chosen_options(list(event.get("chosen_options") or []))
        decision = steps.finish_approval(self.object_store(), self.tracking_uri(), self.spec, ctx, version, event)
        self.log.info("approval: %s", decision["reason"])
        return decision
