"""Operator of the manual rollback DAG (``rollback_<model>``).

Same shape as the retraining operators: ``execute`` resolves the connections and the
run's params, calls one function (:func:`include.retrainer.rollback.rollback`) and returns
a small JSON dict. A refused rollback (unknown or unvalidated version, no previous
champion, no reason) fails the task at once: retrying cannot make the version exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from include.retrainer.tasks import RollbackParam
from retrain_ops.operators import RetrainBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ChampionRollbackOperator(RetrainBaseOperator):
    """Moves alias ``champion`` back to ``params.target_version`` (or the previous champion).

    The params are read from the run (trigger form / ``run_conf``), not from operator
    arguments, so one DAG serves every rollback. ``target_version_param`` and
    ``reason_param`` name the params, for DAGs that call them differently.
    """

    ui_color = "#ffeeba"

    def __init__(
        self,
        *,
        target_version_param: str = RollbackParam.TARGET_VERSION,
        reason_param: str = RollbackParam.REASON,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_version_param = target_version_param
        self.reason_param = reason_param

    def execute(self, context: Context) -> Any:
        from include.retrainer.rollback import RollbackError

        try:
            # The base class records the failure next to the run's artefacts, then re-raises.
            return super().execute(context)
        except RollbackError as exc:
            raise AirflowFailException(f"rollback refused: {exc}") from exc

    def run_step(self, context: Context, ctx: Any) -> dict:
        from include.retrainer import registry
        from include.retrainer.rollback import rollback

        params = context.get("params") or {}
        target = params.get(self.target_version_param)
        reason = params.get(self.reason_param) or ""
        client = registry.client_for(self.tracking_uri())
        result = rollback(client, self.object_store(), self.spec, target, str(reason), ctx.run_id, ctx.dag_id)
        self.log.info(
            "champion of '%s': v%s -> v%s (%s); history record %s",
            self.spec.name,
            result["champion_before"],
            result["champion_after"],
            result["source"],
            result["history_uri"],
        )
        return result
