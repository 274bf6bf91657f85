"""Load an Astro-CLI-style ``airflow_settings.yaml`` into the Airflow metadata database.

Why this exists: the project describes its local connections, pools and variables in the
Astro CLI schema (one reviewable file), but the Astro CLI is not part of the toolchain.
This loader applies that file to whatever metadata DB the current Airflow configuration
points at (SQLite for the embedded stack, Postgres in docker-compose).

Properties the rest of the project relies on:

* **Idempotent upserts.** Entries are matched by ``conn_id`` / ``pool_name`` /
  ``variable_name``; a second load of the same file reports everything ``unchanged`` and
  never duplicates rows. Fields the schema cannot express (a connection's description, a
  pool's ``include_deferred``) are left as they are on existing rows.
* **All or nothing.** The whole file is validated before the first write, and all writes
  happen in one transaction.
* **Clear errors.** Problems name the file, the entry and the field, e.g.
  ``airflow_settings.yaml: airflow.connections[1]: missing conn_id``.
* **No secrets in the file or the output.** String values accept ``${VAR}`` and
  ``${VAR:-default}`` substitution from the environment (``$${`` is a literal ``${``), and
  neither errors nor the summary ever echo a password, login or extra value.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

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

_SECTIONS = ("connections", "pools", "variables")
_CONNECTION_FIELDS = (
    "conn_id",
    "conn_type",
    "conn_host",
    "conn_schema",
    "conn_login",
    "conn_password",
    "conn_port",
    "conn_extra",
    "conn_uri",
)
# Fields Airflow refuses to combine with a URI (Connection(uri=...) raises on them).
_URI_EXCLUSIVE_FIELDS = tuple(f for f in _CONNECTION_FIELDS if f not in ("conn_id", "conn_uri"))
_POOL_FIELDS = ("pool_name", "pool_slot", "pool_description")
_VARIABLE_FIELDS = ("variable_name", "variable_value")

# `$${...}` (escaped, kept literally as `${...}`) or `${...}` (a placeholder).
_PLACEHOLDER = re.compile(r"\$(?P<escaped>\$)?\{(?P<body>[^}]*)\}")
_PLACEHOLDER_BODY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?$", re.DOTALL)


class SettingsError(ValueError):
    """The settings file is malformed; the message names the file, entry and field."""


@dataclass(frozen=True)
class ConnectionSpec:
    """One validated ``airflow.connections[]`` entry, env placeholders already resolved."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: dict[str, Any] | None = None
    uri: str | None = None

    def __repr__(self) -> str:
        # Deliberately omits login/password/extra/uri: reprs end up in logs and tracebacks.
        return f"ConnectionSpec(conn_id={self.conn_id!r}, conn_type={self.conn_type!r})"


@dataclass(frozen=True)
class PoolSpec:
    """One validated ``airflow.pools[]`` entry."""

    name: str
    slots: int
    description: str | None = None


@dataclass(frozen=True)
class VariableSpec:
    """One validated ``airflow.variables[]`` entry (value already serialized to a string)."""

    key: str
    value: str

    def __repr__(self) -> str:
        return f"VariableSpec(key={self.key!r})"


@dataclass(frozen=True)
class Settings:
    """The validated content of a settings file."""

    connections: tuple[ConnectionSpec, ...] = ()
    pools: tuple[PoolSpec, ...] = ()
    variables: tuple[VariableSpec, ...] = ()


# --------------------------------------------------------------------------- parsing


def _substitute(value: str, where: str, environ: Mapping[str, str]) -> str:
    """Resolve ``${VAR}`` / ``${VAR:-default}`` in one string.

    ``${VAR}`` with VAR unset is an error rather than an empty string: a silently blank
    credential or endpoint fails much later and far less clearly. ``:-`` follows the shell
    and Compose: the default applies when VAR is unset *or* empty.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "${" + match.group("body") + "}"
        body = _PLACEHOLDER_BODY.match(match.group("body"))
        if body is None:
            raise SettingsError(
                f"{where}: malformed placeholder {match.group(0)!r} "
                "(expected ${VAR} or ${VAR:-default}; write $${ for a literal ${)"
            )
        name, default = body.group("name"), body.group("default")
        current = environ.get(name)
        if default is not None:
            return current if current else default
        if current is None:
            raise SettingsError(
                f"{where}: environment variable {name} is not set "
                f"(set it, e.g. in .env, or use ${{{name}:-default}})"
            )
        return current

    return _PLACEHOLDER.sub(replace, value)


def _substitute_tree(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    """Apply :func:`_substitute` to every string inside nested dicts/lists (values only)."""
    if isinstance(value, str):
        return _substitute(value, where, environ)
    if isinstance(value, dict):
        return {k: _substitute_tree(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_tree(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    return value


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _optional_str(entry: Mapping[str, Any], field: str, where: str, environ: Mapping[str, str]) -> str | None:
    """Read an optional string field; YAML numbers are accepted and stringified.

    The error never echoes the value, because the field may be a login or password.
    """
    value = entry.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SettingsError(f"{where}: {field} must be a string, got {_type_name(value)}")
    return _substitute(str(value), f"{where}: {field}", environ)


def _required_name(entry: Mapping[str, Any], field: str, where: str, environ: Mapping[str, str]) -> str:
    value = _optional_str(entry, field, where, environ)
    if value is None or not value.strip():
        raise SettingsError(f"{where}: missing {field}")
    if value != value.strip():
        raise SettingsError(f"{where}: {field} {value!r} has leading or trailing whitespace")
    return value


def _integer(
    entry: Mapping[str, Any],
    field: str,
    where: str,
    environ: Mapping[str, str],
    *,
    minimum: int,
    maximum: int | None = None,
) -> int | None:
    """Read an integer field that may also be a digit string (e.g. after ``${PORT:-5000}``)."""
    value = entry.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        text = _substitute(value, f"{where}: {field}", environ).strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise SettingsError(f"{where}: {field} must be an integer, got {text!r}")
        number = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise SettingsError(f"{where}: {field} must be an integer, got {_type_name(value)}")
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise SettingsError(f"{where}: {field} must be {bounds}, got {number}")
    return number


def _check_fields(entry: Any, allowed: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(entry, dict):
        raise SettingsError(f"{where}: expected a mapping of fields, got {_type_name(entry)}")
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise SettingsError(
            f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})"
        )
    return entry


def _parse_extra(raw: Any, where: str, environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Accept ``conn_extra`` as a YAML mapping or a JSON object string (both Astro forms).

    A JSON string is decoded *before* substitution so that substituted values containing
    quotes or backslashes cannot break the JSON.
    """
    field_where = f"{where}: conn_extra"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"{field_where} is a string but not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{field_where} must be a mapping (or a JSON object string), got {_type_name(raw)}")
    bad_keys = [k for k in raw if not isinstance(k, str)]
    if bad_keys:
        raise SettingsError(f"{field_where}: keys must be strings, got {_type_name(bad_keys[0])} key")
    extra = _substitute_tree(raw, field_where, environ)
    try:
        json.dumps(extra)
    except (TypeError, ValueError):
        raise SettingsError(f"{field_where} must be JSON-serializable (dates and other YAML types are not)") from None
    return extra or None


def _parse_connection(entry: Any, where: str, environ: Mapping[str, str]) -> ConnectionSpec:
    from airflow.models.connection import CONN_ID_MAX_LEN, sanitize_conn_id

    entry = _check_fields(entry, _CONNECTION_FIELDS, where)
    conn_id = _required_name(entry, "conn_id", where, environ)
    if sanitize_conn_id(conn_id) != conn_id:
        raise SettingsError(
            f"{where}: conn_id {conn_id!r} is invalid (1-{CONN_ID_MAX_LEN} characters from letters, "
            r"digits and #!()-.:/\_)"
        )
    uri = _optional_str(entry, "conn_uri", where, environ)
    if uri is not None:
        mixed = [f for f in _URI_EXCLUSIVE_FIELDS if entry.get(f) is not None]
        if mixed:
            raise SettingsError(f"{where}: conn_uri cannot be combined with {', '.join(mixed)}")
        if not uri.strip():
            raise SettingsError(f"{where}: conn_uri is empty")
        return ConnectionSpec(conn_id=conn_id, uri=uri)
    conn_type = _optional_str(entry, "conn_type", where, environ)
    if conn_type is None or not conn_type.strip():
        raise SettingsError(f"{where}: missing conn_type (or give conn_uri)")
    return ConnectionSpec(
        conn_id=conn_id,
        conn_type=conn_type.strip(),
        host=_optional_str(entry, "conn_host", where, environ),
        schema=_optional_str(entry, "conn_schema", where, environ),
        login=_optional_str(entry, "conn_login", where, environ),
        password=_optional_str(entry, "conn_password", where, environ),
        port=_integer(entry, "conn_port", where, environ, minimum=1, maximum=65535),
        extra=_parse_extra(entry.get("conn_extra"), where, environ),
    )


def _parse_pool(entry: Any, where: str, environ: Mapping[str, str]) -> PoolSpec:
    entry = _check_fields(entry, _POOL_FIELDS, where)
    name = _required_name(entry, "pool_name", where, environ)
    slots = _integer(entry, "pool_slot", where, environ, minimum=-1)  # -1 = unlimited (Airflow)
    if slots is None:
        raise SettingsError(f"{where}: missing pool_slot")
    return PoolSpec(name=name, slots=slots, description=_optional_str(entry, "pool_description", where, environ))


def _parse_variable(entry: Any, where: str, environ: Mapping[str, str]) -> VariableSpec:
    entry = _check_fields(entry, _VARIABLE_FIELDS, where)
    key = _required_name(entry, "variable_name", where, environ)
    if "variable_value" not in entry or entry["variable_value"] is None:
        raise SettingsError(f"{where}: missing variable_value (use \"\" for an empty string)")
    raw = _substitute_tree(entry["variable_value"], f"{where}: variable_value", environ)
    if isinstance(raw, str):
        value = raw
    else:
        # Non-strings are stored as JSON so Variable.get(..., deserialize_json=True) round-trips.
        try:
            value = json.dumps(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: variable_value must be JSON-serializable, got {_type_name(raw)}") from None
    return VariableSpec(key=key, value=value)


_PARSERS = {
    "connections": (_parse_connection, "conn_id", lambda s: s.conn_id),
    "pools": (_parse_pool, "pool_name", lambda s: s.name),
    "variables": (_parse_variable, "variable_name", lambda s: s.key),
}


def parse_settings(
    data: Any,
    *,
    source: str = "airflow_settings.yaml",
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Validate already-decoded YAML ``data`` and resolve its env placeholders.

    :param data: the decoded YAML document.
    :param source: name used as the prefix of every error message.
    :param environ: variables for ``${...}`` substitution; defaults to ``os.environ``.
    :raises SettingsError: on the first problem found, naming entry and field.
    """
    env = os.environ if environ is None else environ
    if not isinstance(data, dict) or "airflow" not in data:
        raise SettingsError(f"{source}: expected a top-level 'airflow' mapping, got {_type_name(data)}")
    unknown_top = sorted(str(k) for k in data if k != "airflow")
    if unknown_top:
        raise SettingsError(f"{source}: unknown top-level key(s) {', '.join(unknown_top)} (allowed: airflow)")
    airflow = data["airflow"]
    if airflow is None:
        airflow = {}
    if not isinstance(airflow, dict):
        raise SettingsError(f"{source}: airflow must be a mapping, got {_type_name(airflow)}")
    unknown = sorted(str(k) for k in airflow if k not in _SECTIONS)
    if unknown:
        raise SettingsError(
            f"{source}: airflow: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(_SECTIONS)})"
        )

    parsed: dict[str, tuple[Any, ...]] = {}
    for section in _SECTIONS:
        entries = airflow.get(section)
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise SettingsError(f"{source}: airflow.{section} must be a list, got {_type_name(entries)}")
        parse, id_field, key_of = _PARSERS[section]
        specs = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            where = f"{source}: airflow.{section}[{index}]"
            spec = parse(entry, where, env)
            key = key_of(spec)
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
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SettingsError(f"{source}: invalid YAML{position}: {getattr(exc, 'problem', None) or exc}") from None
    return parse_settings(data, source=source, environ=environ)


# --------------------------------------------------------------------------- applying


def _new_counts() -> dict[str, int]:
    return {"created": 0, "updated": 0, "unchanged": 0}


def _extra_dict(extra: str | None) -> dict[str, Any]:
    return json.loads(extra) if extra else {}


def _warn_if_shadowed(kind: str, name: str, env_var: str) -> None:
    # The env secrets backend is consulted before the metastore, so the row we write is not
    # what tasks will see. That is intended in docker-compose, but worth saying out loud.
    if env_var in os.environ:
        log.warning(
            "%s %r is also defined by environment variable %s, which takes precedence over "
            "the metadata DB row written from the settings file",
            kind,
            name,
            env_var,
        )


def _apply_connections(specs: tuple[ConnectionSpec, ...], session: Session) -> dict[str, int]:
    from sqlalchemy import select

    from airflow.models import Connection

    counts = _new_counts()
    for spec in specs:
        if spec.uri is not None:
            try:
                desired = Connection(conn_id=spec.conn_id, uri=spec.uri)
            except Exception as exc:  # Airflow raises AirflowException/ValueError on bad URIs
                raise SettingsError(f"connection {spec.conn_id!r}: invalid conn_uri ({type(exc).__name__})") from None
        else:
            desired = Connection(
                conn_id=spec.conn_id,
                conn_type=spec.conn_type,
                host=spec.host,
                schema=spec.schema,
                login=spec.login,
                password=spec.password,
                port=spec.port,
                extra=json.dumps(spec.extra) if spec.extra else None,
            )
        _warn_if_shadowed("connection", spec.conn_id, f"AIRFLOW_CONN_{spec.conn_id.upper()}")
        existing = session.scalar(select(Connection).where(Connection.conn_id == spec.conn_id))
        if existing is None:
            session.add(desired)
            counts["created"] += 1
            continue
        changed = False
        for attr in ("conn_type", "host", "schema", "login", "password", "port"):
            if getattr(existing, attr) != getattr(desired, attr):
                setattr(existing, attr, getattr(desired, attr))
                changed = True
        # Compare extras as objects: key order and JSON whitespace are not changes.
        if _extra_dict(existing.extra) != _extra_dict(desired.extra):
            existing.extra = desired.extra
            changed = True
        counts["updated" if changed else "unchanged"] += 1
    return counts


def _apply_pools(specs: tuple[PoolSpec, ...], session: Session) -> dict[str, int]:
    from sqlalchemy import select

    from airflow.models import Pool

    counts = _new_counts()
    for spec in specs:
        existing = session.scalar(select(Pool).where(Pool.pool == spec.name))
        if existing is None:
            session.add(
                Pool(pool=spec.name, slots=spec.slots, description=spec.description, include_deferred=False)
            )
            counts["created"] += 1
            continue
        changed = False
        if existing.slots != spec.slots:
            existing.slots = spec.slots
            changed = True
        if (existing.description or None) != (spec.description or None):
            existing.description = spec.description
            changed = True
        counts["updated" if changed else "unchanged"] += 1
    return counts


def _apply_variables(specs: tuple[VariableSpec, ...], session: Session) -> dict[str, int]:
    from sqlalchemy import select

    from airflow.models import Variable

    counts = _new_counts()
    for spec in specs:
        _warn_if_shadowed("variable", spec.key, f"AIRFLOW_VAR_{spec.key.upper()}")
        existing = session.scalar(select(Variable).where(Variable.key == spec.key))
        if existing is None:
            session.add(Variable(key=spec.key, val=spec.value))
            counts["created"] += 1
        elif existing.val != spec.value:
            existing.val = spec.value  # the synonym re-encrypts with the configured Fernet key
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    return counts


def _apply(settings: Settings, session: Session) -> dict[str, dict[str, int]]:
    result = {
        "connections": _apply_connections(settings.connections, session),
        "pools": _apply_pools(settings.pools, session),
        "variables": _apply_variables(settings.variables, session),
    }
    session.flush()
    return result


def load_settings(
    path: str | Path,
    *,
    session: Session | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, int]]:
    """Upsert the connections, pools and variables of ``path`` into the metadata DB.

    :param path: an Astro-CLI-schema ``airflow_settings.yaml``.
    :param session: an Airflow ORM session. When given, changes are flushed but the commit
        is left to the caller (as with Airflow's ``provide_session``); when omitted, a
        session is created and committed, or rolled back entirely on error.
    :param environ: variables for ``${...}`` substitution; defaults to ``os.environ``.
    :return: ``{"connections": {"created": n, "updated": n, "unchanged": n}, "pools": {...},
        "variables": {...}}``.
    :raises SettingsError: if the file is invalid; nothing is written in that case.
    """
    settings = read_settings(path, environ=environ)  # validate everything before any write
    if session is not None:
        return _apply(settings, session)

    from airflow.utils.session import create_session

    with create_session() as new_session:
        return _apply(settings, new_session)


def _summary(source: str, counts: Mapping[str, Mapping[str, int]]) -> str:
    parts = [
        f"{section} {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
        for section, c in counts.items()
    ]
    return f"{source}: " + "; ".join(parts)


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
    print(_summary(args.path.name, counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
