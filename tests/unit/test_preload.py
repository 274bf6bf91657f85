"""The scheduler's preload of the tasks' libraries: which modules, for which process, and that a
task forked after it can still use them (fork safety is checked by forking, not assumed)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from include.retrainer.preload import celery_worker, preload, scheduler_forks_tasks, task_imports

ROOT = Path(__file__).resolve().parents[2]
REAL_ROOTS = [ROOT / "include" / "retrainer", ROOT / "plugins" / "retrain_ops"]


def test_task_imports_reads_every_import_statement_including_those_inside_functions(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(
        textwrap.dedent(
            """
            import json, numpy as np
            from include.retrainer import config
            from . import sibling
            from retrain_ops.hooks import S3Hook
            import airflow.sdk
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pandas_stubs import Frame
            else:
                import yaml
            try:
                import orjson
            except ImportError:
                orjson = None

            def step():
                import pandas as pd
                from sklearn.metrics import roc_auc_score
                import mlflow.sklearn
                return pd, roc_auc_score
            """
        )
    )
    (tmp_path / "pkg" / "broken.py").write_text("def oops(:\n    import scipy\n")
    found = task_imports([tmp_path])
    assert found.required == ("mlflow.sklearn", "numpy", "pandas", "sklearn.metrics", "yaml")
    assert found.optional == ("orjson",)  # only under `except ImportError`; pandas_stubs is for mypy


def test_task_imports_of_the_real_code_cover_the_heavy_libraries():
    names = task_imports(REAL_ROOTS).all
    for needed in ("pandas", "mlflow", "great_expectations", "skops.io", "pyarrow.parquet", "boto3"):
        assert needed in names
    assert any(n.startswith("sklearn.") for n in names) and any(n.startswith("scipy.") for n in names)
    assert not [n for n in names if n.split(".")[0] in {"include", "retrain_ops", "airflow", "os", "json"}]


@pytest.mark.parametrize(
    ("argv", "executors", "method", "expected"),
    [
        (["/venv/bin/airflow", "scheduler"], "LocalExecutor", "fork", True),
        (["airflow", "scheduler", "--num-runs", "5"], "airflow.executors.local_executor.LocalExecutor", "fork", True),
        (["airflow", "scheduler"], "CeleryExecutor,LocalExecutor", "fork", True),
        (["airflow", "scheduler"], "LocalExecutor;team_a=CeleryExecutor", "fork", True),
        (["airflow", "scheduler"], "CeleryExecutor", "fork", False),  # its tasks run on the Celery workers
        (["airflow", "scheduler"], "LocalExecutor", "spawn", False),  # fresh interpreters inherit nothing
        (["airflow", "scheduler"], "LocalExecutor", "forkserver", False),
        (["airflow", "triggerer"], "LocalExecutor", "fork", False),
        (["airflow", "dag-processor"], "LocalExecutor", "fork", False),
        (["airflow", "dags", "test", "scheduler"], "LocalExecutor", "fork", False),
        (["python", "-m", "pytest"], "LocalExecutor", "fork", False),
    ],
)
def test_only_a_local_executor_scheduler_that_forks_preloads(argv, executors, method, expected):
    assert scheduler_forks_tasks(argv, executors, method) is expected


def test_not_on_macos_where_the_task_supervisor_execs_a_fresh_interpreter():
    assert not scheduler_forks_tasks(["airflow", "scheduler"], "LocalExecutor", "fork", platform="darwin")
    assert scheduler_forks_tasks(["airflow", "scheduler"], "LocalExecutor", "fork", platform="linux")


def test_preload_records_a_module_that_fails_and_imports_the_rest():
    result = preload(["json", "no_such_module_xyz", "colorsys"], optional=["no_such_optional_xyz", "uuid"])
    assert result.imported == ("json", "colorsys", "uuid")
    assert list(result.failed) == ["no_such_module_xyz"]
    assert result.skipped == ("no_such_optional_xyz",)
    assert "ModuleNotFoundError" in result.failed["no_such_module_xyz"]
    text = result.describe()
    assert "not importable" in text and "no_such_module_xyz" in text and "not installed: no_such_optional_xyz" in text


def test_preload_leaves_the_process_as_it_was(tmp_path, monkeypatch):
    """A library that warns, logs, re-points an existing logger and wraps stdout while it is
    imported (as skops, GX, MLflow and DVC do) leaves no trace but its own new logger."""
    (tmp_path / "noisy_lib_xyz.py").write_text(
        textwrap.dedent(
            """
            import io, logging, sys, warnings
            warnings.warn("noisy import", DeprecationWarning)
            logging.getLogger("noisy_lib_xyz").info("import-time chatter")
            existing = logging.getLogger("existing_app_xyz")
            existing.handlers[:] = [logging.StreamHandler(io.StringIO())]
            existing.setLevel(logging.CRITICAL)
            existing.propagate = False
            sys.stdout = io.StringIO()
            mine = logging.getLogger("noisy_lib_xyz.own")
            mine.setLevel(logging.ERROR)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    existing = logging.getLogger("existing_app_xyz")
    handler = logging.NullHandler()
    existing.handlers[:] = [handler]
    existing.setLevel(logging.INFO)
    stdout = sys.stdout
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = preload(["noisy_lib_xyz"])
    assert result.imported == ("noisy_lib_xyz",)
    assert not [w for w in caught if "noisy import" in str(w.message)]
    assert sys.stdout is stdout
    assert existing.handlers == [handler] and existing.level == logging.INFO and existing.propagate
    assert existing.isEnabledFor(logging.INFO)
    assert logging.getLogger("noisy_lib_xyz.own").level == logging.ERROR  # new loggers as the import made them
    assert logging.root.manager.disable == logging.NOTSET


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["airflow", "celery", "worker", "--queues", "default"], True),
        (["/venv/bin/airflow", "celery", "worker"], True),
        (["airflow", "celery", "flower"], False),
        (["airflow", "scheduler"], False),
        (["celery", "-A", "app", "worker"], False),
    ],
)
def test_only_an_airflow_celery_worker_counts_as_one(argv, expected):
    assert celery_worker(argv) is expected


CHILD = """
import io, os, signal, sys
sys.path[:0] = [{root!r}, {plugins!r}]
from include.retrainer.preload import preload, task_imports
found = task_imports([{inc!r}, {plg!r}])
result = preload(found.required, found.optional)
print("FAILED", sorted(result.failed), flush=True)
print("THREADS", list(result.new_threads), flush=True)
before = set(sys.modules)
pid = os.fork()
if pid == 0:
    signal.alarm(240)  # a deadlock inherited through the fork ends the child, not the test run
    import numpy as np, pandas as pd, pyarrow.parquet as pq
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    import mlflow, great_expectations as gx, skops.io as sio
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=list("abc"))
    y = (X["a"] + rng.normal(size=400) > 0).astype(int)
    buf = io.BytesIO(); X.to_parquet(buf); X = pd.read_parquet(io.BytesIO(buf.getvalue()))
    auc = roc_auc_score(y, HistGradientBoostingClassifier(max_iter=20).fit(X, y).predict_proba(X)[:, 1])
    model = sio.loads(sio.dumps(LogisticRegression().fit(X, y)))
    forest = RandomForestClassifier(n_estimators=20, n_jobs=2).fit(X, y)  # joblib/OpenMP threads in the child
    assert forest.predict(X).shape == (400,)
    assert auc > 0.7 and model.predict(X).shape == (400,)
    ctx = gx.get_context(mode="ephemeral")
    print("CHILD_OK", sorted(m for m in set(sys.modules) - before if "." not in m), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("CHILD_STATUS", status, flush=True)
"""


def test_a_task_forked_after_the_preload_runs_with_the_inherited_libraries():
    """The real list of modules imports without error and starts no thread (a thread alive at
    fork time would be missing in the task, with any lock it held stuck); a forked child then
    trains, serialises and validates with them without importing another heavy library."""
    script = CHILD.format(root=str(ROOT), plugins=str(ROOT / "plugins"), inc=str(REAL_ROOTS[0]), plg=str(REAL_ROOTS[1]))
    # OMP_NUM_THREADS unset: the child runs the native thread pools with their default size.
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "False"})
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr[-3000:]
    assert "FAILED []" in out, out
    assert "THREADS []" in out, out
    assert "CHILD_STATUS 0" in out, out + run.stderr[-3000:]
    # The packages the child had to import itself (submodules of inherited ones don't count).
    imported_in_child = next(line for line in out.splitlines() if line.startswith("CHILD_OK"))
    for heavy in ("pandas", "sklearn", "mlflow", "great_expectations", "pyarrow", "skops", "scipy", "numpy"):
        assert f"'{heavy}'" not in imported_in_child, imported_in_child
