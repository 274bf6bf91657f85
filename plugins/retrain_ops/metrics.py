"""Send a run's key figures through Airflow's metrics system (StatsD, DogStatsD or OpenTelemetry).

What is sent comes from ``include.retrainer.metrics.run_metrics`` (names, values, tags); where
it goes is Airflow's ``[metrics]`` configuration (``statsd_on``/``statsd_host``/``statsd_port``/
``statsd_prefix``, ``statsd_datadog_enabled``, ``statsd_influxdb_enabled``, ``otel_on``, the
allow/block lists). The task runner initialises Airflow's stats backend from that
configuration when a task starts; with metrics off the backend is a no-op.

Monitoring never fails a run: StatsD is fire-and-forget UDP, an unresolvable host makes
Airflow fall back to its no-op logger, and every error here is caught and logged.
"""

from __future__ import annotations

import logging
from typing import Any

_log = logging.getLogger(__name__)


def send_points(points: list[Any], backend: Any = None) -> tuple[int, list[str]]:
    """Send each point; returns (sent, errors). ``backend`` defaults to Airflow's stats module."""
    if backend is None:
        from airflow.sdk.observability import stats as backend
    sent, errors = 0, []
    for point in points:
        try:
            if point.type == "counter":
                backend.incr(point.name, count=int(point.value), tags=point.tags)
            elif point.type == "timer":
                backend.timing(point.name, point.value, tags=point.tags)
            else:
                backend.gauge(point.name, point.value, tags=point.tags)
            sent += 1
        except Exception as exc:  # a broken or unreachable backend is logged, never raised
            errors.append(f"{point.name}: {type(exc).__name__}: {exc}")
    return sent, errors


def emit_run_metrics(summary: dict, primary_metric: str | None = None, *, log: Any = None, backend: Any = None) -> int:
    """Emit the metrics of one run summary; returns how many were handed to the backend.

    Never raises: a metrics backend that is down or misconfigured is a warning in the task log.
    """
    log = log or _log
    try:
        from include.retrainer.metrics import run_metrics

        points = run_metrics(summary, primary_metric)
        sent, errors = send_points(points, backend)
    except Exception as exc:
        log.warning("run metrics not emitted (monitoring never fails a run): %s: %s", type(exc).__name__, exc)
        return 0
    if errors:
        log.warning(
            "%d of %d run metric(s) not emitted (monitoring never fails a run); first: %s",
            len(errors),
            len(points),
            errors[0],
        )
    else:
        log.info("emitted %d run metric(s) for model %s (Airflow [metrics] backend)", sent, summary.get("model"))
    return sent
