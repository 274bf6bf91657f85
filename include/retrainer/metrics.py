"""The run's key figures as monitoring metrics: a pure mapping from a run summary.

``run_metrics(summary)`` turns one ``summary.json`` (docs/run-summary.md) into a list of
:class:`MetricPoint` (name, value, type, tags). The plugin layer
(``retrain_ops.metrics.emit_run_metrics``) sends them through Airflow's metrics system
(StatsD, DogStatsD or OpenTelemetry, per the ``[metrics]`` config); nothing here does I/O.

Naming scheme. Plain StatsD carries no tags, so the model and the other dimensions are part
of the name, as Airflow's own legacy metric names do (``ti.finish.<dag_id>.<task_id>.<state>``):

    retrain.<model>.<group>[.<dimension>].<measure>

Every point also carries the same dimensions as tags (``model``, plus ``signal``, ``role``,
``metric``, ``step`` or ``decision``), which DogStatsD, InfluxDB-style StatsD and
OpenTelemetry pass on as labels/attributes. Airflow prepends ``[metrics] statsd_prefix``
(``airflow`` by default). ``docker/monitoring/statsd-mapping.yml`` turns the names back into
Prometheus metrics with labels. Model names are ``[a-z][a-z0-9_]*`` (config.NAME_RE) and
signal, metric, role and task ids are identifiers too, so every segment is a valid StatsD
name part and never contains a dot.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

MetricType = Literal["gauge", "counter", "timer"]

PREFIX = "retrain"

#: Decision codes a run can end with (summary ``decision_code``): one counter each.
DECISION_CODES = (
    "promoted",
    "reinstated",
    "rejected",
    "reinstatement_refused",
    "no_retrain_needed",
    "insufficient_data",
    "failed",
)

_SEGMENT = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class MetricPoint:
    """One value to send: ``timer`` values are milliseconds (StatsD's unit)."""

    name: str
    value: float
    type: MetricType
    tags: dict[str, str] = field(default_factory=dict)

    def as_tuple(self) -> tuple[str, float, str, dict[str, str]]:
        return self.name, self.value, self.type, dict(self.tags)


def segment(text: Any) -> str:
    """One dot-free name segment (anything outside ``[a-zA-Z0-9_-]`` becomes ``_``)."""
    return _SEGMENT.sub("_", str(text)) or "_"


def _number(value: Any) -> float | None:
    """A finite float, or None (missing, non-numeric, NaN and infinities are not sent)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _epoch_seconds(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class _Points:
    def __init__(self, model: str):
        self.model = segment(model)
        self.points: list[MetricPoint] = []

    def add(self, parts: tuple[str, ...], value: Any, kind: MetricType, **tags: str) -> None:
        number = _number(value)
        if number is None:
            return
        name = ".".join([PREFIX, self.model, *(segment(p) for p in parts)])
        self.points.append(
            MetricPoint(name, number, kind, {"model": self.model, **{k: segment(v) for k, v in tags.items()}})
        )


def run_metrics(summary: dict[str, Any], primary_metric: str | None = None) -> list[MetricPoint]:
    """Every metric of one run, from its summary (missing values are left out, never zero-filled).

    ``primary_metric`` names the comparison's primary metric (the model spec's
    ``comparison.primary_metric``); without it the one the paired test used is taken.
    """
    out = _Points(summary["model"])
    code = summary.get("decision_code") or summary.get("decision") or "failed"
    # Every decision's counter is sent (+0 for the others) so that each series exists from the
    # first run on: Prometheus' increase() cannot see the step to a counter's first value.
    for known in dict.fromkeys((*DECISION_CODES, code)):
        out.add(("run", known), int(known == code), "counter", decision=known)
        out.add(("last_decision", known), known == code, "gauge", decision=known)
    out.add(("last_run", "interval_end_timestamp"), _epoch_seconds(summary.get("data_interval_end")), "gauge")

    # Data: rows fetched and quarantined, days missing / quarantined.
    out.add(("rows", "fetched"), summary.get("rows"), "gauge")
    validation = summary.get("validation")
    partitions = summary.get("partitions") or {}
    if validation is not None:
        out.add(("validation", "success"), bool(validation.get("success")), "gauge")
        out.add(("rows", "quarantined"), validation.get("quarantined_rows", 0), "gauge")
        out.add(("days", "quarantined"), len(validation.get("quarantined_days") or []), "gauge")
    if partitions or summary.get("rows") is not None:
        out.add(("days", "missing"), len(partitions.get("days_missing") or []), "gauge")
        out.add(("days", "quarantined_skipped"), len(partitions.get("days_quarantined_skipped") or []), "gauge")

    # The gate: its verdict, every signal it evaluated, the drift test counts.
    drift = summary.get("drift")
    if drift is not None:
        out.add(("gate", "retrain"), bool(drift.get("gate")), "gauge")
        out.add(("gate", "cold_start"), bool(drift.get("cold_start")), "gauge")
        out.add(("champion", "age_weeks"), drift.get("champion_age_weeks"), "gauge")
        for signal in drift.get("signals") or []:
            name, status = signal.get("name"), signal.get("status")
            if not name or status == "disabled":
                continue
            out.add(("signal", name, "fired"), status == "fired", "gauge", signal=name)
            out.add(("signal", name, "insufficient"), status == "insufficient", "gauge", signal=name)
            for measure in ("statistic", "threshold", "p_value"):
                out.add(("signal", name, measure), signal.get(measure), "gauge", signal=name)
        features = drift.get("features") or {}
        if features:
            out.add(("drift", "features_tested"), len(features), "gauge")
            out.add(
                ("drift", "features_drifted"), sum(bool((f or {}).get("drifted")) for f in features.values()), "gauge"
            )

    # The comparison: primary metric of both models on the same rows, every metric, the paired test.
    metrics = summary.get("metrics") or {}
    comparison = summary.get("comparison") or {}
    paired = comparison.get("paired_test") or {}
    primary = primary_metric or paired.get("metric")
    for role in ("champion", "challenger"):
        scores = metrics.get(role) or {}
        if primary and primary in scores:
            out.add(("primary_metric", role), scores[primary], "gauge", role=role, metric=primary)
        for metric_name, value in sorted(scores.items()):
            out.add(("score", role, metric_name), value, "gauge", role=role, metric=metric_name)
    if paired:
        out.add(("comparison", "effect"), paired.get("effect"), "gauge")
        out.add(("comparison", "p_value"), paired.get("p_value"), "gauge")
    if comparison:
        out.add(("comparison", "holdout_rows"), comparison.get("holdout_rows"), "gauge")

    # Which version serves after the run (numeric MLflow versions only).
    out.add(("champion", "version"), summary.get("champion_version_after"), "gauge")
    if summary.get("decision") in ("promoted", "rejected"):
        out.add(("challenger", "version"), summary.get("challenger_version"), "gauge")

    # Step durations, as timers in milliseconds.
    for step, seconds in sorted((summary.get("durations") or {}).items()):
        number = _number(seconds)
        if number is not None:
            out.add(("step", step, "duration"), number * 1000.0, "timer", step=step)
    return out.points
