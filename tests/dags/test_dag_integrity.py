"""DAG integrity: the dags/ folder parses cleanly, quickly and lightly, and isolates bad specs.

* The shipped specs are parsed by a real DagBag (in-process, once per module) and every DAG
  is checked for the house rules: owner, tags, retries, docs, typed params, verb_noun task
  ids, the retraining chain, pools and a data-interval timetable.
* Parse timing (printed; the budget is judged by ``make bench``) and import hygiene run in a
  fresh interpreter, so nothing this test session already imported (pandas, sklearn, ...)
  can hide a heavy import at DAG-parse time.
* Scenarios with other model folders (``RETRAIN_MODELS_DIR``) also run in a subprocess: a
  DagBag imports the DAG files and the project modules into ``sys.modules``, and a fresh
  interpreter per scenario is the only way to be sure nothing is shared between them.

None of this needs a metadata DB: a DagBag only collects DAG objects.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import CronDataIntervalTimetable, TriggerRule
from retrain_ops.dag_factory import build_retrain_dag

from include.demo.data import (
    TICKETS_CATEGORICAL,
    TICKETS_CLASSES,
    TICKETS_NUMERIC,
    TICKETS_TARGET,
    TICKETS_TIMESTAMP,
)
from include.retrainer.config import load_all, load_spec
from include.retrainer.tasks import RESULT_TASKS, RunParam, TaskId

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"
CHURN_YAML = REPO_ROOT / "include" / "models" / "churn.yaml"
CHURN_SUITE = REPO_ROOT / "include" / "suites" / "churn.json"
SETTINGS_YAML = REPO_ROOT / "airflow_settings.yaml"

#: Acceptance criterion: each DAG file parses in at most this much beyond Airflow's own import
#: (Airflow's import includes what the dag-processor pre-imports for the file).
PARSE_BUDGET_S = 0.050
PARSE_REPEATS = 10
#: Libraries that cost seconds to import; DAG parsing must never pull them in.
HEAVY_MODULES = ("mlflow", "sklearn", "great_expectations", "scipy", "statsmodels", "dvc", "pandas")

#: Task -> its direct upstream tasks, summarize_run excluded (checked separately). A task that
#: receives another's result as an XComArg also depends on it directly (detect_drift reads the
#: batch fetch_batch wrote; promote/reject read compare_models' result).
EXPECTED_UPSTREAM: dict[str, set[str]] = {
    TaskId.FETCH_BATCH: set(),
    TaskId.VALIDATE_BATCH: {TaskId.FETCH_BATCH},
    TaskId.DETECT_DRIFT: {TaskId.VALIDATE_BATCH, TaskId.FETCH_BATCH},
    TaskId.DECIDE_RETRAIN: {TaskId.DETECT_DRIFT},
    TaskId.TRAIN_CHALLENGER: {TaskId.DECIDE_RETRAIN},
    TaskId.SKIP_RETRAIN: {TaskId.DECIDE_RETRAIN},
    TaskId.COMPARE_MODELS: {TaskId.TRAIN_CHALLENGER},
    TaskId.DECIDE_PROMOTION: {TaskId.COMPARE_MODELS},
    TaskId.PROMOTE_CHALLENGER: {TaskId.DECIDE_PROMOTION, TaskId.COMPARE_MODELS},
    TaskId.REJECT_CHALLENGER: {TaskId.DECIDE_PROMOTION, TaskId.COMPARE_MODELS},
    # The grid's outcome rows, after the summary (docs/what-you-see.md).
    TaskId.DECIDE_OUTCOME: {TaskId.SUMMARIZE_RUN},
    TaskId.MARK_PROMOTED: {TaskId.DECIDE_OUTCOME},
    TaskId.MARK_REJECTED: {TaskId.DECIDE_OUTCOME},
    TaskId.MARK_SKIPPED_NO_DRIFT: {TaskId.DECIDE_OUTCOME},
    TaskId.MARK_SKIPPED_INSUFFICIENT_DATA: {TaskId.DECIDE_OUTCOME},
    TaskId.MARK_FORCED_RUN: {TaskId.DECIDE_OUTCOME},
}
#: Tasks after summarize_run (it waits for every other task).
OUTCOME_TASKS = {
    TaskId.DECIDE_OUTCOME,
    TaskId.MARK_PROMOTED,
    TaskId.MARK_REJECTED,
    TaskId.MARK_SKIPPED_NO_DRIFT,
    TaskId.MARK_SKIPPED_INSUFFICIENT_DATA,
    TaskId.MARK_FORCED_RUN,
}
EXPECTED_TASKS = {*EXPECTED_UPSTREAM, TaskId.SUMMARIZE_RUN}
#: verb_noun task ids; a new verb is a deliberate addition here, not an accident.
TASK_VERBS = {
    "fetch",
    "validate",
    "detect",
    "decide",
    "train",
    "skip",
    "compare",
    "approve",
    "promote",
    "reject",
    "summarize",
    "wait",
    "rollback",
    "mark",
}
TASK_ID_RE = re.compile(r"^(?P<verb>[a-z]+)_[a-z]+(?:_[a-z]+)*$")


# -- shared helpers -----------------------------------------------------------------


def subprocess_env(models_dir: Path | None = None) -> dict[str, str]:
    """The test session's Airflow env (set by conftest) plus the import paths Airflow adds."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")])
    env.pop("RETRAIN_MODELS_DIR", None)
    if models_dir is not None:
        env["RETRAIN_MODELS_DIR"] = str(models_dir)
    return env


_DAGBAG_SCRIPT = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
out = {"dag_ids": sorted(bag.dag_ids), "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    specs = {t.task_id: t.spec for t in dag.tasks if getattr(t, "spec", None) is not None}
    out["dags"][dag_id] = {
        "owner": dag.owner,
        "tags": sorted(dag.tags),
        "doc_md": dag.doc_md or "",
        "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        "spec_names": sorted({s.name for s in specs.values()}),
        "targets": sorted({s.features.target for s in specs.values()}),
        "features": sorted({tuple(s.features.feature_columns) for s in specs.values()}),
        "estimators": sorted({s.training.estimator for s in specs.values()}),
        "metrics": sorted({s.comparison.primary_metric for s in specs.values()}),
    }
with open(sys.argv[2], "w") as fh:
    json.dump(out, fh)
"""


def dagbag_in_subprocess(models_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Fill a DagBag over the repo's dags/ in a fresh interpreter with RETRAIN_MODELS_DIR set."""
    out = out_dir / "dagbag.json"
    proc = subprocess.run(
        [sys.executable, "-c", _DAGBAG_SCRIPT, str(DAGS_DIR), str(out)],
        env=subprocess_env(models_dir),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0 and out.is_file(), (
        f"DagBag subprocess failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return json.loads(out.read_text())


def churn_raw_with_absolute_suite(name: str = "churn") -> dict[str, Any]:
    """The shipped churn spec, renamed, with a suite path that works from any folder."""
    raw = yaml.safe_load(CHURN_YAML.read_text(encoding="utf-8"))
    raw["name"] = name
    raw["validation"]["suite"] = str(CHURN_SUITE)
    return raw


def write_spec(folder: Path, raw: dict[str, Any]) -> Path:
    path = folder / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


# -- the shipped specs, in-process --------------------------------------------------


@pytest.fixture(scope="module")
def dagbag() -> Iterator[DagBag]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RETRAIN_MODELS_DIR", raising=False)  # the shipped include/models/
        yield DagBag(dag_folder=str(DAGS_DIR))


@pytest.fixture(scope="module")
def churn_dag(dagbag: DagBag) -> Any:
    assert "retrain_churn" in dagbag.dags, f"retrain_churn missing; import errors: {dagbag.import_errors}"
    return dagbag.dags["retrain_churn"]


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}


def test_one_dag_per_shipped_spec(dagbag: DagBag, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAIN_MODELS_DIR", raising=False)
    specs, errors = load_all()
    assert errors == []
    assert "retrain_churn" in dagbag.dag_ids
    assert sorted(d for d in dagbag.dag_ids if d.startswith("retrain_")) == sorted(s.dag_id for s in specs)
    assert sorted(d for d in dagbag.dag_ids if d.startswith("rollback_")) == sorted(f"rollback_{s.name}" for s in specs)


def test_every_dag_follows_house_rules(dagbag: DagBag) -> None:
    assert dagbag.dags, "no DAGs parsed"
    for dag_id, dag in dagbag.dags.items():
        assert dag.owner and dag.owner != "airflow", f"{dag_id}: owner is {dag.owner!r}"
        assert dag.tags, f"{dag_id}: no tags"
        assert "retraining" in dag.tags or "rollback" in dag.tags, f"{dag_id}: tags {dag.tags}"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id}: doc_md is empty"
        assert dag.description, f"{dag_id}: no description"
        for task in dag.tasks:
            assert task.owner != "airflow", f"{dag_id}.{task.task_id}: owner is 'airflow'"
            assert task.retries >= 1, f"{dag_id}.{task.task_id}: retries={task.retries}"
            assert task.retry_delay.total_seconds() > 0, f"{dag_id}.{task.task_id}: no retry delay"


def test_every_dag_has_typed_force_retrain_param(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        if not dag_id.startswith("retrain_"):
            continue
        assert RunParam.FORCE_RETRAIN in dag.params, f"{dag_id}: params {list(dag.params)}"
        param = dag.params.get_param(RunParam.FORCE_RETRAIN)
        assert param.value is False, f"{dag_id}: force_retrain defaults to {param.value!r}"
        assert param.schema.get("type") == "boolean", f"{dag_id}: schema {param.schema}"
        assert param.description and len(param.description) > 20, f"{dag_id}: force_retrain has no description"
        # The schema really is enforced: the trigger form rejects a non-boolean.
        with pytest.raises(Exception, match="(?i)bool|type"):
            param.resolve("yes please")


def test_allow_promotion_param(churn_dag: Any) -> None:
    param = churn_dag.params.get_param(RunParam.ALLOW_PROMOTION)
    assert param.value is True
    assert param.schema.get("type") == "boolean"
    assert param.description


def test_task_ids_are_verb_noun(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        for task_id in dag.task_ids:
            m = TASK_ID_RE.match(task_id)
            assert m, f"{dag_id}.{task_id} is not verb_noun snake_case"
            assert m["verb"] in TASK_VERBS, (
                f"{dag_id}.{task_id}: '{m['verb']}' is not a known verb {sorted(TASK_VERBS)}"
            )


def test_retraining_chain(churn_dag: Any) -> None:
    assert set(churn_dag.task_ids) == EXPECTED_TASKS
    actual = {t.task_id: set(t.upstream_task_ids) for t in churn_dag.tasks if t.task_id != TaskId.SUMMARIZE_RUN}
    assert actual == EXPECTED_UPSTREAM


def test_summarize_run_waits_for_everything(churn_dag: Any) -> None:
    summary = churn_dag.get_task(TaskId.SUMMARIZE_RUN)
    assert summary.trigger_rule == TriggerRule.ALL_DONE
    assert set(summary.upstream_task_ids) == set(churn_dag.task_ids) - {TaskId.SUMMARIZE_RUN} - OUTCOME_TASKS
    assert summary.downstream_task_ids == {TaskId.DECIDE_OUTCOME}


def test_results_travel_as_xcomargs(churn_dag: Any) -> None:
    """Each consumer names its producer through an XComArg in a template field, not a task-id string."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    wiring = {
        (TaskId.VALIDATE_BATCH, "batch"): TaskId.FETCH_BATCH,
        (TaskId.DETECT_DRIFT, "batch"): TaskId.FETCH_BATCH,
        (TaskId.DECIDE_RETRAIN, "drift"): TaskId.DETECT_DRIFT,
        (TaskId.COMPARE_MODELS, "trained"): TaskId.TRAIN_CHALLENGER,
        (TaskId.DECIDE_PROMOTION, "comparison"): TaskId.COMPARE_MODELS,
        (TaskId.PROMOTE_CHALLENGER, "comparison"): TaskId.COMPARE_MODELS,
        (TaskId.REJECT_CHALLENGER, "comparison"): TaskId.COMPARE_MODELS,
        (TaskId.DECIDE_OUTCOME, "summary"): TaskId.SUMMARIZE_RUN,
    }
    for (task_id, field), producer in wiring.items():
        task = churn_dag.get_task(task_id)
        assert field in task.template_fields, f"{task_id}.{field} is not templated"
        value = getattr(task, field)
        assert isinstance(value, XComArg) and value.operator.task_id == producer, (task_id, field, value)
    summary = churn_dag.get_task(TaskId.SUMMARIZE_RUN)
    assert "results" in summary.template_fields
    assert {k: v.operator.task_id for k, v in summary.results.items()} == {t: t for t in RESULT_TASKS}


def test_pools(churn_dag: Any) -> None:
    assert churn_dag.get_task(TaskId.PROMOTE_CHALLENGER).pool == "model_promotion"
    assert churn_dag.get_task(TaskId.TRAIN_CHALLENGER).pool == "model_training"
    # Every non-default pool a task uses is declared in the settings the stack loads.
    settings = yaml.safe_load(SETTINGS_YAML.read_text(encoding="utf-8"))
    declared = {p["pool_name"] for p in settings["airflow"]["pools"]}
    used = {t.pool for t in churn_dag.tasks} - {"default_pool"}
    assert used <= declared, f"pools {sorted(used - declared)} not declared in {SETTINGS_YAML.name}"


def test_timetable_has_real_data_intervals(churn_dag: Any) -> None:
    assert isinstance(churn_dag.timetable, CronDataIntervalTimetable)
    assert churn_dag.timetable.expression == "0 0 * * 0"  # '@weekly' from churn.yaml
    assert str(churn_dag.start_date) == "2026-01-04 00:00:00+00:00"
    assert churn_dag.catchup is False
    assert churn_dag.max_active_runs == 1


def test_dag_survives_serialization(churn_dag: Any) -> None:
    """The scheduler and UI only see the serialized DAG: params and trigger rules must survive it."""
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.from_dict(DagSerialization.to_dict(churn_dag))
    assert set(restored.task_dict) == EXPECTED_TASKS
    assert restored.task_dict[TaskId.SUMMARIZE_RUN].trigger_rule == TriggerRule.ALL_DONE
    assert restored.task_dict[TaskId.PROMOTE_CHALLENGER].pool == "model_promotion"
    assert restored.params.get_param(RunParam.FORCE_RETRAIN).value is False


def test_wait_mode_adds_a_rescheduling_sensor(tmp_path: Path) -> None:
    """missing_data: wait puts a sensor (reschedule mode, spec's timings) in front of fetch_batch."""
    raw = churn_raw_with_absolute_suite()
    raw["data"].update(missing_data="wait", wait_timeout_minutes=90, wait_poke_minutes=10)
    dag = build_retrain_dag(load_spec(write_spec(tmp_path, raw)))

    sensor = dag.get_task(TaskId.WAIT_FOR_PARTITIONS)
    assert sensor.mode == "reschedule"
    assert sensor.poke_interval == 600
    assert sensor.timeout == 90 * 60
    assert sensor.retries >= 1
    assert dag.get_task(TaskId.FETCH_BATCH).upstream_task_ids == {TaskId.WAIT_FOR_PARTITIONS}
    assert TaskId.WAIT_FOR_PARTITIONS in dag.get_task(TaskId.SUMMARIZE_RUN).upstream_task_ids


def test_required_approval_adds_a_human_step_before_promotion(tmp_path: Path) -> None:
    """promotion.approval: required puts approve_promotion (HITL) between the gates and the move;
    the rest of the DAG is the one without approval."""
    raw = churn_raw_with_absolute_suite()
    raw["promotion"] = {
        "approval": "required",
        "approval_timeout": "2d",
        "on_timeout": "reject",
        "approvers": ["alice"],
    }
    dag = build_retrain_dag(load_spec(write_spec(tmp_path, raw)))
    from airflow.providers.standard.operators.hitl import HITLOperator

    approve = dag.get_task(TaskId.APPROVE_PROMOTION)
    assert isinstance(approve, HITLOperator)
    assert approve.options == ["Approve", "Reject"] and approve.defaults == ["Reject"]
    assert approve.response_timeout.total_seconds() == 2 * 24 * 3600
    assert approve.assigned_users == [{"id": "alice", "name": "alice"}]
    assert set(approve.params) == {"comment"}
    upstream = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks if t.task_id != TaskId.SUMMARIZE_RUN}
    # promote_challenger reads the comparison and the decision as XComArgs (direct dependencies).
    assert upstream == {
        **EXPECTED_UPSTREAM,
        TaskId.APPROVE_PROMOTION: {TaskId.DECIDE_PROMOTION},
        TaskId.PROMOTE_CHALLENGER: {TaskId.APPROVE_PROMOTION, TaskId.COMPARE_MODELS},
    }
    promote = dag.get_task(TaskId.PROMOTE_CHALLENGER)
    assert promote.approval.operator is approve and promote.comparison.operator.task_id == TaskId.COMPARE_MODELS
    assert dag.get_task(TaskId.DECIDE_PROMOTION).promote_task_id == TaskId.APPROVE_PROMOTION
    summary = dag.get_task(TaskId.SUMMARIZE_RUN)
    assert TaskId.APPROVE_PROMOTION in summary.upstream_task_ids
    assert summary.results[TaskId.APPROVE_PROMOTION].operator is approve
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert restored.task_dict[TaskId.APPROVE_PROMOTION].upstream_task_ids == {TaskId.DECIDE_PROMOTION}


# -- parse budget and import hygiene, in a fresh interpreter ------------------------

_PARSE_SCRIPT = r"""
import importlib, json, runpy, statistics, sys, time

t0 = time.perf_counter()
import airflow.sdk
from airflow.providers.standard.operators.empty import EmptyOperator
# Airflow's own (lazily loaded) names the DAG files use: still Airflow's import, not ours.
from airflow.sdk import (DAG, BaseBranchOperator, BaseOperator, BaseSensorOperator,
                         CronDataIntervalTimetable, Param, TriggerRule)
import airflow.sdk.exceptions
# What the dag-processor imports in its parent before forking a parse of each file
# ([dag_processor] parsing_pre_import_modules): the airflow.* modules the file names.
from airflow.utils.file import iter_airflow_imports
for path in sys.argv[2:]:
    for module in iter_airflow_imports(path):
        importlib.import_module(module)
baseline = time.perf_counter() - t0

heavy = json.loads(sys.argv[1])
heavy_at_baseline = sorted(m for m in heavy if m in sys.modules)
at_baseline = set(sys.modules)
project = ("include", "retrain_ops")
runs = {}
for path in sys.argv[2:]:
    times = []
    for i in range(%(repeats)d):
        # Forget the project's modules so every run pays for importing them again.
        for name in [m for m in sys.modules if m.split(".")[0] in project]:
            del sys.modules[name]
        t = time.perf_counter()
        runpy.run_path(path, run_name=f"dag_parse_{i}")
        times.append(time.perf_counter() - t)
    runs[path] = times
print("PARSE-RESULT " + json.dumps({
    "baseline_s": baseline,
    "load_1min": __import__("os").getloadavg()[0],
    "runs_s": runs,
    "heavy_at_baseline": heavy_at_baseline,
    "heavy_after_parse": sorted(m for m in heavy if m in sys.modules),
    # Top-level packages parsing added beyond Airflow and the project (for the log).
    "other_new_packages": sorted({m.split(".")[0] for m in set(sys.modules) - at_baseline}
                                 - {"airflow", *project}),
}))
""" % {"repeats": PARSE_REPEATS}  # noqa: UP031 - the script holds {} of its own


@pytest.fixture(scope="module")
def parse_figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    files = sorted(str(p) for p in DAGS_DIR.glob("*.py"))
    assert files, f"no DAG files in {DAGS_DIR}"
    env = subprocess_env()
    # Bytecode caching on, as in any deployment (this sandbox sets PYTHONDONTWRITEBYTECODE=1,
    # which would make every run compile the project's sources), in a private folder so no
    # __pycache__ lands in the checkout.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.mktemp("pycache"))
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, json.dumps(HEAVY_MODULES), *files],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"parse subprocess failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("PARSE-RESULT "))
    return json.loads(line.removeprefix("PARSE-RESULT "))


def test_each_dag_file_parses_in_a_fresh_interpreter_and_is_timed(parse_figures: dict[str, Any]) -> None:
    """Every DAG file parses on its own in a fresh interpreter; its parse time is printed.

    The 50 ms-per-file budget (issue #13) is a speed goal, so it lives in the benchmark
    (``make bench``, section "DAG parsing at fleet size", which prints the same measurement
    beside the code as it was), not in a timing assertion: on a shared machine the neighbours
    decide a wall-clock figure as much as the code does. Here: every file was parsed, ten
    times, and its figures are finite and positive (printed for the log, ``pytest -s``).
    """
    import math
    import statistics

    print(
        f"\nAirflow baseline import: {parse_figures['baseline_s'] * 1000:.0f} ms; "
        f"other packages imported by parsing: {parse_figures['other_new_packages'] or 'none'}"
    )
    assert sorted(Path(p).name for p in parse_figures["runs_s"]) == sorted(p.name for p in DAGS_DIR.glob("*.py"))
    for path, times in parse_figures["runs_s"].items():
        best, median = min(times), statistics.median(times)
        runs = ", ".join(f"{t * 1000:.1f}" for t in times)
        print(
            f"{Path(path).name}: best {best * 1000:.1f} ms, median {median * 1000:.1f} ms "
            f"(budget {PARSE_BUDGET_S * 1000:.0f} ms, judged by make bench; runs: {runs} ms)"
        )
        assert len(times) >= 3 and all(math.isfinite(t) and t > 0 for t in times), (path, times)


def test_parsing_imports_no_heavy_library(parse_figures: dict[str, Any]) -> None:
    assert parse_figures["heavy_after_parse"] == [], (
        f"DAG parsing imported {parse_figures['heavy_after_parse']} "
        f"(already loaded by Airflow itself: {parse_figures['heavy_at_baseline']}); "
        "import heavy libraries inside execute()/functions, not at module level"
    )


# -- other model folders, each in a fresh interpreter -------------------------------


def test_broken_spec_is_isolated_and_reported(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_spec(models, churn_raw_with_absolute_suite("alpha"))
    broken = churn_raw_with_absolute_suite("beta")
    broken["drift"]["alpha"] = 5
    write_spec(models, broken)

    result = dagbag_in_subprocess(models, tmp_path)

    assert "retrain_alpha" in result["dag_ids"]
    assert "retrain_beta" not in result["dag_ids"]
    assert "retrain_churn" not in result["dag_ids"]  # RETRAIN_MODELS_DIR replaces include/models
    errors = result["import_errors"]
    assert len(errors) == 1, errors
    [(path, text)] = errors.items()
    assert Path(path).name == "check_model_specs.py"
    assert str(models / "beta.yaml") in text
    assert "field 'drift.alpha'" in text
    assert "less than 1" in text
    assert "alpha.yaml" not in text  # the valid spec is not blamed
    # The valid model's DAG is complete, not a stub.
    assert set(result["dags"]["retrain_alpha"]["tasks"]) == EXPECTED_TASKS


def test_second_model_with_other_columns_gets_its_own_dag(tmp_path: Path) -> None:
    """A multi-class model with different columns and no suite file, through the same factory."""
    models = tmp_path / "models"
    models.mkdir()
    write_spec(models, churn_raw_with_absolute_suite("churn"))
    tickets = {
        "name": "tickets",
        "description": "Support-ticket priority (low / medium / high).",
        "owner": "support-ml",
        "tags": ["tickets"],
        "data": {"bucket": "raw-data", "prefix": "tickets", "format": "csv"},
        "features": {
            "target": TICKETS_TARGET,
            "timestamp": TICKETS_TIMESTAMP,
            "numeric": TICKETS_NUMERIC,
            "categorical": TICKETS_CATEGORICAL,
        },
        "validation": {
            "expectations": [
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": TICKETS_TARGET, "value_set": TICKETS_CLASSES},
                },
                {"type": "expect_column_values_to_be_between", "kwargs": {"column": "response_hours", "min_value": 0}},
            ]
        },
        "training": {
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "params": {"n_estimators": 20, "max_depth": 6, "random_state": 0},
        },
        "comparison": {"primary_metric": "accuracy", "floor": 0.4},
    }
    write_spec(models, tickets)

    result = dagbag_in_subprocess(models, tmp_path)

    assert result["import_errors"] == {}
    assert [d for d in result["dag_ids"] if d.startswith("retrain_")] == ["retrain_churn", "retrain_tickets"]
    dag = result["dags"]["retrain_tickets"]
    assert set(dag["tasks"]) == EXPECTED_TASKS
    assert {k: set(v) for k, v in dag["tasks"].items() if k != TaskId.SUMMARIZE_RUN} == EXPECTED_UPSTREAM
    assert dag["owner"] == "support-ml"
    assert dag["tags"] == ["retraining", "tickets"]
    assert "`tickets`" in dag["doc_md"] and "priority" in dag["doc_md"]
    # Every task of the tickets DAG carries the tickets spec, not churn's.
    assert dag["spec_names"] == ["tickets"]
    assert dag["targets"] == [TICKETS_TARGET]
    assert dag["features"] == [[*TICKETS_NUMERIC, *TICKETS_CATEGORICAL]]
    assert dag["estimators"] == ["sklearn.ensemble.RandomForestClassifier"]
    assert dag["metrics"] == ["accuracy"]
    assert result["dags"]["retrain_churn"]["targets"] == ["churned"]
