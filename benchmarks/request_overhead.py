"""Per-request overhead of ``model.run`` / ``arun`` against the raw SDK on the same server.

Both sides call the same loopback server (tests/azure_server.py, in its own process so that
it does not compete for this process's GIL) in the same run, interleaved in blocks so machine
noise hits both alike; the figure is the ratio of median block times.

The Responses rows put ``api = "responses"`` models (translation to ``responses.create`` and
conversion of the reply to a ``ChatCompletion`` included) against the raw SDK's
``responses.create`` with the same request body.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._server import ServerProcess
from benchmarks._util import Figure, paired_blocks

MESSAGES: list[Any] = [{"role": "user", "content": "Hello"}]


def run(quick: bool) -> list[Figure]:
    import openai

    from registry import ModelRegistry

    server = ServerProcess()
    previous = Path.cwd()
    os.chdir(tempfile.mkdtemp())
    try:
        Path("settings.toml").write_text(
            f'[models.chat]\nbackend = "azure"\ndeployment = "d"\nendpoint = "{server.base_url}"\n'
            'api_version = "2024-10-21"\napi_key = "test-key"\nmax_retries = 0\n'
            '[models.stream]\nbackend = "azure"\ndeployment = "d"\n'
            f'endpoint = "{server.base_url}"\napi_version = "2024-10-21"\napi_key = "test-key"\n'
            "max_retries = 0\nconfig = { stream = true }\n"
            '[models.responses]\nbackend = "azure"\ndeployment = "d"\napi = "responses"\n'
            f'endpoint = "{server.base_url}"\napi_version = "{RESPONSES_VERSION}"\n'
            'api_key = "test-key"\nmax_retries = 0\n'
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
            raw.chat.completions.create(messages=MESSAGES, model="d")

        def ours_stream() -> None:
            for _ in streamer.run(MESSAGES):
                pass

        def raw_stream() -> None:
            for _ in raw.chat.completions.create(messages=MESSAGES, model="d", stream=True):
                pass

        for _ in range(20):
            ours_call()
            raw_call()
        calls, streams = (200, 40) if quick else (2000, 200)
        seq = paired_blocks(ours_call, raw_call, calls, 50)
        stream = paired_blocks(ours_stream, raw_stream, streams, 20)
        responses = _responses_figures(registry, server.base_url, calls)
        concurrent = asyncio.run(_async_figures(registry, server.base_url, 2 if quick else 10))
        raw.close()
        registry.close()
    finally:
        os.chdir(previous)
        server.stop()
    figures = []
    in_process = _in_process_overhead(400 if quick else 4000)
    responses_in_process = _in_process_overhead(400 if quick else 4000, api="responses")
    for label, (ours_s, raw_s, ratio) in (
        ("in-process transport, no network", in_process),
        (f"{calls} sequential run() calls", seq),
        (f"{streams} streamed run() calls", stream),
        ("100 concurrent arun() tasks", concurrent),
        ("Responses API: in-process transport, no network", responses_in_process),
        (f"Responses API: {calls} sequential run() calls", responses),
    ):
        figures.append(
            Figure(
                f"request overhead: {label}",
                ours_s * 1e6,
                "us/call",
                raw_s * 1e6,
                "raw openai SDK, same server",
                "<= 1.03x",
                ratio <= 1.03,
                paired_ratio=ratio,
            )
        )
    return figures


RESPONSES_VERSION = "2025-04-01-preview"
#: What the raw SDK sends for the Responses rows: the body modelreg sends for MESSAGES.
RESPONSES_REQUEST: dict[str, Any] = {"model": "d", "input": MESSAGES, "store": False}


def _responses_figures(registry: Any, url: str, calls: int) -> tuple[float, float, float]:
    """``run()`` on an ``api = "responses"`` model against the raw ``responses.create``."""
    import openai

    model = registry.create("responses")
    raw = openai.AzureOpenAI(
        azure_endpoint=url,
        azure_deployment="d",
        api_version=RESPONSES_VERSION,
        api_key="test-key",
        max_retries=0,
    )

    def ours_call() -> None:
        model.run(MESSAGES)

    def raw_call() -> None:
        raw.responses.create(**RESPONSES_REQUEST)

    for _ in range(20):
        ours_call()
        raw_call()
    try:
        return paired_blocks(ours_call, raw_call, calls, 50)
    finally:
        raw.close()


def _reply_body(api: str) -> bytes:
    """A minimal reply of ``api``: a chat completion, or a Response."""
    import json

    if api == "responses":
        message = {
            "type": "message",
            "id": "m",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi", "annotations": []}],
        }
        reply: dict[str, Any] = {
            "id": "x",
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": "d",
            "output": [message],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
    else:
        reply = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "d",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "hi"},
                }
            ],
        }
    return json.dumps(reply).encode()


def in_process_transport(api: str = "chat_completions") -> Any:
    """An httpx2 transport that answers every request in-process with a minimal reply of ``api``."""
    import httpx2

    body = _reply_body(api)
    return httpx2.MockTransport(
        lambda request: httpx2.Response(
            200, content=body, headers={"content-type": "application/json"}
        )
    )


def _in_process_overhead(calls: int, api: str = "chat_completions") -> tuple[float, float, float]:
    """The same comparison on an in-process httpx2 transport: only client-side work differs.

    Loopback figures carry the server's and the scheduler's noise (a few percent between
    runs); this one isolates what modelreg adds to each call.
    """
    import httpx2
    import openai

    from backends.azure import AzureOpenAIModel
    from registry.http_clients import TimedHttpClient

    version = RESPONSES_VERSION if api == "responses" else "2024-10-21"

    model = AzureOpenAIModel(  # on modelreg's timed client, as models without one get
        "d",
        api_key="k",
        url="https://x.example.com",
        api_version=version,
        max_retries=0,
        http_client=TimedHttpClient(transport=in_process_transport(api)),
        api=api,
    )
    raw = openai.AzureOpenAI(
        azure_endpoint="https://x.example.com",
        azure_deployment="d",
        api_version=version,
        api_key="k",
        max_retries=0,
        timeout=180.0,
        http_client=httpx2.Client(transport=in_process_transport(api)),
    )

    def ours_call() -> None:
        model.run(MESSAGES)

    def raw_call() -> None:
        if api == "responses":
            raw.responses.create(**RESPONSES_REQUEST)
        else:
            raw.chat.completions.create(messages=MESSAGES, model="d")

    for _ in range(100):
        ours_call()
        raw_call()
    return paired_blocks(ours_call, raw_call, calls, 100)


async def _async_figures(registry: Any, url: str, rounds: int) -> tuple[float, float, float]:
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
        )

    await ours_round()
    await raw_round()
    ours_times: list[float] = []
    raw_times: list[float] = []
    ratios = []
    for index in range(max(2, rounds)):
        sides = [(ours_round, ours_times), (raw_round, raw_times)]
        for function, sink in sides if index % 2 == 0 else reversed(sides):
            start = time.perf_counter()
            await function()
            sink.append((time.perf_counter() - start) / 100)
        ratios.append(ours_times[-1] / raw_times[-1])
    await raw.close()
    await registry.aclose()
    return statistics.median(ours_times), statistics.median(raw_times), statistics.median(ratios)
