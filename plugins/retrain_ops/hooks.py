"""Hooks: one per external system, each building its client lazily."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

#: S3 clients built in this process, by connection fingerprint (see ``ObjectStoreHook.store``).
_S3_CLIENTS: dict[str, tuple[Any, Any]] = {}
_S3_CLIENTS_LOCK = threading.Lock()


def connection_fingerprint(conn_id: str, conn: Any) -> str:
    """A digest of everything a connection says (type, address, login, secret, extra).

    Two lookups with the same fingerprint describe the same endpoint and identity; any edit
    of the connection (a rotated secret, another endpoint) gives another fingerprint.
    """
    fields = [conn_id] + [
        None if conn is None else getattr(conn, name, None)
        for name in ("conn_type", "host", "schema", "login", "password", "port", "extra")
    ]
    return hashlib.sha256(json.dumps(fields, default=str, sort_keys=True).encode()).hexdigest()


def clear_s3_client_cache() -> None:
    """Forget the S3 clients built so far (the next ``store`` builds a fresh one)."""
    with _S3_CLIENTS_LOCK:
        _S3_CLIENTS.clear()


def _forget_after_fork() -> None:
    """A forked child never reuses its parent's clients (their connection pools are the
    parent's), nor a lock another thread of the parent may have held at the fork."""
    global _S3_CLIENTS_LOCK
    _S3_CLIENTS_LOCK = threading.Lock()
    _S3_CLIENTS.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def calling_operator(frame: Any, target_function_name: str = "execute") -> str | None:
    """The class name of the innermost ``target_function_name`` method on the call stack.

    What the Amazon provider's hooks compute for the "Caller/..." part of their user agent, but
    walking ``f_back`` instead of ``inspect.stack()``, which reads the source file of every frame:
    0.17 s of each task's first S3 client, measured in a forked task process (most of the
    client's build time there). A frame of that name without ``self`` is passed over (the
    provider gives up there and says "Unknown"; none occurs on our tasks' paths).
    """
    while frame is not None:
        if frame.f_code.co_name == target_function_name and "self" in frame.f_locals:
            return type(frame.f_locals["self"]).__name__
        frame = frame.f_back
    return None


def calling_executor(frame: Any) -> str | None:
    """The provider's fallback when no operator is on the stack: in the first frame whose module
    holds a class named ``BaseExecutor``, the last class that module defines or imports."""
    while frame is not None:
        classes = [name for name, obj in frame.f_globals.items() if isinstance(obj, type)]
        if "BaseExecutor" in classes:
            return classes[-1]
        frame = frame.f_back
    return None


def _s3_hook_class() -> type:
    """The provider's S3Hook with the same caller in its user agent, found without reading source."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    global _S3_HOOK_CLASS
    if _S3_HOOK_CLASS is None:

        class RetrainS3Hook(S3Hook):
            def _get_caller(self, target_function_name: str = "execute") -> str:
                try:  # as the provider's: a user-agent detail never fails the client
                    frame = sys._getframe(1)
                    caller = calling_operator(frame, target_function_name)
                    if caller == "BaseSensorOperator":  # as the provider: then whatever called poke
                        caller = calling_operator(frame, "poke")
                    return caller or calling_executor(frame) or "Unknown"
                except Exception:
                    return "Unknown"

        _S3_HOOK_CLASS = RetrainS3Hook
    return _S3_HOOK_CLASS


_S3_HOOK_CLASS: type | None = None


class MlflowHook(BaseHook):
    """MLflow tracking server / model registry.

    The connection (type ``http``) holds the server address: ``schema`` (http/https),
    ``host`` and ``port``; a host that already contains ``://`` is used as it is. Login and
    password, when set, become MLflow basic-auth credentials for the client.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "http"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def tracking_uri(self) -> str:
        import os

        conn = self.get_connection(self.mlflow_conn_id)
        host = (conn.host or "").rstrip("/")
        if not host:
            raise ValueError(f"connection '{self.mlflow_conn_id}' has no host: set it to the MLflow server address")
        if conn.login:
            os.environ["MLFLOW_TRACKING_USERNAME"] = conn.login
            os.environ["MLFLOW_TRACKING_PASSWORD"] = conn.password or ""
        if "://" in host:
            return host
        scheme = conn.schema or "http"
        port = f":{conn.port}" if conn.port else ""
        return f"{scheme}://{host}{port}"

    @cached_property
    def client(self) -> Any:
        from include.retrainer.registry import client_for

        return client_for(self.tracking_uri)


class ObjectStoreHook(BaseHook):
    """S3-compatible object storage (AWS, MinIO, moto) through the Amazon provider's S3Hook.

    The ``aws`` connection's extra ``endpoint_url`` points at MinIO or moto; without it,
    AWS itself. Its extra ``dvc_remote`` (a bucket or ``s3://bucket/prefix``), when set, is
    where training data is versioned with DVC (see ``lineage.dvc_remote_for``). Returns our
    ``ObjectStore`` wrapper around the boto3 client.
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    conn_type = "aws"
    hook_name = "Retrain object store"

    def __init__(self, aws_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id

    @cached_property
    def store(self) -> Any:
        """Our ``ObjectStore`` on this connection's S3 client.

        Building a client through the provider costs 0.1-0.5 s (a boto3 session, the S3
        service model and the provider's user-agent probe, which walks the call stack), and
        every task builds one or two stores: the client is therefore built once per process
        and connection fingerprint and shared (boto3 clients are thread-safe; a task process
        of a scheduler runs one task, ``airflow dags test`` runs them all). Any change of
        the connection gives a new fingerprint, hence a new client. The credentials handed
        to DVC are read afresh for every store, so temporary ones are never older than the
        store that carries them.
        """
        from include.retrainer.storage import ObjectStore

        hook, client = self._shared_client()
        return ObjectStore(
            client,
            dvc_remote=self.dvc_remote_from(hook.conn_config.extra_config),
            credentials=hook.get_credentials(),
        )

    def _shared_client(self) -> tuple[Any, Any]:
        """(configured S3Hook, its boto3 client) for this connection, built once per process."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.aws_conn_id)
        except AirflowNotFoundException:  # the provider then falls back to boto3's default chain
            conn = None
        key = connection_fingerprint(self.aws_conn_id, conn)
        with _S3_CLIENTS_LOCK:
            found = _S3_CLIENTS.get(key)
            if found is None:
                found = _S3_CLIENTS[key] = self._build_client()
            return found

    def _build_client(self) -> tuple[Any, Any]:
        from botocore.config import Config

        hook_class = _s3_hook_class()

        # Bounded retries with backoff inside boto3; Airflow task retries sit on top.
        config = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        # The connection's extra ``config_kwargs`` (the Amazon provider's documented botocore
        # settings) override these defaults key by key; an explicit hook config would otherwise
        # make the provider ignore them silently.
        configured = hook_class(aws_conn_id=self.aws_conn_id).conn_config.botocore_config
        if configured is not None:
            config = config.merge(configured)
        hook = hook_class(aws_conn_id=self.aws_conn_id, config=config)
        return hook, hook.get_conn()

    @staticmethod
    def dvc_remote_from(extra: Any) -> str | None:
        """The connection extra's ``dvc_remote``, or None when the connection sets none."""
        value = extra.get("dvc_remote") if isinstance(extra, dict) else None
        text = str(value).strip() if value is not None else ""
        return text or None
