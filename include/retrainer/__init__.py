"""Retraining orchestrator core: pure Python, no Airflow imports (see README 'Architecture')."""

__version__ = "0.1.0"
