"""Hooks: one per external system, each building its client lazily."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook


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
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from botocore.config import Config

        from include.retrainer.storage import ObjectStore

        # Bounded retries with backoff inside boto3; Airflow task retries sit on top.
        config = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        # The connection's extra ``config_kwargs`` (the Amazon provider's documented botocore
        # settings) override these defaults key by key; an explicit hook config would otherwise
        # make the provider ignore them silently.
        base = S3Hook(aws_conn_id=self.aws_conn_id)
        configured = base.conn_config.botocore_config
        if configured is not None:
            config = config.merge(configured)
        hook = S3Hook(aws_conn_id=self.aws_conn_id, config=config)
        return ObjectStore(
            hook.get_conn(),
            dvc_remote=self.dvc_remote_from(base.conn_config.extra_config),
            credentials=hook.get_credentials(),
        )

    @staticmethod
    def dvc_remote_from(extra: Any) -> str | None:
        """The connection extra's ``dvc_remote``, or None when the connection sets none."""
        value = extra.get("dvc_remote") if isinstance(extra, dict) else None
        text = str(value).strip() if value is not None else ""
        return text or None
