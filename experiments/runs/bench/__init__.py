"""Benchmarks of what growth costs: probes, measurements and the report.

`experiments/bench_growth.py` runs them; `docs/benchmarks.md` is the report.
"""
