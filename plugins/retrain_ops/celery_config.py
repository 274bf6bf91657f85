"""Celery settings of the Celery topology: Airflow's defaults, and a preload of the tasks' libraries.

Point ``[celery] celery_config_options`` at ``retrain_ops.celery_config.CELERY_CONFIG`` (the
native Celery stack and docker-compose.yaml both do). The settings are Airflow's own
``DEFAULT_CELERY_CONFIG``, unchanged; reading them also connects a receiver to Celery's
``import_modules`` signal, which a worker sends in its main process before its pool forks the
child processes that run (and fork) the tasks. The receiver imports the third-party modules the
task code imports (``retrain_ops.preload_plugin.preload_task_libraries``), so that every task
inherits them instead of importing pandas, GX, MLflow and scikit-learn again; Airflow's own
receiver of that signal then freezes the garbage collector before the fork.

Kept light: Airflow's plugin loader imports this file in every process; the settings and the
signal are only touched when Airflow reads ``CELERY_CONFIG`` (PEP 562 ``__getattr__``).
"""

from __future__ import annotations

from typing import Any


def _preload_in_worker(**_: Any) -> None:
    # Celery re-raises a receiver's exception from the worker's start: nothing may escape.
    try:
        import sys

        from include.retrainer.preload import celery_worker
        from retrain_ops.preload_plugin import preload_task_libraries

        if celery_worker(sys.argv):
            preload_task_libraries("this Celery worker's pool forks")
    except Exception:
        import logging

        logging.getLogger(__name__).exception("retrain: could not preload the task libraries")


def __getattr__(name: str) -> Any:
    if name != "CELERY_CONFIG":
        raise AttributeError(name)
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
    from celery.signals import import_modules

    import_modules.connect(_preload_in_worker, weak=False, dispatch_uid="retrain_preload_task_libraries")
    return DEFAULT_CELERY_CONFIG
