"""`add-model` end to end: a generated CSV becomes partitions, a YAML and a suite, and the new
DAG runs through the real factory on real moto S3, MLflow and Airflow (``dag.test()``).

Assertions are about what add-model owns: the run reads exactly the uploaded week, the inferred
suite passes on the data it was inferred from, and every week ends with a named outcome."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scripts import add_model as cli
from tests.e2e.conftest import DagRunner

W1 = dt.date(2026, 5, 3)  # a Sunday: @weekly intervals run Sunday to Sunday
OUTCOMES = {"promoted", "rejected", "skipped"}

pytestmark = pytest.mark.timeout(900)


def orders_csv(path: Path, days: int = 14, per_day: int = 300, seed: int = 3) -> pd.DataFrame:
    """A user's export: string timestamps, an id column, free text, a learnable binary label."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = pd.Timestamp(W1.isoformat())
    ts = start + pd.to_timedelta(np.sort(rng.integers(0, days * 86400, n)), unit="s")
    basket = rng.gamma(2.0, 40.0, n)
    visits = rng.poisson(3, n)
    channel = rng.choice(["web", "app", "store"], n, p=[0.5, 0.3, 0.2])
    logit = 0.02 * (basket - 80) + 0.4 * (visits - 3) + np.where(channel == "app", 0.8, 0.0)
    df = pd.DataFrame(
        {
            "order_id": np.arange(n),
            "ordered_at": ts.strftime("%Y-%m-%d %H:%M:%S"),
            "basket_value": basket.round(2),
            "visits_30d": visits,
            "channel": channel,
            "comment": [f"order {i} comment" for i in range(n)],
            "returned": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )
    df.to_csv(path, index=False)
    return df


def test_add_model_then_the_new_dag_runs_two_weeks(stack, tmp_path, monkeypatch):
    models, suites = tmp_path / "include" / "models", tmp_path / "include" / "suites"
    df = orders_csv(tmp_path / "orders.csv")
    lines: list[str] = []
    result = cli.add_model(
        "orders_e2e",
        tmp_path / "orders.csv",
        target="returned",
        s3_client=stack["s3"],
        models_dir=models,
        suites_dir=suites,
        say=lines.append,
    )
    assert result.inference.timestamp == "ordered_at"
    assert set(result.inference.numeric) == {"basket_value", "visits_30d"} and result.inference.categorical == (
        "channel",
    )
    assert any("order_id" in line and "identifier" in line for line in lines)
    assert len(result.uploaded) == 14

    # dag.test() builds the DAG as parsed from dags/: point the factory at the generated spec.
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(models))
    runner = DagRunner(result.spec_path, stack["s3"])
    for week in (W1, W1 + dt.timedelta(weeks=1)):
        run, summary = runner.run(week)
        assert str(run.state) == "success", runner.task_states(run)
        assert summary["decision"] in OUTCOMES, summary["reasons"]
        expected_rows = int(df["ordered_at"].str[:10].between(str(week), str(week + dt.timedelta(days=6))).sum())
        assert summary["rows"] == expected_rows
        assert summary["validation"]["success"] is True, summary["validation"]["failed_expectations"]
    first = runner.summary(W1)
    assert first["decision"] == "promoted" and first["drift"]["cold_start"] is True, first["reasons"]
