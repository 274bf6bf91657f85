"""Training is idempotent per (model, interval, config, code): re-runs and crash-retries
converge on one model version."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer import steps

ROOT = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 5, 3, tzinfo=dt.UTC)  # a Sunday
END = START + dt.timedelta(weeks=1)

pytestmark = pytest.mark.timeout(600)

TRAIN_SCRIPT = """
import datetime as dt, sys
from include.retrainer import steps
from include.retrainer.config import load_spec
from scripts.services import s3_client
from include.retrainer.storage import ObjectStore
spec = load_spec(sys.argv[1])
start = dt.datetime.fromisoformat(sys.argv[4]); end = dt.datetime.fromisoformat(sys.argv[5])
ctx = steps.RunContext(dag_id=spec.dag_id, run_id="crashy", interval_start=start, interval_end=end)
print(steps.train_challenger(ObjectStore(s3_client(sys.argv[2])), sys.argv[3], spec, ctx).to_xcom())
"""


def _seed(s3, prefix: str) -> None:
    frames = demo_data.generate_churn(START.date(), days=7, rows_per_day=1500)
    demo_data.write_partitions(s3, "raw-data", prefix, frames)


def _ctx(spec) -> steps.RunContext:
    return steps.RunContext(dag_id=spec.dag_id, run_id="r1", interval_start=START, interval_end=END)


def test_rerun_reuses_the_version(mlflow_server, moto_server, s3, store, churn_spec_factory):
    spec = churn_spec_factory(data__prefix="idem_a")
    _seed(s3, "idem_a")
    first = steps.train_challenger(store, mlflow_server, spec, _ctx(spec))
    again = steps.train_challenger(store, mlflow_server, spec, _ctx(spec))
    assert first.reused is False and again.reused is True
    assert again.challenger_version == first.challenger_version
    client = MlflowClient(mlflow_server)
    assert len(client.search_model_versions(f"name='{spec.name}'")) == 1
    # The re-run leaves the version's files as they were: same URIs, same ETags.
    assert store.head(first.train_uri).etag == store.head(again.train_uri).etag


def test_worker_killed_mid_training_then_retry_converges(mlflow_server, moto_server, s3, store, churn_spec_factory):
    spec = churn_spec_factory(data__prefix="idem_b")
    _seed(s3, "idem_b")
    client = MlflowClient(mlflow_server)
    key = steps.idempotency_key(spec, _ctx(spec))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            TRAIN_SCRIPT,
            spec.source_path,
            moto_server,
            mlflow_server,
            START.isoformat(),
            END.isoformat(),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # Kill the "worker" as soon as its MLflow run exists, i.e. in the middle of training/logging.
    deadline = time.monotonic() + 180
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        exp = client.get_experiment_by_name(steps.experiment_name(spec))
        if exp is not None and client.search_runs([exp.experiment_id], f"tags.`retrain.idempotency_key` = '{key}'"):
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert killed, f"the training process ended before it could be killed:\n{proc.stdout.read().decode()[-2000:]}"

    retry = steps.train_challenger(store, mlflow_server, spec, _ctx(spec))
    versions = client.search_model_versions(f"name='{spec.name}' and tag.`retrain.idempotency_key`='{key}'")
    assert [str(v.version) for v in versions] == [retry.challenger_version]
    runs = client.search_runs(
        [client.get_experiment_by_name(steps.experiment_name(spec)).experiment_id],
        f"tags.`retrain.idempotency_key` = '{key}'",
    )
    statuses = sorted(r.info.status for r in runs)
    assert "RUNNING" not in statuses, statuses  # the killed attempt's run was closed as FAILED
    assert str(client.get_model_version_by_alias(spec.name, "challenger").version) == retry.challenger_version
    # And once more: the same end state.
    assert steps.train_challenger(store, mlflow_server, spec, _ctx(spec)).challenger_version == retry.challenger_version


def test_a_forced_rerun_never_overwrites_what_the_earlier_version_points_to(
    mlflow_server, moto_server, s3, store, churn_spec_factory
):
    spec = churn_spec_factory(data__prefix="idem_c")
    _seed(s3, "idem_c")
    first = steps.train_challenger(store, mlflow_server, spec, _ctx(spec))
    first_card = store.get_json_or_none(first.model_card_uri)
    first_etags = {uri: store.head(uri).etag for uri in (first.train_uri, first.holdout_uri, first.lineage_uri)}
    # A labelling fix lands in the raw data, then the interval is re-run with force_retrain.
    fixed = demo_data.generate_churn(START.date(), days=7, rows_per_day=1500, seed=99)
    demo_data.write_partitions(s3, "raw-data", "idem_c", fixed)
    forced_ctx = steps.RunContext(
        dag_id=spec.dag_id, run_id="forced", interval_start=START, interval_end=END, params={"force_retrain": True}
    )
    forced = steps.train_challenger(store, mlflow_server, spec, forced_ctx)
    assert forced.challenger_version != first.challenger_version and forced.train_uri != first.train_uri
    assert store.head(forced.train_uri).etag != first_etags[first.train_uri]  # it did train on the fixed data
    # The first version's tags still point to the files it was trained and judged on, unchanged.
    client = MlflowClient(mlflow_server)
    tags = client.get_model_version(spec.name, first.challenger_version).tags
    run_tags = client.get_run(first.run_id).data.tags
    assert {**run_tags, **tags}["retrain.model_card_uri"] == first.model_card_uri
    assert {uri: store.head(uri).etag for uri in first_etags} == first_etags
    assert store.get_json_or_none(first.model_card_uri) == first_card
    # A plain re-run of the interval (cleared task, backfill) reuses the first version and does
    # not rewrite its files from the changed raw data.
    again = steps.train_challenger(store, mlflow_server, spec, _ctx(spec))
    assert again.reused and again.challenger_version == first.challenger_version
    assert (again.train_uri, again.holdout_uri, again.model_card_uri) == (
        first.train_uri,
        first.holdout_uri,
        first.model_card_uri,
    )
    assert (again.train_rows, again.holdout_rows, again.window_weeks) == (
        first.train_rows,
        first.holdout_rows,
        first.window_weeks,
    )
    assert {uri: store.head(uri).etag for uri in first_etags} == first_etags
