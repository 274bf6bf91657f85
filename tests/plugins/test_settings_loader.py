"""Tests for scripts/load_airflow_settings.py against a real, migrated Airflow metadata DB.

Most tests run inside one transaction that is rolled back afterwards (``db_session``), so
they neither depend on nor disturb what other tests left in the session-wide database.
The commit-path test uses unique names and deletes its rows itself.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.load_airflow_settings import SettingsError, load_settings, main

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_SETTINGS = REPO_ROOT / "airflow_settings.yaml"

REPO_CONN_IDS = ("s3_data", "mlflow_default")
REPO_POOLS = ("model_promotion", "model_training")
# Every variable the repo file substitutes, plus the env-backend overrides that would
# shadow the rows (a developer shell or CI may have any of them set).
SETTINGS_ENV_VARS = (
    "S3_DATA_ACCESS_KEY_ID",
    "S3_DATA_SECRET_ACCESS_KEY",
    "S3_DATA_ENDPOINT_URL",
    "S3_DATA_REGION",
    "MLFLOW_CONN_HOST",
    "MLFLOW_CONN_PORT",
    "AIRFLOW_CONN_S3_DATA",
    "AIRFLOW_CONN_MLFLOW_DEFAULT",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db_session(airflow_db: Any) -> Iterator[Any]:
    """A session on the real metadata DB whose work is rolled back at teardown.

    Rows the repo settings would create are deleted first (inside the same transaction),
    so "created" counts do not depend on what earlier tests committed.
    """
    from airflow import settings
    from airflow.models import Connection, Pool, Variable
    from sqlalchemy import delete

    session = settings.NonScopedSession()
    try:
        session.execute(delete(Connection).where(Connection.conn_id.in_(REPO_CONN_IDS)))
        session.execute(delete(Pool).where(Pool.pool.in_(REPO_POOLS)))
        session.execute(delete(Variable).where(Variable.key.like("loader_test_%")))
        yield session
    finally:
        session.rollback()
        session.close()


def _connection(session: Any, conn_id: str) -> Any:
    from airflow.models import Connection
    from sqlalchemy import select

    return session.scalar(select(Connection).where(Connection.conn_id == conn_id))


def _pool(session: Any, name: str) -> Any:
    from airflow.models import Pool
    from sqlalchemy import select

    return session.scalar(select(Pool).where(Pool.pool == name))


def _variable(session: Any, key: str) -> Any:
    from airflow.models import Variable
    from sqlalchemy import select

    return session.scalar(select(Variable).where(Variable.key == key))


def _row_counts(session: Any) -> dict[str, int]:
    from airflow.models import Connection, Pool, Variable
    from sqlalchemy import func, select

    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model))
        for model in (Connection, Pool, Variable)
    }


def _repo_data() -> dict[str, Any]:
    return yaml.safe_load(REPO_SETTINGS.read_text(encoding="utf-8"))


@pytest.fixture
def write_settings(tmp_path: Path) -> Callable[..., Path]:
    """Write a modified copy of the repo settings (same file name, so messages match)."""

    def write(data: Any, name: str = "airflow_settings.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write


# --------------------------------------------------------------------------- repo file


def test_repo_settings_create_the_expected_rows(db_session: Any) -> None:
    counts = load_settings(REPO_SETTINGS, session=db_session)

    assert counts == {
        "connections": {"created": 2, "updated": 0, "unchanged": 0},
        "pools": {"created": 2, "updated": 0, "unchanged": 0},
        "variables": {"created": 0, "updated": 0, "unchanged": 0},
    }

    s3 = _connection(db_session, "s3_data")
    assert s3.conn_type == "aws"
    assert (s3.login, s3.password) == ("test", "test")
    assert s3.extra_dejson == {"endpoint_url": "http://127.0.0.1:9000", "region_name": "us-east-1"}

    mlflow = _connection(db_session, "mlflow_default")
    assert (mlflow.conn_type, mlflow.host, mlflow.port, mlflow.schema) == ("http", "127.0.0.1", 5000, "http")
    # How our MlflowHook derives the tracking URI from the connection.
    assert f"{mlflow.schema}://{mlflow.host}:{mlflow.port}" == "http://127.0.0.1:5000"
    assert mlflow.login is None and mlflow.password is None and mlflow.extra is None

    promotion, training = _pool(db_session, "model_promotion"), _pool(db_session, "model_training")
    assert promotion.slots == 1
    assert promotion.description == "Serializes champion promotions (one at a time)"
    assert training.slots == 2
    assert training.description
    assert promotion.include_deferred is False and training.include_deferred is False


def test_loading_twice_changes_nothing(db_session: Any) -> None:
    load_settings(REPO_SETTINGS, session=db_session)
    rows_after_first = _row_counts(db_session)
    s3_extra_before = _connection(db_session, "s3_data").extra

    counts = load_settings(REPO_SETTINGS, session=db_session)

    assert counts == {
        "connections": {"created": 0, "updated": 0, "unchanged": 2},
        "pools": {"created": 0, "updated": 0, "unchanged": 2},
        "variables": {"created": 0, "updated": 0, "unchanged": 0},
    }
    assert _row_counts(db_session) == rows_after_first
    assert len(db_session.dirty) == 0 and len(db_session.new) == 0  # nothing was even touched
    assert _connection(db_session, "s3_data").extra == s3_extra_before


def test_changed_values_update_in_place(db_session: Any, write_settings: Callable[..., Path]) -> None:
    load_settings(REPO_SETTINGS, session=db_session)
    rows_before = _row_counts(db_session)
    s3_id_before = _connection(db_session, "s3_data").id

    data = _repo_data()
    data["airflow"]["connections"][0]["conn_extra"]["endpoint_url"] = "http://127.0.0.1:9999"
    data["airflow"]["pools"][1]["pool_slot"] = 3
    counts = load_settings(write_settings(data), session=db_session)

    assert counts["connections"] == {"created": 0, "updated": 1, "unchanged": 1}
    assert counts["pools"] == {"created": 0, "updated": 1, "unchanged": 1}
    assert _row_counts(db_session) == rows_before  # updated, not duplicated
    s3 = _connection(db_session, "s3_data")
    assert s3.id == s3_id_before
    assert s3.extra_dejson["endpoint_url"] == "http://127.0.0.1:9999"
    assert s3.extra_dejson["region_name"] == "us-east-1"
    assert _pool(db_session, "model_training").slots == 3
    assert _pool(db_session, "model_promotion").slots == 1


def test_variables_are_upserted_and_non_strings_stored_as_json(
    db_session: Any, write_settings: Callable[..., Path]
) -> None:
    data = _repo_data()
    data["airflow"]["variables"] = [
        {"variable_name": "loader_test_text", "variable_value": "hello"},
        {"variable_name": "loader_test_json", "variable_value": {"threshold": 0.05, "metrics": ["f1"]}},
    ]
    first = load_settings(write_settings(data), session=db_session)
    assert first["variables"] == {"created": 2, "updated": 0, "unchanged": 0}
    assert _variable(db_session, "loader_test_text").val == "hello"
    assert json.loads(_variable(db_session, "loader_test_json").val) == {"threshold": 0.05, "metrics": ["f1"]}

    data["airflow"]["variables"][0]["variable_value"] = "changed"
    second = load_settings(write_settings(data), session=db_session)
    assert second["variables"] == {"created": 0, "updated": 1, "unchanged": 1}
    assert _variable(db_session, "loader_test_text").val == "changed"


def test_conn_extra_as_json_string_and_key_order_is_not_a_change(
    db_session: Any, write_settings: Callable[..., Path]
) -> None:
    load_settings(REPO_SETTINGS, session=db_session)
    data = _repo_data()
    # Same content as the mapping form, as a JSON string with the keys reversed.
    data["airflow"]["connections"][0]["conn_extra"] = json.dumps(
        {"region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:9000"}
    )
    counts = load_settings(write_settings(data), session=db_session)
    assert counts["connections"] == {"created": 0, "updated": 0, "unchanged": 2}


def test_conn_uri_entries_are_supported(db_session: Any, write_settings: Callable[..., Path]) -> None:
    data = _repo_data()
    data["airflow"]["connections"][1] = {
        "conn_id": "mlflow_default",
        "conn_uri": "http://mlflow.internal:5001/http",
    }
    load_settings(write_settings(data), session=db_session)
    conn = _connection(db_session, "mlflow_default")
    assert (conn.conn_type, conn.host, conn.port, conn.schema) == ("http", "mlflow.internal", 5001, "http")


# --------------------------------------------------------------------------- environment


def test_environment_substitution_overrides_defaults(db_session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_DATA_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("S3_DATA_ACCESS_KEY_ID", "minio-user")
    monkeypatch.setenv("S3_DATA_SECRET_ACCESS_KEY", 'pa$$w"ord{}')
    monkeypatch.setenv("MLFLOW_CONN_HOST", "mlflow")
    monkeypatch.setenv("MLFLOW_CONN_PORT", "5001")
    monkeypatch.setenv("S3_DATA_REGION", "")  # empty -> the ":-" default applies

    load_settings(REPO_SETTINGS, session=db_session)

    s3 = _connection(db_session, "s3_data")
    assert s3.login == "minio-user"
    assert s3.password == 'pa$$w"ord{}'  # substituted values are taken verbatim
    assert s3.extra_dejson == {"endpoint_url": "http://minio:9000", "region_name": "us-east-1"}
    mlflow = _connection(db_session, "mlflow_default")
    assert (mlflow.host, mlflow.port) == ("mlflow", 5001)


def test_placeholder_forms(db_session: Any, write_settings: Callable[..., Path]) -> None:
    data = _repo_data()
    data["airflow"]["variables"] = [
        {"variable_name": "loader_test_set", "variable_value": "x-${LOADER_TEST_SET}-y"},
        {"variable_name": "loader_test_default", "variable_value": "${LOADER_TEST_UNSET:-fallback}"},
        {"variable_name": "loader_test_escaped", "variable_value": "$${LOADER_TEST_SET} costs $5"},
    ]
    load_settings(write_settings(data), session=db_session, environ={"LOADER_TEST_SET": "value"})
    assert _variable(db_session, "loader_test_set").val == "x-value-y"
    assert _variable(db_session, "loader_test_default").val == "fallback"
    assert _variable(db_session, "loader_test_escaped").val == "${LOADER_TEST_SET} costs $5"


def test_unset_variable_without_default_is_an_error(db_session: Any, write_settings: Callable[..., Path]) -> None:
    data = _repo_data()
    data["airflow"]["connections"][0]["conn_password"] = "${LOADER_TEST_DEFINITELY_UNSET}"
    with pytest.raises(SettingsError) as excinfo:
        load_settings(write_settings(data), session=db_session, environ={})
    message = str(excinfo.value)
    assert message.startswith("airflow_settings.yaml: airflow.connections[0]: conn_password")
    assert "LOADER_TEST_DEFINITELY_UNSET is not set" in message


# --------------------------------------------------------------------------- validation


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _duplicate_pool(data: dict[str, Any]) -> None:
    data["airflow"]["pools"].append(copy.deepcopy(data["airflow"]["pools"][0]))


_CONN = ("airflow", "connections")
_POOLS = ("airflow", "pools")

SCHEMA_ERRORS = [
    pytest.param(
        _drop((*_CONN, 1, "conn_id")),
        "airflow_settings.yaml: airflow.connections[1]: missing conn_id",
        id="missing-conn_id",
    ),
    pytest.param(
        _drop((*_CONN, 0, "conn_type")),
        "airflow_settings.yaml: airflow.connections[0]: missing conn_type",
        id="missing-conn_type",
    ),
    pytest.param(
        _set((*_CONN, 1, "conn_id"), "bad id with spaces"),
        "airflow_settings.yaml: airflow.connections[1]: conn_id 'bad id with spaces' is invalid",
        id="invalid-conn_id",
    ),
    pytest.param(
        _set((*_CONN, 1, "conn_port"), "http"),
        "airflow_settings.yaml: airflow.connections[1]: conn_port must be an integer, got 'http'",
        id="port-not-int",
    ),
    pytest.param(
        _set((*_CONN, 1, "conn_port"), 70000),
        "airflow_settings.yaml: airflow.connections[1]: conn_port must be between 1 and 65535",
        id="port-range",
    ),
    pytest.param(
        _set((*_CONN, 0, "conn_extra"), ["endpoint_url"]),
        "airflow_settings.yaml: airflow.connections[0]: conn_extra must be a mapping",
        id="extra-not-mapping",
    ),
    pytest.param(
        _set((*_CONN, 0, "conn_passwd"), "x"),
        "airflow_settings.yaml: airflow.connections[0]: unknown field(s) conn_passwd",
        id="unknown-field",
    ),
    pytest.param(
        _set((*_CONN, 1, "conn_uri"), "http://h:1"),
        "airflow_settings.yaml: airflow.connections[1]: conn_uri cannot be combined with conn_type",
        id="uri-mixed",
    ),
    pytest.param(
        _drop((*_POOLS, 1, "pool_slot")),
        "airflow_settings.yaml: airflow.pools[1]: missing pool_slot",
        id="missing-pool_slot",
    ),
    pytest.param(
        _set((*_POOLS, 0, "pool_slot"), "two"),
        "airflow_settings.yaml: airflow.pools[0]: pool_slot must be an integer, got 'two'",
        id="pool_slot-not-int",
    ),
    pytest.param(
        _set((*_POOLS, 0, "pool_slot"), True),
        "airflow_settings.yaml: airflow.pools[0]: pool_slot must be an integer, got bool",
        id="pool_slot-bool",
    ),
    pytest.param(
        _duplicate_pool,
        "airflow_settings.yaml: airflow.pools[2]: duplicate pool_name 'model_promotion' "
        "(already defined at airflow.pools[0])",
        id="duplicate-pool",
    ),
    pytest.param(
        _set(("airflow", "variables"), [{"variable_name": "loader_test_x"}]),
        "airflow_settings.yaml: airflow.variables[0]: missing variable_value",
        id="missing-variable_value",
    ),
    pytest.param(
        _set(("airflow", "variables"), [{"variable_value": "x"}]),
        "airflow_settings.yaml: airflow.variables[0]: missing variable_name",
        id="missing-variable_name",
    ),
    pytest.param(
        _set(("airflow", "pools"), {"pool_name": "p"}),
        "airflow_settings.yaml: airflow.pools must be a list, got dict",
        id="section-not-list",
    ),
    pytest.param(
        _set(("airflow", "connection"), []),
        "airflow_settings.yaml: airflow: unknown key(s) connection",
        id="section-typo",
    ),
    pytest.param(
        _set((*_CONN, 0, "conn_host"), "${BROKEN"),
        None,  # not a placeholder at all (no closing brace): taken literally, no error
        id="unclosed-brace-is-literal",
    ),
    pytest.param(
        _set((*_CONN, 0, "conn_host"), "${1BAD}"),
        "airflow_settings.yaml: airflow.connections[0]: conn_host: malformed placeholder '${1BAD}'",
        id="malformed-placeholder",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), SCHEMA_ERRORS)
def test_schema_errors_name_the_entry_and_field(
    db_session: Any,
    write_settings: Callable[..., Path],
    mutate: Callable[[dict[str, Any]], None],
    expected: str | None,
) -> None:
    data = _repo_data()
    mutate(data)
    path = write_settings(data)
    rows_before = _row_counts(db_session)
    if expected is None:
        load_settings(path, session=db_session)
        return
    with pytest.raises(SettingsError) as excinfo:
        load_settings(path, session=db_session)
    assert str(excinfo.value).startswith(expected), str(excinfo.value)
    # Validation happens before the first write: the valid entries were not applied either.
    assert _row_counts(db_session) == rows_before
    assert _connection(db_session, "s3_data") is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "airflow_settings.yaml: expected a top-level 'airflow' mapping, got null"),
        ("connections: []\n", "airflow_settings.yaml: expected a top-level 'airflow' mapping, got dict"),
        ("airflow: [1, 2]\n", "airflow_settings.yaml: airflow must be a mapping, got list"),
        ("airflow:\n  pools: [\n", "airflow_settings.yaml: invalid YAML at line"),
    ],
)
def test_document_level_errors(db_session: Any, tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError) as excinfo:
        load_settings(path, session=db_session)
    assert str(excinfo.value).startswith(expected), str(excinfo.value)


def test_empty_sections_are_accepted(db_session: Any, tmp_path: Path) -> None:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text("airflow:\n  connections:\n  pools: []\n", encoding="utf-8")
    assert load_settings(path, session=db_session) == {
        section: {"created": 0, "updated": 0, "unchanged": 0} for section in ("connections", "pools", "variables")
    }


def test_errors_do_not_echo_secret_values(db_session: Any, write_settings: Callable[..., Path]) -> None:
    secret = "s3cr3t-do-not-print"
    data = _repo_data()
    data["airflow"]["connections"][0]["conn_extra"] = '{"aws_secret_access_key": "' + secret + '", }'
    with pytest.raises(SettingsError) as excinfo:
        load_settings(write_settings(data), session=db_session)
    assert "conn_extra is a string but not valid JSON" in str(excinfo.value)
    assert secret not in str(excinfo.value)

    data = _repo_data()
    data["airflow"]["connections"][0]["conn_password"] = {"nested": secret}
    with pytest.raises(SettingsError) as excinfo:
        load_settings(write_settings(data), session=db_session)
    assert "conn_password must be a string, got dict" in str(excinfo.value)
    assert secret not in str(excinfo.value)


# --------------------------------------------------------------------------- commit path and CLI


def test_cli_commits_and_never_prints_passwords(
    airflow_db: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.models import Connection, Pool
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    suffix = uuid.uuid4().hex[:8]
    conn_id, pool_name, secret = f"loader_cli_{suffix}", f"loader_cli_pool_{suffix}", f"pw-{suffix}-secret"
    path = tmp_path / "cli_settings.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "airflow": {
                    "connections": [
                        {"conn_id": conn_id, "conn_type": "aws", "conn_login": "user", "conn_password": secret}
                    ],
                    "pools": [{"pool_name": pool_name, "pool_slot": 4}],
                }
            }
        ),
        encoding="utf-8",
    )
    try:
        assert main([str(path)]) == 0
        first = capsys.readouterr()
        assert first.out.strip() == (
            "cli_settings.yaml: connections 1 created, 0 updated, 0 unchanged; "
            "pools 1 created, 0 updated, 0 unchanged; variables 0 created, 0 updated, 0 unchanged"
        )
        # Committed: a brand-new session (a new transaction) sees the rows.
        with create_session() as session:
            assert _connection(session, conn_id).password == secret
            assert _pool(session, pool_name).slots == 4

        assert main([str(path)]) == 0
        second = capsys.readouterr()
        assert "connections 0 created, 0 updated, 1 unchanged" in second.out
        assert "pools 0 created, 0 updated, 1 unchanged" in second.out
        for output in (first, second):
            assert secret not in output.out and secret not in output.err
    finally:
        with create_session() as session:
            session.execute(delete(Connection).where(Connection.conn_id == conn_id))
            session.execute(delete(Pool).where(Pool.pool == pool_name))


def test_cli_reports_invalid_files_with_exit_code_2(
    airflow_db: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text("airflow:\n  connections:\n    - conn_type: http\n", encoding="utf-8")
    assert main(["--check", str(path)]) == 2
    assert capsys.readouterr().err.strip() == ("error: airflow_settings.yaml: airflow.connections[0]: missing conn_id")


def test_module_entry_point_validates_the_repo_file(airflow_db: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "scripts.load_airflow_settings", "--check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "airflow_settings.yaml: valid (2 connections, 2 pools, 0 variables)"
