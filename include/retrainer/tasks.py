"""Task ids, run params and XCom keys of the retraining DAG, named once.

Pure Python (no Airflow import): the DAG factory, the operators, the run summary, the run
story and the tests all spell a task id or a param through these names, so renaming a task is
one edit here. Plain ``str`` constants (not an ``Enum``): Airflow stores task ids and param
names as strings, and the summary's JSON keys are these same strings.
"""

from __future__ import annotations

from typing import Final


class TaskId:
    """Task ids of ``retrain_<model>`` (``verb_noun``)."""

    WAIT_FOR_PARTITIONS: Final = "wait_for_partitions"
    FETCH_BATCH: Final = "fetch_batch"
    VALIDATE_BATCH: Final = "validate_batch"
    DETECT_DRIFT: Final = "detect_drift"
    DECIDE_RETRAIN: Final = "decide_retrain"
    SKIP_RETRAIN: Final = "skip_retrain"
    TRAIN_CHALLENGER: Final = "train_challenger"
    COMPARE_MODELS: Final = "compare_models"
    DECIDE_PROMOTION: Final = "decide_promotion"
    APPROVE_PROMOTION: Final = "approve_promotion"  # only when the spec requires approval
    PROMOTE_CHALLENGER: Final = "promote_challenger"
    REJECT_CHALLENGER: Final = "reject_challenger"
    SUMMARIZE_RUN: Final = "summarize_run"
    DECIDE_OUTCOME: Final = "decide_outcome"
    MARK_PROMOTED: Final = "mark_promoted"
    MARK_REJECTED: Final = "mark_rejected"
    MARK_SKIPPED_NO_DRIFT: Final = "mark_skipped_no_drift"
    MARK_SKIPPED_INSUFFICIENT_DATA: Final = "mark_skipped_insufficient_data"
    MARK_FORCED_RUN: Final = "mark_forced_run"
    ROLLBACK_CHAMPION: Final = "rollback_champion"


#: The steps whose return values the run summary is assembled from, in DAG order (plus
#: ``approve_promotion`` in DAGs whose spec requires approval).
RESULT_TASKS: Final = (
    TaskId.FETCH_BATCH,
    TaskId.VALIDATE_BATCH,
    TaskId.DETECT_DRIFT,
    TaskId.TRAIN_CHALLENGER,
    TaskId.COMPARE_MODELS,
    TaskId.PROMOTE_CHALLENGER,
    TaskId.REJECT_CHALLENGER,
)


class RunParam:
    """Per-run params of ``retrain_<model>`` (the trigger form)."""

    FORCE_RETRAIN: Final = "force_retrain"
    QUARANTINE: Final = "quarantine"
    ALLOW_PROMOTION: Final = "allow_promotion"


class RollbackParam:
    """Params of ``rollback_<model>``."""

    TARGET_VERSION: Final = "target_version"
    REASON: Final = "reason"


#: XCom key under which ``decide_retrain`` pushes its decision (its return value is the branch).
DECISION_XCOM_KEY: Final = "decision"
