"""Browser addresses of what a run made: MLflow pages and the object store's browser.

One documented mechanism per deployment, environment variables read by every Airflow
component (worker, API server):

- ``RETRAIN_MLFLOW_PUBLIC_URL``: the MLflow UI as a person's browser reaches it (e.g.
  ``https://mlflow.example.com``). Unset: no MLflow link is made. The tracking URI that
  workers use is often an internal address a browser cannot reach, so it is never
  used as a silent fallback.
- ``RETRAIN_REPORTS_PUBLIC_URL``: an HTTP(S) browser of the artefacts bucket, such that
  ``<url>/<bucket>/<key>`` opens ``s3://<bucket>/<key>`` (an S3 website endpoint, a
  MinIO console proxy, a CDN). Unset: artefacts are linked through MLflow only.

Pure functions, no I/O: a link is only built from ids that a task reported as existing.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

MLFLOW_ENV = "RETRAIN_MLFLOW_PUBLIC_URL"
REPORTS_ENV = "RETRAIN_REPORTS_PUBLIC_URL"


@dataclass(frozen=True)
class PublicUrls:
    mlflow: str | None = None
    reports: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> PublicUrls:
        env = os.environ if environ is None else environ
        return cls(mlflow=_base(env.get(MLFLOW_ENV), MLFLOW_ENV), reports=_base(env.get(REPORTS_ENV), REPORTS_ENV))

    def mlflow_run(self, run_id: str | None, experiment_id: str | None = None) -> str | None:
        if not self.mlflow or not run_id:
            return None
        run = _q(run_id)
        # The UI redirects /runs/<id> to the run's page; with the experiment it is one hop fewer.
        if experiment_id:
            return f"{self.mlflow}/#/experiments/{_q(experiment_id)}/runs/{run}"
        return f"{self.mlflow}/#/runs/{run}"

    def mlflow_artifact(self, run_id: str | None, experiment_id: str | None, path: str) -> str | None:
        """The run page with ``path`` open in its artifact viewer (which renders HTML)."""
        if not self.mlflow or not run_id or not experiment_id:
            return None
        return f"{self.mlflow}/#/experiments/{_q(experiment_id)}/runs/{_q(run_id)}/artifacts/{_q(path, safe='/')}"

    def model_version(self, name: str | None, version: str | int | None) -> str | None:
        if not self.mlflow or not name or version in (None, ""):
            return None
        return f"{self.mlflow}/#/models/{_q(name)}/versions/{_q(str(version))}"

    def model(self, name: str | None) -> str | None:
        if not self.mlflow or not name:
            return None
        return f"{self.mlflow}/#/models/{_q(name)}"

    def object(self, uri: str | None) -> str | None:
        """``s3://bucket/key`` through the configured bucket browser."""
        if not self.reports or not uri or not uri.startswith("s3://"):
            return None
        return f"{self.reports}/{_q(uri[len('s3://') :], safe='/')}"


def _q(value: str, safe: str = "") -> str:
    return urllib.parse.quote(str(value), safe=safe)


def _base(value: str | None, name: str) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip().rstrip("/")
    scheme = urllib.parse.urlsplit(value).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{name}={value!r}: expected an http(s):// address a browser can open")
    return value
