"""How wide a window must grow for a model with few rows a week (include.retrainer.training)."""

from __future__ import annotations

import math

import pytest

from include.retrainer.config import parse_spec
from include.retrainer.training import WIDEST_WINDOW_WEEKS, widening_hint, window_weeks_for_rows


def _spec(max_window_weeks=None, min_train_rows=200, min_holdout_rows=100):
    return parse_spec(
        {
            "name": "tiny",
            "data": {"bucket": "raw", "prefix": "tiny"},
            "features": {"target": "y", "timestamp": "ts", "numeric": ["a"]},
            "training": {
                "window_weeks": 4,
                "max_window_weeks": max_window_weeks,
                "min_train_rows": min_train_rows,
                "min_holdout_rows": min_holdout_rows,
            },
        },
        "tiny.yaml",
    )


def test_the_window_needed_follows_the_rate_with_a_margin():
    assert window_weeks_for_rows(84, 12, 300) == math.ceil(1.25 * 300 / 7)  # 54
    assert window_weeks_for_rows(3000, 1, 300) == 1
    assert window_weeks_for_rows(0, 12, 300) is None


@pytest.mark.parametrize(
    "max_window_weeks, rows, weeks, says",
    [
        # The window may grow far enough: only weeks of data are missing.
        (60, 42, 6.0, "take ~43 weeks; the window widens up to training.max_window_weeks=60: wait for more weeks"),
        # It may not: say how far it must be allowed to grow.
        (12, 84, 12.0, "take ~43 weeks: set training.max_window_weeks to at least 54"),
        (None, 20, 4.0, "take ~60 weeks: set training.max_window_weeks to at least 75"),
        (None, 150, 1.0, "take ~2 weeks; the window is training.window_weeks=4: wait for more weeks"),
        # Even ten years would not do.
        (12, 2, 12.0, f"wider than any window may be ({WIDEST_WINDOW_WEEKS} weeks): lower those minimums"),
    ],
)
def test_the_hint_says_what_to_change_in_numbers(max_window_weeks, rows, weeks, says):
    hint = widening_hint(rows, weeks, _spec(max_window_weeks))
    assert says in hint, hint
    assert f"at {rows} rows over {weeks:.1f} weeks of data" in hint
    assert "(training.min_train_rows 200 + min_holdout_rows 100)" in hint


def test_the_hint_uses_the_models_own_minimums():
    hint = widening_hint(40, 4.0, _spec(12, min_train_rows=60, min_holdout_rows=20))
    assert "the 80 rows a model needs" in hint and "take ~8 weeks; the window widens up to" in hint
