"""Pieces of the embedded stack that decide whether `make run` survives a busy machine:
retried metadata writes, state files for the CLI tools, health waits that name what they wait for."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts import services


class FakeAirflow(BaseHTTPRequestHandler):
    """Answers /auth/token; POST /api/v2/backfills is 'locked' (503) for the first N calls."""

    locked_left = 0
    calls: list[str] = []
    health = {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": "unhealthy"},
        "dag_processor": {"status": "healthy"},
    }

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        FakeAirflow.calls.append(self.path)
        if self.path == "/auth/token":
            return self._send(201, {"access_token": "tok"})
        if self.headers.get("Authorization") != "Bearer tok":
            return self._send(401, {"detail": "no"})
        if FakeAirflow.locked_left > 0:
            FakeAirflow.locked_left -= 1
            return self._send(503, {"detail": "Database is locked. Backfill creation is not supported on SQLite"})
        return self._send(200, {"id": 1})

    def do_GET(self):
        if self.path == "/api/v2/monitor/health":
            return self._send(200, FakeAirflow.health)
        return self._send(404, {"detail": "not found"})


@pytest.fixture()
def fake_airflow():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeAirflow.calls = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_locked_metadata_write_is_retried_with_backoff_until_it_succeeds(fake_airflow, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(services.time, "sleep", sleeps.append)
    FakeAirflow.locked_left = 3
    notes: list[str] = []
    api = services.AirflowApi(fake_airflow, "pw", on_retry=notes.append)
    status, body = api.request("POST", "/api/v2/backfills", {"dag_id": "x"})
    assert (status, body) == (200, {"id": 1})
    assert FakeAirflow.calls.count("/api/v2/backfills") == 4
    assert sleeps == [1.0, 2.0, 4.0]  # exponential backoff
    assert len(notes) == 3 and all("HTTP 503" in n and "Database is locked" in n for n in notes)


def test_retries_stop_at_the_deadline_with_the_last_answer(fake_airflow, monkeypatch):
    monkeypatch.setattr(services.time, "sleep", lambda s: None)
    FakeAirflow.locked_left = 10_000
    api = services.AirflowApi(fake_airflow, "pw", patience=0.0)
    with pytest.raises(RuntimeError, match="HTTP 503: Database is locked"):
        api.request("POST", "/api/v2/backfills", {"dag_id": "x"})
    FakeAirflow.locked_left = 0


def test_client_errors_are_not_retried(fake_airflow):
    api = services.AirflowApi(fake_airflow, "pw")
    with pytest.raises(RuntimeError, match="HTTP 404"):
        api.request("GET", "/api/v2/dags/nope")
    assert api.request("GET", "/api/v2/dags/nope", ok=(200, 404))[0] == 404


def test_airflow_health_wait_names_the_component_it_waits_for(fake_airflow):
    notes: list[str] = []
    with pytest.raises(TimeoutError, match="scheduler unhealthy.*RETRAIN_READY_TIMEOUT"):
        services.wait_airflow_healthy(fake_airflow, 1.5, progress=notes.append, every=0.5)
    assert notes and "scheduler unhealthy" in notes[0]
    FakeAirflow.health = {k: {"status": "healthy"} for k in FakeAirflow.health}
    assert services.wait_airflow_healthy(fake_airflow, 5)["scheduler"]["status"] == "healthy"


def test_state_files_round_trip_and_a_dead_stack_is_not_running(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRAIN_LOCAL_DIR", str(tmp_path))
    assert services.read_state() == {}
    state = {
        "running": True,
        "s3_endpoint": f"http://127.0.0.1:{services.free_port()}",
        "airflow_home": str(tmp_path / "airflow"),
        "mlflow_tracking_uri": "http://127.0.0.1:5000",
    }
    services.write_state(state)
    assert services.read_state() == state
    env = (tmp_path / "stack.env").read_text()
    assert f"export AIRFLOW_HOME={tmp_path / 'airflow'}" in env and "export RETRAIN_S3_ENDPOINT=" in env
    assert services.running_state() == {}  # nothing answers on that port


def test_free_ports_come_from_the_configured_range_and_are_never_handed_out_twice(monkeypatch):
    monkeypatch.setenv("RETRAIN_PORT_RANGE", "20000-20040")
    monkeypatch.setattr(services, "_HANDED_OUT", set())
    ports = [services.free_port() for _ in range(10)]
    assert all(20000 <= p < 20040 for p in ports) and len(set(ports)) == 10
    for bad in ("20000", "x-y", "30000-20000", "80-90"):
        monkeypatch.setenv("RETRAIN_PORT_RANGE", bad)
        with pytest.raises(ValueError, match="RETRAIN_PORT_RANGE"):
            services.free_port()
    monkeypatch.delenv("RETRAIN_PORT_RANGE")
    assert services.free_port() >= 1024  # the kernel's choice
