"""Run summary -> monitoring metrics (include/retrainer/metrics.py), the emitter's fault
tolerance (plugins/retrain_ops/metrics.py), and the monitoring files that must agree with
the names: the statsd-exporter mapping and the Grafana dashboard (docker/monitoring/)."""

from __future__ import annotations

import json
import math
import re
import socket
from pathlib import Path

import pytest
import yaml

from include.retrainer.metrics import DECISION_CODES, MetricPoint, run_metrics, segment
from include.retrainer.tasks import TaskId

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "docker" / "monitoring"
STATSD_PREFIX = "airflow"  # Airflow's default [metrics] statsd_prefix, assumed by the mapping


def promoted_summary() -> dict:
    """A summary with every field the metrics read (a promoted run after drift)."""
    return {
        "schema_version": 4,
        "model": "churn",
        "dag_id": "retrain_churn",
        "dag_run_id": "manual__1",
        "data_interval_start": "2026-01-04T00:00:00+00:00",
        "data_interval_end": "2026-01-11T00:00:00+00:00",
        "rows": 7000,
        "partitions": {
            "days_found": ["2026-01-04"] * 5,
            "days_missing": ["2026-01-09", "2026-01-10"],
            "days_quarantined_skipped": ["2026-01-08"],
        },
        "validation": {"success": True, "failed_expectations": [], "quarantined_days": [], "quarantined_rows": 0},
        "drift": {
            "gate": True,
            "cold_start": False,
            "champion_age_weeks": 5.0,
            "code": "signals",
            "signals": [
                {"name": "data_drift", "status": "fired", "statistic": 0.31, "threshold": 0.2, "p_value": 0.001},
                {
                    "name": "performance_decay",
                    "status": "quiet",
                    "statistic": -0.01,
                    "threshold": 0.02,
                    "p_value": None,
                },
                {"name": "prediction_drift", "status": "insufficient", "statistic": None, "threshold": 0.1},
                {"name": "age", "status": "disabled", "statistic": 5.0, "threshold": 26},
            ],
            "features": {"tenure": {"drifted": True}, "plan": {"drifted": False}, "charges": {"drifted": True}},
        },
        "decision": "promoted",
        "decision_code": "promoted",
        "trigger": "signals",
        "champion_version_before": "3",
        "champion_version_after": "4",
        "challenger_version": "4",
        "metrics": {
            "champion": {"roc_auc": 0.81, "accuracy": 0.77, "log_loss": float("nan")},
            "challenger": {"roc_auc": 0.84, "accuracy": 0.79},
        },
        "comparison": {
            "policy": "expected_gain",
            "holdout_rows": 1200,
            "paired_test": {"metric": "roc_auc", "effect": 0.03, "p_value": 0.004},
        },
        "durations": {TaskId.FETCH_BATCH: 1.5, TaskId.TRAIN_CHALLENGER: 12.25},
    }


def by_name(points: list[MetricPoint]) -> dict[str, MetricPoint]:
    names = [p.name for p in points]
    assert len(names) == len(set(names)), "a metric name was emitted twice in one run"
    return {p.name: p for p in points}


def test_promoted_run_metrics_named_and_tagged_per_model():
    points = by_name(run_metrics(promoted_summary(), "roc_auc"))
    m = "retrain.churn."
    assert points[m + "run.promoted"].as_tuple() == (
        m + "run.promoted",
        1.0,
        "counter",
        {"model": "churn", "decision": "promoted"},
    )
    # The other outcomes' counters get +0 (their series exist from the first run on).
    assert {n: p.value for n, p in points.items() if ".run." in n} == {
        m + "run." + code: float(code == "promoted") for code in DECISION_CODES
    }
    assert points[m + "last_decision.promoted"].value == 1.0 and points[m + "last_decision.failed"].value == 0.0
    assert points[m + "gate.retrain"].value == 1.0 and points[m + "gate.cold_start"].value == 0.0
    assert points[m + "signal.data_drift.fired"].value == 1.0
    assert points[m + "signal.data_drift.statistic"].value == pytest.approx(0.31)
    assert points[m + "signal.data_drift.threshold"].value == pytest.approx(0.2)
    assert points[m + "signal.data_drift.p_value"].tags == {"model": "churn", "signal": "data_drift"}
    assert points[m + "signal.performance_decay.fired"].value == 0.0
    assert m + "signal.performance_decay.p_value" not in points  # None is left out, never sent as 0
    assert points[m + "signal.prediction_drift.insufficient"].value == 1.0
    assert not any(".signal.age." in n for n in points)  # a disabled signal is not reported
    assert points[m + "drift.features_drifted"].value == 2 and points[m + "drift.features_tested"].value == 3
    assert points[m + "primary_metric.champion"].value == pytest.approx(0.81)
    assert points[m + "primary_metric.challenger"].tags == {"model": "churn", "role": "challenger", "metric": "roc_auc"}
    assert points[m + "score.challenger.accuracy"].value == pytest.approx(0.79)
    assert m + "score.champion.log_loss" not in points  # NaN is not a value a dashboard can plot
    assert points[m + "comparison.effect"].value == pytest.approx(0.03)
    assert points[m + "champion.age_weeks"].value == 5.0
    assert points[m + "champion.version"].value == 4.0
    assert points[m + "rows.fetched"].value == 7000 and points[m + "rows.quarantined"].value == 0
    assert points[m + "days.missing"].value == 2 and points[m + "days.quarantined_skipped"].value == 1
    assert points[m + "step.train_challenger.duration"].as_tuple() == (
        m + "step.train_challenger.duration",
        12250.0,
        "timer",
        {"model": "churn", "step": TaskId.TRAIN_CHALLENGER},
    )
    assert points[m + "last_run.interval_end_timestamp"].value == 1768089600.0  # 2026-01-11T00:00Z


def test_primary_metric_defaults_to_the_paired_test_metric():
    summary = promoted_summary()
    summary["comparison"]["paired_test"]["metric"] = "accuracy"
    points = by_name(run_metrics(summary))
    assert points["retrain.churn.primary_metric.champion"].value == pytest.approx(0.77)


def test_skipped_and_failed_runs_emit_what_they_have():
    skipped = promoted_summary()
    skipped.update(
        decision="skipped",
        decision_code="no_retrain_needed",
        metrics={"champion": {}, "challenger": {}},
        comparison=None,
        challenger_version=None,
        champion_version_after="3",
    )
    skipped["drift"]["gate"] = False
    points = by_name(run_metrics(skipped, "roc_auc"))
    assert points["retrain.churn.run.no_retrain_needed"].value == 1
    assert points["retrain.churn.gate.retrain"].value == 0
    assert not any(".primary_metric." in n or ".comparison." in n or ".challenger." in n for n in points)

    failed = {
        "model": "tickets",
        "decision": "failed",
        "decision_code": "failed",
        "rows": None,
        "validation": {"success": False, "quarantined_days": ["2026-01-05"], "quarantined_rows": 130},
        "drift": None,
        "metrics": {"champion": {}, "challenger": {}},
        "durations": {TaskId.VALIDATE_BATCH: 0.8},
    }
    points = by_name(run_metrics(failed))
    assert set(points) == {
        *(f"retrain.tickets.{kind}.{code}" for kind in ("run", "last_decision") for code in DECISION_CODES),
        "retrain.tickets.validation.success",
        "retrain.tickets.rows.quarantined",
        "retrain.tickets.days.quarantined",
        "retrain.tickets.step.validate_batch.duration",
    }
    assert points["retrain.tickets.rows.quarantined"].value == 130
    assert points["retrain.tickets.validation.success"].value == 0


def test_segments_never_split_a_name():
    assert segment("a.b c/d") == "a_b_c_d"
    points = run_metrics({"model": "m", "decision_code": "promoted", "durations": {"group.task": 1}})
    assert "retrain.m.step.group_task.duration" in {p.name for p in points}


def test_an_unknown_decision_code_still_counts():
    points = by_name(run_metrics({"model": "m", "decision_code": "expired"}))
    assert points["retrain.m.run.expired"].value == 1 and points["retrain.m.run.promoted"].value == 0


# --------------------------------------------------------------------------- emitter faults
class _ExplodingBackend:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise OSError("metrics backend down")

        return fail


def test_a_failing_backend_never_raises():
    from retrain_ops.metrics import emit_run_metrics

    assert emit_run_metrics(promoted_summary(), "roc_auc", backend=_ExplodingBackend()) == 0
    assert emit_run_metrics({"no": "model"}) == 0  # even a malformed summary is only a warning


def _airflow_statsd_logger(host: str, port: int):
    """Airflow's own StatsD logger, built the way its [metrics] config builds it."""
    from airflow.sdk._shared.observability.metrics.statsd_logger import get_statsd_logger
    from statsd import StatsClient

    return get_statsd_logger(stats_class=StatsClient, host=host, port=port, prefix=STATSD_PREFIX)


def test_statsd_port_closed_never_fails():
    """Nobody listens on the port (a stopped exporter): UDP sends still return normally."""
    from retrain_ops.metrics import send_points

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port is closed now: the kernel answers with ICMP port unreachable.
    points = run_metrics(promoted_summary(), "roc_auc")
    sent, errors = send_points(points, _StatsModule(_airflow_statsd_logger("127.0.0.1", port)))
    assert errors == [] and sent == len(points)


def test_unresolvable_statsd_host_falls_back_to_no_metrics():
    """Airflow's stats module swaps in its no-op logger when the host does not resolve."""
    from airflow.sdk._shared.observability.metrics import stats
    from retrain_ops.metrics import emit_run_metrics

    saved = (stats._factory, stats._backend, stats._export_legacy_names)
    try:
        stats.initialize(
            factory=lambda: _airflow_statsd_logger("statsd-exporter.invalid", 9125), export_legacy_names=False
        )
        assert emit_run_metrics(promoted_summary(), "roc_auc") == len(run_metrics(promoted_summary(), "roc_auc"))
        assert type(stats._backend).__name__ == "NoStatsLogger"
    finally:
        stats._factory, stats._backend, stats._export_legacy_names = saved


class _StatsModule:
    """The module-level stats API over one logger (what airflow.sdk.observability.stats does)."""

    def __init__(self, logger):
        self.logger = logger

    def incr(self, name, count=1, tags=None):
        self.logger.incr(name, count, tags=tags)

    def gauge(self, name, value, tags=None):
        self.logger.gauge(name, value, tags=tags)

    def timing(self, name, value, tags=None):
        self.logger.timing(name, value, tags=tags)


# --------------------------------------------------------------------------- monitoring files
def _mappings() -> list[dict]:
    return yaml.safe_load((MONITORING / "statsd-mapping.yml").read_text())["mappings"]


def _glob(pattern: str) -> re.Pattern:
    """statsd_exporter's glob match: `*` stands for one dot-free part of the name."""
    return re.compile("^" + r"\.".join("([^.]+)" if p == "*" else re.escape(p) for p in pattern.split(".")) + "$")


def _all_points() -> list[MetricPoint]:
    """Every kind of metric the pipeline emits: all decisions, every branch of the summary."""
    points = run_metrics(promoted_summary(), "roc_auc")
    for code in DECISION_CODES:
        points += run_metrics({**promoted_summary(), "decision_code": code}, "roc_auc")
    return points


def test_statsd_mapping_matches_every_metric_we_emit():
    mappings = [(m, _glob(m["match"])) for m in _mappings()]
    used = set()
    for point in _all_points():
        wire_name = f"{STATSD_PREFIX}.{point.name}"
        hits = [(m, rx.match(wire_name)) for m, rx in mappings if rx.match(wire_name)]
        assert len(hits) == 1, f"{wire_name}: {len(hits)} mappings match"
        mapping, match = hits[0]
        used.add(mapping["name"])
        labels = {k: match.expand(v.replace("$", "\\")) for k, v in mapping["labels"].items()}  # "$1" -> group 1
        assert labels["model"] == point.tags["model"]
        for key in set(labels) & set(point.tags):  # the labels carry the same values as the tags
            assert labels[key] == point.tags[key], (wire_name, key)
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", mapping["name"])
    assert used == {m["name"] for m in _mappings()}, "a mapping no metric uses"


def test_dashboard_queries_reference_mapped_metrics_and_the_provisioned_datasource():
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "retraining.json").read_text())
    datasource = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    mapped = {m["name"] for m in _mappings()}
    histogram = {"retrain_step_duration_seconds"}  # the only timer: _sum, _count and _bucket series
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append(dashboard["templating"]["list"][0]["query"]["query"])
    assert len(exprs) >= 10
    referenced = set()
    for expr in exprs:
        for name in re.findall(r"\bretrain_[a-z_]+", expr):
            base = re.sub(r"_(sum|count|bucket)$", "", name)
            assert name in mapped or (base in histogram and base != name), f"{expr}: unknown metric {name}"
            referenced.add(base)
    # The key figures all have a panel.
    assert {
        "retrain_runs_total",
        "retrain_gate_retrain",
        "retrain_signal_statistic",
        "retrain_primary_metric",
        "retrain_champion_age_weeks",
        "retrain_rows",
        "retrain_step_duration_seconds",
    } <= referenced
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_timer_values_are_milliseconds_like_statsd():
    point = next(p for p in run_metrics(promoted_summary()) if p.type == "timer")
    assert math.isclose(point.value, 1500.0)  # fetch_batch took 1.5 s


OTEL_PROBE = r"""
import json, os, sys
from airflow.sdk._shared.observability.metrics import stats as stats_state
from airflow.sdk.observability import stats
from airflow.sdk.observability.metrics import stats_utils
stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)  # as at task start
from retrain_ops.metrics import emit_run_metrics
sent = emit_run_metrics(json.loads(sys.argv[1]), "roc_auc")
from opentelemetry import metrics
flushed = metrics.get_meter_provider().force_flush(timeout_millis=3000)  # export now, to nobody
print("RESULT " + json.dumps({"sent": sent, "backend": type(stats_state._backend).__name__}))
"""


def test_opentelemetry_collector_down_never_fails(tmp_path):
    """otel_on with no collector listening: the OTLP exporter's errors stay in its log, the
    metrics call returns and the process exits cleanly (run in a subprocess: OTel's meter
    provider is process-global)."""
    import os
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "AIRFLOW__METRICS__OTEL_ON": "True",
        "AIRFLOW__METRICS__STATSD_ON": "False",
        "AIRFLOW__METRICS__OTEL_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__OTEL_PORT": str(port),
        "AIRFLOW__METRICS__OTEL_INTERVAL_MILLISECONDS": "200",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
    }
    summary = promoted_summary()
    summary["metrics"]["champion"].pop("log_loss")  # keep it JSON
    result = subprocess.run(
        [sys.executable, "-c", OTEL_PROBE, json.dumps(summary)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr  # structlog writes Airflow's log lines to stdout
    # The exporter's thread may write right after the RESULT object on the same line: decode the object only.
    out, _ = json.JSONDecoder().raw_decode(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
    assert out == {"sent": len(run_metrics(summary, "roc_auc")), "backend": "SafeOtelLogger"}
    assert "Connection refused" in output or "Failed to export" in output  # the collector really was down
