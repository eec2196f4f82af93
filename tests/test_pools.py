"""Pools and fallbacks through ``create_model`` over real HTTP (issue 14).

Each region is its own loopback server (tests/azure_server.py) with its own scripted faults, and
the real openai SDK talks to it: ``east``, ``west`` and ``backup`` answer with their own name, so
a reply says which deployment served it, and each server's ``requests`` say who was asked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from registry import BackendError, create_model
from registry.errors import ContextWindowExceededError, NoDeploymentAvailableError
from registry.overrides import override_clients
from registry.routing.served import served_calls
from tests.azure_server import AzureServer, Fault
from tests.helpers import modelreg, readme_block

MESSAGES: list[Any] = [{"role": "user", "content": "Hello"}]
REGIONS = ("east", "west", "backup")


class Answer(BaseModel):
    text: str


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, AzureServer]]:
    started = {name: AzureServer().start() for name in REGIONS}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def regions(servers: dict[str, AzureServer]) -> dict[str, AzureServer]:
    for name, server in servers.items():
        server.reset()
        server.reply = name
    return servers


def settings(regions: dict[str, AzureServer], extra: str = "", **fields: Any) -> str:
    """A pool ``chat`` over east (weight 3) and west, and a single-deployment ``backup``."""
    fields = {"timeout": 5, "api_version": '"2024-10-21"', **fields}
    own = "".join(f"{key} = {value}\n" for key, value in fields.items())
    return f"""
[models.chat]
backend = "azure"
model = "gpt-4o"
api_key = "test-key"
{own}
[[models.chat.deployments]]
endpoint = "{regions["east"].base_url}"
deployment = "gpt-4o"
weight = 3

[[models.chat.deployments]]
endpoint = "{regions["west"].base_url}"
deployment = "gpt-4o"

[models.backup]
backend = "azure"
model = "gpt-4o-mini"
endpoint = "{regions["backup"].base_url}"
deployment = "gpt-4o-mini"
api_version = "2024-10-21"
api_key = "test-key"
max_retries = 0
{extra}
"""


def text(reply: Any) -> str:
    return str(reply.choices[0].message.content)


def asked(regions: dict[str, AzureServer]) -> dict[str, int]:
    return {name: len(server.requests) for name, server in regions.items()}


@pytest.fixture
def pool(
    regions: dict[str, AzureServer], write_settings: Callable[[str], Path]
) -> Callable[..., Any]:
    def make(extra: str = "", **fields: Any) -> Any:
        write_settings(settings(regions, extra, **fields))
        return create_model("chat")

    return make


# -- failover and cooldowns -------------------------------------------------------------------


def test_a_429_fails_over_at_once_and_the_pool_avoids_the_cooling_deployment(
    regions: dict[str, AzureServer], pool: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    model = pool(routing='"ordered"')
    regions["east"].add_faults(Fault(429, {"retry-after": "30"}))
    caplog.set_level(logging.INFO, logger="modelreg.routing")
    with served_calls() as served:
        started = time.monotonic()
        assert text(model.run(MESSAGES)).startswith("west")
        assert time.monotonic() - started < 2  # at once: no wait for east's 30 s
        assert text(model.run(MESSAGES)).startswith("west")  # east is cooling
    assert asked(regions) == {"east": 1, "west": 2, "backup": 0}
    assert [(s.model, s.deployment, s.attempts) for s in served] == [
        ("chat", f"{regions['west'].base_url[7:]}/gpt-4o", 2),
        ("chat", f"{regions['west'].base_url[7:]}/gpt-4o", 1),
    ]
    failover = [r.getMessage() for r in caplog.records if "attempt 2 goes to" in r.getMessage()]
    assert len(failover) == 1
    assert regions["east"].base_url[7:] in failover[0] and "429" in failover[0]
    assert "test-key" not in caplog.text


def test_member_sdk_retries_are_off_and_the_pool_spends_max_retries(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(max_retries=2, allowed_fails=10)
    for name in ("east", "west"):
        regions[name].add_faults(*[Fault(500)] * 5)
    with pytest.raises(openai.InternalServerError) as caught:
        model.run(MESSAGES)
    assert sum(asked(regions).values()) == 3  # max_retries + 1 attempts in all, not 3 x 3
    assert "500" in str(caught.value)


def test_a_lone_deployment_waits_at_least_what_the_server_asked(
    regions: dict[str, AzureServer], write_settings: Callable[[str], Path]
) -> None:
    write_settings(
        f"""
[models.chat]
backend = "azure"
api_version = "2024-10-21"
api_key = "test-key"
[[models.chat.deployments]]
endpoint = "{regions["east"].base_url}"
deployment = "gpt-4o"
"""
    )
    regions["east"].add_faults(Fault(429, {"retry-after-ms": "1200"}))
    model = create_model("chat")
    assert text(model.run(MESSAGES)).startswith("east")
    first, second = regions["east"].requests
    assert second.received_at - first.received_at >= 1.2


def test_every_deployment_cooling_beyond_the_budget_raises_no_deployment_available(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(timeout=1, max_retries=3)  # a budget of 4 s
    for name in ("east", "west"):
        regions[name].add_faults(Fault(429, {"retry-after": "60"}))
    with pytest.raises(NoDeploymentAvailableError) as caught:
        model.run(MESSAGES)
    message = str(caught.value)
    assert "no deployment available" in message and "test-key" not in message
    assert regions["east"].base_url[7:] in message and regions["west"].base_url[7:] in message


def test_the_caller_s_400_is_raised_without_failover(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"')
    regions["east"].add_faults(Fault(400, body={"error": {"code": "invalid_value"}}))
    with pytest.raises(openai.BadRequestError, match="400"):
        model.run(MESSAGES)
    assert asked(regions) == {"east": 1, "west": 0, "backup": 0}


# -- every request path -----------------------------------------------------------------------


def test_arun_fails_over(regions: dict[str, AzureServer], pool: Callable[..., Any]) -> None:
    model = pool(routing='"ordered"')
    regions["east"].add_faults(Fault(503))
    assert text(asyncio.run(model.arun(MESSAGES))).startswith("west")
    assert asked(regions) == {"east": 1, "west": 1, "backup": 0}


def test_a_stream_fails_over_before_its_first_chunk(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"', config="{ stream = true }")
    regions["east"].add_faults(Fault(429, {"retry-after": "30"}))
    pieces = [c.choices[0].delta.content or "" for c in model.run(MESSAGES) if c.choices]
    assert "".join(pieces).startswith("west")
    assert asked(regions) == {"east": 1, "west": 1, "backup": 0}


def test_a_stream_cut_before_its_first_chunk_fails_over(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    """The 200 arrived, then the connection broke before any chunk: still the attempt's failure."""
    model = pool(routing='"ordered"', config="{ stream = true }")
    regions["east"].add_faults(Fault(cut_stream_after=0))
    pieces = [c.choices[0].delta.content or "" for c in model.run(MESSAGES) if c.choices]
    assert "".join(pieces).startswith("west")
    assert asked(regions) == {"east": 1, "west": 1, "backup": 0}


def test_a_stream_cut_after_its_first_chunk_raises_and_is_never_resent(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"', config="{ stream = true }")
    regions["east"].add_faults(Fault(cut_stream_after=2))
    seen: list[str] = []
    with pytest.raises((openai.APIConnectionError, BackendError)):
        for chunk in model.run(MESSAGES):
            seen.extend(c.delta.content or "" for c in chunk.choices)
    assert asked(regions) == {"east": 1, "west": 0, "backup": 0}
    assert "west" not in "".join(seen)


def test_async_stream_fails_over_before_its_first_chunk(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"', config="{ stream = true }")
    regions["east"].add_faults(Fault(500))

    async def collect() -> str:
        stream = await model.arun(MESSAGES)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(collect()).startswith("west")
    assert asked(regions) == {"east": 1, "west": 1, "backup": 0}


def test_parse_and_stream_parse_fail_over(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"')
    regions["east"].add_faults(Fault(429, {"retry-after": "30"}))
    assert model.run(MESSAGES, response_format=Answer).choices[0].message.parsed.text
    with model.run(MESSAGES, response_format=Answer, stream=True) as events:
        assert events.get_final_completion().choices[0].message.parsed.text
    assert asked(regions) == {"east": 1, "west": 2, "backup": 0}


def test_async_stream_parse_fails_over(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"', config="{ stream = true }")
    regions["east"].add_faults(Fault(500))

    async def parse() -> Any:
        async with await model.arun(MESSAGES, response_format=Answer) as events:
            return await events.get_final_completion()

    assert asyncio.run(parse()).choices[0].message.parsed.text
    assert asked(regions) == {"east": 1, "west": 1, "backup": 0}


def test_a_responses_api_pool_fails_over(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"', api='"responses"', api_version='"2025-04-01-preview"')
    regions["east"].add_faults(Fault(429, {"retry-after": "30"}))
    assert text(model.run(MESSAGES)).startswith("west")
    assert [r.path for r in regions["west"].requests] == ["/openai/responses"]


def test_per_call_settings_reach_the_deployment_that_serves(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"')
    regions["east"].add_faults(Fault(500))
    model.run(MESSAGES, temperature=0.25, seed=7)
    assert [r.body.get("seed") for r in regions["west"].requests] == [7]
    assert regions["west"].requests[0].body["temperature"] == 0.25


def test_a_client_override_bypasses_the_pool(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool()
    gateway = f"{regions['backup'].base_url}/v1"
    scope = override_clients(base_url=gateway, api_key="rl-key", allow_http=True)
    with served_calls() as served, scope:
        assert text(model.run(MESSAGES)).startswith("backup")
    assert asked(regions) == {"east": 0, "west": 0, "backup": 1}
    assert served == []  # the pool never saw the call


# -- fallbacks by name --------------------------------------------------------------------------


def test_fallbacks_take_over_when_the_pool_cannot_answer(
    regions: dict[str, AzureServer], pool: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    model = pool(fallbacks='["backup"]', max_retries=1, allowed_fails=10)
    for name in ("east", "west"):
        regions[name].add_faults(*[Fault(500)] * 2)
    caplog.set_level(logging.INFO, logger="modelreg.routing")
    with served_calls() as served:
        assert text(model.run(MESSAGES)).startswith("backup")
    assert asked(regions) == {"east": 1, "west": 1, "backup": 1}
    assert [(s.model, s.deployment, s.fell_back_from) for s in served] == [
        ("backup", None, ("chat",))
    ]
    assert "falling back to 'backup'" in caplog.text


def test_a_fallback_that_fails_too_raises_its_error_with_the_chain_noted(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(fallbacks='["backup"]', max_retries=0)
    regions["east"].add_faults(Fault(500))
    regions["west"].add_faults(Fault(500))
    regions["backup"].add_faults(Fault(503))
    with pytest.raises(openai.InternalServerError) as caught:
        model.run(MESSAGES, stream=False)
    assert "503" in str(caught.value)
    assert any("fell back to 'backup'" in note for note in caught.value.__notes__)
    assert "500" in str(caught.value.__cause__)
    assert sum(asked(regions).values()) == 2  # chat's one attempt, backup's one


def test_context_window_fallbacks_on_the_server_s_answer_and_the_pre_call_check(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"', context_window_fallbacks='["backup"]')
    too_long = {"error": {"code": "context_length_exceeded", "message": "too long"}}
    regions["east"].add_faults(Fault(400, body=too_long))
    assert text(model.run(MESSAGES)).startswith("backup")
    assert asked(regions) == {"east": 1, "west": 0, "backup": 1}
    checked = pool(
        context_window_fallbacks='["backup"]',
        check_context="true",
        capabilities="{ context_window = 8 }",
    )
    long = [{"role": "user", "content": "word " * 50}]
    assert text(checked.run(long)).startswith("backup")
    assert asked(regions) == {"east": 1, "west": 0, "backup": 2}  # chat was never asked


def test_without_context_window_fallbacks_a_long_request_is_not_sent_elsewhere(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(
        fallbacks='["backup"]', check_context="true", capabilities="{ context_window = 8 }"
    )
    with pytest.raises(ContextWindowExceededError):
        model.run([{"role": "user", "content": "word " * 50}])
    assert sum(asked(regions).values()) == 0


def test_content_policy_fallbacks(
    regions: dict[str, AzureServer], pool: Callable[..., Any]
) -> None:
    model = pool(routing='"ordered"', content_policy_fallbacks='["backup"]')
    refused = {"error": {"code": "content_filter", "message": "filtered"}}
    regions["east"].add_faults(Fault(400, body=refused))
    assert text(model.run(MESSAGES)).startswith("backup")
    assert asked(regions) == {"east": 1, "west": 0, "backup": 1}


def models(url: str, fallbacks: dict[int, list[int]], extra: str = "") -> str:
    """Models m0, m1... on one server (deployment d0, d1...), with fallbacks by index."""
    return "".join(
        f"""
[models.m{i}]
backend = "azure"
endpoint = "{url}"
deployment = "d{i}"
api_version = "2024-10-21"
api_key = "test-key"
max_retries = 0
fallbacks = [{", ".join(f'"m{j}"' for j in targets)}]
{extra}
"""
        for i, targets in fallbacks.items()
    )


def test_fallback_depth_is_bounded(
    regions: dict[str, AzureServer], write_settings: Callable[[str], Path]
) -> None:
    east = regions["east"]
    line = {0: [1], 1: [2], 2: [3], 3: []}
    for depth, reached in ((2, ["d0", "d1", "d2"]), (1, ["d0", "d1"]), (0, ["d0"])):
        east.reset()
        east.add_faults(*[Fault(500)] * 4)
        write_settings(models(east.base_url, line, f"max_fallback_depth = {depth}"))
        with pytest.raises(openai.InternalServerError):
            create_model("m0").run(MESSAGES)
        assert [r.path.split("/")[3] for r in east.requests] == reached


@pytest.mark.parametrize("is_async", [False, True])
def test_a_call_never_returns_to_a_model_it_left(
    is_async: bool, regions: dict[str, AzureServer], write_settings: Callable[[str], Path]
) -> None:
    east = regions["east"]
    east.add_faults(*[Fault(500)] * 6)
    write_settings(models(east.base_url, {0: [1, 2], 1: [2], 2: []}))
    model = create_model("m0")
    with pytest.raises(openai.InternalServerError):
        model.run(MESSAGES) if not is_async else asyncio.run(model.arun(MESSAGES))
    assert [r.path.split("/")[3] for r in east.requests] == ["d0", "d1", "d2"]


def test_fallbacks_of_a_model_without_a_pool(
    regions: dict[str, AzureServer], write_settings: Callable[[str], Path]
) -> None:
    write_settings(
        settings(regions)
        .replace("[models.chat]", "[models.pooled]")
        .replace("models.chat.deployments", "models.pooled.deployments")
        + f"""
[models.solo]
backend = "azure"
endpoint = "{regions["east"].base_url}"
deployment = "gpt-4o"
api_version = "2024-10-21"
api_key = "test-key"
max_retries = 1
fallbacks = ["backup"]
"""
    )
    regions["east"].add_faults(Fault(500), Fault(500))
    with served_calls() as served:
        assert text(create_model("solo").run(MESSAGES)).startswith("backup")
    assert asked(regions) == {"east": 2, "west": 0, "backup": 1}  # its SDK retried once
    assert served[0].fell_back_from == ("solo",)


# -- routes -----------------------------------------------------------------------------------


def test_routes_shows_each_deployment_with_its_weight_and_state(
    regions: dict[str, AzureServer], write_settings: Callable[[str], Path]
) -> None:
    write_settings(settings(regions))
    result = modelreg("routes", "chat")
    assert result.returncode == 0, result.stderr
    east, west = (regions[n].base_url[7:] + "/gpt-4o" for n in ("east", "west"))
    assert "weighted routing, state in this process" in result.stdout
    assert east in result.stdout and west in result.stdout and "available" in result.stdout
    shown = modelreg("routes", "chat", "--json")
    import json

    data = json.loads(shown.stdout)
    assert [(d["id"], d["weight"]) for d in data["deployments"]] == [(east, 3.0), (west, 1.0)]
    not_a_pool = modelreg("routes", "backup")
    assert not_a_pool.returncode == 1 and "is not a pool" in not_a_pool.stderr
    assert "Traceback" not in not_a_pool.stderr


# -- the README's pool example, run as written ---------------------------------------------------


def test_readme_pool_settings_routes_and_served_calls(
    regions: dict[str, AzureServer], isolated: Path
) -> None:
    """The README's settings with its two regions (and the fallback) moved onto loopback servers."""
    toml = readme_block("so this is the first thing a team outgrows", "toml")
    toml = toml.replace("https://contoso-eastus.openai.azure.com", regions["east"].base_url, 1)
    toml = toml.replace("https://contoso-swedencentral.openai.azure.com", regions["west"].base_url)
    toml = toml.replace("https://contoso-eastus.openai.azure.com", regions["backup"].base_url)
    (isolated / "settings.toml").write_text(toml, encoding="utf-8")
    keys = {"EASTUS_OPENAI_KEY": "test-key", "SWEDEN_OPENAI_KEY": "test-key"}
    check = modelreg("check", env=keys)
    assert check.returncode == 0, check.stdout + check.stderr
    for command in readme_block("client or gateway is then the deployment.", "bash").splitlines():
        args = command.split("#")[0].split()
        result = modelreg(*args[1:], env=keys)
        assert result.returncode == 0, result.stderr
        assert regions["west"].base_url[7:] + "/gpt-4o" in result.stdout
    shown = modelreg("show", "chat", env=keys)
    assert "[models.chat] deployment #2" in shown.stdout and "test-key" not in shown.stdout
    regions["east"].add_faults(*[Fault(429, {"retry-after": "30"})] * 3)
    code = readme_block("is recorded inside a `served_calls()` block", "python")
    printed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=isolated,
        env={**os.environ, **keys},
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    model, deployment, attempts = printed.stdout.split()
    assert model == "chat"
    # weighted: east (weight 2) first answers 429 and west serves on attempt 2, or west first
    assert (deployment, attempts) in {
        (regions["west"].base_url[7:] + "/gpt-4o", "2"),
        (regions["west"].base_url[7:] + "/gpt-4o", "1"),
    }
