"""Pools over real HTTP: the openai SDK (its own retries off) against the loopback Azure server.

Each pool member is a deployment on the loopback server; the server's scripted faults are what
the deployments answer, so the classification of the SDK's real exceptions, failover, and
waits of at least what the server asked are all exercised end to end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from registry.errors import NoDeploymentAvailableError
from registry.routing import (
    CooldownKind,
    CooldownRules,
    Deployment,
    ErrorKind,
    Failure,
    Pool,
    deployment_label,
    failure_from_exception,
)
from tests.azure_server import AzureServer, Fault

MESSAGES: list[Any] = [{"role": "user", "content": "Hello"}]
API_VERSION = "2024-10-21"


@pytest.fixture
def client(server: AzureServer) -> Iterator[openai.AzureOpenAI]:
    sdk = openai.AzureOpenAI(
        azure_endpoint=server.base_url, api_key="test-key", api_version=API_VERSION, max_retries=0
    )
    yield sdk
    sdk.close()


def deployments(server: AzureServer, *names: str) -> list[Deployment]:
    return [
        Deployment(f"chat#{i}", deployment_label(server.base_url, name))
        for i, name in enumerate(names)
    ]


def name_of(deployment: Deployment) -> str:
    return deployment.label.rsplit("/", 1)[1]


def sender(client: openai.AzureOpenAI) -> Any:
    def send(deployment: Deployment) -> Any:
        return client.chat.completions.create(model=name_of(deployment), messages=MESSAGES)

    return send


def served(server: AzureServer) -> list[str | None]:
    return [request.deployment for request in server.requests]


# -- the SDK's exceptions, classified -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind", "status", "headers"),
    [
        (
            Fault(429, {"retry-after-ms": "1500", "x-ms-region": "East US"}),
            ErrorKind.STATUS,
            429,
            {"retry-after-ms": "1500"},
        ),
        (
            Fault(429, {"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-remaining-tokens": "0"}),
            ErrorKind.STATUS,
            429,
            {"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-remaining-tokens": "0"},
        ),
        (Fault(503), ErrorKind.STATUS, 503, {}),
        (Fault(401), ErrorKind.STATUS, 401, {}),
        (Fault(reset=True), ErrorKind.CONNECTION, None, {}),
        (Fault(delay=1.0), ErrorKind.TIMEOUT, None, {}),
    ],
    ids=["429-ms", "429-reset", "503", "401", "reset", "timeout"],
)
def test_sdk_exceptions_become_failures(
    server: AzureServer,
    client: openai.AzureOpenAI,
    fault: Fault,
    kind: ErrorKind,
    status: int | None,
    headers: dict[str, str],
) -> None:
    server.add_faults(fault)
    with pytest.raises(openai.OpenAIError) as raised:
        client.with_options(timeout=0.3).chat.completions.create(model="d", messages=MESSAGES)
    failure = failure_from_exception(raised.value)
    assert (failure.kind, failure.status, dict(failure.headers)) == (kind, status, headers)


def test_an_azure_content_filter_refusal_is_classified_with_its_code(
    server: AzureServer, client: openai.AzureOpenAI
) -> None:
    body = {"error": {"code": "content_filter", "message": "The response was filtered"}}
    server.add_faults(Fault(400, body=body))
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="d", messages=MESSAGES)
    assert failure_from_exception(raised.value) == Failure(
        ErrorKind.STATUS, 400, {}, "content_filter"
    )


def test_a_reply_cut_by_the_content_filter_is_a_refusal(
    server: AzureServer, client: openai.AzureOpenAI
) -> None:
    class Answer(BaseModel):
        text: str

    server.add_faults(Fault(content_filter_finish=True))
    with pytest.raises(openai.ContentFilterFinishReasonError) as raised:
        client.chat.completions.parse(model="d", messages=MESSAGES, response_format=Answer)
    assert failure_from_exception(raised.value).kind is ErrorKind.CONTENT_FILTER


# -- failover and waits ----------------------------------------------------------------------


def test_a_429_fails_over_at_once_and_cools_the_deployment(
    server: AzureServer, client: openai.AzureOpenAI
) -> None:
    pool = Pool("chat", deployments(server, "east", "west"), strategy="ordered")
    server.add_faults(Fault(429, {"retry-after": "30"}))
    reply = pool.call(sender(client), max_retries=2, budget=10)
    assert reply.choices[0].message.content.startswith("Hello from the loopback server")
    assert served(server) == ["east", "west"]
    east = pool.snapshot()[0]
    assert east.cooldown is not None and east.cooldown.kind is CooldownKind.RATE_LIMITED
    assert east.cooldown.remaining > 29
    pool.call(sender(client), max_retries=2, budget=10)  # east is still out
    assert served(server) == ["east", "west", "west"]


@pytest.mark.parametrize(
    ("headers", "asked"),
    [
        ({"retry-after-ms": "300"}, 0.3),
        ({"retry-after": "1"}, 1.0),
        ({"x-ratelimit-reset-requests": "400ms", "x-ratelimit-remaining-requests": "0"}, 0.4),
    ],
    ids=["retry-after-ms", "retry-after", "x-ratelimit-reset-requests"],
)
def test_a_lone_deployment_waits_at_least_what_the_server_asked(
    server: AzureServer, client: openai.AzureOpenAI, headers: dict[str, str], asked: float
) -> None:
    pool = Pool("chat", deployments(server, "only"))
    server.add_faults(Fault(429, headers))
    start = time.monotonic()
    pool.call(sender(client), max_retries=1, budget=10)
    assert time.monotonic() - start >= asked
    assert served(server) == ["only", "only"]


def test_when_the_wait_outlasts_the_budget_the_pool_says_so(
    server: AzureServer, client: openai.AzureOpenAI
) -> None:
    pool = Pool("chat", deployments(server, "only"))
    server.add_faults(Fault(429, {"retry-after": "20"}))
    with pytest.raises(NoDeploymentAvailableError) as raised:
        pool.call(sender(client), max_retries=3, budget=5)
    assert isinstance(raised.value.__cause__, openai.RateLimitError)
    message = str(raised.value)
    assert "429, retry-after 20 s" in message and "127.0.0.1" in message
    assert "test-key" not in message
    assert served(server) == ["only"]


def test_a_misconfigured_deployment_is_skipped_and_named_once(
    server: AzureServer, client: openai.AzureOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelreg")
    server.deployments = {"west"}  # east answers 404 DeploymentNotFound
    pool = Pool("chat", deployments(server, "east", "west"), strategy="ordered")
    for _ in range(3):
        pool.call(sender(client), max_retries=2, budget=10)
    assert served(server) == ["east", "west", "west", "west"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "chat#0" in warnings[0] and "404" in warnings[0]
    assert "test-key" not in " ".join(r.getMessage() for r in caplog.records)


def test_the_caller_s_fault_is_raised_without_failover(
    server: AzureServer, client: openai.AzureOpenAI
) -> None:
    body = {"error": {"code": "content_filter", "message": "filtered"}}
    server.add_faults(Fault(400, body=body))
    pool = Pool("chat", deployments(server, "east", "west"), rules=CooldownRules(allowed_fails=0))
    with pytest.raises(openai.BadRequestError):
        pool.call(sender(client), max_retries=3, budget=10)
    assert len(server.requests) == 1
    assert all(state.available for state in pool.snapshot())


def test_acall_fails_over_and_waits_on_the_async_client(server: AzureServer) -> None:
    pool = Pool("chat", deployments(server, "east", "west"), strategy="ordered")
    server.add_faults(
        Fault(500), Fault(429, {"retry-after-ms": "250"}), Fault(429, {"retry-after-ms": "250"})
    )

    async def main() -> tuple[Any, float]:
        sdk = openai.AsyncAzureOpenAI(
            azure_endpoint=server.base_url,
            api_key="test-key",
            api_version=API_VERSION,
            max_retries=0,
        )

        async def send(deployment: Deployment) -> Any:
            return await sdk.chat.completions.create(model=name_of(deployment), messages=MESSAGES)

        start = time.monotonic()
        try:
            reply = await pool.acall(send, max_retries=3, budget=10)
        finally:
            await sdk.close()
        return reply, time.monotonic() - start

    reply, elapsed = asyncio.run(main())
    assert reply.choices[0].message.content.startswith("Hello")
    # east: 500 (counted, not cooled) -> west: 429, out for 250 ms -> east again, after a
    # backoff (0.375-0.5 s, longer than west's cooldown): 429 -> west, whose cooldown is over
    assert served(server) == ["east", "west", "east", "west"]
    assert elapsed >= 0.375
