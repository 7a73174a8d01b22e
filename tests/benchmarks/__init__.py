"""Benchmark scripts (run with `python -m tests.benchmarks.<name>`), not tests: see README.md here."""
