"""Shared helpers: timing, child processes that report their own peak RSS, the result row."""

from __future__ import annotations

import json
import os
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
    #: Why the row was not measured (it is then neither met nor missed).
    skipped: str = ""

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
        if self.skipped:
            data["value"] = None  # not NaN: the file stays strict JSON
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
    ours: Callable[[], Any],
    raw: Callable[[], Any],
    calls: int,
    block: int,
    setup: Callable[[], Any] | None = None,
) -> tuple[float, float, float]:
    """Median per-call times, and the median ratio of adjacent blocks run in ABBA order.

    This machine's speed drifts by several percent within seconds; pairing neighbouring
    blocks and alternating which side goes first cancels most of that drift. ``setup``, when
    given, runs untimed before every block (to prepare fresh inputs for it).
    """
    ours_times: list[float] = []
    raw_times: list[float] = []
    ratios = []
    for index in range(max(2, calls // block)):
        sides = [(ours, ours_times), (raw, raw_times)]
        for function, sink in sides if index % 2 == 0 else reversed(sides):
            if setup is not None:
                setup()
            start = time.perf_counter()
            for _ in range(block):
                function()
            sink.append((time.perf_counter() - start) / block)
        ratios.append(ours_times[-1] / raw_times[-1])
    return statistics.median(ours_times), statistics.median(raw_times), statistics.median(ratios)


def skipped(name: str, target: str, reason: str) -> Figure:
    """A row that could not be measured here, with the reason the table shows."""
    return Figure(name, float("nan"), "", target=target, skipped=reason)


def tokenizer_files_missing(*encodings: str) -> str:
    """Why rows that need these tiktoken encodings cannot run here, or ``""`` when they can.

    Benchmarks never download: with no ``TIKTOKEN_CACHE_DIR`` (or ``MODELREG_TIKTOKEN_CACHE_DIR``)
    the shared cache beside the repository is used when present, else tiktoken's default cache
    directory is checked for the files.
    """
    from backends.encodings import cache_directory, cached_file

    shared = REPO.parent / "shared" / "tiktoken-cache"
    directory, origin = cache_directory()
    if directory is None and shared.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(shared)
        directory, origin = cache_directory()
    if directory is None:
        import tempfile

        default = os.environ.get("DATA_GYM_CACHE_DIR") or os.path.join(
            tempfile.gettempdir(), "data-gym-cache"
        )
        directory, origin = Path(default), "tiktoken's default cache"
    absent = [name for name in encodings if not cached_file(directory, name).is_file()]
    if not absent:
        return ""
    return (
        f"tokenizer files for {', '.join(absent)} not in {directory} ({origin}); "
        "set TIKTOKEN_CACHE_DIR to a directory filled by `modelreg tokens --prefetch DIR`"
    )
