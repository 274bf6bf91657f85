"""The Celery stack's helpers against the machine's real PostgreSQL and Redis: databases are
created only when absent and never emptied, unreachable services fail with a clear message,
and each native worker reports its own hostname."""

from __future__ import annotations

import uuid

import pytest

from scripts import services
from scripts.airflow_hostname import hostname

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"


def test_ensure_postgres_db_creates_once_and_keeps_data():
    import psycopg2

    url = f"{PG}/retrain_helpers_{uuid.uuid4().hex[:8]}"
    try:
        assert services.ensure_postgres_db(url) is True
        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=url.rsplit("/", 1)[1])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (x int)")
            cur.execute("INSERT INTO kept VALUES (7)")
        conn.close()
        assert services.ensure_postgres_db(url) is False  # exists: kept as it is
        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=url.rsplit("/", 1)[1])
        with conn.cursor() as cur:
            cur.execute("SELECT x FROM kept")
            assert cur.fetchall() == [(7,)]
        conn.close()
    finally:
        services.drop_postgres_db(url)
    assert services.ensure_postgres_db(url) is True  # dropped above, so created again
    services.drop_postgres_db(url)


def test_refuses_shared_databases_and_names_unreachable_servers():
    with pytest.raises(RuntimeError, match="refusing to use database 'postgres'"):
        services.ensure_postgres_db(f"{PG}/postgres")
    closed = services.free_port()
    with pytest.raises(RuntimeError, match=f"cannot reach PostgreSQL at 127.0.0.1:{closed}"):
        services.ensure_postgres_db(f"postgresql+psycopg2://postgres@127.0.0.1:{closed}/x")
    with pytest.raises(RuntimeError, match=f"Redis at redis://127.0.0.1:{closed}/3 does not answer PING"):
        services.redis_ping(f"redis://127.0.0.1:{closed}/3")
    services.redis_ping("redis://127.0.0.1:6379/3")  # the machine's Redis answers


def test_worker_hostname(monkeypatch):
    monkeypatch.setenv("RETRAIN_WORKER_HOSTNAME", "worker-7")
    assert hostname() == "worker-7"
    monkeypatch.delenv("RETRAIN_WORKER_HOSTNAME")
    import socket

    assert hostname() == socket.getfqdn()


def test_seaweed_identity_config_has_only_the_given_keys():
    config = services.seaweed_s3_config("ak", "sk")
    creds = [c for i in config["identities"] for c in i["credentials"]]
    assert creds == [{"accessKey": "ak", "secretKey": "sk"}]
