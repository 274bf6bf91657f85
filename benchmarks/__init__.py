"""Benchmarks run by ``make bench`` (scripts/bench.py); each module measures one concern.

* :mod:`benchmarks.bench_parse`, :mod:`benchmarks.bench_validation` - DAG parsing and the validate step
  (each variant in a fresh interpreter via :mod:`benchmarks.subproc`).
* Policy replay (``python scripts/bench_policy.py [--quick]``): is the retrain/promote rule good on
  replayed weeks? :mod:`benchmarks.streams` (seeded weekly streams with known change points),
  :mod:`benchmarks.replay` (the DAG's own pure decision functions and the baselines),
  :mod:`benchmarks.optimum` (cost of a policy, retrospective optimum by dynamic programming),
  :mod:`benchmarks.report` (tables and targets).
"""
