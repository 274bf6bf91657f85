"""Human approval before promotion: spec block, decision rules, summary fields (pure logic)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from include.retrainer import approval
from include.retrainer.config import ModelSpecError, parse_spec
from include.retrainer.run_story import version_descriptions
from include.retrainer.steps import RunContext, RunResults, build_summary

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.UTC
W1 = (dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 3, 8, tzinfo=UTC))
W2 = (dt.datetime(2026, 3, 8, tzinfo=UTC), dt.datetime(2026, 3, 15, tzinfo=UTC))


def spec_with(promotion: dict | None):
    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    if promotion is not None:
        raw["promotion"] = promotion
    return parse_spec(raw, "models/churn.yaml")


# -- the spec's promotion block ---------------------------------------------------------------
def test_promotion_defaults_to_no_approval():
    p = spec_with(None).promotion
    assert (p.approval, p.required, p.approval_timeout, p.on_timeout, p.approvers, p.expire_superseded) == (
        "off",
        False,
        72.0,
        "reject",
        [],
        True,
    )


@pytest.mark.parametrize(("given", "hours"), [("72h", 72.0), ("3d", 72.0), ("90m", 1.5), (12, 12.0), ("1.5h", 1.5)])
def test_approval_timeout_units(given, hours):
    assert spec_with({"approval": "required", "approval_timeout": given}).promotion.approval_timeout == hours


def test_yaml_booleans_mean_off_and_required():
    # YAML 1.1 reads `approval: off` as False: it must still mean "off", not an error.
    assert spec_with(yaml.safe_load("approval: off")).promotion.approval == "off"
    assert spec_with(yaml.safe_load("approval: yes")).promotion.required


@pytest.mark.parametrize(
    ("promotion", "field", "words"),
    [
        ({"approval": "maybe"}, "promotion.approval", "'maybe' is not an approval mode"),
        ({"approval_timeout": "soon"}, "promotion.approval_timeout", "is not a duration"),
        ({"approval_timeout": "0m"}, "promotion.approval_timeout", "out of range"),
        ({"approval_timeout": "91d"}, "promotion.approval_timeout", "out of range"),
        ({"on_timeout": "approve"}, "promotion.on_timeout", "'reject' or 'promote'"),
        ({"approvers": ["a", "a"]}, "promotion.approvers", "more than once"),
        ({"aproval": "required"}, "promotion.aproval", "unknown field"),
    ],
)
def test_bad_promotion_values_name_the_field(promotion, field, words):
    with pytest.raises(ModelSpecError) as err:
        spec_with(promotion)
    assert err.value.field == field and words in str(err.value)


def test_turning_approval_on_keeps_the_config_hash():
    # What is trained does not change: existing versions stay reusable for their intervals.
    assert spec_with(None).config_hash() == spec_with({"approval": "required"}).config_hash()


# -- staleness ---------------------------------------------------------------------------------
def request(week, version, run, at="2026-03-20T10:00:00+00:00"):
    return {
        "data_interval_start": week[0].isoformat(),
        "data_interval_end": week[1].isoformat(),
        "challenger_version": version,
        "dag_run_id": run,
        "requested_at": at,
    }


def test_an_older_interval_expires_once_a_newer_one_asked():
    why = approval.expiry_reason(
        interval_start=W1[0],
        interval_end=W1[1],
        newest_request=request(W2, "7", "r2"),
        champion_version="3",
        champion_interval_end=W1[0],
        run_id="r1",
    )
    assert why.startswith("expired: a newer challenger v7 (week 2026-03-08..2026-03-15, run r2)")
    assert "only the newest pending challenger" in why


def test_the_newest_request_and_its_own_marker_are_not_stale():
    kw = dict(champion_version="3", champion_interval_end=W1[0])
    assert (
        approval.expiry_reason(interval_start=W2[0], interval_end=W2[1], newest_request=request(W1, "5", "r1"), **kw)
        is None
    )
    assert (
        approval.expiry_reason(
            interval_start=W2[0], interval_end=W2[1], newest_request=request(W2, "7", "r2"), run_id="r2", **kw
        )
        is None
    )
    assert approval.expiry_reason(interval_start=W2[0], interval_end=W2[1], newest_request=None, **kw) is None


def test_same_interval_a_later_request_for_another_version_wins():
    newest = request(W2, "8", "forced", at="2026-03-21T09:00:00+00:00")
    why = approval.expiry_reason(
        interval_start=W2[0],
        interval_end=W2[1],
        newest_request=newest,
        champion_version=None,
        champion_interval_end=None,
        run_id="r2",
        challenger_version="7",
        requested_at="2026-03-20T10:00:00+00:00",
    )
    assert why and "newer challenger v8" in why


def test_a_champion_trained_on_newer_data_expires_the_request():
    why = approval.expiry_reason(
        interval_start=W1[0],
        interval_end=W1[1],
        newest_request=None,
        champion_version="9",
        champion_interval_end=W2[1],
        run_id="r1",
    )
    assert why == (
        "expired: champion v9 was trained on newer data (through 2026-03-15) than this challenger "
        "(through 2026-03-08); promoting it would move production back in time"
    )


def test_a_week_is_superseded_once_the_next_week_has_ended():
    assert approval.superseded_reason(*W1, now=W2[0] + dt.timedelta(hours=1)) is None  # the newest week
    assert approval.superseded_reason(*W1, now=W2[1] - dt.timedelta(seconds=1)) is None
    why = approval.superseded_reason(*W1, now=W2[1])
    assert why.startswith("expired: the next data interval (2026-03-08..2026-03-15) had already ended")
    assert "promotion.expire_superseded" in why


def test_superseded_accepts_airflow_pendulum_datetimes():
    import pendulum

    # As resolve_interval hands them over: pendulum DateTimes with a stdlib UTC tzinfo.
    start, end = (pendulum.instance(d).astimezone(UTC) for d in W1)
    assert approval.superseded_reason(start, end, now=W2[1]).startswith("expired: the next data interval")
    assert approval.superseded_reason(start, end, now=dt.datetime(2026, 3, 9, tzinfo=UTC)) is None


def test_newer_request_orders_by_interval_then_time():
    assert approval.newer_request(None, request(W1, "1", "a"))
    assert approval.newer_request(request(W1, "1", "a"), request(W2, "2", "b"))
    assert not approval.newer_request(request(W2, "2", "b"), request(W1, "1", "a"))
    assert approval.newer_request(request(W2, "2", "b"), request(W2, "3", "c", at="2026-03-21T00:00:00+00:00"))


# -- responses ---------------------------------------------------------------------------------
BASE = {
    "model": "churn",
    "data_interval_start": W2[0].isoformat(),
    "data_interval_end": W2[1].isoformat(),
    "challenger_version": "7",
    "dag_run_id": "r2",
    "requested_at": "2026-03-20T10:00:00+00:00",
    "timeout_at": "2026-03-23T10:00:00+00:00",
}
AT = dt.datetime(2026, 3, 20, 11, 30, tzinfo=UTC)


def respond(chosen, **kw):
    args = dict(
        base=BASE,
        chosen_options=chosen,
        params_input={"comment": "  looks\n good "},
        responded_by={"id": "alice", "name": "Alice"},
        responded_at=AT,
        timed_out=False,
        on_timeout="reject",
        timeout_hours=72.0,
    )
    return approval.resolve_response(**{**args, **kw})


def test_approve_records_who_when_and_comment():
    d = respond(["Approve"])
    assert (d.outcome, d.allows_promotion, d.decided_by, d.decided_by_id, d.comment) == (
        "approved",
        True,
        "Alice",
        "alice",
        "looks good",
    )
    assert d.decided_at == "2026-03-20T11:30:00+00:00"
    assert d.reason == "approved by Alice at 2026-03-20T11:30:00+00:00; comment: looks good"
    assert approval.ApprovalDecision.from_dict(d.to_dict()) == d


def test_reject_never_promotes():
    d = respond(["Reject"], params_input={})
    assert (d.outcome, d.allows_promotion, d.comment) == ("rejected", False, "")
    assert d.reason == "rejected by Alice at 2026-03-20T11:30:00+00:00"


@pytest.mark.parametrize(
    ("on_timeout", "outcome", "promotes"), [("reject", "timed_out", False), ("promote", "timed_out_promote", True)]
)
def test_timeout_follows_the_spec(on_timeout, outcome, promotes):
    d = respond(["Reject"], timed_out=True, responded_by=None, on_timeout=on_timeout, params_input={"comment": ""})
    assert (d.outcome, d.allows_promotion, d.decided_by) == (outcome, promotes, None)
    assert d.reason.startswith("approval timed out: no response within 3d")


def test_a_stale_approval_expires_but_keeps_the_answer():
    d = respond(["Approve"], stale_reason="expired: a newer challenger v9 reached the approval step")
    assert (d.outcome, d.allows_promotion, d.decided_by) == ("expired", False, "Alice")
    assert d.reason.startswith("expired: a newer challenger v9") and "response ignored: approved by Alice" in d.reason


def test_an_unknown_answer_is_an_error():
    with pytest.raises(ValueError, match="expected exactly one of Approve, Reject"):
        respond(["Approve", "Reject"])


def test_only_a_recorded_decision_is_reusable():
    assert approval.not_requested(BASE, "dry run").final is False
    assert respond(["Reject"]).reused_by().reused is True


# -- what a person reads ------------------------------------------------------------------------
def test_request_body_shows_headline_metrics_reasons_and_report_link():
    body = approval.request_body(
        model="churn",
        headline="Awaiting approval: challenger v7 passed every gate.",
        comparison={
            "metrics": {"champion": {"roc_auc": 0.81}, "challenger": {"roc_auc": 0.84}},
            "reasons": ["roc_auc +0.03 (CI 0.01..0.05)"],
            "holdout_rows": 2000,
        },
        links={"Run report": "http://mlflow/#/r/report.html"},
        report_uri="s3://b/k/report.html",
        timeout_hours=72,
        on_timeout="reject",
        timeout_at="2026-03-23T10:00:00+00:00",
    )
    assert body.startswith("**Awaiting approval: challenger v7 passed every gate.**")
    assert "| roc_auc | 0.8100 | 0.8400 |" in body
    assert "- roc_auc +0.03 (CI 0.01..0.05)" in body
    assert "[Run report](http://mlflow/#/r/report.html)" in body
    assert "No answer within 3d (by 2026-03-23T10:00:00+00:00): the challenger is not promoted." in body
    plain = approval.request_body(
        model="churn",
        headline="h",
        comparison={},
        links={},
        report_uri="s3://b/k/report.html",
        timeout_hours=1.5,
        on_timeout="promote",
        timeout_at=None,
    )
    assert (
        "Run report: `s3://b/k/report.html`" in plain and "No answer within 90m: the challenger is promoted." in plain
    )


def test_subject_names_model_versions_and_week():
    assert (
        approval.request_subject("churn", "7", "3", *W2)
        == "Approve churn v7 to replace champion v3? (week 2026-03-08..2026-03-15)"
    )
    assert "become the first champion" in approval.request_subject("churn", "1", None, *W2)


# -- summary and registry description -------------------------------------------------------------
def _results(outcome):
    """The results as the summarize task reads them back from XCom."""
    return RunResults.from_xcom(
        {
            "fetch_batch": {"rows": 10},
            "detect_drift": {"gate": True, "reason": "drift", "code": "signals", "champion_version": "3"},
            "decide_retrain": {"retrain": True, "reason": "data drift on x", "forced": False},
            "train_challenger": {"challenger_version": "7", "run_id": "run7"},
            "compare_models": {
                "decision": "promote",
                "reasons": ["roc_auc +0.03"],
                "champion_version": "3",
                "challenger_version": "7",
            },
            **outcome,
        }
    )


def test_summary_records_the_human_decision_of_a_promotion():
    spec = spec_with({"approval": "required"})
    decision = respond(["Approve"]).to_dict()
    ctx = RunContext("retrain_churn", "r2", *W2)
    summary = build_summary(
        spec,
        ctx,
        results=_results(
            {
                "approve_promotion": decision,
                "promote_challenger": {
                    "promoted": True,
                    "champion_before": "3",
                    "champion_after": "7",
                    "reasons": ["roc_auc +0.03", decision["reason"]],
                    "approval": decision,
                },
            }
        ),
        failed_tasks={},
        champion_after="7",
    )
    assert summary["schema_version"] == 8 and summary["decision"] == "promoted"
    a = summary["approval"]
    assert (a["required"], a["outcome"], a["decided_by"], a["decided_at"], a["comment"], a["on_timeout"]) == (
        True,
        "approved",
        "Alice",
        "2026-03-20T11:30:00+00:00",
        "looks good",
        "reject",
    )
    assert summary["headline"].startswith("Promoted (signals), approved by Alice at 2026-03-20T11:30:00+00:00")
    text = version_descriptions(summary, now=AT)["7"]
    assert (
        text.startswith("CHAMPION since 2026-03-20 11:30 UTC")
        and 'Approved by Alice at 2026-03-20T11:30:00+00:00. Comment: "looks good".' in text
    )


def test_summary_of_a_human_rejection():
    spec = spec_with({"approval": "required"})
    decision = respond(["Reject"], params_input={"comment": "wait for the audit"}).to_dict()
    summary = build_summary(
        spec,
        RunContext("retrain_churn", "r2", *W2),
        results=_results(
            {
                "approve_promotion": decision,
                "promote_challenger": {
                    "promoted": False,
                    "champion_before": "3",
                    "champion_after": "3",
                    "reasons": ["roc_auc +0.03", decision["reason"]],
                    "approval": decision,
                },
            }
        ),
        failed_tasks={},
        champion_after="3",
    )
    assert summary["decision"] == "rejected" and summary["approval"]["outcome"] == "rejected"
    assert summary["headline"] == (
        "Not promoted (signals): rejected by Alice at 2026-03-20T11:30:00+00:00; comment: "
        "wait for the audit. Gates passed: roc_auc +0.03."
    )
    assert (
        'Rejected by Alice at 2026-03-20T11:30:00+00:00. Comment: "wait for the audit".'
        in version_descriptions(summary, now=AT)["7"]
    )


def test_summary_approval_is_null_when_not_required_and_named_when_not_asked():
    ctx = RunContext("retrain_churn", "r2", *W2)
    results = _results({"reject_challenger": {"promoted": False, "reasons": ["worse"]}})
    assert build_summary(spec_with(None), ctx, results=results, failed_tasks={}, champion_after="3")["approval"] is None
    a = build_summary(spec_with({"approval": "required"}), ctx, results=results, failed_tasks={}, champion_after="3")[
        "approval"
    ]
    assert a["outcome"] == "not_requested" and a["decided_by"] is None and "no challenger reached" in a["reason"]
