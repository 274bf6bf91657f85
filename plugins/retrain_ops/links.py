"""Operator extra links: from a task's page to what the task made.

Airflow 3 resolves a link once, in the worker, right after the task ends (success or
failure): ``get_link`` reads the task's own XCom and the URL is stored in XCom for the UI.
A link whose target was not made (no version registered, no report written, public URL not
configured) resolves to "" and the UI shows it disabled: never a link to nothing.

Browser addresses come from ``include.retrainer.public_urls`` (env
``RETRAIN_MLFLOW_PUBLIC_URL`` / ``RETRAIN_REPORTS_PUBLIC_URL``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperatorLink

log = logging.getLogger(__name__)

#: XCom key under which the summarize task stores the run story (links, report, summary).
STORY_KEY = "story"


def link_url(
    name: str, result: Mapping[str, Any] | None, story: Mapping[str, Any] | None, model: str | None, urls: Any
) -> str:
    """The URL of link ``name`` from a task's return value and/or the run story; "" if none."""
    result = result if isinstance(result, Mapping) else {}
    story = story if isinstance(story, Mapping) else {}
    from_story = (story.get("links") or {}).get(name)
    if from_story:
        return str(from_story)
    url = None
    if name == "MLflow run":
        url = urls.mlflow_run(result.get("run_id"))
    elif name == "Challenger version":
        url = urls.model_version(model, result.get("challenger_version"))
    elif name == "Champion version":
        # Only a promotion that happened: the return value says promoted and names the version.
        if result.get("promoted") is True:
            url = urls.model_version(model, result.get("champion_after"))
    elif name == "Validation report":
        url = urls.object(result.get("report_uri"))
    elif name == "Data Docs":
        url = urls.object(result.get("data_docs_uri"))
    return url or ""


class _RetrainLink(BaseOperatorLink):
    name = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        try:
            from airflow.sdk.execution_time.xcom import XCom

            from include.retrainer.public_urls import PublicUrls

            # Only the summarize task pushes a story; other tasks' links come from their return
            # value (asking for an absent XCom makes the SDK log an error line).
            if getattr(operator, "links_from_story", False):
                result, story = None, XCom.get_value(ti_key=ti_key, key=STORY_KEY)
            else:
                result, story = XCom.get_value(ti_key=ti_key, key="return_value"), None
            spec = getattr(operator, "spec", None)
            return link_url(self.name, result, story, getattr(spec, "name", None), PublicUrls.from_env())
        except Exception as exc:  # a link must never fail the task
            log.warning("extra link %r unavailable: %s", self.name, exc)
            return ""


class MlflowRunLink(_RetrainLink):
    name = "MLflow run"


class ChallengerVersionLink(_RetrainLink):
    name = "Challenger version"


class ChampionVersionLink(_RetrainLink):
    name = "Champion version"


class RunReportLink(_RetrainLink):
    name = "Run report"


class ValidationReportLink(_RetrainLink):
    name = "Validation report"


class DataDocsLink(_RetrainLink):
    name = "Data Docs"


ALL_LINKS = (
    MlflowRunLink,
    ChallengerVersionLink,
    ChampionVersionLink,
    RunReportLink,
    ValidationReportLink,
    DataDocsLink,
)
