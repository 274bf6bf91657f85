"""Airflow DAGs: one manual rollback DAG (rollback_<name>) per model spec.

Wiring only: specs are parsed by include.retrainer.config (include/models/ or
$RETRAIN_MODELS_DIR), DAGs built by retrain_ops.rollback_factory. Broken specs are
skipped here and reported by dags/check_model_specs.py.
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
from retrain_ops.rollback_factory import build_rollback_dag, rollback_dag_id

from include.retrainer.config import load_all

_specs, _errors = load_all()
for _spec in _specs:
    globals()[rollback_dag_id(_spec)] = build_rollback_dag(_spec)
