"""The run's story, written once the summary exists: report.html, MLflow copies, links.

``write_run_story`` is the single call the summarize task makes. It renders the HTML
report (``report.render_report``) beside summary.json, logs it (and the run's Great
Expectations Data Docs, which the S3 endpoint does not serve to browsers) to an MLflow
run whose UI renders HTML, describes the registry versions the run decided about, and
returns the links a person follows. Every part is best effort: a failure is recorded in
``errors`` and logged, and never changes the run's decision (the summary is already
written when this runs).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from include.retrainer.approval import description_line
from include.retrainer.layout import REPORT_FILE
from include.retrainer.notify import get, outcome_label, week_label
from include.retrainer.public_urls import PublicUrls

log = logging.getLogger(__name__)

DATA_DOCS_DIR = "data_docs"
#: Rows per side read for the distribution plots (random sample, fixed seed).
SAMPLE_ROWS = 2000
#: Data Docs files copied to MLflow at most (a suite's docs are a few dozen files).
MAX_DATA_DOCS_FILES = 300


def report_uri_for(summary_uri: str) -> str:
    """The report sits next to the summary (RunLayout.report), whichever run wrote it."""
    return summary_uri.rsplit("/", 1)[0] + "/" + REPORT_FILE


def _read_json(store: Any, uri: str | None, errors: list[str], what: str) -> dict | None:
    if not uri:
        return None
    try:
        return store.get_json_or_none(uri)
    except Exception as exc:
        errors.append(f"reading {what} ({uri}): {type(exc).__name__}: {exc}")
        return None


def read_samples(
    store: Any,
    reference_uri: str | None,
    batch_uri: str | None,
    numeric: list[str],
    categorical: list[str],
    rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> dict[str, dict]:
    """Bounded random samples of each feature in the reference and the batch, for the plots."""
    if not reference_uri or not batch_uri:
        return {}
    cols = [*numeric, *categorical]

    def sample(uri: str) -> Any:
        frame = store.read_parquet(uri)  # whole file: Parquet column pruning needs a file-like reader
        frame = frame[[c for c in cols if c in frame.columns]]
        return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame

    ref, cur = sample(reference_uri), sample(batch_uri)
    out = {}
    for c in cols:
        if c in ref.columns and c in cur.columns:
            kind = "categorical" if c in categorical else "numeric"
            conv = (lambda s: s.astype(str).tolist()) if kind == "categorical" else (lambda s: s.astype(float).tolist())
            out[c] = {"kind": kind, "reference": conv(ref[c].dropna()), "current": conv(cur[c].dropna())}
    return out


def story_links(
    urls: PublicUrls,
    summary: Mapping[str, Any],
    *,
    model: str,
    report_uri: str | None,
    report_run: tuple[str, str] | None,
    training_experiment_id: str | None,
    data_docs_logged: bool,
) -> dict[str, str]:
    """Label -> browser URL, only for things this run actually made."""
    links: dict[str, str | None] = {}
    run_id, exp_id = report_run or (None, None)
    links["MLflow training run"] = urls.mlflow_run(summary.get("mlflow_run_id"), training_experiment_id)
    decision = summary.get("decision")
    if summary.get("challenger_version") is not None:
        links["Challenger version"] = urls.model_version(model, summary.get("challenger_version"))
    if decision == "promoted" and summary.get("champion_version_after") is not None:
        links["Champion version"] = urls.model_version(model, summary.get("champion_version_after"))
    val = summary.get("validation") or {}
    if data_docs_logged:
        links["Data Docs"] = urls.mlflow_artifact(run_id, exp_id, f"{DATA_DOCS_DIR}/index.html")
    elif val.get("data_docs_uri"):
        links["Data Docs"] = urls.object(val.get("data_docs_uri"))
    if val.get("report_uri"):
        links["Validation report"] = urls.object(val.get("report_uri"))
    return {k: v for k, v in links.items() if v}


def version_descriptions(summary: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, str]:
    """Registry version -> description saying when and why this run decided about it."""
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    who = f"run {summary.get('dag_run_id') or '?'} (week {week_label(summary)})"
    headline = str(summary.get("headline") or "; ".join(map(str, summary.get("reasons") or [])))
    out: dict[str, str] = {}
    decision = summary.get("decision")
    after, before = summary.get("champion_version_after"), summary.get("champion_version_before")
    approval = description_line(summary.get("approval"))  # who approved or rejected, when, their comment
    approval = f" {approval}" if approval else ""
    if summary.get("decision_code") == "reinstated" and after is not None:
        out[str(after)] = (
            f"CHAMPION again since {when}: reinstated by {who}"
            + (f", replacing v{before}" if before not in (None, after) else "")
            + f". {headline}"
        )
        if before is not None and str(before) != str(after):
            out[str(before)] = f"Former champion: replaced by the earlier champion v{after} on {when} by {who}."
        if summary.get("challenger_version") is not None:
            out[str(summary["challenger_version"])] = (
                f"REJECTED on {when} by {who}: the earlier champion v{after} serves this week better. {headline}"
            )
    elif decision == "promoted" and after is not None:
        out[str(after)] = (
            f"CHAMPION since {when}: promoted by {who}"
            + (f", replacing v{before}" if before not in (None, after) else "")
            + f".{approval} {headline}"
        )
        if before is not None and str(before) != str(after):
            out[str(before)] = f"Former champion: replaced by v{after} on {when} by {who}."
    elif decision == "rejected" and summary.get("challenger_version") is not None:
        out[str(summary["challenger_version"])] = (
            f"REJECTED on {when} by {who}.{approval} {headline}"
            if approval
            else f"REJECTED on {when} by {who}: {headline}"
        )
    return out


def _report_run(client: Any, spec: Any, summary: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(run id, experiment id, training experiment id) of the MLflow run that holds the report.

    The training run when the run trained one; otherwise one small run per Airflow run in
    the ``<experiment>_reports`` experiment (found again by tag on a retry).
    """
    from include.retrainer import registry
    from include.retrainer.steps import experiment_name

    training = summary.get("mlflow_run_id")
    if training:
        exp = client.get_run(training).info.experiment_id
        return training, exp, exp
    exp = registry.ensure_experiment(client, experiment_name(spec) + "_reports")
    dag_run_id = str(summary.get("dag_run_id") or "")
    found = client.search_runs(
        [exp], filter_string=f"tags.`{registry.TAG}dag_run_id` = '{dag_run_id.replace(chr(39), '')}'", max_results=1
    )
    if found:
        return found[0].info.run_id, exp, None
    run = client.create_run(
        exp,
        run_name=f"report_{week_label(summary)}",
        tags={
            registry.TAG + "dag_run_id": dag_run_id,
            registry.TAG + "model": str(summary.get("model") or ""),
            registry.TAG + "decision": str(summary.get("decision") or ""),
        },
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id, exp, None


def _log_data_docs(client: Any, store: Any, run_id: str, data_docs_uri: str) -> bool:
    from include.retrainer.storage import split_uri

    prefix = data_docs_uri.rsplit("/", 1)[0] if data_docs_uri.endswith(".html") else data_docs_uri
    bucket, key = split_uri(prefix)
    objects = list(store.iter_objects(bucket, key.rstrip("/") + "/"))[:MAX_DATA_DOCS_FILES]
    if not objects:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        for obj in objects:
            rel = obj.key[len(key.rstrip("/")) + 1 :]
            path = os.path.join(tmp, *rel.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(store.get_bytes(f"s3://{bucket}/{obj.key}"))
        client.log_artifacts(run_id, tmp, DATA_DOCS_DIR)
    return True


def _run_note(summary: Mapping[str, Any], links: Mapping[str, str]) -> str:
    """Markdown for the Airflow run note: the outcome, the headline, the links."""
    lines = [f"**{outcome_label(summary).upper()}**: {summary.get('headline') or 'no summary was written'}"]
    if links:
        lines.append(" | ".join(f"[{k}]({v})" for k, v in links.items()))
    return "\n\n".join(lines)[:1000]  # Airflow caps notes at 1000 characters


def compact_summary(summary: Mapping[str, Any]) -> dict:
    """The summary without the bulky per-feature table (kept for the drifted features only)."""
    out = dict(summary)
    drift = summary.get("drift")
    if isinstance(drift, Mapping):
        feats = drift.get("features") or {}
        out["drift"] = {
            **drift,
            "features": {c: f for c, f in feats.items() if isinstance(f, Mapping) and f.get("drifted")},
        }
    return out


def write_run_story(
    store: Any, tracking_uri: str | None, spec: Any, summary: Mapping[str, Any], urls: PublicUrls | None = None
) -> dict:
    """Render and store the run's HTML report, log it to MLflow, describe versions; return links.

    Returns ``{"report_uri", "report_run_id", "report_experiment_id", "links", "note",
    "errors", "summary"}``; never raises (each failure is one line in ``errors``).
    """
    from include.retrainer.report import render_report

    errors: list[str] = []
    try:
        urls = urls or PublicUrls.from_env()
    except ValueError as exc:
        errors.append(str(exc))
        urls = PublicUrls()
    summary = dict(summary or {})
    summary_uri = summary.get("summary_uri")
    report_uri = report_uri_for(summary_uri) if summary_uri else None
    drift_report = _read_json(store, get(summary, "drift", "report_uri"), errors, "drift.json")
    comparison = _read_json(store, get(summary, "artifacts", "comparison"), errors, "comparison.json")
    lineage = _read_json(store, get(summary, "artifacts", "lineage"), errors, "lineage.json")
    samples: dict = {}
    try:
        samples = read_samples(
            store,
            (drift_report or {}).get("reference_uri"),
            get(summary, "artifacts", "batch"),
            list(spec.features.numeric),
            list(spec.features.categorical),
        )
    except Exception as exc:
        errors.append(f"reading samples for the distribution plots: {type(exc).__name__}: {exc}")

    client = report_run = training_exp = None
    data_docs = False
    if tracking_uri:
        try:
            from include.retrainer import registry

            client = registry.client_for(tracking_uri)
            run_id, exp_id, training_exp = _report_run(client, spec, summary)
            report_run = (run_id, exp_id)
        except Exception as exc:
            errors.append(f"finding the MLflow run for the report: {type(exc).__name__}: {exc}")
        docs_uri = get(summary, "validation", "data_docs_uri")
        if report_run and docs_uri:
            try:
                data_docs = _log_data_docs(client, store, report_run[0], docs_uri)
            except Exception as exc:
                errors.append(f"logging the Data Docs to MLflow: {type(exc).__name__}: {exc}")

    links = story_links(
        urls,
        summary,
        model=spec.name,
        report_uri=report_uri,
        report_run=report_run,
        training_experiment_id=training_exp,
        data_docs_logged=data_docs,
    )
    links.pop("Run report", None)  # decided below, once the copies exist
    page = render_report(
        summary, drift_report=drift_report, comparison=comparison, lineage=lineage, samples=samples, links=links
    )
    s3_ok = mlflow_ok = False
    if report_uri:
        try:
            store.put_bytes(report_uri, page.encode("utf-8"), "text/html; charset=utf-8")
            s3_ok = True
        except Exception as exc:
            errors.append(f"writing {report_uri}: {type(exc).__name__}: {exc}")
    if client is not None and report_run:
        try:
            client.log_text(report_run[0], page, REPORT_FILE)
            mlflow_ok = True
        except Exception as exc:
            errors.append(f"logging {REPORT_FILE} to MLflow run {report_run[0]}: {type(exc).__name__}: {exc}")
        try:
            describe_decision(client, spec.name, summary)
        except Exception as exc:
            errors.append(f"describing the registry versions: {type(exc).__name__}: {exc}")
    # Never a link to a report that was not written.
    report_link = (
        urls.mlflow_artifact(report_run[0], report_run[1], REPORT_FILE) if mlflow_ok and report_run else None
    ) or (urls.object(report_uri) if s3_ok else None)
    links = {**({"Run report": report_link} if report_link else {}), **links}
    for line in errors:
        log.warning("run story: %s", line)
    if errors and summary_uri:
        try:
            append_to_summary(store, summary_uri, "story_errors", errors)
        except Exception as exc:
            log.warning("run story: could not record its errors in %s: %s", summary_uri, exc)
    return {
        "report_uri": report_uri,
        "report_run_id": report_run[0] if report_run else None,
        "report_experiment_id": report_run[1] if report_run else None,
        "links": links,
        "note": _run_note(summary, links),
        "errors": errors,
        "summary": compact_summary(summary),
    }


def describe_decision(client: Any, name: str, summary: Mapping[str, Any]) -> None:
    """Version descriptions; on promotion the model's description and tag name the champion,
    and the ``challenger`` alias leaves the new champion (so the list shows ``@champion``)."""
    from include.retrainer import registry

    for version, text in version_descriptions(summary).items():
        registry.describe_version(client, name, version, text)
    after = summary.get("champion_version_after")
    if summary.get("decision") == "promoted" and after is not None:
        registry.drop_alias_if_on(client, name, registry.CHALLENGER, str(after))
        registry.describe_model(
            client,
            name,
            f"Champion: v{after} (alias @champion), "
            f"{'reinstated' if summary.get('decision_code') == 'reinstated' else 'promoted'} "
            f"by run {summary.get('dag_run_id')} for week "
            f"{week_label(summary)}. {summary.get('headline') or ''}",
            tags={"champion": f"v{after}"},
        )


def append_to_summary(store: Any, summary_uri: str, key: str, entries: list) -> None:
    """Append ``entries`` to the list ``key`` of summary.json (delivery records, report errors).

    Read-modify-write: only the run's own summarize task and its callbacks write this file.
    """
    summary = store.get_json_or_none(summary_uri)
    if summary is None:
        raise FileNotFoundError(f"{summary_uri} does not exist")
    summary[key] = list(summary.get(key) or []) + list(entries)
    store.put_json(summary_uri, summary)
