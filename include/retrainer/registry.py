"""MLflow registry operations: get-or-create, idempotent registration, aliases, tags.

Aliases, not stages (deprecated): ``champion`` is the production model, ``challenger``
the latest candidate. ``set_registered_model_alias`` moves an alias in one call, so there
is never a moment without a champion. Versions are compared as strings (REST returns
'2', a direct store returns 2).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG = "retrain."  # prefix of every tag we write

#: Training tags (``retrain.<key>``) that stay on the model version: what people filter the
#: registry's version list on, what ``find_versions`` looks up (idempotency) and what rollback
#: checks (``validated``). The other training tags (data URIs and ETags, DVC object, config
#: hash, code version, row and partition counts) go on the MLflow run only: read them with
#: :meth:`VersionInfo.lineage_tag`. Promotion, rejection and rollback add their state tags
#: (``decision``, ``replaced_version``, ``promoted_at``, fencing tokens, ...) to the version later.
VERSION_TAG_KEYS = frozenset(
    {
        "dag_run_id",
        "data_interval_start",
        "data_interval_end",
        "validated",
        "idempotency_key",
        "lineage_uri",
        "forced_by_run",
    }
)

# Types our pipelines are built from; skops refuses to load anything not listed at save time.
_TRUSTED_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class RegistryError(RuntimeError):
    pass


class RegistryUnavailableError(RegistryError):
    """The MLflow tracking server could not be reached (down, restarting, wrong address).

    Transient by nature: Airflow retries the task (the name is not one of the operators'
    permanent errors), and every registry write here is idempotent, so a retry after the
    server is back converges.
    """


#: Bounded client-side retries for MLflow HTTP calls. MLflow's defaults (7 retries, backoff
#: factor 2) keep a task blocked about 4 minutes per call while the server is down; here the
#: client gives up after ~7 s and the task's own retries (exponential backoff, configured per
#: model) are the outer layer, as for S3. A value already in the environment wins.
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}

# Connection-level failures (nothing answered), as they appear in MLflow's
# "API request to <url> failed with exception ..." message or a requests exception.
_UNREACHABLE = (
    ("connection refused", "connection refused"),
    ("failed to establish a new connection", "no connection could be established"),
    ("nameresolutionerror", "host name does not resolve"),
    ("name or service not known", "host name does not resolve"),
    ("connection reset", "connection reset"),
    ("connection aborted", "connection dropped"),
    ("remotedisconnected", "connection dropped"),
)
_URL = re.compile(r"API request to (https?://[^/\s]+)")

_F = TypeVar("_F", bound=Callable[..., Any])


def _configure_mlflow_client() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for key, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def using_server(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``tracking_uri`` for a block, then restore what was there.

    ``mlflow.set_tracking_uri``/``set_registry_uri`` are process-global and also export
    MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI to the environment; left behind, they would send
    later clients (and child processes) to this server.
    """
    import mlflow

    # MLflow has no public scoped setter (its own `_use_tracking_uri` is private): read the
    # previous values through the public getters and put them back with the public setters.
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    previous_registry = saved_env["MLFLOW_REGISTRY_URI"]
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None clears it (setter handles it)
        mlflow.set_registry_uri(previous_registry)  # type: ignore[arg-type]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client_for(tracking_uri: str) -> Any:
    _configure_mlflow_client()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def unavailable_error(exc: BaseException, operation: str, server: str | None = None) -> RegistryUnavailableError | None:
    """A one-line ``RegistryUnavailableError`` when ``exc`` means "the server did not answer".

    MLflow reports a dead server as a generic ``MlflowException`` whose message buries
    "Connection refused" in a urllib3 repr; this names the server, the operation and the
    cause instead. Returns None for any other error (HTTP errors, not-found, bad input).
    """
    text = str(exc)
    lowered = text.lower()
    reason = next((why for marker, why in _UNREACHABLE if marker in lowered), None)
    if reason is None:
        return None
    found = _URL.search(text)
    server = found.group(1) if found else (server or "(unknown address)")
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRY_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    return RegistryUnavailableError(
        f"MLflow tracking server {server} is unreachable ({reason}) while {operation}, after {retries} "
        "client retries: check that the server is running and that the MLflow connection points at it"
    )


def _server_of(args: tuple, kwargs: dict) -> str | None:
    """The tracking URI of a call, from its client or ``tracking_uri`` argument."""
    uri = kwargs.get("tracking_uri")
    if uri is None and args:
        first = args[0]
        uri = first if isinstance(first, str) else getattr(first, "tracking_uri", None)
    return str(uri) if uri else None


def _reports_unavailable(operation: str) -> Callable[[_F], _F]:
    """Turn "server unreachable" failures of a registry call into ``RegistryUnavailableError``."""

    def wrap(func: _F) -> _F:
        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except RegistryError:
                raise
            except Exception as exc:
                translated = unavailable_error(exc, operation, _server_of(args, kwargs))
                if translated is None:
                    raise
                raise translated from exc

        return call  # type: ignore[return-value]

    return wrap


def _is_not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "") or ""
    return "RESOURCE_DOES_NOT_EXIST" in code or "NOT_FOUND" in code or "not found" in str(exc).lower()


@dataclass
class VersionInfo:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]
    aliases: list[str]

    @classmethod
    def of(cls, mv: Any) -> VersionInfo:
        return cls(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            tags=dict(mv.tags or {}),
            aliases=list(getattr(mv, "aliases", []) or []),
        )

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    #: The producing run's tags, read once per VersionInfo by :meth:`lineage_tag` (so a call
    #: site reading several keys of one version asks the server once).
    _run_tags: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def tag(self, key: str, default: str | None = None) -> str | None:
        """A ``retrain.<key>`` tag of the version itself (state tags: decision, aliases' history)."""
        return self.tags.get(TAG + key, default)

    def lineage_tag(self, client: Any, key: str, default: str | None = None) -> str | None:
        """``retrain.<key>`` from the version's tags, else from the tags of the run that logged it.

        Versions carry only the few tags people filter on (:data:`VERSION_TAG_KEYS`); lineage
        details (training data URI/ETag, DVC object, config hash, ...) live on the MLflow run.
        Versions registered before that split still carry them: the version's tag wins. The run
        is read once per ``VersionInfo``; a version without a run, or whose run is gone, gives
        ``default``.
        """
        value = self.tags.get(TAG + key)
        if value is not None:
            return value
        if self._run_tags is None:
            self._run_tags = _run_tags_of(client, self.run_id)
        return self._run_tags.get(TAG + key, default)


@_reports_unavailable("reading a training run's tags")
def _run_tags_of(client: Any, run_id: str | None) -> dict[str, str]:
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.tags or {})
    except Exception as exc:
        if _is_not_found(exc):  # run purged by `mlflow gc`: the lineage is simply unknown
            return {}
        raise


@_reports_unavailable("reading an alias")
def get_alias(client: Any, name: str, alias: str) -> VersionInfo | None:
    try:
        return VersionInfo.of(client.get_model_version_by_alias(name, alias))
    except Exception as exc:  # MlflowException / RestException
        if _is_not_found(exc):
            return None
        raise


@_reports_unavailable("reading a model version")
def get_version(client: Any, name: str, version: str) -> VersionInfo | None:
    try:
        return VersionInfo.of(client.get_model_version(name, str(version)))
    except Exception as exc:
        if _is_not_found(exc):
            return None
        raise


@_reports_unavailable("creating the registered model")
def ensure_registered_model(client: Any, name: str, description: str = "") -> None:
    try:
        client.get_registered_model(name)
    except Exception as exc:
        if not _is_not_found(exc):
            raise
        try:
            client.create_registered_model(name, description=description or None, tags={TAG + "managed": "true"})
        except Exception as exc2:  # created concurrently by another run
            if "RESOURCE_ALREADY_EXISTS" not in (getattr(exc2, "error_code", "") or ""):
                raise


@_reports_unavailable("creating the experiment")
def ensure_experiment(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    try:
        return client.create_experiment(name, tags={TAG + "managed": "true"})
    except Exception:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


@_reports_unavailable("searching model versions")
def find_versions(client: Any, name: str, **tags: str) -> list[VersionInfo]:
    flt = " and ".join([f"name='{name}'"] + [f"tag.`{TAG}{k}`='{v}'" for k, v in tags.items()])
    found = client.search_model_versions(flt)
    return sorted((VersionInfo.of(v) for v in found), key=lambda v: int(v.version))


def find_finished_run(client: Any, experiment_id: str, idempotency_key: str) -> Any | None:
    """A training run for this key that finished and logged its model (crash before registration)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG}idempotency_key` = '{idempotency_key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=5,
    )
    for run in runs:
        if run.data.tags.get(TAG + "model_uri"):
            return run
    return None


def close_abandoned_runs(client: Any, experiment_id: str, idempotency_key: str) -> int:
    """Mark runs of an earlier attempt that died mid-training (still RUNNING) as FAILED."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG}idempotency_key` = '{idempotency_key}' and attributes.status = 'RUNNING'",
    )
    for run in runs:
        client.set_tag(run.info.run_id, TAG + "abandoned", "true")
        client.set_terminated(run.info.run_id, status="FAILED")
    return len(runs)


def trusted_types(model: Any) -> list[str]:
    """Types skops must trust to load this model; refuse anything outside sklearn/numpy/scipy."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    bad = [t for t in untrusted if not t.startswith(_TRUSTED_TYPE_PREFIXES)]
    if bad:
        raise RegistryError(f"model contains types outside sklearn/numpy/scipy that will not be trusted: {bad}")
    return untrusted


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model (inferring them costs 5-9 s per model)."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "numpy", "scipy", "pandas", "skops", "mlflow")]


@_reports_unavailable("logging and registering the model")
def log_and_register(
    *,
    tracking_uri: str,
    name: str,
    experiment_name: str,
    run_name: str,
    pipeline: Any,
    input_example: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    run_tags: dict[str, str],
    version_tags: dict[str, str],
    artifacts: dict[str, Any],
    idempotency_key: str,
    description: str = "",
) -> VersionInfo:
    """Log the fitted pipeline in a new MLflow run and register it as a new version.

    Idempotent on ``idempotency_key``: an existing version for the key is returned as it
    is; a finished run that logged the model but crashed before registration is registered
    instead of training a duplicate.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    client = client_for(tracking_uri)
    ensure_registered_model(client, name, description)
    existing = find_versions(client, name, idempotency_key=idempotency_key)
    if existing:
        return existing[0]
    experiment_id = ensure_experiment(client, experiment_name)
    run = find_finished_run(client, experiment_id, idempotency_key)
    if run is None:
        close_abandoned_runs(client, experiment_id, idempotency_key)
        tags = {**run_tags, TAG + "idempotency_key": idempotency_key}
        with (
            using_server(tracking_uri),
            mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as active,
        ):
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            with tempfile.TemporaryDirectory() as tmp:
                for fname, obj in artifacts.items():
                    path = os.path.join(tmp, fname)
                    with open(path, "w") as fh:
                        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
                    mlflow.log_artifact(path)
            signature = infer_signature(input_example, pipeline.predict(input_example))
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=signature,
                input_example=input_example,
                pip_requirements=pip_requirements(),
                skops_trusted_types=trusted_types(pipeline),
            )
            mlflow.set_tags({TAG + "model_uri": info.model_uri, TAG + "model_id": info.model_id})
            run_id = active.info.run_id
            model_uri, model_id = info.model_uri, info.model_id
    else:
        run_id, model_uri = run.info.run_id, run.data.tags[TAG + "model_uri"]
        model_id = run.data.tags.get(TAG + "model_id")

    # A concurrent attempt may have registered meanwhile: check once more before creating.
    existing = find_versions(client, name, idempotency_key=idempotency_key)
    if existing:
        return existing[0]
    # The version's own run_id field names the run (and its lineage tags): no copy as a tag.
    tags = {**version_tags, TAG + "idempotency_key": idempotency_key}
    mv = client.create_model_version(
        name, source=model_uri, run_id=run_id, tags=tags, description=description or None, model_id=model_id
    )
    return VersionInfo.of(client.get_model_version(name, str(mv.version)))


@_reports_unavailable("loading a model version")
def load_model(tracking_uri: str, name: str, version: str) -> Any:
    """Load a version from our registry (never from an arbitrary URI)."""
    import mlflow
    import mlflow.sklearn

    if not str(version).isdigit():
        raise RegistryError(f"refusing to load model version {version!r} of '{name}': not a registry version number")
    _configure_mlflow_client()
    with using_server(tracking_uri):
        return mlflow.sklearn.load_model(f"models:/{name}/{version}")


@_reports_unavailable("tagging a model version")
def set_tags(client: Any, name: str, version: str, tags: dict[str, Any]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value)[:5000])


@_reports_unavailable("tagging an MLflow run")
def set_run_tags(client: Any, run_id: str, tags: dict[str, Any]) -> None:
    """Tags on a (finished) run: where a version's details live (see VERSION_TAG_KEYS)."""
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value)[:5000])


@_reports_unavailable("moving an alias")
def move_alias(client: Any, name: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(name, alias, str(version))


# -- descriptions: what a person reads in the registry UI -----------------------------------
#: MLflow keeps descriptions as text; longer ones make the UI unwieldy.
MAX_DESCRIPTION = 4000


@_reports_unavailable("describing a model version")
def describe_version(client: Any, name: str, version: str, text: str) -> None:
    """Set a version's description (shown on its page and in the versions table)."""
    client.update_model_version(name, str(version), description=str(text)[:MAX_DESCRIPTION])


@_reports_unavailable("describing a registered model")
def describe_model(client: Any, name: str, text: str, tags: dict[str, str] | None = None) -> None:
    """Set the registered model's description, plus model-level tags (shown in the model list)."""
    client.update_registered_model(name, description=str(text)[:MAX_DESCRIPTION])
    for key, value in (tags or {}).items():
        client.set_registered_model_tag(name, key, str(value)[:5000])


@_reports_unavailable("removing an alias")
def drop_alias_if_on(client: Any, name: str, alias: str, version: str) -> bool:
    """Remove ``alias`` only if it still points at ``version`` (another run may have moved it)."""
    current = get_alias(client, name, alias)
    if current is None or current.version != str(version):
        return False
    client.delete_registered_model_alias(name, alias)
    return True
