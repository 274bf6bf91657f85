"""The backfill benchmark's arithmetic: the weeks it replays and how it reads a trend."""

from __future__ import annotations

import datetime as dt

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
    kinds = ["trains" if i % 4 == 0 else "skips" for i in range(1, 17)]
    times = [20.0 if k == "trains" else 5.0 for k in kinds]
    t = bb.trend(_rows(times, kinds), "wall")
    assert t["trains"]["ratio"] == pytest.approx(1.0)
    assert t["skips"]["ratio"] == pytest.approx(1.0)
    assert t["skips"]["slope"] == pytest.approx(0.0)
    assert bb.linear_verdict([t])


def test_trend_sees_a_week_cost_that_grows_with_the_index():
    n = 16
    kinds = ["skips"] * n
    times = [5.0 + 0.5 * i for i in range(1, n + 1)]  # +0.5 s per week: 5.5 .. 13 s
    t = bb.trend(_rows(times, kinds), "wall")
    assert t["skips"]["slope"] == pytest.approx(0.5)
    assert t["skips"]["first_quarter"] == pytest.approx(statistics_mean(times[:4]))
    assert t["skips"]["last_quarter"] == pytest.approx(statistics_mean(times[-4:]))
    assert t["skips"]["ratio"] > bb.LINEAR_TOLERANCE
    assert not bb.linear_verdict([t])


def test_mixing_kinds_does_not_fake_a_trend():
    # Trained weeks late in the run must not read as growth of the cheap weeks.
    kinds = ["skips"] * 12 + ["trains"] * 4
    times = [5.0] * 12 + [30.0] * 4
    t = bb.trend(_rows(times, kinds), "wall")
    assert t["skips"]["ratio"] == pytest.approx(1.0)
    assert "trains" in t and t["trains"]["weeks"] == 4


def test_cumulative_totals_only_marks_reached():
    rows = _rows([1.0, 2.0, 3.0, 4.0, 5.0], ["skips"] * 5)
    assert bb.cumulative(rows, "wall", (4, 13)) == {4: 10.0}


def test_kind_of_reads_training_from_steps_or_the_flag():
    assert bb.kind_of("promoted", {"train_challenger": 3.0}) == "trains"
    assert bb.kind_of("skipped", {"detect_drift": 0.5}) == "skips"
    assert bb.kind_of("rejected", trained=True) == "trains"


def statistics_mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


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
