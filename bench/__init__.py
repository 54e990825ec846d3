"""Benchmarks (`make bench`) and evaluations (`make eval`); each is a subpackage run as `python -m bench.NAME`."""
