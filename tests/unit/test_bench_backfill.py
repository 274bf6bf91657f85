"""The backfill benchmark's arithmetic: the weeks it replays and how it reads a trend."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import statistics
from pathlib import Path

import pytest

from benchmarks import bench_backfill as bb
from scripts import stack


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC),  # a Wednesday
        dt.datetime(2026, 11, 29, 0, 0, tzinfo=dt.UTC),  # a Sunday at midnight
        dt.datetime(2026, 11, 28, 23, 59, tzinfo=dt.UTC),  # a Saturday night
    ],
)
def test_demo_weeks_are_the_stacks_weeks(monkeypatch, now):
    # The in-process side must replay exactly the weeks the stack seeds and backfills.
    monkeypatch.setattr(stack, "DEMO_WEEKS", 13)
    assert bb.demo_weeks(now, 13) == stack.demo_weeks(now)
    weeks = bb.demo_weeks(now, 13)
    assert all(e - s == dt.timedelta(weeks=1) and s.weekday() == 6 for s, e in weeks)
    assert weeks[-1][1] <= now


def _rows(times: list[float], kinds: list[str]) -> list[dict]:
    return [{"index": i, "kind": k, "wall": t} for i, (t, k) in enumerate(zip(times, kinds, strict=True), 1)]


def test_trend_of_flat_weeks_is_flat_per_kind():
    kinds = ["trains" if i % 4 == 0 else "skips" for i in range(1, 33)]
    times = [20.0 if k == "trains" else 5.0 for k in kinds]
    t = bb.trend(_rows(times, kinds), "wall")
    assert t["kinds"]["trains"]["ratio"] == pytest.approx(1.0)
    assert t["kinds"]["skips"]["ratio"] == pytest.approx(1.0)
    assert t["slope"] == pytest.approx(0.0)
    assert bb.linear_verdict([t]) is True


def test_trend_sees_a_week_cost_that_grows_with_the_index():
    n = 16
    kinds = ["skips"] * n
    times = [5.0 + 0.5 * i for i in range(1, n + 1)]  # +0.5 s per week: 5.5 .. 13 s
    t = bb.trend(_rows(times, kinds), "wall")
    assert t["slope"] == pytest.approx(0.5)
    # week 1 is left out: the first quarter is weeks 2..5, the last weeks 13..16
    assert t["kinds"]["skips"]["first_quarter"] == pytest.approx(statistics.median(times[1:5]))
    assert t["kinds"]["skips"]["last_quarter"] == pytest.approx(statistics.median(times[-4:]))
    mean = statistics.fmean(times[1:])
    assert t["growth"] == pytest.approx(0.5 * (n - 2) / mean)
    assert t["growth"] > bb.LINEAR_TOLERANCE
    assert bb.linear_verdict([t]) is False


def test_kinds_are_covariates_so_late_training_weeks_are_not_growth():
    # Cheap weeks early, expensive (training) weeks late, each kind flat: no growth.
    kinds = ["skips"] * 12 + ["trains"] * 4
    times = [5.0] * 12 + [30.0] * 4
    t = bb.trend(_rows(times, kinds), "wall")
    assert t["slope"] == pytest.approx(0.0)
    assert bb.linear_verdict([t]) is True
    # ... and a kind missing from a quarter has no quarter median rather than a made-up one
    assert t["kinds"]["trains"]["first_quarter"] is None and t["kinds"]["trains"]["ratio"] is None


def test_the_first_week_and_failed_weeks_do_not_count():
    kinds = ["skips"] * 12
    times = [60.0] + [5.0] * 11  # week 1 pays the cold start
    rows = _rows(times, kinds)
    rows[6]["kind"] = "failed"
    rows[6]["wall"] = 500.0
    t = bb.trend(rows, "wall")
    assert t["slope"] == pytest.approx(0.0) and t["weeks"] == 10


def test_too_few_weeks_give_no_verdict():
    t = bb.trend(_rows([5.0, 6.0], ["skips", "skips"]), "wall")
    assert bb.linear_verdict([t]) is None


def test_cumulative_totals_only_marks_reached():
    rows = _rows([1.0, 2.0, 3.0, 4.0, 5.0], ["skips"] * 5)
    assert bb.cumulative(rows, "wall", (4, 13)) == {4: 10.0}


def test_kind_of_reads_training_from_steps_or_the_flag():
    assert bb.kind_of({"train_challenger": 3.0}) == "trains"
    assert bb.kind_of({"detect_drift": 0.5}) == "skips"
    assert bb.kind_of(trained=True) == "trains"
    assert bb.kind_of(trained=True, state="failed") == "failed"


def _airflow_db(path: Path) -> None:
    """The three metadata tables the benchmark reads, with Airflow's SQLite formats (naive UTC)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE dag_run (dag_id, run_id, data_interval_start, state, start_date, end_date)")
        conn.execute("CREATE TABLE task_instance (dag_id, run_id, task_id, state, start_date, end_date, queued_dttm)")
        conn.execute("CREATE TABLE xcom (dag_id, run_id, task_id, key, value)")
        for i, day in enumerate(("2026-11-01", "2026-11-08")):
            run = f"backfill__{day}T00:00:00+00:00"
            conn.execute(
                "INSERT INTO dag_run VALUES (?, ?, ?, ?, ?, ?)",
                (
                    "retrain_churn",
                    run,
                    f"{day} 00:00:00.000000",
                    "success",
                    f"2026-12-02 01:0{i}:00.000000",
                    f"2026-12-02 01:0{i}:40.500000",
                ),
            )
            conn.execute(
                "INSERT INTO task_instance VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    "retrain_churn",
                    run,
                    "train_challenger",
                    "success" if i == 0 else "skipped",
                    f"2026-12-02 01:0{i}:10.000000",
                    f"2026-12-02 01:0{i}:30.000000",
                    f"2026-12-02 01:0{i}:09.500000",
                ),
            )
            conn.execute(
                "INSERT INTO xcom VALUES (?, ?, ?, ?, ?)",
                ("retrain_churn", run, "train_challenger", "return_value", json.dumps({"duration_seconds": 18.25})),
            )
        # a scheduled run and another DAG's backfill are not this backfill's runs
        conn.execute(
            "INSERT INTO dag_run VALUES ('retrain_churn', 'scheduled__2026-11-15', '2026-11-15 00:00:00', 'success', "
            "NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO dag_run VALUES ('retrain_other', 'backfill__2026-11-01', '2026-11-01 00:00:00', 'success', "
            "NULL, NULL)"
        )


def test_runs_from_db_reads_airflows_rows_and_joins_the_stacks_decisions(tmp_path):
    db = tmp_path / "airflow.db"
    _airflow_db(db)
    runs = bb._runs_from_db(db, "retrain_churn")
    assert [r["start"] for r in runs] == ["2026-11-01T00:00:00+00:00", "2026-11-08T00:00:00+00:00"]
    assert runs[0]["wall"] == pytest.approx(40.5)
    assert runs[0]["trained"] is True and runs[1]["trained"] is False
    task = runs[0]["tasks"][0]
    assert task["task"] == "train_challenger" and task["seconds"] == pytest.approx(20.0)
    assert task["step"] == pytest.approx(18.25) and task["queued"] == pytest.approx(0.5)
    assert runs[1]["tasks"] == []  # a skipped task instance is not a task that ran
    # scripts/stack.py records its demo results with the API's timestamps ("Z" or "+00:00")
    demo = [
        {"data_interval_start": "2026-11-01T00:00:00+00:00", "decision": "promoted"},
        {"data_interval_start": "2026-11-08T00:00:00Z", "decision": "skipped"},
    ]
    bb.join_demo_results(runs, demo)
    assert [(r["index"], r["decision"], r["kind"]) for r in runs] == [
        (1, "promoted", "trains"),
        (2, "skipped", "skips"),
    ]


def test_task_table_skips_the_first_week_and_orders_tasks_as_they_ran():
    def run(fetch: float, train: float) -> dict:
        return {
            "tasks": [
                {"task": "train_challenger", "seconds": train, "step": train - 2, "queued": 0.5, "began": "b"},
                {"task": "fetch_batch", "seconds": fetch, "step": fetch - 1, "queued": 0.1, "began": "a"},
            ]
        }

    runs = [run(100.0, 100.0), run(4.0, 20.0), run(6.0, 30.0)]
    inproc = [{"steps": {"fetch_batch": 9.0}}, {"steps": {"fetch_batch": 1.0}}, {"steps": {"fetch_batch": 2.0}}]
    lines = bb.task_table(inproc, runs)
    rows = [ln for ln in lines if ln.startswith("| fetch_batch") or ln.startswith("| train_challenger")]
    assert [r.split("|")[1].strip() for r in rows] == ["fetch_batch", "train_challenger"]
    # medians over weeks 2 and 3 only: TI 5.0, step 4.0, TI - step 1.0, in process 1.5
    assert rows[0].split("|")[2:8] == [" 2 ", " 0.10 ", " 5.00 ", " 4.00 ", " 1.00 ", " 1.50 "]
    assert rows[1].split("|")[4].strip() == "25.00"


def test_preload_table_compares_kinds_and_tasks_from_week_two_and_leaves_quick_tasks_out():
    def run(kind: str, wall: float, train: float | None, state: str = "success") -> dict:
        tasks = [{"task": "fetch_batch", "seconds": wall / 10, "began": "a"}]
        tasks.append({"task": "decide_retrain", "seconds": 0.1, "began": "b"})
        if train is not None:
            tasks.append({"task": "train_challenger", "seconds": train, "began": "c"})
        return {"kind": kind, "wall": wall, "state": state, "tasks": tasks}

    on = [run("trains", 500.0, 400.0), run("trains", 20.0, 5.0), run("skips", 10.0, None), run("trains", 22.0, 7.0)]
    on.append(run("trains", 80.0, 60.0))  # beyond the baseline's weeks: left out
    off = [run("trains", 900.0, 800.0), run("trains", 40.0, 12.0), run("failed", 99.0, None, "failed")]
    off.append(run("trains", 40.0, 12.0))
    rows = {ln.split("|")[1].strip(): ln.split("|")[2:6] for ln in bb.preload_table(on, off)[2:]}
    # week 1 of each side left out; the failed run too; weeks 2-4 of both
    assert rows["week that trains: run wall"] == [" 2 / 2 ", " 21.00 ", " 40.00 ", " 1.90x "]
    assert rows["week that skips: run wall"] == [" 1 / 0 ", " 10.00 ", " n/a ", " n/a "]
    assert rows["task train_challenger"] == [" 2 / 2 ", " 6.00 ", " 12.00 ", " 2.00x "]
    assert "task decide_retrain" not in rows  # 0.1 s either way: the scheduler's own branch
    assert list(rows).index("task fetch_batch") < list(rows).index("task train_challenger")
