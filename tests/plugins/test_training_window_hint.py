"""The train step's insufficient-data outcome says how long the rows take, at the window's rate
of labelled rows (include.retrainer.steps.train._training_window, against the real moto S3)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from include.demo import data as demo_data
from include.retrainer import loop, steps
from include.retrainer.steps.train import _training_window

START = dt.datetime(2026, 6, 7, tzinfo=dt.UTC)  # a Sunday

pytestmark = pytest.mark.timeout(300)


def test_the_hint_counts_labelled_rows_and_says_to_wait_or_widen(s3, store, churn_spec_factory):
    prefix = f"hint_{uuid.uuid4().hex[:6]}"
    frames = demo_data.generate_churn(START.date(), days=14, rows_per_day=20, seed=5)
    for i, frame in enumerate(frames.values()):
        if i % 2:  # every other day's labels are not in yet: 70 labelled rows a week of 140
            frame["churned"] = None
    demo_data.write_partitions(s3, "raw-data", prefix, frames)
    ctx = steps.RunContext(
        dag_id="d", run_id="r", interval_start=START + dt.timedelta(weeks=1), interval_end=START + dt.timedelta(weeks=2)
    )

    # Two weeks of data at 70 labelled rows a week: 300 rows take ~5 weeks, within 8.
    spec = churn_spec_factory(data__prefix=prefix, training__window_weeks=1, training__max_window_weeks=8)
    with pytest.raises(loop.InsufficientData) as err:
        _training_window(store, spec, ctx, store)
    message = str(err.value)
    assert "at 140 rows over 2.0 weeks of data (~70.0 a week)" in message, message
    assert "take ~5 weeks; the window widens up to training.max_window_weeks=8: wait for more weeks" in message

    # Allowed 2 weeks only: say how wide (1.25 x 300 / 70 = 6).
    spec = churn_spec_factory(data__prefix=prefix, training__window_weeks=1, training__max_window_weeks=2)
    with pytest.raises(loop.InsufficientData) as err:
        _training_window(store, spec, ctx, store)
    assert "set training.max_window_weeks to at least 6" in str(err.value), str(err.value)
