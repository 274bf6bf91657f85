"""Policy replay benchmark: is the retrain/promote rule good on replayed weeks?

* :mod:`benchmarks.streams` - seeded synthetic weekly streams with known change points.
* :mod:`benchmarks.replay` - the weekly loop (the DAG's own pure functions) and baselines.
* :mod:`benchmarks.optimum` - cost of a policy and the retrospective optimum (dynamic programming).
* :mod:`benchmarks.report` - tables and targets.

Entry point: ``python scripts/bench_policy.py [--quick] [--out FILE.md]``.
"""
