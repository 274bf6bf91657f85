"""Benchmarks run by ``make bench`` (scripts/bench.py); each module measures one concern."""
