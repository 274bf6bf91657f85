"""notify.py: config validation, the notify decision, and messages from full and partial summaries."""

from __future__ import annotations

import json

import pytest

from include.retrainer.notify import Message, build_message, fmt_num, key_numbers, notify_config, should_notify

FULL = {
    "model": "churn",
    "decision": "rejected",
    "decision_code": "rejected",
    "trigger": "forced",
    "headline": "Rejected (forced): challenger is worse on roc_auc.",
    "reasons": ["retrained: forced", "roc_auc 0.81 < champion 0.84 - margin 0.01"],
    "data_interval_start": "2026-11-15T00:00:00+00:00",
    "data_interval_end": "2026-11-22T00:00:00+00:00",
    "dag_id": "retrain_churn",
    "dag_run_id": "manual__1",
    "rows": 14000,
    "champion_version_before": "3",
    "champion_version_after": "3",
    "challenger_version": "5",
    "comparison": {
        "paired_test": {
            "metric": "roc_auc",
            "method": "delong",
            "champion": 0.84,
            "challenger": 0.81,
            "effect": -0.03,
            "ci_low": -0.05,
            "ci_high": -0.01,
            "confidence": 0.95,
            "p_value": 0.00012,
        }
    },
    "mcnemar": {"b": 40, "c": 22, "p_value": 0.03, "method": "midp"},
    "drift": {
        "signals": [{"name": "data_drift", "status": "fired"}, {"name": "performance_decay", "status": "quiet"}],
        "features": {"a": {"drifted": True}, "b": {"drifted": False}},
    },
}


def test_config_defaults_and_validation():
    assert notify_config(None).channels == ()
    cfg = notify_config({"email": "a@example.com", "webhook": {"conn_id": "hook", "endpoint": "/x"}, "on": "failed"})
    assert cfg.email == ("a@example.com",) and cfg.webhook_conn_id == "hook" and cfg.webhook_endpoint == "/x"
    assert cfg.on == ("failed",) and cfg.channels == ("email", "webhook")
    with pytest.raises(ValueError, match="unknown outcome"):
        notify_config({"on": ["promotd"]})
    with pytest.raises(ValueError, match="unknown key"):
        notify_config({"emails": ["a@b.c"]})
    with pytest.raises(ValueError, match="not an e-mail"):
        notify_config({"email": ["nobody"]})
    with pytest.raises(ValueError, match="conn_id"):
        notify_config({"webhook": {"endpoint": "/x"}})


def test_should_notify_by_decision_or_code():
    cfg = notify_config({"email": ["a@example.com"], "on": ["promoted", "insufficient_data"]})
    assert should_notify(cfg, {"decision": "promoted"})
    assert not should_notify(cfg, {"decision": "rejected"})
    assert should_notify(cfg, {"decision": "skipped", "decision_code": "insufficient_data"})
    assert not should_notify(cfg, {"decision": "skipped", "decision_code": "no_retrain_needed"})
    # No summary at all means the run failed before writing one.
    assert should_notify(notify_config({"email": ["a@example.com"], "on": ["failed"]}), None)
    # No channel: never.
    assert not should_notify(notify_config({"on": ["promoted"]}), {"decision": "promoted"})


def test_message_carries_decision_reason_numbers_and_links():
    msg = build_message(FULL, {"Run report": "http://mlflow/#/x", "Champion version": None})
    assert msg.subject == "[retrain churn] rejected (forced run) v5, week 2026-11-15..2026-11-22"
    assert msg.text.startswith(FULL["headline"])
    for needle in (
        "roc_auc 0.81 < champion",
        "0.84 -> 0.81",
        "-0.05 .. -0.01",
        "1.20e-04",
        "40/22, p=0.03",
        "data_drift",
        "1/2 (a)",
        "http://mlflow/#/x",
        "manual__1",
    ):
        assert needle in msg.text, needle
    assert "Champion version" not in msg.text  # a missing link is left out, not rendered empty
    assert "<a href='http://mlflow/#/x'>Run report</a>" in msg.html
    payload = msg.webhook_payload()
    json.dumps(payload)
    assert payload["text"] == msg.text and payload["decision"] == "rejected"
    assert "<http://mlflow/#/x|Run report>" in json.dumps(payload)


@pytest.mark.parametrize(
    "summary",
    [
        None,
        {},
        {"decision": None},
        {
            "decision": "failed",
            "reasons": None,
            "drift": None,
            "comparison": {"paired_test": None},
            "mcnemar": None,
            "metrics": None,
        },
    ],
)
def test_partial_summaries_never_crash(summary):
    msg = build_message(summary)
    assert isinstance(msg, Message) and msg.decision == "failed" and "failed" in msg.subject
    assert msg.text.strip()


def test_html_is_escaped():
    msg = build_message({"decision": "failed", "reasons": ["<script>alert(1)</script>"], "model": "m<b>"})
    assert "<script>" not in msg.html and "&lt;script&gt;" in msg.html


def test_fmt_num():
    assert fmt_num(None) == "n/a" and fmt_num(float("nan")) == "n/a"
    assert fmt_num(3) == "3" and fmt_num(0.8) == "0.8" and fmt_num(0.84321) == "0.8432"
    assert fmt_num(0.00012) == "1.20e-04" and fmt_num("x") == "x"
    assert key_numbers({}) == {}


def test_unquoted_yaml_on_key_is_read():
    import yaml

    raw = yaml.safe_load("notify: {on: [failed], email: [a@example.com]}")["notify"]
    assert True in raw  # what PyYAML does with `on:`
    assert notify_config(raw).on == ("failed",)


def test_a_reinstatement_is_named_in_the_message_the_descriptions_and_the_outcome_row():
    from retrain_ops.outcome import outcome_tasks

    from include.retrainer.run_story import version_descriptions

    summary = {
        **FULL,
        "decision": "promoted",
        "decision_code": "reinstated",
        "trigger": "signals",
        "headline": "Reinstated an earlier champion (signals): earlier champion 2 serves these rows better: roc_auc +0.0561.",
        "champion_version_before": "4",
        "champion_version_after": "2",
        "challenger_version": "5",
        "reinstated_version": "2",
        "reinstatement": {
            "reinstated": "2",
            "reason": "earlier champion 2 serves these rows better than the challenger: roc_auc +0.0561",
            "alpha": 0.05 / 3,
            "winner": "challenger",
            "candidates": [
                {
                    "key": "2",
                    "trained_through": "2026-08-02T00:00:00+00:00",
                    "passed": True,
                    "effect": 0.0561,
                    "ci_low": 0.0302,
                    "p_value": 0.0001,
                    "reasons": ["improvement: ok"],
                },
                {
                    "key": "1",
                    "trained_through": "2026-07-05T00:00:00+00:00",
                    "passed": False,
                    "error": "KeyError: 'old_feature'",
                },
            ],
            "comparison": {
                "paired_test": {
                    "metric": "roc_auc",
                    "champion": 0.75,
                    "challenger": 0.8061,
                    "effect": 0.0561,
                    "ci_low": 0.0302,
                }
            },
        },
    }
    # Notified as a promotion (the champion moved) or by its own code.
    assert should_notify(notify_config({"email": ["a@example.com"], "on": ["promoted"]}), summary)
    assert should_notify(notify_config({"email": ["a@example.com"], "on": ["reinstated"]}), summary)
    assert not should_notify(notify_config({"email": ["a@example.com"], "on": ["rejected"]}), summary)
    msg = build_message(summary)
    assert msg.subject.startswith("[retrain churn] earlier champion reinstated v2, week 2026-11-15")
    texts = version_descriptions(summary)
    assert texts["2"].startswith("CHAMPION again since ") and "reinstated by run manual__1" in texts["2"]
    assert texts["2"].endswith(", replacing v4. " + summary["headline"])
    assert texts["4"].startswith("Former champion: replaced by the earlier champion v2")
    assert texts["5"].startswith("REJECTED on ") and "the earlier champion v2 serves this week better" in texts["5"]
    assert outcome_tasks("promoted", "reinstated", "signals") == ["mark_promoted"]
    # The numbers that made the move, in the message and in the report.
    numbers = key_numbers(summary)
    assert numbers["reinstated v2 vs the challenger"].startswith("roc_auc 0.75 -> 0.8061, difference 0.0561")
    from include.retrainer.report import render_report

    page = render_report(summary)
    assert "<h2>Earlier champions</h2>" in page and "KeyError: &#x27;old_feature&#x27;" in page


@pytest.mark.parametrize(
    ("verdict", "note"),
    [
        ("outvoted", "40/22, p=0.03 (challenger more often wrong; outvoted by a significant gain on roc_auc)"),
        ("worse", "40/22, p=0.03 (challenger significantly more often wrong: vetoed)"),
        ("not_worse", "40/22, p=0.03"),
        (None, "40/22, p=0.03"),
    ],
)
def test_the_mcnemar_line_says_whether_the_guard_vetoed_or_was_outvoted(verdict, note):
    # b > c with p < alpha beside "promoted" would read as a contradiction without the verdict.
    summary = {
        **FULL,
        "decision": "promoted",
        "comparison": {**FULL["comparison"], "mcnemar_verdict": verdict},
    }
    assert key_numbers(summary)["McNemar b/c, p"] == note
    assert note in build_message(summary).text
