"""The outcome row of the grid: one task per possible outcome, the one that happened succeeds.

After ``summarize_run``, ``decide_outcome`` branches to exactly the task naming the run's
decision (and, for forced runs, ``mark_forced_run`` too); the others are skipped. In the
grid view each week's column therefore shows, without opening a log, a green box on the row
``mark_promoted``, ``mark_rejected``, ``mark_skipped_no_drift`` or
``mark_skipped_insufficient_data``. A failed run fails ``summarize_run``, so the outcome
tasks are ``upstream_failed`` and the run is red.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator

from include.retrainer.tasks import RunParam, TaskId

if TYPE_CHECKING:
    from airflow.sdk import Context

#: decision code -> outcome task id
OUTCOME_TASKS = {
    "promoted": TaskId.MARK_PROMOTED,
    "reinstated": TaskId.MARK_PROMOTED,  # the champion moved, to an earlier one
    "reinstatement_refused": TaskId.MARK_REJECTED,  # an earlier champion's return was refused: nothing moved
    "rejected": TaskId.MARK_REJECTED,
    "no_retrain_needed": TaskId.MARK_SKIPPED_NO_DRIFT,
    "insufficient_data": TaskId.MARK_SKIPPED_INSUFFICIENT_DATA,
}
FORCED_TASK = TaskId.MARK_FORCED_RUN

OUTCOME_DOCS = {
    TaskId.MARK_PROMOTED: (
        "The champion moved: to the challenger, or (decision code `reinstated`) back to an earlier "
        "champion that served this week's held-out rows better than the week's winner."
    ),
    TaskId.MARK_REJECTED: (
        "Nothing moved: a challenger was trained, compared and rejected, or (decision code "
        "`reinstatement_refused`) an earlier champion's return was refused. The champion is unchanged."
    ),
    TaskId.MARK_SKIPPED_NO_DRIFT: "No retraining needed: the drift gate did not trip (see the run note / report).",
    TaskId.MARK_SKIPPED_INSUFFICIENT_DATA: "Retraining was due but there was not enough data to train and evaluate.",
    FORCED_TASK: f"The run was triggered with `{RunParam.FORCE_RETRAIN}`: it trained regardless of the drift gate.",
}


def outcome_tasks(decision: str | None, decision_code: str | None, trigger: str | None) -> list[str]:
    """Task ids to follow for a summary's decision; [] when there is no decision to show."""
    code = decision_code or decision
    if decision == "skipped" and code not in OUTCOME_TASKS:
        code = "no_retrain_needed"
    chosen = [OUTCOME_TASKS[code]] if code in OUTCOME_TASKS else []
    if chosen and trigger == "forced":
        chosen.append(FORCED_TASK)
    return chosen


class RunOutcomeOperator(BaseBranchOperator):
    """Follows the outcome task of the decision ``summarize_run`` returned.

    :param summary: what ``summarize_run`` returned (an XComArg of it).
    """

    ui_color = "#e2e3e5"
    template_fields: Sequence[str] = ("summary",)

    def __init__(self, *, summary: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.summary = summary

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        result = self.summary or {}
        chosen = outcome_tasks(result.get("decision"), result.get("decision_code"), result.get("trigger"))
        self.log.info("outcome: %s (%s)", ", ".join(chosen) or "none", result.get("headline") or "")
        return chosen
