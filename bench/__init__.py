"""`make bench`: the framework (framework.py), the runner (run.py) and the benchmarks (*_bench.py)."""
