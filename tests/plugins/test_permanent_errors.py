"""Permanent errors fail a task at once; everything else goes to Airflow's retries.

Decided by type (``PermanentError``), not by class name. The DAG below runs through
Airflow itself (``dag.test()``, in-process, real metadata DB), so the states asserted are
the ones Airflow's task runner chose: a plain ValueError from a library puts the task
``up_for_retry`` and it runs again; a PermanentError fails it on the first try.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from include.retrainer.errors import PermanentError

ROOT = Path(__file__).resolve().parents[2]

DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from include.retrainer.config import load_spec
from include.retrainer.fetch import NoPartitionsError
from retrain_ops.operators import RetrainBaseOperator

SPEC = load_spec({spec_path!r})
EVENTS = {events_path!r}


def record(kind):
    def callback(context):
        with open(EVENTS, "a") as out:
            out.write(f"{{kind}} {{context['ti'].task_id}} try={{context['ti'].try_number}}\\n")
    return callback


class Raises(RetrainBaseOperator):
    def __init__(self, *, error: str, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def run_step(self, context, ctx):
        if self.error == "library":
            import numpy as np  # a ValueError raised inside a library, as pandas/sklearn/numpy do
            np.array([1, 2]).reshape(3)
        raise NoPartitionsError("no partition of the interval exists (a retry cannot create one)")


with DAG("errors_by_type", schedule=None, start_date=dt.datetime(2026, 1, 4, tzinfo=dt.timezone.utc),
         catchup=False, default_args={{"retries": 1, "retry_delay": dt.timedelta(seconds=0),
                       "on_retry_callback": record("retry"), "on_failure_callback": record("failure")}}):
    Raises(task_id="library_value_error", spec=SPEC, error="library")
    Raises(task_id="permanent_error", spec=SPEC, error="permanent")
"""


def test_every_permanent_error_class_is_a_permanent_error_and_keeps_its_old_base():
    from include.retrainer.config import ModelSpecError
    from include.retrainer.fetch import BadPartitionError, BatchTooLargeError, NoPartitionsError
    from include.retrainer.steps import DataValidationFailed
    from include.retrainer.training import TrainingError
    from include.retrainer.validation import SuiteError

    for cls, old_base in [
        (ModelSpecError, ValueError),
        (SuiteError, ValueError),
        (DataValidationFailed, RuntimeError),
        (NoPartitionsError, RuntimeError),
        (BadPartitionError, RuntimeError),
        (BatchTooLargeError, RuntimeError),
        (TrainingError, RuntimeError),
    ]:
        assert issubclass(cls, PermanentError) and issubclass(cls, old_base), cls
    assert not issubclass(ValueError, PermanentError)
    from include.retrainer.locking import LeaseLost, LockTimeout

    assert not issubclass(LeaseLost, PermanentError) and not issubclass(LockTimeout, PermanentError)


def test_library_value_error_is_retried_permanent_error_fails_at_once(airflow_db, moto_server, tmp_path, monkeypatch):
    import yaml

    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    raw["name"] = "errors_by_type"
    spec_path = tmp_path / "errors_by_type.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    dags = tmp_path / "dags"
    dags.mkdir()
    events = tmp_path / "events.txt"
    (dags / "errors_by_type.py").write_text(
        textwrap.dedent(DAG_FILE.format(spec_path=str(spec_path), events_path=str(events)))
    )
    # dag.test() looks the DAG up in a DAG bundle: a bundle holding only this file, listed first.
    monkeypatch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        json.dumps(
            [
                {
                    "name": "errors-by-type",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(dags)},
                },
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {},
                },
            ]
        ),
    )
    from airflow.dag_processing.dagbag import DagBag

    dag_run = DagBag(dag_folder=str(dags)).dags["errors_by_type"].test()

    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    happened = sorted(events.read_text().splitlines())
    # Airflow's own callbacks say what its task runner decided for each try.
    assert happened == [
        "failure library_value_error try=2",  # retried once (retries=1), then failed for good
        "failure permanent_error try=1",  # no retry at all
        "retry library_value_error try=1",  # the library's ValueError: up_for_retry
    ], happened
    assert (tis["library_value_error"].try_number, tis["library_value_error"].state) == (2, "failed")
    assert (tis["permanent_error"].try_number, tis["permanent_error"].state) == (1, "failed")
