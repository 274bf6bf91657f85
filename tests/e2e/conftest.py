"""Helpers to run a model's DAG for one data interval with ``dag.test()`` and read the outcome."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from include.retrainer.config import load_spec
from include.retrainer.layout import RunLayout
from include.retrainer.storage import split_uri


def week(start: dt.date) -> tuple[dt.datetime, dt.datetime]:
    s = dt.datetime.combine(start, dt.time(0), dt.UTC)
    return s, s + dt.timedelta(weeks=1)


class DagRunner:
    """Builds the DAG through the factory (as dags/retrain_models.py does) and runs weeks."""

    def __init__(self, spec_path: Path, s3):
        from retrain_ops.dag_factory import build_retrain_dag

        self.spec = load_spec(spec_path)
        self.dag = build_retrain_dag(self.spec)
        self.s3 = s3

    def run(self, start: dt.date, **conf):
        """Run the week starting at ``start``: a manual run covers the last complete
        interval before its logical date, so the logical date is the week's end."""
        from retrain_ops.dag_factory import run_params

        # Always pass every param: in-process dag.test() keeps the last run's values on the
        # DAG's Param objects, so an omitted param would silently inherit them.
        conf = {**{k: p.value for k, p in run_params().items()}, **conf}
        dag_run = self.dag.test(logical_date=week(start)[1], run_conf=conf)
        return dag_run, self.summary(start)

    def summary(self, start: dt.date) -> dict:
        bucket, key = split_uri(RunLayout.of(self.spec, *week(start)).summary)
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def artefact(self, uri: str) -> bytes:
        bucket, key = split_uri(uri)
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def task_states(self, dag_run) -> dict[str, str]:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


@pytest.fixture(scope="session")
def stack(moto_server, s3, mlflow_server, airflow_db):
    """Every real service the DAG talks to."""
    return {"s3_endpoint": moto_server, "s3": s3, "mlflow": mlflow_server}
