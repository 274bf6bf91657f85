"""Airflow side of the run story: the summarize task's report, XCom and DAG run note.

The task SDK has no ORM access and the execution API offers no route to change the note
of a running DAG run, so the note is set through the public REST API
(``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}?update_mask=note``) with the credentials
of the Airflow connection ``airflow_api`` (type http: host/port/schema of the API server,
login/password of a user allowed to edit DAG runs). Without that connection the note is
skipped (logged); nothing else depends on it.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

NOTE_CONN_ID = "airflow_api"
STORY_KEY = "story"


def api_base_url(conn: Any) -> str:
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ValueError(f"connection '{conn.conn_id}' has no host: set it to the Airflow API server address")
    if "://" in host:
        return host
    return f"{conn.schema or 'http'}://{host}" + (f":{conn.port}" if conn.port else "")


def set_run_note(dag_id: str, run_id: str, note: str, conn_id: str = NOTE_CONN_ID, timeout: float = 10.0) -> str | None:
    """Set the DAG run's note; returns None on success, else a one-line reason (never raises)."""
    try:
        from airflow.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception:
            return f"no '{conn_id}' connection: the run note is not set"
        import httpx

        base = api_base_url(conn)
        with httpx.Client(timeout=timeout) as http:
            token = http.post(f"{base}/auth/token", json={"username": conn.login, "password": conn.password or ""})
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            url = (
                f"{base}/api/v2/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns/"
                f"{urllib.parse.quote(run_id, safe='')}"
            )
            resp = http.patch(url, params={"update_mask": "note"}, json={"note": note[:1000]}, headers=headers)
            resp.raise_for_status()
        return None
    except Exception as exc:
        return f"setting the run note failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"


def tell_run_story(
    operator: Any, context: Mapping[str, Any], store: Any, tracking_uri: str | None, summary: Mapping[str, Any]
) -> dict:
    """Report, MLflow copies and links (``write_run_story``), XCom ``story``, run note.

    Called by the summarize task after summary.json is written; never raises, so the
    decision and the task's state are what the summary says whatever happens here.
    """
    story: dict = {"links": {}, "errors": []}
    try:
        from include.retrainer.run_story import write_run_story

        story = write_run_story(store, tracking_uri, operator.spec, summary)
    except Exception as exc:
        story["errors"].append(f"run story failed: {type(exc).__name__}: {exc}")
        log.exception("the run story could not be written")
    try:
        context["ti"].xcom_push(key=STORY_KEY, value=story)
    except Exception as exc:
        log.warning("could not push the run story to XCom: %s", exc)
    if summary.get("dag_id") and summary.get("dag_run_id") and story.get("note"):
        problem = set_run_note(str(summary["dag_id"]), str(summary["dag_run_id"]), story["note"])
        if problem:
            log.warning("%s", problem)
        else:
            log.info("run note set: %s", story["note"].splitlines()[0])
    return {"report_uri": story.get("report_uri"), "links": story.get("links") or {}}
