"""Notifications that say why: e-mail (SMTP provider) and a Slack-compatible webhook (HTTP provider).

``RunStoryNotifier`` is attached to the summarize task as ``on_success_callback`` and
``on_failure_callback``: it reads the run story that task pushed to XCom (summary, links),
decides per the model's ``notify:`` block whether this outcome is announced, and delivers
through Airflow's own notifiers, ``SmtpNotifier`` and ``HttpNotifier``. Secrets stay in
Connections: the SMTP connection (``smtp_conn_id``) holds server and credentials; the
webhook's HTTP connection holds its URL (host, e.g. ``https://hooks.slack.com/services/T/B/X``)
and any auth.

Airflow does not retry a failing notifier; each channel is retried here (``retries``
extra attempts, exponential backoff). A delivery that still fails is logged and recorded
in summary.json under ``notifications``; it never raises, so the task's state and the
run's decision stay what the summary says.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

from include.retrainer.tasks import TaskId
from retrain_ops.story import STORY_KEY

log = logging.getLogger(__name__)


class RunStoryNotifier(BaseNotifier):
    template_fields = ()  # messages are built from the summary, never Jinja-rendered

    def __init__(
        self,
        *,
        notify: Mapping[str, Any] | None,
        model: str,
        artifacts_conn_id: str | None = None,
        summarize_task_id: str = TaskId.SUMMARIZE_RUN,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from include.retrainer.notify import notify_config

        super().__init__()
        self.config = notify_config(notify)  # validated when the DAG is parsed
        self.model = model
        self.artifacts_conn_id = artifacts_conn_id
        self.summarize_task_id = summarize_task_id
        self._sleep = sleep

    # -- context ----------------------------------------------------------------------------
    def story(self, context: Mapping[str, Any]) -> dict:
        story = None
        ti = context.get("ti")
        if ti is not None:
            try:
                story = ti.xcom_pull(task_ids=self.summarize_task_id, key=STORY_KEY)
            except Exception as exc:
                log.warning("cannot read the run story from XCom: %s", exc)
        if isinstance(story, Mapping) and isinstance(story.get("summary"), Mapping):
            return dict(story)
        # The summary was never written (e.g. the object store is down): say what is known.
        dag_run = context.get("dag_run")
        error = context.get("exception")
        return {
            "links": {},
            "summary": {
                "model": self.model,
                "decision": "failed",
                "decision_code": "failed",
                "dag_id": getattr(dag_run, "dag_id", None),
                "dag_run_id": getattr(dag_run, "run_id", None),
                "data_interval_start": context.get("data_interval_start"),
                "data_interval_end": context.get("data_interval_end"),
                "reasons": [
                    f"the run summary could not be written: {error}" if error else "the run summary is missing"
                ],
            },
        }

    # -- delivery ---------------------------------------------------------------------------
    def channel_notifier(self, channel: str, message: Any) -> BaseNotifier:
        if channel == "email":
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            return SmtpNotifier(
                to=list(self.config.email),
                from_email=self.config.email_from,
                subject=message.subject,
                html_content=message.html,
                smtp_conn_id=self.config.smtp_conn_id,
            )
        from airflow.providers.http.notifications.http import HttpNotifier

        return HttpNotifier(
            http_conn_id=self.config.webhook_conn_id or "",
            endpoint=self.config.webhook_endpoint or None,
            json=message.webhook_payload(),
            headers={"Content-Type": "application/json"},
        )

    def deliver(self, channel: str, message: Any, context: Mapping[str, Any]) -> dict:
        attempts, error = 0, None
        for attempt in range(self.config.retries + 1):
            attempts = attempt + 1
            try:
                self.channel_notifier(channel, message).notify(context)  # type: ignore[arg-type]  # the task context as given
                error = None
                break
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                log.warning(
                    "notification via %s failed (attempt %d of %d): %s",
                    channel,
                    attempts,
                    self.config.retries + 1,
                    error,
                )
                if attempt < self.config.retries:
                    self._sleep(self.config.retry_delay_seconds * (2**attempt))
        return {
            "channel": channel,
            "ok": error is None,
            "attempts": attempts,
            "error": error,
            "at": dt.datetime.now(dt.UTC).isoformat(),
        }

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            self._notify(context)
        except Exception:  # never let a notification change the task or the run
            log.exception("notification failed unexpectedly")

    def _notify(self, context: Mapping[str, Any]) -> list[dict]:
        from include.retrainer.notify import build_message, should_notify

        story = self.story(context)
        summary = story["summary"]
        if not should_notify(self.config, summary):
            log.info(
                "no notification for decision %s (notify.on: %s; channels: %s)",
                summary.get("decision"),
                ", ".join(self.config.on),
                ", ".join(self.config.channels) or "none",
            )
            return []
        message = build_message(summary, story.get("links"))
        results = [self.deliver(channel, message, context) for channel in self.config.channels]
        for r in results:
            if r["ok"]:
                log.info("notification sent via %s: %s", r["channel"], message.subject)
            else:
                log.error(
                    "notification via %s NOT delivered after %d attempt(s): %s", r["channel"], r["attempts"], r["error"]
                )
        self.record(summary.get("summary_uri"), results)
        return results

    def record(self, summary_uri: str | None, results: list[dict]) -> None:
        """Delivery records into summary.json (``notifications``); best effort."""
        if not summary_uri or not results:
            return
        try:
            from include.retrainer.run_story import append_to_summary
            from retrain_ops.hooks import ObjectStoreHook

            store = (
                ObjectStoreHook(aws_conn_id=self.artifacts_conn_id).store
                if self.artifacts_conn_id
                else ObjectStoreHook().store
            )
            append_to_summary(store, summary_uri, "notifications", results)
        except Exception as exc:
            log.warning("could not record the notification outcome in %s: %s", summary_uri, exc)


def run_story_callbacks(spec: Any, notify: Mapping[str, Any] | None) -> dict[str, list]:
    """``on_success_callback``/``on_failure_callback`` for the summarize task ({} when nothing is configured)."""
    if notify is None or _no_channel(notify):
        # Most models: nothing to send, decided without importing include.retrainer.notify (a
        # few ms of every parse of the DAG file).
        return {}
    from include.retrainer.notify import notify_config

    if not notify_config(notify).channels:
        return {}
    notifier = RunStoryNotifier(notify=notify, model=spec.name, artifacts_conn_id=spec.artifacts_conn_id)
    return {"on_success_callback": [notifier], "on_failure_callback": [notifier]}


def _no_channel(notify: Any) -> bool:
    """A parsed ``notify:`` block (``config.NotifySpec``) with neither e-mail nor webhook.

    Exactly when ``notify_config`` would return no channel: the schema already validated every
    other key. Plain mappings (tests, older callers) go through ``notify_config``."""
    from include.retrainer.config import NotifySpec

    return isinstance(notify, NotifySpec) and not notify.email and notify.webhook is None
