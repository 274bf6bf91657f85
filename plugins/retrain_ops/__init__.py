"""Airflow layer of the retraining orchestrator: hooks, operators, sensor and DAG factory.

Kept light: Airflow imports every module under plugins/ into every process, so heavy
libraries (mlflow, sklearn, pandas, GX) are imported inside ``execute`` only.
"""
