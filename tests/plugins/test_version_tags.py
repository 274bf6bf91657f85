"""Registry tidiness: a model version carries the few tags people filter on, its MLflow run
carries the lineage, and every reader finds a tag on either (version first).

Real MLflow server and moto S3; two weeks are trained and promoted with the task functions,
so the first version goes through the whole promote -> demote life cycle.
"""

from __future__ import annotations

import datetime as dt

import pytest
from mlflow import MlflowClient

from include.demo import data as demo_data
from include.retrainer import registry, steps
from include.retrainer.layout import ModelLayout, RunLayout

START = dt.datetime(2026, 6, 7, tzinfo=dt.UTC)  # a Sunday
WEEK = dt.timedelta(weeks=1)

pytestmark = pytest.mark.timeout(600)

#: Training tags that must live on the run only (they stay readable there).
MOVED = {
    "train_data_uri",
    "train_data_etag",
    "holdout_uri",
    "model_card_uri",
    "config_hash",
    "code_version",
    "train_rows",
    "dvc_md5",
    "dvc_remote",
    "dvc_path",
    "partitions",
    "partitions_sha256",
    "dag_id",
    "model",
}
#: What a version trained, promoted and then replaced carries: training keys kept on the
#: version, the promotion's and the demotion's.
EXPECTED_AFTER_DEMOTION = {
    "dag_run_id",
    "data_interval_start",
    "data_interval_end",
    "validated",
    "idempotency_key",
    "lineage_uri",
    "decision",
    "promoted_at",
    "promoted_by_run",
    "replaced_version",
    "fencing_token",
    "replaced_by",
    "demoted_at",
}
MAX_VERSION_TAGS = 14


def _ctx(week: int) -> steps.RunContext:
    start = START + week * WEEK
    return steps.RunContext(
        dag_id="retrain_tags", run_id=f"scheduled__w{week}", interval_start=start, interval_end=start + WEEK
    )


def _retrain_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k[len(registry.TAG) :]: v for k, v in tags.items() if k.startswith(registry.TAG)}


def test_versions_carry_few_tags_and_runs_carry_the_lineage(mlflow_server, s3, store, churn_spec_factory):
    spec = churn_spec_factory(data__prefix="vtags")
    demo_data.write_partitions(
        s3, "raw-data", "vtags", demo_data.generate_churn(START.date(), days=14, rows_per_day=1200)
    )
    client = MlflowClient(mlflow_server)

    # Week 0: cold start, promoted.
    first = steps.train_challenger(store, mlflow_server, spec, _ctx(0))
    v1 = first.challenger_version
    steps.promote_challenger(
        store,
        mlflow_server,
        spec,
        _ctx(0),
        steps.ComparisonResult(challenger_version=v1, champion_version=None, reasons=["cold start: no champion"]),
    )

    # Week 1: the gate reads the champion's training data through its run's tags.
    fetched = steps.fetch_batch(store, spec, _ctx(1))
    drift = steps.detect_drift(store, mlflow_server, spec, _ctx(1), fetched.batch_uri)
    assert drift.code != "no_lineage", drift.reason
    assert drift.champion_version == v1
    report = store.get_json(RunLayout.of(spec, _ctx(1).interval_start, _ctx(1).interval_end).drift)
    assert report["reference_uri"] == first.train_uri
    # The champion's drift reference was summarised once and stored for later runs.
    summaries = ModelLayout.of(spec).reference_summaries
    bucket, _, key_prefix = summaries.removeprefix("s3://").partition("/")
    stored = s3.list_objects_v2(Bucket=bucket, Prefix=f"{key_prefix}/v{v1}/").get("Contents", [])
    assert len(stored) == 1 and stored[0]["Key"].endswith(".npz")

    second = steps.train_challenger(store, mlflow_server, spec, _ctx(1))
    v2 = second.challenger_version
    assert v2 != v1
    promoted = steps.promote_challenger(
        store,
        mlflow_server,
        spec,
        _ctx(1),
        steps.ComparisonResult(challenger_version=v2, champion_version=v1, reasons=["v2 better"]),
    )
    assert promoted.promoted is True

    version = client.get_model_version(spec.name, v1)
    on_version = _retrain_tags(version.tags)
    assert len(on_version) <= MAX_VERSION_TAGS, sorted(on_version)
    assert set(on_version) == EXPECTED_AFTER_DEMOTION
    assert on_version["replaced_by"] == v2 and on_version["decision"] == "promoted"

    # The run holds every moved tag, with the values the lineage record in S3 holds
    # (written by the same task, an independent copy).
    on_run = _retrain_tags(client.get_run(version.run_id).data.tags)
    assert MOVED <= set(on_run), sorted(MOVED - set(on_run))
    lineage = store.get_json(on_version["lineage_uri"])
    assert on_run["train_data_uri"] == lineage["train_data_uri"] == first.train_uri
    assert on_run["train_data_etag"] == lineage["train_data_etag"]
    assert on_run["holdout_uri"] == lineage["holdout_uri"]
    assert on_run["dvc_md5"] == lineage["dvc"]["md5"]
    assert on_run["partitions_sha256"] == lineage["partitions_sha256"]
    assert (on_run["config_hash"], on_run["code_version"]) == (lineage["config_hash"], lineage["code_version"])
    assert int(on_run["partitions"]) == len(lineage["partitions"])
    assert on_run["idempotency_key"] == on_version["idempotency_key"] == lineage["idempotency_key"]
    # Why it was promoted: on the run (the version's description says it in prose).
    assert on_run["decision_reasons"] == "cold start: no champion"
    assert "decision_reasons" not in on_version

    # The idempotency look-up still finds the version by its tag: a re-run reuses it.
    assert steps.train_challenger(store, mlflow_server, spec, _ctx(0)).reused is True


class _CountingClient:
    """An MLflow client that counts run reads (the helper must read a run once per version)."""

    def __init__(self, client: MlflowClient):
        self._client, self.get_run_calls = client, 0

    def get_run(self, run_id: str):
        self.get_run_calls += 1
        return self._client.get_run(run_id)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def test_lineage_tag_prefers_the_version_then_its_run(mlflow_server):
    """Versions registered before the split keep their tags: those win over the run's."""
    import uuid

    client = MlflowClient(mlflow_server)
    name = f"vtags_{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    exp = client.create_experiment(f"exp_{name}")
    run = client.create_run(exp, tags={"retrain.train_data_uri": "s3://b/run.parquet", "retrain.dvc_md5": "abc"})
    client.set_terminated(run.info.run_id)
    old = client.create_model_version(
        name, "s3://b/m", run_id=run.info.run_id, tags={"retrain.train_data_uri": "s3://b/version.parquet"}
    )
    orphan = client.create_model_version(name, "s3://b/m2")  # registered by hand, no run

    counting = _CountingClient(client)
    info = registry.get_version(counting, name, str(old.version))
    assert info.lineage_tag(counting, "train_data_uri") == "s3://b/version.parquet"
    assert counting.get_run_calls == 0  # found on the version: the run is not read
    assert info.lineage_tag(counting, "dvc_md5") == "abc"
    assert info.lineage_tag(counting, "dvc_remote", "none") == "none"
    assert info.lineage_tag(counting, "dvc_md5") == "abc"
    assert counting.get_run_calls == 1  # read once, then cached on this VersionInfo
    assert info.tag("dvc_md5") is None  # .tag() stays the version's own tags

    bare = registry.get_version(client, name, str(orphan.version))
    assert bare.run_id in (None, "")
    assert bare.lineage_tag(client, "train_data_uri") is None
