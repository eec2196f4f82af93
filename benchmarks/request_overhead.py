"""Per-request overhead of ``model.run`` / ``arun`` against the raw SDK on the same server.

Both sides call the same loopback server (tests/azure_server.py, in its own process so that
it does not compete for this process's GIL) in the same run, interleaved in blocks so machine
noise hits both alike; the figure is the ratio of median block times.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._util import REPO, Figure

MESSAGES = [{"role": "user", "content": "Hello"}]


def _blocks(
    ours: Callable[[], Any], raw: Callable[[], Any], calls: int, block: int
) -> tuple[float, float]:
    ours_times, raw_times = [], []
    for _ in range(max(1, calls // block)):
        for function, sink in ((ours, ours_times), (raw, raw_times)):
            start = time.perf_counter()
            for _ in range(block):
                function()
            sink.append((time.perf_counter() - start) / block)
    return statistics.median(ours_times), statistics.median(raw_times)


class _ServerProcess:
    """The loopback server in a child process; ``base_url`` is read from its first line."""

    def __init__(self) -> None:
        code = (
            "import sys, time\n"
            "from tests.azure_server import AzureServer\n"
            "server = AzureServer().start()\n"
            "print(server.base_url, flush=True)\n"
            "sys.stdin.read()\n"
        )
        self._process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=str(REPO),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def run(quick: bool) -> list[Figure]:
    import openai

    from registry import ModelRegistry

    server = _ServerProcess()
    previous = Path.cwd()
    os.chdir(tempfile.mkdtemp())
    try:
        Path("settings.toml").write_text(
            f'[models.chat]\nbackend = "azure"\ndeployment = "d"\nendpoint = "{server.base_url}"\n'
            'api_version = "2024-10-21"\napi_key = "test-key"\nmax_retries = 0\n'
            '[models.stream]\nbackend = "azure"\ndeployment = "d"\n'
            f'endpoint = "{server.base_url}"\napi_version = "2024-10-21"\napi_key = "test-key"\n'
            "max_retries = 0\nconfig = { stream = true }\n"
        )
        registry = ModelRegistry.from_settings()
        model, streamer = registry.create("chat"), registry.create("stream")
        raw = openai.AzureOpenAI(
            azure_endpoint=server.base_url,
            azure_deployment="d",
            api_version="2024-10-21",
            api_key="test-key",
            max_retries=0,
        )

        def ours_call() -> None:
            model.run(MESSAGES)

        def raw_call() -> None:
            raw.chat.completions.create(messages=MESSAGES, model="d")  # type: ignore[arg-type]

        def ours_stream() -> None:
            for _ in streamer.run(MESSAGES):
                pass

        def raw_stream() -> None:
            for _ in raw.chat.completions.create(messages=MESSAGES, model="d", stream=True):  # type: ignore[arg-type]
                pass

        for _ in range(20):
            ours_call(), raw_call()
        calls, streams = (200, 40) if quick else (2000, 200)
        seq = _blocks(ours_call, raw_call, calls, 50)
        stream = _blocks(ours_stream, raw_stream, streams, 20)
        concurrent = asyncio.run(_async_figures(registry, server.base_url, 2 if quick else 10))
        raw.close()
        registry.close()
    finally:
        os.chdir(previous)
        server.stop()
    figures = []
    for label, (ours_s, raw_s) in (
        (f"{calls} sequential run() calls", seq),
        (f"{streams} streamed run() calls", stream),
        ("100 concurrent arun() tasks", concurrent),
    ):
        figures.append(
            Figure(
                f"request overhead: {label}",
                ours_s * 1e6,
                "us/call",
                raw_s * 1e6,
                "raw openai SDK, same server",
                "<= 1.03x",
                ours_s / raw_s <= 1.03,
            )
        )
    return figures


async def _async_figures(registry: Any, url: str, rounds: int) -> tuple[float, float]:
    import openai

    model = registry.create("chat")
    raw = openai.AsyncAzureOpenAI(
        azure_endpoint=url,
        azure_deployment="d",
        api_version="2024-10-21",
        api_key="test-key",
        max_retries=0,
    )

    async def ours_round() -> None:
        await asyncio.gather(*(model.arun(MESSAGES) for _ in range(100)))

    async def raw_round() -> None:
        await asyncio.gather(
            *(raw.chat.completions.create(messages=MESSAGES, model="d") for _ in range(100))
        )  # type: ignore[arg-type]

    await ours_round()
    await raw_round()
    ours_times, raw_times = [], []
    for _ in range(rounds):
        for function, sink in ((ours_round, ours_times), (raw_round, raw_times)):
            start = time.perf_counter()
            await function()
            sink.append((time.perf_counter() - start) / 100)
    await raw.close()
    await registry.aclose()
    return statistics.median(ours_times), statistics.median(raw_times)
