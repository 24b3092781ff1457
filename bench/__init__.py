"""Corral's benchmarks: the runtime hot path and the operator control plane, each next to a
baseline measured in the same run. `python -m bench` (what `make bench` runs) executes both
suites and rewrites bench/RESULTS.md. Nothing here is imported by `corral` or by `make test`
(the pure helpers are unit-tested in tests/unit/bench).
"""
