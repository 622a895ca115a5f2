"""Realistic sample data (access logs) for the demo, the benchmarks and the tests."""
