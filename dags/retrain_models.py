"""Airflow DAGs: one retraining DAG per model spec in include/models/ (or $RETRAIN_MODELS_DIR).

Wiring only: specs are parsed by include.retrainer.config, DAGs built by
retrain_ops.dag_factory. A broken spec is skipped here (the other models keep their
DAGs) and reported as an import error by dags/check_model_specs.py.
"""

# Airflow modules the DAG factories use, named here so the dag-processor imports them once in
# its long-lived parent ([dag_processor] parsing_pre_import_modules, on by default) instead of
# in every forked parse of this file (every 30 s). Only airflow.* imports written in the DAG
# file itself are pre-imported, hence the list.
import airflow.providers.standard.operators.empty
import airflow.sdk.bases.branch
import airflow.sdk.bases.operator
import airflow.sdk.bases.sensor
import airflow.sdk.definitions.dag
import airflow.sdk.definitions.param
import airflow.sdk.definitions.timetables.interval
import airflow.timetables.base  # noqa: F401
from retrain_ops.dag_factory import build_retrain_dag

from include.retrainer.config import load_all

_specs, _errors = load_all()
for _spec in _specs:
    globals()[_spec.dag_id] = build_retrain_dag(_spec)
