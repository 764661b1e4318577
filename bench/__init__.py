"""Benchmarks on the real data (`make bench`)."""
