"""Human approval before promotion: the decision record and the rules around it (no Airflow).

When a model's spec says ``promotion.approval: required``, a challenger that passed every
gate waits for a person (Airflow's Required Actions, task ``approve_promotion``). This module
holds what does not depend on Airflow:

- :class:`ApprovalDecision`: who decided what, when, with which comment, and why it counts.
  Persisted next to the run's summary, keyed by (model, data interval, challenger version):
  ``<run artefacts>/approval_v<version>.json``. A re-run of the interval finds it and does not
  ask again; a new challenger version (e.g. a forced retrain) is asked about afresh.
- The newest-request marker ``<model artefacts>/approvals/newest_request.json``: the newest
  data interval that reached the approval step. Only the newest pending challenger of a
  model can be approved: an older one expires (:func:`expiry_reason`) when it reaches the
  step after a newer one did, and again when its response arrives (a backfill never promotes
  weeks out of order).
- :func:`resolve_response`: a response (or the timeout) -> the decision.
- :func:`request_body`: the Markdown a person reads before deciding.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

APPROVE = "Approve"
REJECT = "Reject"
OPTIONS = (APPROVE, REJECT)
COMMENT_PARAM = "comment"

#: outcome -> does the champion move (subject to the compare-and-set at promote time)
OUTCOMES = {
    "approved": True,  # a person approved
    "rejected": False,  # a person rejected
    "timed_out": False,  # nobody answered in time (on_timeout: reject, the default)
    "timed_out_promote": True,  # nobody answered in time and on_timeout: promote
    "expired": False,  # a newer challenger or champion made this one stale
    "not_requested": False,  # no approval was asked (gates failed, dry run)
}
MAX_COMMENT = 2000


@dataclass(frozen=True)
class ApprovalDecision:
    model: str
    data_interval_start: str
    data_interval_end: str
    challenger_version: str | None
    outcome: str
    #: One line naming who/what decided and why, for reasons lists and descriptions.
    reason: str
    decided_by: str | None = None  # the Airflow user's display name (None: nobody, e.g. timeout)
    decided_by_id: str | None = None  # the Airflow user's id
    decided_at: str | None = None  # ISO-8601 UTC
    comment: str = ""
    requested_at: str | None = None
    timeout_at: str | None = None
    dag_run_id: str | None = None  # the run that asked (a re-run reuses its decision)
    #: True when this run reused a decision recorded by an earlier run of the interval.
    reused: bool = False

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown approval outcome {self.outcome!r}: expected one of {', '.join(OUTCOMES)}")

    @property
    def allows_promotion(self) -> bool:
        return OUTCOMES[self.outcome]

    @property
    def final(self) -> bool:
        """Recorded and reusable by a re-run (a skipped request is not a decision)."""
        return self.outcome != "not_requested"

    def to_dict(self) -> dict:
        return {**asdict(self), "allows_promotion": self.allows_promotion}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ApprovalDecision:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in fields})

    def reused_by(self) -> ApprovalDecision:
        return ApprovalDecision(**{**asdict(self), "reused": True})


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    return str(value)


def _when(value: Any) -> dt.datetime | None:
    """A plain aware UTC ``datetime`` (Airflow hands out pendulum DateTimes, whose arithmetic
    with intervals can drop a non-pendulum tzinfo)."""
    if value in (None, ""):
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    utc = parsed.astimezone(dt.UTC)
    return dt.datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=dt.UTC)


def week(start: Any, end: Any) -> str:
    return f"{str(_iso(start))[:10]}..{str(_iso(end))[:10]}"


def expiry_reason(
    *,
    interval_start: Any,
    interval_end: Any,
    newest_request: Mapping[str, Any] | None,
    champion_version: str | None,
    champion_interval_end: Any,
    run_id: str | None = None,
    challenger_version: str | None = None,
    requested_at: Any = None,
) -> str | None:
    """Why this interval's challenger may no longer be approved, or None when it still may.

    Stale when a newer data interval of the model reached the approval step (only the newest
    pending challenger can be approved; for the same interval, a later request for another
    challenger version, e.g. a forced re-run, is the newer one), or when the champion was
    trained on data newer than this interval (approving would move production back in time).
    """
    mine = _when(interval_end)
    if mine is None:
        raise ValueError("interval_end is required")
    other = newest_request or {}
    newest_end = _when(other.get("data_interval_end"))
    later_same_interval = (
        newest_end == mine
        and requested_at is not None
        and challenger_version is not None
        and str(other.get("challenger_version")) != str(challenger_version)
        and str(other.get("requested_at") or "") > str(_iso(requested_at))
    )
    if newest_end is not None and (newest_end > mine or later_same_interval) and other.get("dag_run_id") != run_id:
        return (
            f"expired: a newer challenger v{other.get('challenger_version')} (week "
            f"{week(other.get('data_interval_start'), other.get('data_interval_end'))}, run {other.get('dag_run_id')}) "
            f"reached the approval step at {other.get('requested_at')}; only the newest pending challenger of a "
            "model can be approved"
        )
    champ_end = _when(champion_interval_end)
    if champion_version is not None and champ_end is not None and champ_end > mine:
        return (
            f"expired: champion v{champion_version} was trained on newer data (through {champ_end.date()}) than "
            f"this challenger (through {mine.date()}); promoting it would move production back in time"
        )
    return None


def superseded_reason(interval_start: Any, interval_end: Any, now: Any) -> str | None:
    """Why a request for this interval is superseded at ``now``: the next interval of the same
    length has already ended (a backfill's or catch-up's older weeks, a late re-run), so a newer
    challenger can be trained; None for the newest complete interval."""
    start, end, at = _when(interval_start), _when(interval_end), _when(now)
    if start is None or end is None or at is None or end <= start:
        return None
    next_end = end + (end - start)
    if at < next_end:
        return None
    return (
        f"expired: the next data interval ({end.date()}..{next_end.date()}) had already ended when this "
        f"challenger reached the approval step; only the newest challenger of a model can be approved "
        f"(backfill, catch-up or late re-run; promotion.expire_superseded: true)"
    )


def newer_request(current: Mapping[str, Any] | None, candidate: Mapping[str, Any]) -> bool:
    """True when ``candidate`` should replace ``current`` as the newest request (later interval
    end; the same interval: the later request, e.g. a forced re-run)."""
    if not current:
        return True
    cur, cand = _when(current.get("data_interval_end")), _when(candidate.get("data_interval_end"))
    if cur is None or cand is None:
        return cand is not None
    if cand != cur:
        return cand > cur
    return str(candidate.get("requested_at") or "") >= str(current.get("requested_at") or "")


def clean_comment(value: Any) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split())[:MAX_COMMENT]


def resolve_response(
    *,
    base: Mapping[str, Any],
    chosen_options: list[str] | None,
    params_input: Mapping[str, Any] | None,
    responded_by: Mapping[str, Any] | None,
    responded_at: Any,
    timed_out: bool,
    on_timeout: str,
    timeout_hours: float,
    stale_reason: str | None = None,
) -> ApprovalDecision:
    """The decision for a response (or the timeout sweep's default).

    ``base`` carries model, interval, challenger version, run id, requested_at, timeout_at.
    A stale request (``stale_reason``) expires whatever the answer was: the person's answer is
    kept in the record (``decided_by``, ``comment``) but never promotes.
    """
    comment = clean_comment((params_input or {}).get(COMMENT_PARAM))
    who = (responded_by or {}).get("name") or (responded_by or {}).get("id")
    who_id = (responded_by or {}).get("id")
    at = _iso(responded_at) or _iso(dt.datetime.now(dt.UTC))
    chosen = list(chosen_options or [])
    common: dict[str, Any] = {k: base.get(k) for k in _REQUEST_KEYS}
    said = f"; comment: {comment}" if comment else ""
    if timed_out:
        outcome = "timed_out_promote" if on_timeout == "promote" else "timed_out"
        effect = "promoted (on_timeout: promote)" if on_timeout == "promote" else "not promoted (on_timeout: reject)"
        reason = f"approval timed out: no response within {_hours_text(timeout_hours)} (at {at}): {effect}"
        decision = ApprovalDecision(**common, outcome=outcome, reason=reason, decided_at=at)
    elif chosen == [APPROVE]:
        decision = ApprovalDecision(
            **common,
            outcome="approved",
            reason=f"approved by {who} at {at}{said}",
            decided_by=who,
            decided_by_id=who_id,
            decided_at=at,
            comment=comment,
        )
    elif chosen == [REJECT]:
        decision = ApprovalDecision(
            **common,
            outcome="rejected",
            reason=f"rejected by {who} at {at}{said}",
            decided_by=who,
            decided_by_id=who_id,
            decided_at=at,
            comment=comment,
        )
    else:
        raise ValueError(f"approval response {chosen!r}: expected exactly one of {', '.join(OPTIONS)}")
    if stale_reason:
        answer = decision.reason
        return ApprovalDecision(
            **{**asdict(decision), "outcome": "expired", "reason": f"{stale_reason} (response ignored: {answer})"}
        )
    return decision


_REQUEST_KEYS = (
    "model",
    "data_interval_start",
    "data_interval_end",
    "challenger_version",
    "requested_at",
    "timeout_at",
    "dag_run_id",
)


def _hours_text(hours: float) -> str:
    if hours >= 24 and float(hours / 24).is_integer():
        return f"{int(hours // 24)}d"
    if float(hours).is_integer():
        return f"{int(hours)}h"
    return f"{round(hours * 60)}m"


def timeout_text(hours: float) -> str:
    return _hours_text(hours)


def not_requested(base: Mapping[str, Any], reason: str) -> ApprovalDecision:
    common: dict[str, Any] = {
        k: base.get(k)
        for k in ("model", "data_interval_start", "data_interval_end", "challenger_version", "dag_run_id")
    }
    return ApprovalDecision(**common, outcome="not_requested", reason=reason)


def expired(base: Mapping[str, Any], reason: str, at: Any = None) -> ApprovalDecision:
    common: dict[str, Any] = {k: base.get(k) for k in _REQUEST_KEYS}
    return ApprovalDecision(**common, outcome="expired", reason=reason, decided_at=_iso(at or dt.datetime.now(dt.UTC)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def request_subject(model: str, challenger_version: Any, champion_version: Any, start: Any, end: Any) -> str:
    against = f"replace champion v{champion_version}" if champion_version is not None else "become the first champion"
    return f"Approve {model} v{challenger_version} to {against}? (week {week(start, end)})"


def request_body(
    *,
    model: str,
    headline: str,
    comparison: Mapping[str, Any],
    links: Mapping[str, str],
    report_uri: str | None,
    timeout_hours: float,
    on_timeout: str,
    timeout_at: str | None,
) -> str:
    """Markdown shown in the Required Actions page: decision summary, metrics, reasons, links."""
    metrics = comparison.get("metrics") or {}
    champ, chall = metrics.get("champion") or {}, metrics.get("challenger") or {}
    lines = [f"**{headline}**", ""]
    names = sorted(set(champ) | set(chall))
    if names:
        lines += ["| metric | champion | challenger |", "|---|---|---|"]
        lines += [f"| {n} | {_fmt(champ.get(n))} | {_fmt(chall.get(n))} |" for n in names]
        lines.append("")
    reasons = [str(r) for r in comparison.get("reasons") or []]
    if reasons:
        lines += ["Why the gates passed:", *[f"- {r}" for r in reasons], ""]
    if comparison.get("holdout_rows"):
        lines.append(f"Both models scored on the same {comparison['holdout_rows']} held-out rows.")
    report = links.get("Run report")
    if report:
        lines.append(f"[Run report]({report}) (drift, comparison, lineage)")
    elif report_uri:
        lines.append(f"Run report: `{report_uri}`")
    lines += [f"[{label}]({url})" for label, url in links.items() if label != "Run report" and url]
    effect = "promoted" if on_timeout == "promote" else "not promoted"
    lines += [
        "",
        f"No answer within {_hours_text(timeout_hours)}"
        + (f" (by {timeout_at})" if timeout_at else "")
        + f": the challenger is {effect}. "
        "Only the newest pending challenger of a model can be approved; the champion must still be the one "
        "compared against when you answer. Add a comment: it is kept in the run summary, the champion "
        "history and the model version's description.",
    ]
    return "\n".join(lines)


def approval_tags(decision: ApprovalDecision) -> dict[str, str]:
    """MLflow version tags (without the ``retrain.`` prefix) recording the decision."""
    tags = {"approval": decision.outcome}
    if decision.decided_by:
        tags["approval_by"] = decision.decided_by
    if decision.decided_at:
        tags["approval_at"] = decision.decided_at
    if decision.comment:
        tags["approval_comment"] = decision.comment
    return tags


def description_line(approval: Mapping[str, Any] | None) -> str:
    """One sentence for a version's description ('' when no approval was involved)."""
    if not approval or approval.get("outcome") in (None, "not_requested"):
        return ""
    outcome = approval["outcome"]
    comment = approval.get("comment")
    said = f' Comment: "{comment}".' if comment else ""
    if outcome == "approved":
        return f"Approved by {approval.get('decided_by')} at {approval.get('decided_at')}.{said}"
    if outcome == "rejected":
        return f"Rejected by {approval.get('decided_by')} at {approval.get('decided_at')}.{said}"
    return f"Approval: {approval.get('reason')}."
