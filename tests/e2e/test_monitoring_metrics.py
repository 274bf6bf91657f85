"""A run's metrics reach a real StatsD receiver through Airflow's metrics system; a metrics
backend that is down never fails a run.

A UDP socket server on a free port stands in for the StatsD exporter. Airflow is configured
the way an operator would (AIRFLOW__METRICS__STATSD_*), and its stats backend is initialised
from that configuration as the task runner does at task start. Week 1 runs while nothing
listens on the configured port (cold start, promoted, run green); week 2 is a forced retrain
with the receiver up, and every per-model metric it sent is checked against the run summary.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest
import yaml

from include.demo import data as demo_data
from include.retrainer.metrics import DECISION_CODES
from include.retrainer.tasks import TaskId
from tests.e2e.conftest import DagRunner

W1 = dt.date(2026, 8, 2)  # a Sunday, away from the weeks other e2e tests use
W2 = W1 + dt.timedelta(weeks=1)
MODEL = "metricschurn"
PREFIX = f"airflow.retrain.{MODEL}."

pytestmark = pytest.mark.timeout(900)


class StatsdReceiver:
    """A UDP StatsD listener: parses `name:value|type` lines (gauge deltas, counters, timers)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines += [line for line in data.decode().splitlines() if line]

    def __enter__(self) -> StatsdReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def metrics(self, prefix: str) -> dict[str, tuple[float, str]]:
        """name (without ``prefix``) -> (value, type): a signed gauge value is a delta, counters add up."""
        out: dict[str, tuple[float, str]] = {}
        for line in self.lines:
            name, _, rest = line.partition(":")
            if not name.startswith(prefix):
                continue
            name = name[len(prefix) :]
            value, kind = rest.split("|")[:2]
            number = float(value)
            if name in out and (kind == "c" or (kind == "g" and value[:1] in "+-")):
                number += out[name][0]
            out[name] = (number, kind)
        return out


@pytest.fixture
def airflow_statsd(monkeypatch):
    """Point Airflow's [metrics] StatsD settings at a port; (re)initialise its stats backend."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.metrics import stats_utils

    saved = (stats._factory, stats._backend, stats._export_legacy_names)

    def configure(port: int) -> None:
        monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
        monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
        monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(port))
        monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
        # What the task runner does when a task process starts (task_runner.main).
        stats.initialize(
            factory=stats_utils.get_stats_factory(), export_legacy_names=conf.getboolean("metrics", "legacy_names_on")
        )

    yield configure
    stats._factory, stats._backend, stats._export_legacy_names = saved


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_metrics_arrive_per_model_and_a_down_backend_fails_nothing(stack, tmp_path, monkeypatch, airflow_statsd):
    models = tmp_path / "models"
    models.mkdir()
    spec = {
        "name": MODEL,
        "data": {"bucket": "raw-data", "prefix": MODEL},
        "features": {
            "target": "churned",
            "timestamp": "event_ts",
            "numeric": ["tenure_months", "monthly_charges", "support_calls", "usage_hours"],
            "categorical": ["contract", "payment_method", "region"],
        },
        "training": {"params": {"max_iter": 50}, "window_weeks": 1, "holdout_days": 2},
        "comparison": {"primary_metric": "roc_auc", "floor": 0.55},
    }
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(models))
    demo_data.write_partitions(
        stack["s3"], "raw-data", MODEL, demo_data.generate_churn(W1, days=14, rows_per_day=300, seed=11)
    )
    runner = DagRunner(models / f"{MODEL}.yaml", stack["s3"])

    # Week 1: the metrics backend is down (nothing listens on the configured port).
    airflow_statsd(closed_udp_port())
    run, s1 = runner.run(W1)
    assert str(run.state) == "success", runner.task_states(run)
    assert s1["decision"] == "promoted", s1["reasons"]

    # Week 2: a forced retrain with the receiver up.
    with StatsdReceiver() as receiver:
        airflow_statsd(receiver.port)
        run, s2 = runner.run(W2, force_retrain=True)
    assert str(run.state) == "success", runner.task_states(run)
    assert s2["decision"] in ("promoted", "rejected"), s2["reasons"]
    got = receiver.metrics(PREFIX)
    assert got, f"no {PREFIX}* metric arrived; received: {receiver.lines[:20]}"

    # Outcome: one run counted under its decision code.
    assert got[f"run.{s2['decision_code']}"] == (1.0, "c")
    assert {n: v for n, v in got.items() if n.startswith("run.")} == {
        f"run.{code}": (float(code == s2["decision_code"]), "c") for code in DECISION_CODES
    }
    assert got[f"last_decision.{s2['decision_code']}"] == (1.0, "g")
    # Gate verdict and per-signal statistics, as the summary has them.
    assert got["gate.retrain"] == (float(s2["drift"]["gate"]), "g")
    for signal in s2["drift"]["signals"]:
        if signal["status"] == "disabled":
            continue
        assert got[f"signal.{signal['name']}.fired"] == (float(signal["status"] == "fired"), "g")
        if isinstance(signal.get("statistic"), (int, float)):
            assert got[f"signal.{signal['name']}.statistic"][0] == pytest.approx(signal["statistic"], abs=1e-6)
    assert (
        got["champion.age_weeks"][0] == pytest.approx(s2["drift"]["champion_age_weeks"])
        and 0.5 <= got["champion.age_weeks"][0] <= 2
    )
    # Champion and challenger primary metric on the same rows: plausible ROC AUCs, as in the summary.
    for role in ("champion", "challenger"):
        value, kind = got[f"primary_metric.{role}"]
        assert kind == "g" and 0.55 <= value <= 1.0
        assert value == pytest.approx(s2["metrics"][role]["roc_auc"], abs=1e-6)
    # Data: 7 days x 300 rows fetched, nothing quarantined.
    assert got["rows.fetched"] == (2100.0, "g") == (float(s2["rows"]), "g")
    assert got["rows.quarantined"] == (0.0, "g")
    assert got["champion.version"][0] == float(s2["champion_version_after"])
    # Step durations: a timer per step that ran, in milliseconds, as in the summary.
    for step in (
        TaskId.FETCH_BATCH,
        TaskId.VALIDATE_BATCH,
        TaskId.DETECT_DRIFT,
        TaskId.TRAIN_CHALLENGER,
        TaskId.COMPARE_MODELS,
    ):
        value, kind = got[f"step.{step}.duration"]
        assert kind == "ms" and value > 0
        assert value == pytest.approx(s2["durations"][step] * 1000, rel=1e-3)
    assert s2["schema_version"] == 8
