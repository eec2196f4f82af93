"""Faults on the wire: every scenario ends in success within max_retries, or in the SDK's typed
error (or BackendError) with the model named — never a hang beyond the timeout, never a secret.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from backends.azure import AzureOpenAIModel
from registry import BackendError
from tests.azure_server import AzureServer, Fault

MESSAGES = [{"role": "user", "content": "Hello there, how are you today?"}]
KEY = "test-key"
CONTENT_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
    }
}


@dataclass
class Scenario:
    name: str
    faults: list[Fault]
    expect: type[Exception] | None  # None: success
    retries: int = 2
    timeout: float = 5.0
    streams: tuple[bool, ...] = (False, True)
    requests: int | None = None  # how many requests the server must see
    message: str = ""  # must appear in the error message
    budget: float = 3.0  # seconds the scenario may take at most


def status(code: int, **headers: str) -> Fault:
    return Fault(
        status=code,
        headers=headers,
        body={"error": {"code": str(code), "message": f"status {code}"}},
    )


SCENARIOS = [
    Scenario("429 retry-after-ms", [status(429, **{"retry-after-ms": "20"})], None, requests=2),
    Scenario("429 retry-after seconds", [status(429, **{"retry-after": "0.02"})], None, requests=2),
    Scenario("429 no header (backoff)", [status(429)], None, streams=(False,), requests=2),
    Scenario(
        "429 exhausted",
        [status(429, **{"retry-after-ms": "10"})] * 3,
        openai.RateLimitError,
        requests=3,
    ),
    Scenario(
        "429 retry-after too long",
        [status(429, **{"retry-after-ms": "999999"})],
        openai.RateLimitError,
        requests=1,
    ),
    Scenario("500", [status(500)], None, requests=2, budget=4),
    Scenario("502", [status(502, **{"retry-after-ms": "10"})], None, requests=2),
    Scenario("503", [status(503, **{"retry-after-ms": "10"})], None, requests=2),
    Scenario(
        "500 exhausted",
        [status(500, **{"retry-after-ms": "10"})] * 3,
        openai.InternalServerError,
        requests=3,
    ),
    Scenario("408", [status(408, **{"retry-after-ms": "10"})], None, requests=2),
    Scenario("reset before response", [Fault(reset=True)], None, retries=1, requests=2),
    Scenario(
        "reset exhausted", [Fault(reset=True)] * 2, openai.APIConnectionError, retries=1, requests=2
    ),
    Scenario(
        "read timeout",
        [Fault(delay=1.5)],
        openai.APITimeoutError,
        retries=0,
        timeout=0.3,
        requests=1,
        budget=1.2,
    ),
    Scenario(
        "stream cut before [DONE]",
        [Fault(cut_stream_after=2)],
        openai.APIConnectionError,
        retries=0,
        streams=(True,),
    ),
    Scenario(
        "invalid JSON",
        [Fault(body="{not json")],
        BackendError,
        streams=(False,),
        message="not valid JSON",
    ),
    Scenario(
        "content filter 400",
        [Fault(status=400, body=CONTENT_FILTER)],
        openai.BadRequestError,
        requests=1,
        message="content management policy",
    ),
    Scenario(
        "content filter finish_reason", [Fault(content_filter_finish=True)], None, streams=(False,)
    ),
    Scenario("401 wrong key", [status(401)], openai.AuthenticationError, requests=1),
]


def run_scenario(server: AzureServer, scenario: Scenario, *, stream: bool, use_async: bool) -> Any:
    model = AzureOpenAIModel(
        "dep",
        {"stream": stream},
        api_key=KEY,
        url=server.base_url,
        api_version="2024-10-21",
        max_retries=scenario.retries,
        timeout=scenario.timeout,
        name="chat",
    )
    server.add_faults(*scenario.faults)

    def consume(result: Any) -> Any:
        return [chunk for chunk in result] if stream else result

    async def consume_async() -> Any:
        try:
            result = await model.arun(MESSAGES)
            return [chunk async for chunk in result] if stream else result
        finally:
            await model.aclose()

    try:
        return asyncio.run(consume_async()) if use_async else consume(model.run(MESSAGES))
    finally:
        model.close()


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "scenario, stream",
    [
        pytest.param(s, st, id=f"{s.name}-{'stream' if st else 'plain'}")
        for s in SCENARIOS
        for st in s.streams
    ],
)
def test_fault(server: AzureServer, scenario: Scenario, stream: bool, use_async: bool) -> None:
    start = time.monotonic()
    if scenario.expect is None:
        result = run_scenario(server, scenario, stream=stream, use_async=use_async)
        if stream:
            assert result[-1].choices[0].finish_reason == "stop" if result[-1].choices else True
        elif "finish_reason" in scenario.name:
            assert result.choices[0].finish_reason == "content_filter"
        else:
            assert result.choices[0].message.content.startswith("Hello from the loopback server.")
    else:
        with pytest.raises(scenario.expect) as caught:
            run_scenario(server, scenario, stream=stream, use_async=use_async)
        message = str(caught.value)
        assert "model 'chat'" in message and "deployment 'dep'" in message
        assert scenario.message in message
        assert KEY not in message and KEY not in repr(caught.value.args)
    elapsed = time.monotonic() - start
    assert elapsed < scenario.budget, f"took {elapsed:.2f}s"
    if scenario.requests is not None:
        assert len(server.requests) == scenario.requests


def test_expired_ad_token_renewed_by_provider(server: AzureServer) -> None:
    tokens = (f"token-{i}" for i in itertools.count())
    model = AzureOpenAIModel(
        "dep",
        azure_ad_token_provider=lambda: next(tokens),
        url=server.base_url,
        api_version="2024-10-21",
        max_retries=0,
        name="chat",
    )
    server.add_faults(
        Fault(status=401, body={"error": {"code": "401", "message": "Token expired"}})
    )
    reply = model.run(MESSAGES)
    assert reply.choices[0].message.content.startswith("Hello")
    seen = [r.headers["authorization"] for r in server.requests]
    assert seen == ["Bearer token-0", "Bearer token-1"]

    async def async_case() -> None:
        server.add_faults(
            Fault(status=401, body={"error": {"code": "401", "message": "Token expired"}})
        )
        await model.arun(MESSAGES)
        await model.aclose()

    asyncio.run(async_case())
    assert [r.headers["authorization"] for r in server.requests[2:]] == [
        "Bearer token-2",
        "Bearer token-3",
    ]


def test_expired_token_twice_is_authentication_error(server: AzureServer) -> None:
    model = AzureOpenAIModel(
        "dep",
        azure_ad_token_provider=lambda: "token-old",
        url=server.base_url,
        api_version="2024-10-21",
        max_retries=0,
        name="chat",
    )
    server.add_faults(
        *[Fault(status=401, body={"error": {"code": "401", "message": "expired"}})] * 2
    )
    with pytest.raises(openai.AuthenticationError, match="model 'chat'"):
        model.run(MESSAGES)
    assert len(server.requests) == 2


def test_deployment_not_found_says_where_deployment_came_from(
    server: AzureServer, write_settings: Any
) -> None:
    from registry import ModelRegistry

    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "gpt-4o-typo"
        endpoint = "{server.base_url}"
        api_version = "2024-10-21"
        api_key = "{KEY}"
        max_retries = 0
        """
    )
    server.deployments = {"gpt-4o"}
    with ModelRegistry.from_settings() as registry, pytest.raises(openai.NotFoundError) as caught:
        registry.create("chat").run(MESSAGES)
    message = str(caught.value)
    assert "Check `deployment` (from settings.toml [models.chat])" in message
    assert "gpt-4o-typo" in message and KEY not in message


def test_scenario_table_covers_at_least_twenty_faults() -> None:
    assert len(SCENARIOS) + 3 >= 20  # plus the three token/deployment tests above
