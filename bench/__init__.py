"""Benchmarks of waha-fleet, each beside a raw baseline measured in the same run (`python -m bench`).

Not tests: nothing here fails on a slow machine. `bench/run.py` runs them, prints a table and
writes docs/benchmarks.md; each benchmark module has a `run(ctx)` that returns rows.
"""
