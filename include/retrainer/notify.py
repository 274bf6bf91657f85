"""What a run says to people: the notification message and whether to send it.

Pure: a run summary (``docs/run-summary.md``, schema 2) in, a ``Message`` out. Any field
of the summary may be missing or null (a run that failed early has almost nothing), so
every read here tolerates absence; a message is always produced.

The per-model configuration is the ``notify:`` block of the model YAML, read here from a
plain dict (until the schema has its own class)::

    notify:
      on: [promoted, rejected, failed]   # decisions, or decision codes (no_retrain_needed, ...)
      email: [ml-team@example.com]       # sent through the SMTP connection below
      email_from: retrain@example.com    # optional; else the SMTP connection's from_email
      smtp_conn_id: smtp_default
      webhook: {conn_id: retrain_webhook, endpoint: ""}   # Slack-compatible JSON POST
      retries: 2                         # extra delivery attempts per channel
      retry_delay_seconds: 10
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DECISIONS = ("promoted", "rejected", "skipped", "failed")
DECISION_CODES = (
    "promoted",
    "reinstated",
    "rejected",
    "reinstatement_refused",
    "no_retrain_needed",
    "insufficient_data",
    "failed",
)
DEFAULT_ON = ("promoted", "rejected", "failed")

_CONFIG_KEYS = {"on", "email", "email_from", "smtp_conn_id", "webhook", "retries", "retry_delay_seconds"}


@dataclass(frozen=True)
class NotifyConfig:
    on: tuple[str, ...] = DEFAULT_ON
    email: tuple[str, ...] = ()
    email_from: str | None = None
    smtp_conn_id: str = "smtp_default"
    webhook_conn_id: str | None = None
    webhook_endpoint: str = ""
    retries: int = 2
    retry_delay_seconds: float = 10.0

    @property
    def channels(self) -> tuple[str, ...]:
        return (("email",) if self.email else ()) + (("webhook",) if self.webhook_conn_id else ())


def notify_config(raw: Mapping[str, Any] | None) -> NotifyConfig:
    """Validate a ``notify:`` block (None or {} = no channel, nothing is sent)."""
    if raw is None:
        return NotifyConfig()
    if hasattr(raw, "model_dump"):  # the schema's pydantic block, once it exists
        raw = raw.model_dump(mode="json")
    if not isinstance(raw, Mapping):
        raise ValueError(f"notify: expected a mapping, got {type(raw).__name__}")
    keys: list[Any] = list(raw)
    if True in keys:  # YAML 1.1 (PyYAML) reads an unquoted `on:` key as the boolean true
        raw = {("on" if k is True else k): v for k, v in dict[Any, Any](raw).items()}
    unknown = set(raw) - _CONFIG_KEYS
    if unknown:
        raise ValueError(
            f"notify: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_CONFIG_KEYS))}"
        )
    on = raw.get("on", DEFAULT_ON)
    on = (on,) if isinstance(on, str) else tuple(on or ())
    bad = [x for x in on if x not in DECISIONS + DECISION_CODES]
    if bad:
        raise ValueError(
            f"notify.on: unknown outcome(s) {bad}; expected decisions {list(DECISIONS)} "
            f"or decision codes {list(DECISION_CODES)}"
        )
    email = raw.get("email") or ()
    email = (email,) if isinstance(email, str) else tuple(email)
    for addr in email:
        if not isinstance(addr, str) or "@" not in addr:
            raise ValueError(f"notify.email: {addr!r} is not an e-mail address")
    webhook = raw.get("webhook")
    conn_id, endpoint = None, ""
    if isinstance(webhook, str):
        conn_id = webhook
    elif isinstance(webhook, Mapping):
        conn_id, endpoint = webhook.get("conn_id"), str(webhook.get("endpoint") or "")
        if not conn_id:
            raise ValueError("notify.webhook: needs conn_id (an HTTP connection holding the webhook URL and secret)")
    elif webhook is not None:
        raise ValueError("notify.webhook: expected a connection id or {conn_id, endpoint}")
    retries = int(raw.get("retries", 2))
    delay = float(raw.get("retry_delay_seconds", 10.0))
    if retries < 0 or delay < 0:
        raise ValueError("notify.retries and notify.retry_delay_seconds must be >= 0")
    return NotifyConfig(
        on=on,
        email=email,
        email_from=raw.get("email_from"),
        smtp_conn_id=str(raw.get("smtp_conn_id") or "smtp_default"),
        webhook_conn_id=conn_id,
        webhook_endpoint=endpoint,
        retries=retries,
        retry_delay_seconds=delay,
    )


def should_notify(config: NotifyConfig, summary: Mapping[str, Any] | None) -> bool:
    """True when the run's decision (or its finer decision code) is one the model notifies on."""
    if not config.channels:
        return False
    summary = summary or {}
    decision = summary.get("decision") or "failed"  # no summary at all: the run failed
    code = summary.get("decision_code") or decision
    return decision in config.on or code in config.on


@dataclass(frozen=True)
class Message:
    decision: str
    subject: str
    text: str
    html: str
    key_numbers: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def webhook_payload(self) -> dict:
        """Slack incoming-webhook format (``text`` with mrkdwn); other receivers read ``text``."""
        return {
            "text": self.text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_md(self.subject)}*"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": _md(self.text.split(chr(10) + chr(10))[0])}},
                *(
                    [
                        {
                            "type": "section",
                            "fields": [
                                {"type": "mrkdwn", "text": f"*{_md(k)}*\n{_md(v)}"}
                                for k, v in list(self.key_numbers.items())[:10]
                            ],
                        }
                    ]
                    if self.key_numbers
                    else []
                ),
                *(
                    [
                        {
                            "type": "section",
                            "text": {
                                "type": "mrkdwn",
                                "text": " | ".join(f"<{u}|{_md(k)}>" for k, u in self.links.items()),
                            },
                        }
                    ]
                    if self.links
                    else []
                ),
            ],
            "decision": self.decision,
        }


def _md(text: str) -> str:
    # Slack mrkdwn needs only these three escaped.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def get(obj: Any, *path: str | int) -> Any:
    """``obj[p0][p1]...`` or None when any step is missing or of the wrong type."""
    for p in path:
        if isinstance(obj, Mapping):
            obj = obj.get(p)
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return None
    return obj


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number for people: None/NaN -> 'n/a', small p-values in scientific notation."""
    if value is None or isinstance(value, bool):
        return "n/a" if value is None else str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(value, int):
        return str(value)
    if x != 0 and abs(x) < 10 ** -(digits - 1):
        return f"{x:.2e}"
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") or "0"


def week_label(summary: Mapping[str, Any]) -> str:
    start, end = str(summary.get("data_interval_start") or "")[:10], str(summary.get("data_interval_end") or "")[:10]
    return f"{start}..{end}" if start or end else "unknown interval"


def outcome_label(summary: Mapping[str, Any]) -> str:
    """Short label of the outcome: 'promoted', 'skipped: no drift', 'rejected (forced)' ..."""
    decision = summary.get("decision") or "failed"
    code = summary.get("decision_code")
    trigger = summary.get("trigger")
    if decision == "skipped":
        return "skipped: insufficient data" if code == "insufficient_data" else "skipped: no retraining needed"
    if code == "reinstated":
        return "earlier champion reinstated" + (" (forced run)" if trigger == "forced" else "")
    if decision in ("promoted", "rejected") and trigger == "forced":
        return f"{decision} (forced run)"
    return str(decision)


def mcnemar_verdict_note(verdict: Any, metric: Any) -> str:
    """A short note on the McNemar guard's verdict, so "b > c, p < alpha" beside "promoted" reads right."""
    if verdict == "outvoted":
        return f" (challenger more often wrong; outvoted by a significant gain on {metric or 'the primary metric'})"
    if verdict == "worse":
        return " (challenger significantly more often wrong: vetoed)"
    return ""


def key_numbers(summary: Mapping[str, Any]) -> dict[str, str]:
    """The handful of numbers that justify the decision, as display strings."""
    out: dict[str, str] = {}
    back = summary.get("reinstatement")
    back = back if isinstance(back, Mapping) else {}
    chosen = back.get("comparison") if back.get("reinstated") is not None else None
    if isinstance(chosen, Mapping):
        rt = chosen.get("paired_test") or {}
        moved = summary.get("decision_code") == "reinstated"
        label = "reinstated" if moved else "earlier champion (not moved)"
        out[f"{label} v{back.get('reinstated')} vs the {back.get('winner') or 'winner'}"] = (
            f"{rt.get('metric') or 'metric'} {fmt_num(rt.get('champion'))} -> {fmt_num(rt.get('challenger'))}, "
            f"difference {fmt_num(rt.get('effect'))} (lower bound {fmt_num(rt.get('ci_low'))} "
            f"at alpha {fmt_num(back.get('alpha'))})"
        )
    pt = get(summary, "comparison", "paired_test")
    pt = pt if isinstance(pt, Mapping) else {}
    metric = pt.get("metric") or next(iter(get(summary, "metrics", "challenger") or {}), None)
    if metric:
        champ = pt.get("champion", get(summary, "metrics", "champion", metric))
        chall = pt.get("challenger", get(summary, "metrics", "challenger", metric))
        out[f"{metric} champion -> challenger"] = f"{fmt_num(champ)} -> {fmt_num(chall)}"
    if pt.get("effect") is not None:
        ci = ""
        if pt.get("ci_low") is not None or pt.get("ci_high") is not None:
            conf = pt.get("confidence")
            ci = (
                f" ({fmt_num(conf * 100 if isinstance(conf, (int, float)) else None, 3)}% CI "
                f"{fmt_num(pt.get('ci_low'))} .. {fmt_num(pt.get('ci_high'))})"
            )
        out["difference"] = f"{fmt_num(pt.get('effect'))}{ci}"
    if pt.get("p_value") is not None:
        out[f"paired test p ({pt.get('method') or 'test'})"] = fmt_num(pt.get("p_value"))
    mc = summary.get("mcnemar") or {}
    if isinstance(mc, Mapping) and (mc.get("b") is not None or mc.get("p_value") is not None):
        out["McNemar b/c, p"] = (
            f"{fmt_num(mc.get('b'))}/{fmt_num(mc.get('c'))}, p={fmt_num(mc.get('p_value'))}"
            + mcnemar_verdict_note(get(summary, "comparison", "mcnemar_verdict"), metric)
        )
    signals = get(summary, "drift", "signals")
    signals = signals if isinstance(signals, list) else []
    fired = [s.get("name") for s in signals if isinstance(s, Mapping) and s.get("status") == "fired"]
    if signals:
        out["drift signals fired"] = ", ".join(str(f) for f in fired) or "none"
    features = get(summary, "drift", "features") or {}
    if isinstance(features, Mapping) and features:
        drifted = [c for c, f in features.items() if isinstance(f, Mapping) and f.get("drifted")]
        out["features drifted"] = f"{len(drifted)}/{len(features)}" + (
            f" ({', '.join(drifted[:5])})" if drifted else ""
        )
    sl = summary.get("slices")
    if isinstance(sl, Mapping) and "judged" in sl:
        worse = sl.get("worse") or []
        out["slices"] = f"{fmt_num(sl.get('judged'))} judged, {fmt_num(sl.get('too_small'))} too small; " + (
            f"worse: {', '.join(map(str, worse))}"
            if worse
            else "none significantly worse"
            if sl.get("passed")
            else "gate could not run"
        )
    fair = summary.get("fairness")
    if isinstance(fair, Mapping) and "attributes" in fair:
        blocked = fair.get("blocked_by") or []
        out["fairness"] = (
            f"over the limit: {', '.join(map(str, blocked))}"
            if blocked
            else "within the limits"
            if fair.get("passed")
            else "gate could not run"
        )
    if summary.get("rows") is not None:
        out["batch rows"] = fmt_num(summary.get("rows"))
    before, after = summary.get("champion_version_before"), summary.get("champion_version_after")
    if before is not None or after is not None:
        out["champion"] = f"v{before}" if before == after else f"v{before or '-'} -> v{after or '-'}"
    if summary.get("challenger_version") is not None:
        out["challenger"] = f"v{summary['challenger_version']}"
    return out


def build_message(
    summary: Mapping[str, Any] | None, links: Mapping[str, str | None] | None = None, delivery_note: str | None = None
) -> Message:
    """Subject, plain text and HTML of a run's notification; never raises on a partial summary."""
    summary = summary if isinstance(summary, Mapping) else {}
    decision = str(summary.get("decision") or "failed")
    model = summary.get("model") or "?"
    label = outcome_label(summary)
    version = ""
    if decision == "promoted" and summary.get("champion_version_after") is not None:
        version = f" v{summary['champion_version_after']}"
    elif decision == "rejected" and summary.get("challenger_version") is not None:
        version = f" v{summary['challenger_version']}"
    subject = f"[retrain {model}] {label}{version}, week {week_label(summary)}"
    reasons = [str(r) for r in (summary.get("reasons") or []) if r]
    headline = summary.get("headline") or (
        reasons[0] if reasons else "The run ended without a summary; see the task logs."
    )
    numbers = key_numbers(summary)
    clean_links = {k: v for k, v in (links or {}).items() if v}
    lines = [str(headline), ""]
    if reasons:
        lines += ["Reasons:"] + [f"- {r}" for r in reasons] + [""]
    if numbers:
        lines += ["Key numbers:"] + [f"- {k}: {v}" for k, v in numbers.items()] + [""]
    if clean_links:
        lines += ["Links:"] + [f"- {k}: {v}" for k, v in clean_links.items()] + [""]
    run = " ".join(str(x) for x in (summary.get("dag_id"), summary.get("dag_run_id")) if x)
    if run:
        lines.append(f"Airflow run: {run}")
    if delivery_note:
        lines.append(delivery_note)
    text = "\n".join(lines).rstrip() + "\n"
    e = html.escape
    colour = {"promoted": "#1e7e34", "rejected": "#a71d2a", "skipped": "#6c757d"}.get(decision, "#a71d2a")
    body = [
        f"<h2 style='color:{colour}'>{e(label)}{e(version)}: {e(str(model))}, week {e(week_label(summary))}</h2>",
        f"<p>{e(str(headline))}</p>",
    ]
    if reasons:
        body.append("<h3>Reasons</h3><ul>" + "".join(f"<li>{e(r)}</li>" for r in reasons) + "</ul>")
    if numbers:
        body.append(
            "<h3>Key numbers</h3><table>"
            + "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in numbers.items())
            + "</table>"
        )
    if clean_links:
        body.append(
            "<h3>Links</h3><ul>"
            + "".join(f"<li><a href='{e(u, quote=True)}'>{e(k)}</a></li>" for k, u in clean_links.items())
            + "</ul>"
        )
    if run:
        body.append(f"<p style='color:#666'>Airflow run: {e(run)}</p>")
    return Message(
        decision=decision, subject=subject, text=text, html="\n".join(body), key_numbers=numbers, links=clean_links
    )
