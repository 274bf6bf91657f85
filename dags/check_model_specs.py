"""Surfaces broken model specs as an Airflow import error (UI: "DAG Import Errors").

Each message names the file, the field and the problem. Valid specs still get their
DAGs from dags/retrain_models.py; this file defines no DAG of its own.
"""

from include.retrainer.config import load_all

_specs, _errors = load_all()
if _errors:
    raise ImportError(
        f"{len(_errors)} invalid model spec(s); their DAGs are not loaded:\n" + "\n".join(f"- {e}" for e in _errors)
    )
