"""The plugin that makes a LocalExecutor scheduler, and the Celery settings that make a Celery
worker, import the tasks' libraries once before they fork: Airflow finds them, and they act in
those processes only (the whole path, forked tasks included, runs in tests/e2e/test_stack.py,
tests/e2e/test_celery_topology.py and the backfill benchmark)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_airflow_loads_the_plugin_with_its_listener(airflow_db):
    out = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "plugins", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    plugins = json.loads(out.stdout[out.stdout.index("[") :])
    mine = [p for p in plugins if p["name"] == "retrain_preload"]
    assert len(mine) == 1, plugins
    assert any("TaskLibrariesPreloader" in str(listener) for listener in mine[0]["listeners"]), mine


@pytest.fixture
def preloader(monkeypatch):
    from retrain_ops.preload_plugin import TaskLibrariesPreloader

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    return TaskLibrariesPreloader()


class Job:
    """Stands in for airflow.jobs.job.Job: creating a real one would also call the listener
    that Airflow registered from the plugins folder, and preload on this test's behalf."""


def _job():
    return Job()


def test_the_listener_preloads_in_a_local_executor_scheduler_only(preloader, monkeypatch, caplog):
    for argv in (["airflow", "triggerer"], ["airflow", "dag-processor"], ["airflow", "api-server"]):
        monkeypatch.setattr(sys, "argv", argv)
        preloader.on_starting(component=_job())
        assert preloader.result is None and not preloader.done
    monkeypatch.setattr(sys, "argv", ["airflow", "scheduler"])
    preloader.on_starting(component=object())  # the task runner's marker, not a job
    assert not preloader.done

    with caplog.at_level(logging.INFO):
        preloader.on_starting(component=_job())
    assert preloader.done and preloader.result is not None
    assert not preloader.result.failed and "pandas" in preloader.result.imported
    assert any("retrain: preloaded" in r.getMessage() and "LocalExecutor" in r.getMessage() for r in caplog.records)

    first = preloader.result
    preloader.on_starting(component=_job())  # once per process
    assert preloader.result is first


def test_a_celery_executor_scheduler_does_not_preload(preloader, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setattr(sys, "argv", ["airflow", "scheduler"])
    preloader.on_starting(component=_job())
    assert preloader.result is None and not preloader.done


def test_the_preload_can_be_turned_off(preloader, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW__RETRAIN__PRELOAD_TASK_LIBRARIES", "False")
    monkeypatch.setattr(sys, "argv", ["airflow", "scheduler"])
    with caplog.at_level(logging.INFO):
        preloader.on_starting(component=_job())
    assert preloader.done and preloader.result is None
    assert any("preload_task_libraries is off" in r.getMessage() for r in caplog.records)


@pytest.fixture
def celery_receiver():
    from celery.signals import import_modules

    yield import_modules
    import_modules.disconnect(dispatch_uid="retrain_preload_task_libraries")


def test_the_celery_settings_are_airflows_and_preload_when_the_worker_imports_its_modules(
    celery_receiver, monkeypatch, caplog
):
    import retrain_ops.celery_config as celery_config
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    import_modules = celery_receiver
    assert "CELERY_CONFIG" not in vars(celery_config)  # nothing is read until Airflow asks
    assert celery_config.CELERY_CONFIG is DEFAULT_CELERY_CONFIG
    with pytest.raises(AttributeError):
        celery_config.NOT_A_SETTING  # noqa: B018
    # The worker sends the signal; calling the receiver here spares this process Airflow's own
    # receiver of it (which freezes the garbage collector).
    assert any(key[0] == "retrain_preload_task_libraries" for key, _ in import_modules.receivers)
    monkeypatch.setattr(sys, "argv", ["airflow", "celery", "flower"])  # also sends the signal
    with caplog.at_level(logging.INFO):
        celery_config._preload_in_worker(signal=import_modules, sender=None)
    assert not [r for r in caplog.records if "retrain: preloaded" in r.getMessage()]
    monkeypatch.setattr(sys, "argv", ["airflow", "celery", "worker"])
    with caplog.at_level(logging.INFO):
        celery_config._preload_in_worker(signal=import_modules, sender=None)
    lines = [r.getMessage() for r in caplog.records if "retrain: preloaded" in r.getMessage()]
    assert len(lines) == 1 and "Celery worker" in lines[0] and "not importable" not in lines[0], lines


def test_a_broken_setting_does_not_stop_a_celery_worker_from_starting(monkeypatch, caplog):
    """Celery re-raises a receiver's exception from the worker's start; ours logs it instead."""
    import retrain_ops.celery_config as celery_config

    monkeypatch.setenv("AIRFLOW__RETRAIN__PRELOAD_TASK_LIBRARIES", "off")  # getboolean refuses "off"
    monkeypatch.setattr(sys, "argv", ["airflow", "celery", "worker"])
    with caplog.at_level(logging.INFO):
        celery_config._preload_in_worker(signal=None, sender=None)
    assert any("could not preload the task libraries" in r.getMessage() for r in caplog.records)
