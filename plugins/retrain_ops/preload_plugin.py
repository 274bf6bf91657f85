"""Airflow plugin: a LocalExecutor scheduler imports the tasks' libraries once, for every task.

Airflow calls the ``on_starting`` listener when a component's job is created, which in the
scheduler is before its LocalExecutor forks the worker processes (which fork each task): what
the scheduler imports there, every task inherits instead of importing it again
(``include.retrainer.preload`` explains the measurement). Every other process returns at once.

The Celery workers do the same through ``retrain_ops.celery_config`` (Airflow itself preloads a
few modules there, before the pool forks, for the same reason).

Opt out with ``[retrain] preload_task_libraries = False`` (env
``AIRFLOW__RETRAIN__PRELOAD_TASK_LIBRARIES=False``); the cost of leaving it on is the
scheduler's start (a few seconds) and its memory (about 300 MB, shared with its workers).
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

#: Where the task code lives: this package, and the pure layer it calls.
PLUGIN_ROOT = Path(__file__).resolve().parent


def _task_code_roots() -> list[Path]:
    import include.retrainer

    return [PLUGIN_ROOT, Path(include.retrainer.__file__).resolve().parent]


def preload_task_libraries(where: str) -> Any:
    """Import every third-party module the task code imports, unless turned off; log the result.

    ``where`` names the processes that inherit the modules, for the log line. Returns the
    :class:`~include.retrainer.preload.PreloadResult`, or None when turned off or when the
    preload itself failed: it must never stop the scheduler or a worker from starting (the
    tasks then import what they need themselves, as without it).
    """
    from airflow.configuration import conf

    try:
        if not conf.getboolean("retrain", "preload_task_libraries", fallback=True):
            log.info("retrain: not preloading the task libraries ([retrain] preload_task_libraries is off)")
            return None
        from include.retrainer.preload import preload, task_imports

        modules = task_imports(_task_code_roots())
        result = preload(modules.required, modules.optional)
    except Exception:
        log.exception("retrain: could not preload the task libraries; each task imports them itself")
        return None
    message = f"retrain: {result.describe()} for the tasks {where}"
    (log.warning if result.failed or result.new_threads else log.info)(message)
    return result


class TaskLibrariesPreloader:
    """The listener; it preloads at most once per process."""

    result: Any = None
    done: bool = False

    @hookimpl
    def on_starting(self, component: Any) -> None:
        # Cheap checks first: every Airflow component that creates a job, and every task
        # process, calls this.
        if type(component).__name__ != "Job" or self.done:
            return
        from include.retrainer.preload import component_of, scheduler_forks_tasks

        if component_of(sys.argv) != "scheduler":
            return
        from airflow.configuration import conf

        if not scheduler_forks_tasks(sys.argv, conf.get("core", "executor"), multiprocessing.get_start_method()):
            return
        self.done = True
        self.result = preload_task_libraries("this scheduler's LocalExecutor forks")


class RetrainPreloadPlugin(AirflowPlugin):
    name = "retrain_preload"
    listeners = [TaskLibrariesPreloader()]
