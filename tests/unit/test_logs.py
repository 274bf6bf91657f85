"""Quiet task logs: third-party deprecation floods muted, our own warnings kept, and one line
each for what a step read, decided and wrote."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import types
import warnings
from dataclasses import dataclass, field

import pytest

from include.retrainer import logs
from include.retrainer.tasks import RunParam, TaskId


@dataclass(frozen=True)
class Ctx:
    dag_id: str = "retrain_churn"
    run_id: str = "backfill__2026-11-08"
    interval_start: dt.datetime = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    interval_end: dt.datetime = dt.datetime(2026, 11, 8, tzinfo=dt.UTC)
    params: dict = field(default_factory=lambda: {RunParam.FORCE_RETRAIN: True, RunParam.QUARANTINE: None})
    try_number: int = 2


def _warn_from(module_name: str, category: type[Warning], message: str) -> None:
    """Raise a warning attributed to ``module_name`` (as if that library had warned)."""
    code = compile(f"import warnings\nwarnings.warn({message!r}, {category.__name__})", f"<{module_name}>", "exec")
    exec(code, {"__name__": module_name, category.__name__: category})


@pytest.fixture()
def restore_warnings(monkeypatch):
    saved = warnings.filters[:]
    for key in logs.QUIET_ENV:
        monkeypatch.delenv(key, raising=False)
    yield
    warnings.filters[:] = saved


def test_third_party_deprecations_are_muted_ours_are_kept(restore_warnings, monkeypatch):
    fake_tools = types.ModuleType("airflow.utils.deprecation_tools")

    class DeprecatedImportWarning(FutureWarning):
        pass

    fake_tools.DeprecatedImportWarning = DeprecatedImportWarning
    monkeypatch.setitem(sys.modules, "airflow.utils.deprecation_tools", fake_tools)
    logs.quiet_third_party(force=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        logs.quiet_third_party(force=True)  # filters are installed on top of "default"
        _warn_from("mlflow.models.signature", FutureWarning, "mlflow internals")
        _warn_from("great_expectations.core", DeprecationWarning, "gx internals")
        _warn_from("skops.io._audit", DeprecatedImportWarning, "The `airflow.x` attribute is deprecated.")
        _warn_from("include.retrainer.steps", DeprecationWarning, "ours")
        _warn_from("sklearn.utils", UserWarning, "a real data problem")
    messages = sorted(str(w.message) for w in caught)
    assert messages == ["a real data problem", "ours"]
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert logging.getLogger("great_expectations").level >= logging.WARNING


def test_run_logged_says_what_was_read_decided_and_written(restore_warnings, caplog):
    log = logging.getLogger("test.task")
    result = {
        "decision": "promote",
        "rows": 14000,
        "challenger_version": "3",
        "summary_uri": "s3://b/runs/x/summary.json",
        "metrics": {"roc_auc": 0.84512, "accuracy": 0.8},
        "internal": object(),
    }
    with caplog.at_level(logging.INFO, logger="test.task"):
        out = logs.run_logged(
            log, TaskId.COMPARE_MODELS, Ctx(), lambda a, b: result if (a, b) == (1, 2) else None, 1, 2
        )
    assert out is result
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("compare_models: reading data interval 2026-11-01 .. 2026-11-08 of retrain_churn")
    assert "try 2" in lines[0] and "force_retrain=True" in lines[0] and "quarantine" not in lines[0]
    assert "decision=promote" in lines[1] and "rows=14000" in lines[1] and "roc_auc=0.8451" in lines[1]
    assert lines[2] == "compare_models: wrote summary_uri=s3://b/runs/x/summary.json"


def test_run_logged_lets_failures_through(restore_warnings, caplog):
    def boom():
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        logs.run_logged(logging.getLogger("test.task"), TaskId.VALIDATE_BATCH, Ctx(), boom)
