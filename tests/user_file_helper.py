"""A user's file for the onboarding measurements' tests (make add-model, make replay)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def stationary_rows(weeks: int, per_day: int, seed: int = 0) -> pd.DataFrame:
    """One unchanging, non-linear concept with few rows a day: more weeks of rows train better models."""
    rng = np.random.default_rng(seed)
    n = weeks * 7 * per_day
    start = pd.Timestamp("2026-01-04")  # a Sunday
    seconds = np.sort(rng.integers(0, weeks * 7 * 86400, n))
    x = rng.normal(size=(n, 4))
    logit = 2.5 * np.sin(2 * x[:, 0]) + 2.0 * x[:, 1] * x[:, 2] - 1.5 * np.abs(x[:, 3])
    return pd.DataFrame(
        {
            "created_at": (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S"),
            **{f"x{i}": x[:, i] for i in range(4)},
            "outcome": (rng.random(n) < 1 / (1 + np.exp(-logit + 0.5))).astype(int),
        }
    )
