"""One function per DAG task: typed inputs in, a small frozen result out.

Operators in ``plugins/`` resolve connections and the run context, call exactly one of
these and push ``result.to_xcom()``; the next step reads it back with ``from_xcom``.
Everything a later task needs travels through object storage (URIs in the results) or
MLflow; nothing relies on a worker's local files.

One module per step (or closely related pair):

=================  ==============================================  ====================
module             steps                                           result
=================  ==============================================  ====================
``fetch``          ``fetch_batch``                                 ``FetchResult``
``validate``       ``validate_batch``                              ``ValidationResult``
``drift``          ``detect_drift``, ``decide_retrain``            ``DriftResult``, ``RetrainDecision``
``train``          ``train_challenger``                            ``TrainResult``
``compare``        ``compare_models``                              ``ComparisonResult``
``approve``        ``approve_promotion`` (prepare / finish)        an ``ApprovalDecision`` dict
``promote``        ``promote_challenger``, ``reject_challenger``   ``PromotionResult``
``summary``        ``summarize_run``                               the summary dict (``RunResults`` in)
=================  ==============================================  ====================

``context`` holds what they share: :class:`RunContext`, the :class:`StepResult` base, the
idempotency key and the quarantine policy.

Idempotency: every artefact is keyed by (model, data interval) and overwritten on a
re-run; model versions are keyed by (model, interval, config hash, code version).
"""

from include.retrainer.steps.approve import (
    approval_lock,
    finish_approval,
    prepare_approval,
    recorded_approval,
    save_approval,
)
from include.retrainer.steps.compare import ComparisonResult, compare_models
from include.retrainer.steps.context import RunContext, StepResult, code_version, experiment_name, idempotency_key
from include.retrainer.steps.drift import (
    DriftResult,
    RetrainDecision,
    decide_retrain,
    detect_drift,
    drift_reference,
    load_champion_state,
    load_rejected_since,
)
from include.retrainer.steps.fetch import FetchResult, fetch_batch
from include.retrainer.steps.promote import PromotionResult, promote_challenger, reject_challenger
from include.retrainer.steps.summary import (
    SUMMARY_SCHEMA_VERSION,
    RunResults,
    approval_headline,
    approval_summary,
    build_summary,
    headline,
    step_durations,
    summarize_run,
)
from include.retrainer.steps.train import TrainResult, train_challenger
from include.retrainer.steps.validate import (
    DataValidationFailed,
    ValidationResult,
    quarantine_failing_days,
    suite_expectations,
    validate_batch,
)

__all__ = [
    "approval_headline",
    "approval_lock",
    "approval_summary",
    "drift_reference",
    "finish_approval",
    "prepare_approval",
    "recorded_approval",
    "save_approval",
    "SUMMARY_SCHEMA_VERSION",
    "ComparisonResult",
    "DataValidationFailed",
    "DriftResult",
    "FetchResult",
    "PromotionResult",
    "RetrainDecision",
    "RunContext",
    "RunResults",
    "StepResult",
    "TrainResult",
    "ValidationResult",
    "build_summary",
    "code_version",
    "compare_models",
    "decide_retrain",
    "detect_drift",
    "experiment_name",
    "fetch_batch",
    "headline",
    "idempotency_key",
    "load_champion_state",
    "load_rejected_since",
    "promote_challenger",
    "quarantine_failing_days",
    "reject_challenger",
    "step_durations",
    "suite_expectations",
    "summarize_run",
    "train_challenger",
    "validate_batch",
]
