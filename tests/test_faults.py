"""Faults on the wire, through every request path: create, stream, parse and stream-parse, each
sync and async. Every scenario ends in success within max_retries, or in the SDK's typed error
(or a BackendError) with the model named — never a hang beyond the timeout, never a secret.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from backends.azure import AzureOpenAIModel
from registry import BackendError, ConfigError, IncompleteStreamError
from tests.azure_server import AzureServer, Fault

MESSAGES = [{"role": "user", "content": "Hello there, how are you today?"}]
KEY = "test-key"
KINDS = ("create", "stream", "parse", "stream-parse")
STREAMING = ("stream", "stream-parse")
CONTENT_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
    }
}


class Answer(BaseModel):
    city: str
    degrees: int


@dataclass
class Scenario:
    name: str
    faults: list[Fault]
    expect: type[Exception] | None  # None: success
    retries: int = 2
    timeout: float = 5.0
    kinds: tuple[str, ...] = KINDS
    expect_by_kind: dict[str, type[Exception] | None] = field(default_factory=dict)
    requests: int | None = None  # how many requests the server must see
    stream_requests: int | None = None  # the same for streaming kinds, when it differs
    message: str = ""  # a regex the error message must match
    budget: float = 3.0  # seconds the scenario may take at most
    min_gap: float = 0.0  # seconds the client must wait between its first two requests


def status(code: int, message: str = "", **headers: str) -> Fault:
    return Fault(
        status=code,
        headers=headers,
        body={"error": {"code": str(code), "message": message or f"status {code}"}},
    )


def stream_of(*events: str) -> Fault:
    body = "".join(f"data: {event}\n\n" for event in events)
    return Fault(body=body, headers={"Content-Type": "text/event-stream"})


SCENARIOS = [
    # Waits above the SDK's longest first backoff (0.5 s): a test that passes with the header
    # ignored cannot tell whether it was obeyed.
    Scenario(
        "429 retry-after-ms",
        [status(429, **{"retry-after-ms": "600"})],
        None,
        requests=2,
        min_gap=0.6,
    ),
    Scenario(
        "429 retry-after seconds",
        [status(429, **{"retry-after": "0.6"})],
        None,
        requests=2,
        min_gap=0.6,
    ),
    Scenario(
        "429 only x-ratelimit-reset-requests",
        [status(429, **{"x-ratelimit-reset-requests": "600ms"})],
        None,
        requests=2,
        min_gap=0.6,
    ),
    Scenario("429 no header (backoff)", [status(429)], None, requests=2, min_gap=0.35),
    Scenario(
        "429 exhausted",
        [status(429, **{"retry-after-ms": "10"})] * 3,
        openai.RateLimitError,
        requests=3,
    ),
    Scenario(
        "429 retry-after above 120 s is not retried",
        [status(429, **{"retry-after-ms": "999999"})],
        openai.RateLimitError,
        requests=1,
    ),
    Scenario(
        "429 x-ratelimit-reset above 120 s is not retried",
        [status(429, **{"x-ratelimit-reset-tokens": "3m0s"})],
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
        "reset exhausted",
        [Fault(reset=True)] * 2,
        openai.APIConnectionError,
        retries=1,
        requests=2,
        message=r"Connection error\. 127\.0\.0\.1:\d+ reset the connection\.",
    ),
    Scenario(
        "no headers within timeout",
        [Fault(delay=1.5)],
        openai.APITimeoutError,
        retries=0,
        timeout=0.3,
        requests=1,
        budget=1.2,
        message=r"timeout = 0\.3 s",
    ),
    Scenario(
        # ~330 bytes, 4 every 50 ms: each attempt would take ~4 s, the call ~9 s.
        "trickled body",
        [Fault(trickle=0.05)] * 2,
        openai.APITimeoutError,
        retries=1,
        timeout=0.4,
        requests=2,
        stream_requests=1,  # the first event is late: streams fail mid-body, not retried
        budget=4.0,
    ),
    Scenario(
        "body stalls after a few bytes",
        [Fault(stall_after=30, stall_for=5)] * 2,
        openai.APITimeoutError,
        retries=1,
        timeout=0.4,
        requests=2,
        stream_requests=1,
        budget=4.0,
    ),
    Scenario(
        "slow stream, every chunk within timeout",
        [Fault(chunk_interval=0.2)],
        None,
        kinds=STREAMING,
        timeout=0.6,  # the whole stream takes 0.8 s (stream-parse) to 1.8 s
        requests=1,
        budget=5.0,
    ),
    Scenario(
        "stream connection dropped mid-body",
        [Fault(cut_stream_after=2)],
        openai.APIConnectionError,
        retries=0,
        kinds=STREAMING,
    ),
    Scenario(
        "stream ended cleanly without finish_reason or [DONE]",
        [Fault(end_stream_after=2)],
        IncompleteStreamError,
        kinds=STREAMING,
        message="ended after 2 chunk.s. without a finish_reason for choice 0",
    ),
    Scenario(
        "corrupt chunk mid-stream",
        [Fault(corrupt_chunk=2)],
        BackendError,
        kinds=STREAMING,
        message="event 3 of the stream is not valid JSON .* after 2 valid chunk",
    ),
    Scenario(
        "event stream of objects without choices",
        [stream_of('{"id": "x"}', '{"id": "y"}', "[DONE]")],
        IncompleteStreamError,
        kinds=STREAMING,
        message="after 2 chunk",
    ),
    Scenario(
        "invalid JSON body",
        [Fault(body="{not json")],
        BackendError,
        message=r"response is not valid JSON .*'\{not json'|'application/json', not an event stream",
    ),
    Scenario(
        "HTML page with status 200",
        [Fault(body="<html><body>Sign in</body></html>", headers={"Content-Type": "text/html"})],
        BackendError,
        message=r"not JSON \(33 characters, starting '<html>|not a chat completion the openai SDK"
        r"|'text/html', not an event stream",
    ),
    Scenario(
        "JSON without choices",
        [Fault(body={"error": {"message": "quota exceeded"}})],
        BackendError,
        message=r"no `choices` \(its fields: error\); its error says 'quota exceeded'"
        r"|not a chat completion the openai SDK|not an event stream",
    ),
    Scenario(
        "content filter 400",
        [Fault(status=400, body=CONTENT_FILTER)],
        openai.BadRequestError,
        requests=1,
        message="content management policy",
    ),
    Scenario(
        "content filter finish_reason",
        [Fault(content_filter_finish=True)],
        None,
        expect_by_kind={
            "parse": openai.ContentFilterFinishReasonError,
            "stream-parse": openai.ContentFilterFinishReasonError,
        },
    ),
    Scenario(
        "401 wrong key",
        [status(401, "Access denied due to invalid subscription key.")],
        openai.AuthenticationError,
        requests=1,
        message=r"rejected api_key \(from the constructor\)",
    ),
    Scenario(
        "403",
        [status(403, "Principal does not have access.")],
        openai.PermissionDeniedError,
        requests=1,
        message="Cognitive Services OpenAI User",
    ),
    Scenario(
        "404 for an api_version the resource lacks",
        [status(404, "Resource not found")],
        openai.NotFoundError,
        requests=1,
        message=r"Check `api_version` \(from the constructor\): '2024-10-21'",
    ),
]


def make_model(server: AzureServer, kind: str, **kwargs: Any) -> AzureOpenAIModel:
    options: dict[str, Any] = {
        "api_key": KEY,
        "url": server.base_url,
        "api_version": "2024-10-21",
        "name": "chat",
        **kwargs,
    }
    return AzureOpenAIModel("dep", {"stream": kind in STREAMING}, **options)


def call(model: AzureOpenAIModel, kind: str) -> Any:
    """One request down ``kind``'s path; the completion, or for ``stream`` the chunks."""
    result = model.run(MESSAGES, response_format=Answer if "parse" in kind else None)
    if kind == "stream":
        return list(result)
    if kind == "stream-parse":
        with result as stream:
            for _ in stream:
                pass
            return stream.get_final_completion()
    return result


async def acall(model: AzureOpenAIModel, kind: str) -> Any:
    result = await model.arun(MESSAGES, response_format=Answer if "parse" in kind else None)
    if kind == "stream":
        return [chunk async for chunk in result]
    if kind == "stream-parse":
        async with result as stream:
            async for _ in stream:
                pass
            return await stream.get_final_completion()
    return result


def run_kind(model: AzureOpenAIModel, kind: str, use_async: bool) -> Any:
    async def in_loop() -> Any:
        try:
            return await acall(model, kind)
        finally:
            await model.aclose()

    try:
        return asyncio.run(in_loop()) if use_async else call(model, kind)
    finally:
        model.close()


def assert_success(result: Any, kind: str, scenario: Scenario) -> None:
    if kind == "stream":
        finishes = [c.choices[0].finish_reason for c in result if c.choices]
        expected = "content_filter" if "content filter" in scenario.name else "stop"
        assert finishes[-1] == expected
        return
    choice = result.choices[0]
    if "content filter" in scenario.name:
        assert choice.finish_reason == "content_filter"
    elif "parse" in kind:
        assert choice.message.parsed == Answer(city="text", degrees=7)
    else:
        assert choice.message.content.startswith("Hello from the loopback server.")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "scenario, kind",
    [pytest.param(s, k, id=f"{s.name}-{k}") for s in SCENARIOS for k in s.kinds],
)
def test_fault(server: AzureServer, scenario: Scenario, kind: str, use_async: bool) -> None:
    model = make_model(server, kind, max_retries=scenario.retries, timeout=scenario.timeout)
    check_fault(server, scenario, kind, use_async, model)


def check_fault(
    server: AzureServer, scenario: Scenario, kind: str, use_async: bool, model: AzureOpenAIModel
) -> None:
    """Run ``scenario`` down ``kind``'s path; check the outcome, the time and the requests."""
    server.add_faults(*scenario.faults)
    expect = scenario.expect_by_kind.get(kind, scenario.expect)
    start = time.monotonic()
    if expect is None:
        assert_success(run_kind(model, kind, use_async), kind, scenario)
    else:
        with pytest.raises(expect) as caught:
            run_kind(model, kind, use_async)
        message = str(caught.value)
        assert "model 'chat'" in message and "deployment 'dep'" in message, message
        assert re.search(scenario.message, message), message
        assert KEY not in message and KEY not in repr(caught.value.args)
        if isinstance(caught.value, BackendError) and "valid JSON" in message:
            assert caught.value.__cause__ is not None
    elapsed = time.monotonic() - start
    assert elapsed < scenario.budget, f"took {elapsed:.2f}s"
    requests = scenario.requests
    if kind in STREAMING and scenario.stream_requests is not None:
        requests = scenario.stream_requests
    if requests is not None:
        assert len(server.requests) == requests
    if scenario.min_gap:
        gap = server.requests[1].received_at - server.requests[0].received_at
        assert gap >= scenario.min_gap, f"retried after {gap:.3f}s"


# -- timeout bounds an attempt, exactly ---------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_body_that_stalls_just_before_the_deadline_ends_at_the_deadline(
    server: AzureServer, use_async: bool
) -> None:
    # 4 bytes every 50 ms for 1.8 s, then silence. A per-read timeout would end the call at
    # ~3.8 s (1.8 s of data + 2 s of silence); the attempt's deadline ends it at ~2 s.
    server.add_faults(Fault(trickle=0.05, stall_after=144, stall_for=10))
    model = make_model(server, "create", max_retries=0, timeout=2.0)
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError, match=r"timeout = 2 s"):
        run_kind(model, "create", use_async)
    assert time.monotonic() - start < 3.2


def test_other_requests_on_the_pool_survive_a_timed_out_one(server: AzureServer) -> None:
    model = make_model(server, "create", max_retries=0, timeout=0.5)
    server.add_faults(Fault(trickle=0.05))
    with pytest.raises(openai.APITimeoutError):
        model.run(MESSAGES)
    replies = [model.run(MESSAGES) for _ in range(3)]  # the shut-down socket is not reused
    assert all(r.choices[0].message.content.startswith("Hello") for r in replies)
    model.close()


# -- 429 without Retry-After --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"x-ratelimit-reset-requests": "1"}, 1.0),  # Azure: whole seconds
        ({"x-ratelimit-reset-tokens": "6m0s"}, 360.0),  # OpenAI: Go durations
        ({"x-ratelimit-reset-requests": "250ms"}, 0.25),
        ({"x-ratelimit-reset-requests": "1.5s", "x-ratelimit-reset-tokens": "20s"}, 20.0),
        (
            {
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-tokens": "40s",
                "x-ratelimit-remaining-tokens": "9000",  # not the limit that was hit
            },
            1.0,
        ),
        ({"x-ratelimit-reset-tokens": "0"}, None),  # Azure's "unknown"
        ({"x-ratelimit-reset-tokens": "soon"}, None),
        ({}, None),
    ],
)
def test_rate_limit_wait(headers: dict[str, str], wait: float | None) -> None:
    import httpx2

    from registry.http_clients import rate_limit_wait

    assert rate_limit_wait(httpx2.Headers(headers)) == wait


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_429_with_azure_reset_seconds_waits_that_long(server: AzureServer, use_async: bool) -> None:
    server.add_faults(status(429, **{"x-ratelimit-reset-tokens": "1"}))
    reply = run_kind(make_model(server, "create", max_retries=1), "create", use_async)
    assert reply.choices[0].message.content.startswith("Hello")
    assert server.requests[1].received_at - server.requests[0].received_at >= 1.0


# -- streams that end early ---------------------------------------------------------------------


# microsoft/aoai-api-simulator (generator/openai.py) puts finish_reason and index inside
# `delta` and ends with a bare "[DONE]" (no "data: "): to the SDK its streams end with neither.
SIMULATOR_CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "choices": [{"delta": {"content": "Hi", "finish_reason": "stop", "index": 0}}],
}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_require_finish_reason_false_accepts_a_stream_without_one(
    server: AzureServer, use_async: bool
) -> None:
    server.add_faults(stream_of(json.dumps(SIMULATOR_CHUNK)))
    relaxed = make_model(server, "stream", require_finish_reason=False)
    assert [c.choices[0].delta.content for c in run_kind(relaxed, "stream", use_async)] == ["Hi"]
    server.add_faults(stream_of(json.dumps(SIMULATOR_CHUNK)))
    with pytest.raises(IncompleteStreamError, match="require_finish_reason = false"):
        run_kind(make_model(server, "stream"), "stream", use_async)
    # The SDK's stream-parse helper cannot assemble choices without an index: a BackendError
    # naming the model (not a raw TypeError), relaxed or not.
    for strict in (True, False):
        server.add_faults(stream_of(json.dumps(SIMULATOR_CHUNK)))
        model = make_model(server, "stream-parse", require_finish_reason=strict)
        with pytest.raises(BackendError, match="not a chat completion the openai SDK can read"):
            run_kind(model, "stream-parse", use_async)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_stream_parse_with_no_usable_chunk_is_a_backend_error(
    server: AzureServer, use_async: bool
) -> None:
    # No chunk has object "chat.completion.chunk": the helper skips them all, and its
    # get_final_completion() used to fail with a bare AssertionError.
    server.add_faults(stream_of('{"id": "x", "choices": []}'))
    model = make_model(server, "stream-parse", require_finish_reason=False)
    with pytest.raises(BackendError, match=r"openai SDK can read \(AssertionError\)") as caught:
        run_kind(model, "stream-parse", use_async)
    assert isinstance(caught.value.__cause__, AssertionError)


def test_require_finish_reason_is_a_model_setting(server: AzureServer, write_settings: Any) -> None:
    from registry import ModelRegistry

    write_settings(
        f"""
        [models.sim]
        backend = "azure"
        deployment = "dep"
        endpoint = "{server.base_url}"
        api_version = "2024-10-21"
        api_key = "{KEY}"
        require_finish_reason = false
        config = {{ stream = true }}
        """
    )
    server.add_faults(Fault(end_stream_after=3))
    with ModelRegistry.from_settings() as registry:
        model = registry.create("sim")
        assert model.require_finish_reason is False  # type: ignore[attr-defined]
        assert len(list(model.run(MESSAGES))) == 3


# -- credentials --------------------------------------------------------------------------------


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
    with pytest.raises(openai.AuthenticationError, match="model 'chat'") as caught:
        model.run(MESSAGES)
    assert "rejected the token from azure_ad_token_provider" in str(caught.value)
    assert len(server.requests) == 2
    model.close()


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_401_renewal_on_every_path(server: AzureServer, kind: str, use_async: bool) -> None:
    tokens = (f"token-{i}" for i in itertools.count())
    model = make_model(
        server,
        kind,
        api_key=None,
        azure_ad_token_provider=lambda: next(tokens),
        max_retries=0,
    )
    server.add_faults(status(401, "Token expired"))
    run_kind(model, kind, use_async)
    seen = [r.headers["authorization"] for r in server.requests]
    assert seen == ["Bearer token-0", "Bearer token-1"]


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


def test_errors_say_where_the_rejected_setting_came_from(
    server: AzureServer, write_settings: Any
) -> None:
    from registry import ModelRegistry

    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "dep"
        endpoint = "{server.base_url}"
        api_version = "2031-01-01"
        api_key = "not-the-key"
        max_retries = 0
        """
    )
    with ModelRegistry.from_settings() as registry:
        model = registry.create("chat")
        with pytest.raises(openai.AuthenticationError) as caught:
            model.run(MESSAGES)
        assert "rejected api_key (from settings.toml [models.chat])" in str(caught.value)
        assert "not-the-key" not in str(caught.value)
        server.api_keys.add("not-the-key")
        server.api_versions = {"2024-10-21"}
        with pytest.raises(openai.NotFoundError) as not_found:
            model.run(MESSAGES)
        assert "Check `api_version` (from settings.toml [models.chat]): '2031-01-01'" in str(
            not_found.value
        )


def test_key_from_the_environment_is_named_as_the_source(
    server: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "wrong-key-from-env")
    model = AzureOpenAIModel(
        "dep", url=server.base_url, api_version="2024-10-21", max_retries=0, name="chat"
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        model.run(MESSAGES)
    assert "rejected api_key (from variable AZURE_OPENAI_API_KEY)" in str(caught.value)
    model.close()


# -- connection errors name the host and the cause ----------------------------------------------


def test_connection_refused_names_host(server: AzureServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = AzureOpenAIModel(
        "dep", api_key=KEY, url=f"http://127.0.0.1:{port}", api_version="2024-10-21", max_retries=0
    )
    with pytest.raises(openai.APIConnectionError) as caught:
        model.run(MESSAGES)
    assert f"127.0.0.1:{port} refused the connection" in str(caught.value)
    model.close()


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_tls_to_a_plain_http_server_says_tls(server: AzureServer, use_async: bool) -> None:
    url = server.base_url.replace("http://", "https://")
    model = AzureOpenAIModel("dep", api_key=KEY, url=url, api_version="2024-10-21", max_retries=0)
    with pytest.raises(openai.APIConnectionError) as caught:
        run_kind(model, "create", use_async)
    assert re.search(
        r"TLS handshake with 127\.0\.0\.1:\d+ failed .*does it speak https", str(caught.value)
    )


def test_dns_failure_names_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may use the network, so the resolver's failure is simulated at socket.getaddrinfo
    # (what httpx2 calls); everything above it is the real SDK.
    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    model = AzureOpenAIModel(
        "dep",
        api_key=KEY,
        url="https://contoso.openai.azure.com",
        api_version="2024-10-21",
        max_retries=0,
    )
    with pytest.raises(openai.APIConnectionError) as caught:
        model.run(MESSAGES)
    assert "DNS lookup of 'contoso.openai.azure.com' failed (Name or service not known)" in str(
        caught.value
    )
    model.close()


# -- the OpenAI-compatible backend speaks of models, not deployments ----------------------------


def test_openai_backend_messages(server: AzureServer) -> None:
    from backends.openai_compatible import OpenAICompatibleModel

    model = OpenAICompatibleModel(
        "llama3", api_key=KEY, url=f"{server.base_url}/v1", max_retries=0, name="local"
    )
    server.add_faults(status(404, "The model `llama3` does not exist."))
    with pytest.raises(openai.NotFoundError) as caught:
        model.run(MESSAGES)
    message = str(caught.value)
    assert message.startswith("[model 'local', requested model 'llama3']")
    assert "deployment" not in message and "Check `base_url`" in message
    model.close()


def test_repr_of_a_model_whose_constructor_failed() -> None:
    from backends.openai_compatible import OpenAICompatibleModel

    for cls in (AzureOpenAIModel, OpenAICompatibleModel):
        instance = cls.__new__(cls)
        with pytest.raises(ConfigError):
            instance.__init__("dep", url="ftp://nope")  # type: ignore[misc]
        assert "name=" in repr(instance)
    bare = AzureOpenAIModel.__new__(AzureOpenAIModel)
    assert repr(bare).startswith("AzureOpenAIModel(name=None")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_slow_reader_does_not_time_out_a_stream(server: AzureServer, use_async: bool) -> None:
    # The server sends everything at once; the reader takes longer than `timeout` per chunk.
    # Only the time spent waiting for the server counts.
    model = make_model(server, "stream", max_retries=0, timeout=0.3)

    def slowly() -> list[Any]:
        chunks = []
        for chunk in model.run(MESSAGES):
            chunks.append(chunk)
            time.sleep(0.4)
        return chunks

    async def aslowly() -> list[Any]:
        chunks = []
        async for chunk in await model.arun(MESSAGES):
            chunks.append(chunk)
            await asyncio.sleep(0.4)
        await model.aclose()
        return chunks

    chunks = asyncio.run(aslowly()) if use_async else slowly()
    assert chunks[-1].choices[0].finish_reason == "stop"
    model.close()


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_server_trickling_after_a_slow_reader_paused_times_out(
    server: AzureServer, use_async: bool
) -> None:
    # The reader pauses (longer than timeout) after the first chunk; then the server trickles
    # the next event a byte every 0.1 s (~15 s; a per-read timeout never fires). The wait that
    # follows the pause must still end after `timeout`.
    server.add_faults(Fault(trickle=0.1, trickle_bytes=1, trickle_from=1))
    model = make_model(server, "stream", max_retries=0, timeout=0.4)
    start = time.monotonic()

    def sync_read() -> None:
        stream = iter(model.run(MESSAGES))
        next(stream)
        time.sleep(0.6)
        next(stream)

    async def async_read() -> None:
        stream = (await model.arun(MESSAGES)).__aiter__()
        await stream.__anext__()
        await asyncio.sleep(0.6)
        try:
            await stream.__anext__()
        finally:
            await model.aclose()

    with pytest.raises(openai.APITimeoutError):
        asyncio.run(async_read()) if use_async else sync_read()
    assert 0.9 < time.monotonic() - start < 3.5  # 0.6 s paused + 0.4 s waiting; not 15 s
    model.close()


# -- the same faults on the Responses API (api = "responses") -----------------------------------

#: Scenarios whose wire and outcome are the same on the Responses API.
SAME_ON_RESPONSES = frozenset(
    {
        "429 retry-after-ms",
        "429 exhausted",
        "500 exhausted",
        "reset exhausted",
        "no headers within timeout",
        "trickled body",
        "stream connection dropped mid-body",
        "content filter 400",
        "content filter finish_reason",
        "401 wrong key",
    }
)
RESPONSES_SCENARIOS = [s for s in SCENARIOS if s.name in SAME_ON_RESPONSES] + [
    Scenario(
        "slow stream, every event within timeout",
        [Fault(chunk_interval=0.1)],
        None,
        kinds=STREAMING,
        timeout=0.5,
        requests=1,
        budget=5.0,
    ),
    Scenario(
        "stream ended cleanly without response.completed",
        [Fault(end_stream_after=5)],
        IncompleteStreamError,
        kinds=STREAMING,
        message=r"ended after 5 event\(s\) without response\.completed or response\.incomplete",
    ),
    Scenario(
        "corrupt event mid-stream",
        [Fault(corrupt_chunk=2)],
        BackendError,
        kinds=STREAMING,
        message="event 3 of the stream is not valid JSON .* after 2 valid chunk",
    ),
    Scenario(
        "event stream of objects the SDK cannot type",
        [stream_of('{"id": "x"}', '{"id": "y"}')],
        IncompleteStreamError,
        kinds=STREAMING,
        message=r"after 2 event\(s\)",
    ),
    Scenario(
        "invalid JSON body",
        [Fault(body="{not json")],
        BackendError,
        message=r"response is not valid JSON .*'\{not json'|'application/json', not an event "
        "stream of Responses API events",
    ),
    Scenario(
        "HTML page with status 200",
        [Fault(body="<html><body>Sign in</body></html>", headers={"Content-Type": "text/html"})],
        BackendError,
        message=r"not JSON \(33 characters, starting '<html>|'text/html', not an event stream",
    ),
    Scenario(
        "JSON without output",
        [Fault(body={"error": {"message": "quota exceeded"}})],
        BackendError,
        message=r"not a Responses API response: no `output` list \(its fields: error\); its error "
        r"says 'quota exceeded'|not an event stream",
    ),
    Scenario(
        "failed response",
        [Fault(failed_response=True)],
        BackendError,
        expect_by_kind={"stream": openai.APIError, "stream-parse": openai.APIError},
        message=r"the response failed \(code 'server_error': 'The model failed to answer\.'\)",
    ),
    Scenario(
        "404 for an api_version without the Responses API",
        [status(404, "Resource not found")],
        openai.NotFoundError,
        requests=1,
        message=r"'2024-10-21' may not be supported by .* \(the Responses API needs "
        r"\"2025-03-01-preview\" or later, or \"v1\"\)",
    ),
]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "scenario, kind",
    [pytest.param(s, k, id=f"{s.name}-{k}") for s in RESPONSES_SCENARIOS for k in s.kinds],
)
def test_responses_fault(
    server: AzureServer, scenario: Scenario, kind: str, use_async: bool
) -> None:
    model = make_model(
        server, kind, max_retries=scenario.retries, timeout=scenario.timeout, api_mode="responses"
    )
    check_fault(server, scenario, kind, use_async, model)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_401_renewal_on_every_responses_path(
    server: AzureServer, kind: str, use_async: bool
) -> None:
    tokens = (f"token-{i}" for i in itertools.count())
    model = make_model(
        server,
        kind,
        api_key=None,
        azure_ad_token_provider=lambda: next(tokens),
        max_retries=0,
        api_mode="responses",
    )
    server.add_faults(status(401, "Token expired"))
    run_kind(model, kind, use_async)
    seen = [r.headers["authorization"] for r in server.requests]
    assert seen == ["Bearer token-0", "Bearer token-1"]
    assert all(r.path == "/openai/responses" for r in server.requests)
