"""Evidently's DataDriftPreset on the drift benchmark's data; run by benchmarks/bench_drift.py in a side venv.

Usage: <evidently-venv>/bin/python benchmarks/evidently_drift_peer.py ROWS
Prints one JSON line: {"version", "seconds", "rss_increase_mb", "drifted"}.

Evidently needs pandas < 3, so it cannot live in the project's virtualenv; this file imports
nothing from the project.  The frames are generated exactly like ``scripts/bench_drift.py``'s
``make_frame`` (same numpy Generator calls, so the same numbers for the same numpy version).
Evidently picks its own tests (normalized Wasserstein for large numeric columns, Jensen-Shannon
for categorical ones), so only its time and memory are comparable, not its statistics.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import pandas as pd


def make_frame(rows: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for j in range(20):
        loc = shift if j % 2 else 0.0
        data[f"num_{j:02d}"] = rng.normal(loc, 1.0 + 0.1 * j, size=rows)
    for j, k in enumerate((3, 12, 50)):
        data[f"cat_{j}"] = pd.Categorical(rng.integers(0, k, size=rows).astype(str))
    return pd.DataFrame(data)


def main() -> None:
    rows = int(sys.argv[1])
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference = make_frame(rows, 0.0, seed=1)
    current = make_frame(rows, 0.5, seed=2)
    numeric = [c for c in reference.columns if c.startswith("num_")]
    categorical = [c for c in reference.columns if c.startswith("cat_")]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    ref_ds = Dataset.from_pandas(reference, data_definition=definition)
    cur_ds = Dataset.from_pandas(current, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current_data=cur_ds, reference_data=ref_ds)
    result = snapshot.dict()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The preset's first metric is the drifted-columns count ({"count", "share"}).
    drifted = next(
        (
            m["value"]["count"]
            for m in result.get("metrics", [])
            if isinstance(m.get("value"), dict) and "count" in m["value"]
        ),
        None,
    )
    print(
        json.dumps(
            {
                "version": evidently.__version__,
                "seconds": seconds,
                "rss_increase_mb": (after - before) / 1024,
                "drifted": drifted,
            }
        )
    )


if __name__ == "__main__":
    main()
