"""Airflow DAGs: one retraining DAG per model spec in include/models/ (or $RETRAIN_MODELS_DIR).

Wiring only: specs are parsed by include.retrainer.config, DAGs built by
retrain_ops.dag_factory. A broken spec is skipped here (the other models keep their
DAGs) and reported as an import error by dags/check_model_specs.py.
"""

from include.retrainer.config import load_all
from retrain_ops.dag_factory import build_retrain_dag

_specs, _errors = load_all()
for _spec in _specs:
    globals()[_spec.dag_id] = build_retrain_dag(_spec)
