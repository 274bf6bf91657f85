"""Load an Astro-CLI-style ``airflow_settings.yaml`` into the Airflow metadata database.

Why this exists: the project describes its local connections, pools and variables in the
Astro CLI schema (one reviewable file), but the Astro CLI is not part of the toolchain.
The file is parsed by a pydantic schema (one model per section entry) and applied to
whatever metadata DB the current Airflow configuration points at (SQLite for the embedded
stack, PostgreSQL for the Celery topology and docker-compose).

* **Idempotent upserts** matched by ``conn_id`` / ``pool_name`` / ``variable_name``; a
  second load reports everything ``unchanged``. Fields the schema cannot express (a
  connection's description, a pool's ``include_deferred``) are left as they are.
* **All or nothing.** The whole file is validated before the first write; all writes happen
  in one transaction.
* **Clear errors** name the file, the entry and the field, e.g.
  ``airflow_settings.yaml: airflow.connections[1]: missing conn_id``.
* **No secrets in the output.** String values accept ``${VAR}`` and ``${VAR:-default}``
  from the environment (``$${`` is a literal ``${``); errors never echo a value of a
  login, password or extra.

Command line::

    python -m scripts.load_airflow_settings [path] [--check]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "DEFAULT_SETTINGS_PATH",
    "ConnectionSpec",
    "PoolSpec",
    "Settings",
    "SettingsError",
    "VariableSpec",
    "load_settings",
    "main",
    "parse_settings",
    "read_settings",
]

log = logging.getLogger(__name__)

#: The repository's settings file (the CLI default), resolved independently of the CWD.
DEFAULT_SETTINGS_PATH = Path(__file__).resolve().parent.parent / "airflow_settings.yaml"

# `$${...}` (escaped, kept literally as `${...}`) or `${...}` (a placeholder).
_PLACEHOLDER = re.compile(r"\$(?P<escaped>\$)?\{(?P<body>[^}]*)\}")
_PLACEHOLDER_BODY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?$", re.DOTALL)


class SettingsError(ValueError):
    """The settings file is malformed; the message names the file, entry and field."""


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _substitute(value: str, where: str, environ: Mapping[str, str]) -> str:
    """Resolve ``${VAR}`` / ``${VAR:-default}``; an unset VAR without default is an error.

    A silently blank credential or endpoint would fail much later and far less clearly.
    ``:-`` follows the shell and Compose: the default applies when VAR is unset or empty.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "${" + match.group("body") + "}"
        body = _PLACEHOLDER_BODY.match(match.group("body"))
        if body is None:
            raise ValueError(
                f"{where}: malformed placeholder {match.group(0)!r} "
                "(expected ${VAR} or ${VAR:-default}; write $${ for a literal ${)"
            )
        name, default = body.group("name"), body.group("default")
        current = environ.get(name)
        if default is not None:
            return current if current else default
        if current is None:
            raise ValueError(f"{where}: environment variable {name} is not set (set it, or use ${{{name}:-default}})")
        return current

    return _PLACEHOLDER.sub(replace, value)


def _substitute_tree(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _substitute(value, where, environ)
    if isinstance(value, dict):
        return {k: _substitute_tree(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_tree(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    return value


def _environ(info: ValidationInfo) -> Mapping[str, str]:
    return (info.context or {}).get("environ", os.environ)


def _text(value: Any, info: ValidationInfo) -> str | None:
    """An optional string field (YAML numbers stringified); errors never echo the value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{info.field_name} must be a string, got {_type_name(value)}")
    return _substitute(str(value), str(info.field_name), _environ(info))


def _name(value: Any, info: ValidationInfo) -> str:
    text = _text(value, info)
    if text is None or not text.strip():
        raise ValueError(f"missing {info.field_name}")
    if text != text.strip():
        raise ValueError(f"{info.field_name} {text!r} has leading or trailing whitespace")
    return text


def _integer(value: Any, info: ValidationInfo, minimum: int, maximum: int | None = None) -> int | None:
    """An integer that may also be a digit string (e.g. after ``${PORT:-5000}``)."""
    field = info.field_name
    if value is None:
        return None
    if isinstance(value, str):
        text = _substitute(value, str(field), _environ(info)).strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"{field} must be an integer, got {text!r}")
        value = int(text)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer, got {_type_name(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{field} must be {bounds}, got {value}")
    return value


class _Entry(BaseModel):
    # Attribute names are the Astro CLI keys, so every message names what the user wrote.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ConnectionSpec(_Entry):
    """One ``airflow.connections[]`` entry, env placeholders resolved."""

    conn_id: str = ""
    conn_type: str | None = None
    conn_host: str | None = None
    conn_schema: str | None = None
    conn_login: str | None = None
    conn_password: str | None = None
    conn_port: int | None = None
    conn_extra: dict[str, Any] | None = None
    conn_uri: str | None = None

    @field_validator("conn_id", mode="before")
    @classmethod
    def _conn_id(cls, value: Any, info: ValidationInfo) -> str:
        from airflow.models.connection import CONN_ID_MAX_LEN, sanitize_conn_id

        conn_id = _name(value, info)
        if sanitize_conn_id(conn_id) != conn_id:
            raise ValueError(
                f"conn_id {conn_id!r} is invalid (1-{CONN_ID_MAX_LEN} characters from letters, "
                r"digits and #!()-.:/\_)"
            )
        return conn_id

    @field_validator("conn_type", "conn_host", "conn_schema", "conn_login", "conn_password", "conn_uri", mode="before")
    @classmethod
    def _strings(cls, value: Any, info: ValidationInfo) -> str | None:
        return _text(value, info)

    @field_validator("conn_port", mode="before")
    @classmethod
    def _port(cls, value: Any, info: ValidationInfo) -> int | None:
        return _integer(value, info, 1, 65535)

    @field_validator("conn_extra", mode="before")
    @classmethod
    def _extra(cls, raw: Any, info: ValidationInfo) -> dict[str, Any] | None:
        # A JSON string is decoded *before* substitution, so substituted quotes or
        # backslashes cannot break the JSON.
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"conn_extra is a string but not valid JSON (line {exc.lineno}, column {exc.colno})"
                ) from None
        if not isinstance(raw, dict):
            raise ValueError(f"conn_extra must be a mapping (or a JSON object string), got {_type_name(raw)}")
        if any(not isinstance(k, str) for k in raw):
            raise ValueError("conn_extra: keys must be strings")
        extra = _substitute_tree(raw, "conn_extra", _environ(info))
        try:
            json.dumps(extra)
        except (TypeError, ValueError):
            raise ValueError("conn_extra must be JSON-serializable (dates and other YAML types are not)") from None
        return extra or None

    @model_validator(mode="after")
    def _uri_or_fields(self) -> ConnectionSpec:
        if self.conn_uri is not None:
            mixed = [
                f for f in type(self).model_fields if f not in ("conn_id", "conn_uri") and getattr(self, f) is not None
            ]
            if mixed:
                raise ValueError(f"conn_uri cannot be combined with {', '.join(mixed)}")
            if not self.conn_uri.strip():
                raise ValueError("conn_uri is empty")
        elif not (self.conn_type or "").strip():
            raise ValueError("missing conn_type (or give conn_uri)")
        return self

    def __repr__(self) -> str:
        # Omits login/password/extra/uri: reprs end up in logs and tracebacks.
        return f"ConnectionSpec(conn_id={self.conn_id!r}, conn_type={self.conn_type!r})"

    __str__ = __repr__


class PoolSpec(_Entry):
    """One ``airflow.pools[]`` entry."""

    pool_name: str = ""
    pool_slot: int | None = None
    pool_description: str | None = None

    @field_validator("pool_name", mode="before")
    @classmethod
    def _pool_name(cls, value: Any, info: ValidationInfo) -> str:
        return _name(value, info)

    @field_validator("pool_description", mode="before")
    @classmethod
    def _description(cls, value: Any, info: ValidationInfo) -> str | None:
        return _text(value, info)

    @field_validator("pool_slot", mode="before")
    @classmethod
    def _slots(cls, value: Any, info: ValidationInfo) -> int | None:
        return _integer(value, info, -1)  # -1 = unlimited (Airflow)

    @model_validator(mode="after")
    def _required(self) -> PoolSpec:
        if self.pool_slot is None:
            raise ValueError("missing pool_slot")
        return self


class VariableSpec(_Entry):
    """One ``airflow.variables[]`` entry; non-string values are stored as JSON."""

    variable_name: str = ""
    variable_value: str | None = None

    @field_validator("variable_name", mode="before")
    @classmethod
    def _variable_name(cls, value: Any, info: ValidationInfo) -> str:
        return _name(value, info)

    @field_validator("variable_value", mode="before")
    @classmethod
    def _value(cls, raw: Any, info: ValidationInfo) -> str | None:
        if raw is None:
            return None
        raw = _substitute_tree(raw, "variable_value", _environ(info))
        if isinstance(raw, str):
            return raw
        try:  # JSON so that Variable.get(..., deserialize_json=True) round-trips
            return json.dumps(raw)
        except (TypeError, ValueError):
            raise ValueError(f"variable_value must be JSON-serializable, got {_type_name(raw)}") from None

    @model_validator(mode="after")
    def _required(self) -> VariableSpec:
        if self.variable_value is None:
            raise ValueError('missing variable_value (use "" for an empty string)')
        return self

    def __repr__(self) -> str:
        return f"VariableSpec(variable_name={self.variable_name!r})"

    __str__ = __repr__


class Settings(BaseModel):
    """The validated content of a settings file."""

    model_config = ConfigDict(frozen=True)

    connections: tuple[ConnectionSpec, ...] = ()
    pools: tuple[PoolSpec, ...] = ()
    variables: tuple[VariableSpec, ...] = ()


_SECTIONS: dict[str, tuple[type[_Entry], str]] = {
    "connections": (ConnectionSpec, "conn_id"),
    "pools": (PoolSpec, "pool_name"),
    "variables": (VariableSpec, "variable_name"),
}


def _first_problem(error: ValidationError, model: type[_Entry]) -> str:
    """One readable sentence for the first problem pydantic found in an entry."""
    problems = error.errors(include_input=False, include_url=False)
    unknown = [str(p["loc"][-1]) for p in problems if p["type"] == "extra_forbidden"]
    if unknown:
        allowed = list(model.model_fields)
        return f"unknown field(s) {', '.join(sorted(unknown))} (allowed: {', '.join(allowed)})"
    message = str(problems[0]["msg"])
    return message.removeprefix("Value error, ")


def parse_settings(
    data: Any,
    *,
    source: str = "airflow_settings.yaml",
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Validate decoded YAML ``data``; raises :class:`SettingsError` on the first problem."""
    env = os.environ if environ is None else environ
    if not isinstance(data, dict) or "airflow" not in data:
        raise SettingsError(f"{source}: expected a top-level 'airflow' mapping, got {_type_name(data)}")
    unknown_top = sorted(str(k) for k in data if k != "airflow")
    if unknown_top:
        raise SettingsError(f"{source}: unknown top-level key(s) {', '.join(unknown_top)} (allowed: airflow)")
    airflow = data["airflow"] or {}
    if not isinstance(airflow, dict):
        raise SettingsError(f"{source}: airflow must be a mapping, got {_type_name(airflow)}")
    unknown = sorted(str(k) for k in airflow if k not in _SECTIONS)
    if unknown:
        raise SettingsError(f"{source}: airflow: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(_SECTIONS)})")

    parsed: dict[str, tuple[Any, ...]] = {}
    for section, (model, id_field) in _SECTIONS.items():
        entries = airflow.get(section) or []
        if not isinstance(entries, list):
            raise SettingsError(f"{source}: airflow.{section} must be a list, got {_type_name(entries)}")
        specs, seen = [], {}
        for index, entry in enumerate(entries):
            where = f"{source}: airflow.{section}[{index}]"
            if not isinstance(entry, dict):
                raise SettingsError(f"{where}: expected a mapping of fields, got {_type_name(entry)}")
            try:
                spec = model.model_validate(entry, context={"environ": env})
            except ValidationError as exc:
                raise SettingsError(f"{where}: {_first_problem(exc, model)}") from None
            key = getattr(spec, id_field)
            if key in seen:
                raise SettingsError(
                    f"{where}: duplicate {id_field} {key!r} (already defined at airflow.{section}[{seen[key]}])"
                )
            seen[key] = index
            specs.append(spec)
        parsed[section] = tuple(specs)
    return Settings(**parsed)


def read_settings(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and env-resolve a settings file without touching any database."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SettingsError(f"{path.name}: invalid YAML{position}: {getattr(exc, 'problem', None) or exc}") from None
    return parse_settings(data, source=path.name, environ=environ)


# --------------------------------------------------------------------------- applying


def _warn_if_shadowed(kind: str, name: str, env_var: str) -> None:
    # The env secrets backend is consulted before the metastore, so the row we write is not
    # what tasks will see. Intended in docker-compose, but worth saying out loud.
    if env_var in os.environ:
        log.warning("%s %r is also defined by %s, which takes precedence over the metadata DB row", kind, name, env_var)


def _upsert(
    session: Session,
    model: Any,
    key_column: Any,
    key: str,
    desired: dict[str, Any],
    same: Any = None,
    on_create: dict[str, Any] | None = None,
) -> str:
    """Create or update one row; returns ``created``, ``updated`` or ``unchanged``.

    ``on_create`` holds columns the schema cannot express: set on new rows, left alone on
    existing ones.
    """
    from sqlalchemy import select

    existing = session.scalar(select(model).where(key_column == key))
    if existing is None:
        session.add(model(**desired, **(on_create or {})))
        return "created"
    changed = False
    for attr, value in desired.items():
        current = getattr(existing, attr)
        if not (same(attr, current, value) if same else current == value):
            setattr(existing, attr, value)  # Connection/Variable synonyms re-encrypt with Fernet
            changed = True
    return "updated" if changed else "unchanged"


def _same_connection_field(attr: str, current: Any, desired: Any) -> bool:
    if attr == "extra":  # key order and JSON whitespace are not changes
        return (json.loads(current) if current else {}) == (json.loads(desired) if desired else {})
    return bool(current == desired)


def _apply(settings: Settings, session: Session) -> dict[str, dict[str, int]]:
    from airflow.models import Connection, Pool, Variable

    counts = {section: {"created": 0, "updated": 0, "unchanged": 0} for section in _SECTIONS}
    for conn in settings.connections:
        if conn.conn_uri is not None:
            try:
                parsed = Connection(conn_id=conn.conn_id, uri=conn.conn_uri)
            except Exception as exc:  # Airflow raises AirflowException/ValueError on bad URIs
                raise SettingsError(f"connection {conn.conn_id!r}: invalid conn_uri ({type(exc).__name__})") from None
            fields = {
                a: getattr(parsed, a) for a in ("conn_type", "host", "schema", "login", "password", "port", "extra")
            }
        else:
            fields = {
                "conn_type": conn.conn_type,
                "host": conn.conn_host,
                "schema": conn.conn_schema,
                "login": conn.conn_login,
                "password": conn.conn_password,
                "port": conn.conn_port,
                "extra": json.dumps(conn.conn_extra) if conn.conn_extra else None,
            }
        _warn_if_shadowed("connection", conn.conn_id, f"AIRFLOW_CONN_{conn.conn_id.upper()}")
        outcome = _upsert(
            session,
            Connection,
            Connection.conn_id,
            conn.conn_id,
            {"conn_id": conn.conn_id, **fields},
            _same_connection_field,
        )
        counts["connections"][outcome] += 1
    for pool in settings.pools:
        outcome = _upsert(
            session,
            Pool,
            Pool.pool,
            pool.pool_name,
            {"pool": pool.pool_name, "slots": pool.pool_slot, "description": pool.pool_description},
            lambda attr, current, desired: (current or None) == (desired or None),
            on_create={"include_deferred": False},
        )
        counts["pools"][outcome] += 1
    for var in settings.variables:
        _warn_if_shadowed("variable", var.variable_name, f"AIRFLOW_VAR_{var.variable_name.upper()}")
        outcome = _upsert(
            session, Variable, Variable.key, var.variable_name, {"key": var.variable_name, "val": var.variable_value}
        )
        counts["variables"][outcome] += 1
    session.flush()
    return counts


def load_settings(
    path: str | Path,
    *,
    session: Session | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, int]]:
    """Upsert the connections, pools and variables of ``path`` into the metadata DB.

    With ``session`` the changes are flushed and the commit is the caller's; without, a
    session is created and committed, or rolled back entirely on error. Returns
    ``{"connections": {"created": n, "updated": n, "unchanged": n}, "pools": ..., "variables": ...}``.
    Raises :class:`SettingsError` if the file is invalid; nothing is written then.
    """
    settings = read_settings(path, environ=environ)  # validate everything before any write
    if session is not None:
        return _apply(settings, session)

    from airflow.utils.session import create_session

    with create_session() as new_session:
        return _apply(settings, new_session)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code (2 for an invalid settings file)."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.load_airflow_settings",
        description="Idempotently load an Astro-CLI-style airflow_settings.yaml into the Airflow metadata DB.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=DEFAULT_SETTINGS_PATH,
        help=f"settings file (default: {DEFAULT_SETTINGS_PATH.name} at the repository root)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only validate the file and resolve its ${VAR} placeholders; do not touch the database",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        if args.check:
            settings = read_settings(args.path)
            print(
                f"{args.path.name}: valid ({len(settings.connections)} connections, "
                f"{len(settings.pools)} pools, {len(settings.variables)} variables)"
            )
            return 0
        counts = load_settings(args.path)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.path.name}: "
        + "; ".join(
            f"{section} {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
            for section, c in counts.items()
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
