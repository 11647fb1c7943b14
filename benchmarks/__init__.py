"""Benchmarks against the real broker: mrwbus beside a bare aio-pika relay, in one run.

`python -m benchmarks.run` (see docs/performance.md). Not tests: nothing here asserts a timing.
"""
