"""Airflow DAGs: one manual rollback DAG (rollback_<name>) per model spec.

Wiring only: specs are parsed by include.retrainer.config (include/models/ or
$RETRAIN_MODELS_DIR), DAGs built by retrain_ops.rollback_factory. Broken specs are
skipped here and reported by dags/check_model_specs.py.
"""

from include.retrainer.config import load_all
from retrain_ops.rollback_factory import build_rollback_dag, rollback_dag_id

_specs, _errors = load_all()
for _spec in _specs:
    globals()[rollback_dag_id(_spec)] = build_rollback_dag(_spec)
