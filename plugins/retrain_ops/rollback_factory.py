"""Build the manual rollback DAG (``rollback_<name>``) of one model spec."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param

from include.retrainer.config import ModelSpec
from include.retrainer.layout import ModelLayout
from include.retrainer.tasks import RollbackParam, TaskId
from retrain_ops.dag_factory import PROMOTION_POOL, default_args
from retrain_ops.rollback_operators import ChampionRollbackOperator

#: Param names, shared with the operator.
TARGET_PARAM = RollbackParam.TARGET_VERSION
REASON_PARAM = RollbackParam.REASON


def rollback_dag_id(spec: ModelSpec) -> str:
    return f"rollback_{spec.name}"


def rollback_params() -> dict[str, Param]:
    """Typed params: the trigger form refuses a non-numeric version or a missing reason."""
    return {
        TARGET_PARAM: Param(
            None,
            type=["null", "string"],
            pattern=r"^[0-9]+$",
            title="Target version",
            description="Model version to make champion again (digits, e.g. '3'). Leave empty to go back to "
            "the version the current champion replaced. It must exist and carry retrain.validated=true.",
        ),
        REASON_PARAM: Param(
            "",
            type="string",
            minLength=3,
            title="Reason",
            description="Why the champion is rolled back (required; recorded in the champion history and "
            "as tag retrain.rollback_reason on both versions).",
        ),
    }


def rollback_doc_md(spec: ModelSpec) -> str:
    history = ModelLayout.of(spec).champion_history + "/"
    return f"""
### Rollback: `{spec.name}`

Manual DAG (no schedule) that moves the MLflow alias **`champion`** of registered model
**`{spec.name}`** back to an earlier version, in one call (never a moment without a champion).

**Trigger with params**

* `reason` (required, >= 3 characters): why; recorded in the history and as version tags.
* `target_version` (optional): the version to restore. Empty = the version the current champion
  replaced (tag `retrain.replaced_version`, else the previous champion in the history).

**Refused** (task fails at once, champion untouched): a version that does not exist, one that was
never validated (`retrain.validated` is not `true`), the current champion itself, or no previous
champion to go back to.

**Recorded**: the target gets `retrain.decision=rollback_target`, `retrain.rolled_back_at` and
`retrain.rollback_reason`; the demoted version `retrain.rolled_back_from_at`; a history record
(`action: rollback`, from, to, reason, run, when) is appended under `{history}`.
List it with `python scripts/champion_history.py --model {spec.name}`.

Task `rollback_champion` runs in pool `{PROMOTION_POOL}` (one slot), so it never races a promotion.
Consecutive rollbacks without a target walk back the promotion lineage (v3 -> v2 -> v1).
"""


def build_rollback_dag(spec: ModelSpec) -> DAG:
    with DAG(
        dag_id=rollback_dag_id(spec),
        description=f"Roll the champion of {spec.name} back to an earlier validated version"[:200],
        schedule=None,
        start_date=dt.datetime.combine(spec.start_date, dt.time(0), dt.UTC),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(spec),
        # "retraining" groups every DAG of the orchestrator in the UI; "rollback" singles these out.
        tags=sorted({"retraining", "rollback", *spec.tags}),
        params=rollback_params(),
        doc_md=rollback_doc_md(spec),
    ) as dag:
        ChampionRollbackOperator(
            task_id=TaskId.ROLLBACK_CHAMPION,
            spec=spec,
            pool=PROMOTION_POOL,
            target_version_param=TARGET_PARAM,
            reason_param=REASON_PARAM,
        )
    return dag
