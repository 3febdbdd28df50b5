"""Benchmarks: throughput and latency, always as a ratio against a raw baseline of the same run."""
