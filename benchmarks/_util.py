"""Shared helpers: timing, child processes that report their own peak RSS, the result row."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Figure:
    """One line of the results table."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    #: When set, the ratio measured pairwise (adjacent blocks), more robust than value/baseline.
    paired_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if not self.baseline:
            return None
        return self.value / self.baseline

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run_child(
    code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run Python ``code`` in a fresh interpreter; it must print one JSON object last."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=str(cwd or REPO),
        env=env,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{result.stderr[-2000:]}")
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def wall_time(
    command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> float:
    """Wall time of one process run."""
    start = time.perf_counter()
    subprocess.run(
        command, cwd=str(cwd or REPO), env=env, check=True, capture_output=True, timeout=120
    )
    return time.perf_counter() - start


def paired_blocks(
    ours: Callable[[], Any], raw: Callable[[], Any], calls: int, block: int
) -> tuple[float, float, float]:
    """Median per-call times, and the median ratio of adjacent blocks run in ABBA order.

    This machine's speed drifts by several percent within seconds; pairing neighbouring
    blocks and alternating which side goes first cancels most of that drift.
    """
    ours_times: list[float] = []
    raw_times: list[float] = []
    ratios = []
    for index in range(max(2, calls // block)):
        sides = [(ours, ours_times), (raw, raw_times)]
        for function, sink in sides if index % 2 == 0 else reversed(sides):
            start = time.perf_counter()
            for _ in range(block):
                function()
            sink.append((time.perf_counter() - start) / block)
        ratios.append(ours_times[-1] / raw_times[-1])
    return statistics.median(ours_times), statistics.median(raw_times), statistics.median(ratios)
