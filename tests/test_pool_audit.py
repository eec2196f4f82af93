"""Pools and fallbacks as an adversarial user finds them (issue 14 audit), over real HTTP.

Each test here failed before the fix its commit made: the README's promises taken at their word
(``weight = 0`` is a standby, a stream-parse fails over until its first chunk, ``native_response``
works on a pool's streams, ``modelreg routes`` says when it could not read the shared state).
Servers and faults are tests/azure_server.py's; the pool settings are tests/test_pools.py's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.responses import native_response
from registry import create_model
from registry.routing.served import served_calls
from tests import test_pools
from tests.azure_server import AzureServer, Fault
from tests.helpers import modelreg
from tests.test_pools import MESSAGES, Answer, asked, settings

# test_pools' fixtures: its three loopback regions and its pool settings
servers = test_pools.servers
regions = test_pools.regions
pool = test_pools.pool

RESPONSES = {"api": '"responses"', "api_version": '"2025-04-01-preview"'}
APIS = {"chat_completions": {}, "responses": RESPONSES}


# -- weight = 0: the README's standby ---------------------------------------------------------


def test_a_zero_weight_deployment_is_a_standby_used_only_while_the_others_cool(
    regions: dict[str, AzureServer], write_settings: Callable[[str], Path]
) -> None:
    """README (Routing): "`weight = 0` is a standby"; settings refused it as not positive."""
    write_settings(settings(regions).replace("weight = 3", "weight = 0"))
    model = create_model("chat")
    for _ in range(20):
        assert model.run(MESSAGES).choices[0].message.content.startswith("west")
    assert asked(regions) == {"east": 0, "west": 20, "backup": 0}
    regions["west"].add_faults(Fault(429, {"retry-after": "30"}))
    assert model.run(MESSAGES).choices[0].message.content.startswith("east")
    assert modelreg("check").returncode == 0
    shown = json.loads(modelreg("routes", "chat", "--json").stdout)
    assert [d["weight"] for d in shown["deployments"]] == [0.0, 1.0]


# -- stream-parse: fails over until its first chunk ---------------------------------------------


@pytest.mark.parametrize("api", list(APIS))
@pytest.mark.parametrize("is_async", [False, True], ids=["run", "arun"])
def test_a_stream_parse_cut_before_its_first_chunk_fails_over(
    api: str, is_async: bool, regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    """The 200 arrived, then the connection broke before any chunk: a plain stream failed over,
    a stream-parse manager (entered, so "routed") raised the connection error to the caller."""
    model = pool(routing='"ordered"', **APIS[api])
    regions["east"].add_faults(Fault(cut_stream_after=0))

    async def parse_async() -> Any:
        async with await model.arun(MESSAGES, response_format=Answer, stream=True) as events:
            return await events.get_final_completion()

    def parse() -> Any:
        with model.run(MESSAGES, response_format=Answer, stream=True) as events:
            return events.get_final_completion()

    with served_calls() as served:
        completion = asyncio.run(parse_async()) if is_async else parse()
    assert completion.choices[0].message.parsed.text
    assert asked(regions) == {"east": 1, "west": 1, "backup": 0}
    assert [(s.model, s.attempts) for s in served] == [("chat", 2)]


@pytest.mark.parametrize("is_async", [False, True], ids=["run", "arun"])
def test_a_stream_parse_yields_every_event_once_after_failing_over(
    is_async: bool, regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    """The event read to decide the attempt answered is handed to the caller, once."""
    model = pool(routing='"ordered"')
    regions["east"].add_faults(Fault(500))
    direct = create_model("backup")

    async def events_async(target: Any) -> list[str]:
        async with await target.arun(MESSAGES, response_format=Answer, stream=True) as events:
            return [event.type async for event in events]

    def events_sync(target: Any) -> list[str]:
        with target.run(MESSAGES, response_format=Answer, stream=True) as events:
            return [event.type for event in events]

    collect = (lambda m: asyncio.run(events_async(m))) if is_async else events_sync
    assert collect(model) == collect(direct)  # same events, the first one not lost nor doubled


@pytest.mark.parametrize("is_async", [False, True], ids=["run", "arun"])
def test_a_stream_parse_cut_after_its_first_chunk_is_not_sent_again(
    is_async: bool, regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    """Peeking the first chunk on entering must not make a later cut fail over."""
    model = pool(routing='"ordered"', fallbacks='["backup"]')
    regions["east"].add_faults(Fault(cut_stream_after=2))

    async def parse_async() -> Any:
        async with await model.arun(MESSAGES, response_format=Answer, stream=True) as events:
            return await events.get_final_completion()

    def parse() -> Any:
        with model.run(MESSAGES, response_format=Answer, stream=True) as events:
            return events.get_final_completion()

    with pytest.raises(Exception, match=r"[Cc]onnection"):
        asyncio.run(parse_async()) if is_async else parse()
    assert asked(regions) == {"east": 1, "west": 0, "backup": 0}


# -- native_response on a pool's streams --------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True], ids=["run", "arun"])
def test_native_response_of_a_pool_s_stream(
    is_async: bool, regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    """README: native_response(result) gives the Response a stream was converted from, once it
    has ended; a pool's stream (wrapped to peek its first chunk) gave None."""
    model = pool(routing='"ordered"', **RESPONSES)
    regions["east"].add_faults(Fault(500))

    async def consume_async() -> Any:
        stream = await model.arun(MESSAGES, stream=True)
        [chunk async for chunk in stream]
        return stream

    def consume() -> Any:
        stream = model.run(MESSAGES, stream=True)
        list(stream)
        return stream

    stream = asyncio.run(consume_async()) if is_async else consume()
    response = native_response(stream)
    assert response is not None and response.output_text.startswith("west")


# -- modelreg routes when the shared state cannot be read ----------------------------------------


def test_routes_says_when_redis_is_unreachable(
    regions: dict[str, AzureServer],
    write_settings: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It printed "state shared" and every deployment "available": states it had not read."""
    pytest.importorskip("redis")
    write_settings(settings(regions))
    monkeypatch.setenv("MODELREG_ROUTING_STATE", "redis://:sk-PLANTED-pw@127.0.0.1:1/0")
    table = modelreg("routes", "chat")
    assert table.returncode == 1, table.stdout
    assert "unreachable" in table.stdout and "available" not in table.stdout
    shown = modelreg("routes", "chat", "--json")
    assert shown.returncode == 1
    data = json.loads(shown.stdout)
    assert data["state"] == "unreachable"
    assert all(d["available"] is None for d in data["deployments"])
    for result in (table, shown):
        assert "Traceback" not in result.stderr
        assert "PLANTED" not in result.stdout + result.stderr
