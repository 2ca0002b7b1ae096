"""Benchmarks: measure, don't assert. Each writes its own section of docs/PERFORMANCE.md."""
