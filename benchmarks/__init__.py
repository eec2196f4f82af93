"""Benchmarks: each figure measured against a baseline taken in the same run.

Run all with ``python -m benchmarks`` (``--quick`` for CI). No figure is asserted: the table
and the JSON file report ratios, and the targets they are built to meet.
"""
