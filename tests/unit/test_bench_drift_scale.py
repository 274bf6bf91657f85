"""The drift benchmark's scale table (issue #13 target 5): growth per step, skipped sizes."""

from __future__ import annotations

from benchmarks import bench_drift


def _row(rows: int, seconds: float) -> dict:
    return {"rows": rows, "summary_s": seconds, "cold_s": 2 * seconds, "warm_s": 3 * seconds, "repeats": 2}


def test_growth_is_each_time_over_the_previous_size():
    lines = bench_drift.scale_markdown([_row(10_000, 0.01), _row(100_000, 0.12), _row(1_000_000, 1.5)])
    rows = [line for line in lines if line.startswith("| 1")]
    assert rows[0].count("| - |") == 3  # the first size has nothing to grow from
    assert "0.120 s | 12.0x" in rows[1] and "0.360 s | 12.0x" in rows[1]
    assert "1.500 s | 12.5x" in rows[2] and "4.500 s | 12.5x" in rows[2]


def test_a_skipped_size_is_not_the_base_of_the_next_growth():
    lines = bench_drift.scale_markdown(
        [_row(10_000, 0.01), {"rows": 100_000, "skipped": "needs ~1 GiB, 0 GiB available"}, _row(1_000_000, 1.0)]
    )
    body = [line for line in lines if line.startswith("| 1")]
    assert "skipped: needs ~1 GiB" in body[1]
    assert body[2].count("| - |") == 3  # not "100.0x" against the 10k row two steps back
    uneven = bench_drift.scale_markdown([_row(10_000, 0.01), _row(40_000, 0.05)])
    assert "5.0x for 4x rows" in uneven[-1]


def test_sizes_that_do_not_fit_are_skipped(monkeypatch):
    monkeypatch.setattr(bench_drift, "_available_bytes", lambda: 1_000)
    assert bench_drift.run_scale((10_000,)) == [{"rows": 10_000, "skipped": "needs ~0 GiB, 0 GiB available"}]
    assert bench_drift.scale_markdown([]) == []
