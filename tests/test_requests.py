"""Every request path over real HTTP: the openai SDK against the loopback Azure server."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import AsyncChatCompletionStreamManager, ChatCompletionStreamManager
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from backends.azure import AzureOpenAIModel
from registry import ModelRegistry
from tests.azure_server import AzureServer

MESSAGES = [{"role": "user", "content": "Hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


class Weather(BaseModel):
    city: str
    degrees: int


SETTINGS = """
    [defaults]
    backend = "azure"
    endpoint = "{url}"
    api_version = "2024-10-21"
    api_key = "test-key"
    max_retries = 0
    timeout = 10

    [models.chat]
    deployment = "gpt-4o-dep"
    model = "gpt-4o"

    [models.streamer]
    deployment = "gpt-4o-stream"
    [models.streamer.config]
    stream = true

    [models.local]
    backend = "openai"
    model = "llama3"
    base_url = "{url}/v1"
    api_key = "local-key"
"""


@pytest.fixture
def models(server: AzureServer, write_settings: Callable[[str], Path]) -> ModelRegistry:
    write_settings(SETTINGS.replace("{url}", server.base_url))
    registry = ModelRegistry.from_settings()
    yield registry  # type: ignore[misc]
    registry.close()


def assert_azure_request(server: AzureServer, deployment: str) -> None:
    request = server.requests[-1]
    assert request.path == f"/openai/deployments/{deployment}/chat/completions"
    assert request.query["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "test-key"
    assert request.body["model"] == deployment


def test_create_non_stream(models: ModelRegistry, server: AzureServer) -> None:
    reply = models.create("chat").run(MESSAGES)
    assert isinstance(reply, ChatCompletion)
    assert reply.choices[0].message.content == "Hello from the loopback server. You said: Hello"
    assert_azure_request(server, "gpt-4o-dep")
    assert server.requests[-1].body["messages"] == MESSAGES


def test_stream(models: ModelRegistry, server: AzureServer) -> None:
    model = models.create("streamer")
    assert model.stream
    stream = model.run(MESSAGES)
    assert isinstance(stream, openai.Stream)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the loopback server. You said: Hello"
    assert_azure_request(server, "gpt-4o-stream")
    assert server.requests[-1].body["stream"] is True


def test_parse(models: ModelRegistry, server: AzureServer) -> None:
    reply = models.create("chat").run(MESSAGES, response_format=Weather)
    assert reply.choices[0].message.parsed == Weather(city="text", degrees=7)
    assert server.requests[-1].body["response_format"]["type"] == "json_schema"
    assert_azure_request(server, "gpt-4o-dep")


def test_stream_parse(models: ModelRegistry, server: AzureServer) -> None:
    manager = models.create("streamer").run(MESSAGES, response_format=Weather)
    assert isinstance(manager, ChatCompletionStreamManager)
    with manager as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "content.done" in events
    assert final.choices[0].message.parsed == Weather(city="text", degrees=7)
    assert_azure_request(server, "gpt-4o-stream")


def test_async_paths(models: ModelRegistry, server: AzureServer) -> None:
    async def scenario() -> None:
        reply = await models.create("chat").arun(MESSAGES)
        assert isinstance(reply, ChatCompletion)
        assert_azure_request(server, "gpt-4o-dep")

        stream = await models.create("streamer").arun(MESSAGES)
        assert isinstance(stream, openai.AsyncStream)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text.endswith("You said: Hello")
        assert_azure_request(server, "gpt-4o-stream")

        parsed = await models.create("chat").arun(MESSAGES, response_format=Weather)
        assert parsed.choices[0].message.parsed == Weather(city="text", degrees=7)

        manager = await models.create("streamer").arun(MESSAGES, response_format=Weather)
        assert isinstance(manager, AsyncChatCompletionStreamManager)
        async with manager as events:
            async for _ in events:
                pass
            final = await events.get_final_completion()
        assert final.choices[0].message.parsed == Weather(city="text", degrees=7)
        assert_azure_request(server, "gpt-4o-stream")
        await models.aclose()

    asyncio.run(scenario())


def test_dict_response_format_goes_to_create(models: ModelRegistry, server: AzureServer) -> None:
    reply = models.create("chat").run(MESSAGES, response_format={"type": "json_object"})
    assert type(reply) is ChatCompletion
    assert server.requests[-1].body["response_format"] == {"type": "json_object"}
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": Weather.model_json_schema()},
    }
    reply = models.create("chat").run(MESSAGES, response_format=schema)
    assert type(reply) is ChatCompletion
    assert server.requests[-1].body["response_format"]["json_schema"]["name"] == "w"


def test_tools_passed_and_tool_call_returned(models: ModelRegistry, server: AzureServer) -> None:
    reply = models.create("chat").run([{"role": "user", "content": "use a tool"}], tools=TOOLS)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert server.requests[-1].body["tools"] == TOOLS


def test_empty_tools_clear_configured_tools(models: ModelRegistry, server: AzureServer) -> None:
    model = models.create("chat", config={"tools": TOOLS, "tool_choice": "auto"})
    model.run(MESSAGES)
    assert server.requests[-1].body["tools"] == TOOLS
    model.run(MESSAGES, tools=[])
    assert "tools" not in server.requests[-1].body
    assert "tool_choice" not in server.requests[-1].body


def test_per_call_response_format_wins(server: AzureServer) -> None:
    model = AzureOpenAIModel(
        "d",
        {"response_format": {"type": "json_object"}},
        api_key="test-key",
        url=server.base_url,
        api_version="2024-10-21",
        max_retries=0,
    )
    reply = model.run(MESSAGES, response_format=Weather)
    assert reply.choices[0].message.parsed == Weather(city="text", degrees=7)
    assert server.requests[-1].body["response_format"]["type"] == "json_schema"


def test_config_response_format_with_stream(server: AzureServer) -> None:
    """CAMEL crashes here: a response_format in the config plus streaming."""
    model = AzureOpenAIModel(
        "d",
        {"response_format": Weather, "stream": True},
        api_key="test-key",
        url=server.base_url,
        api_version="2024-10-21",
        max_retries=0,
    )
    with model.run(MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Weather(city="text", degrees=7)


def test_ad_token_sent_as_bearer(server: AzureServer) -> None:
    model = AzureOpenAIModel(
        "d",
        azure_ad_token="token-static",
        url=server.base_url,
        api_version="2024-10-21",
        max_retries=0,
    )
    model.run(MESSAGES)
    headers = server.requests[-1].headers
    assert headers["authorization"] == "Bearer token-static"
    assert "api-key" not in headers


def test_token_provider_called_on_every_request(server: AzureServer) -> None:
    counter = itertools.count()

    def provider() -> str:
        return f"token-{next(counter)}"

    model = AzureOpenAIModel(
        "d",
        azure_ad_token_provider=provider,
        api_key="ignored-key",
        url=server.base_url,
        api_version="2024-10-21",
        max_retries=0,
    )
    for _ in range(3):
        model.run(MESSAGES)
    seen = [r.headers["authorization"] for r in server.requests[-3:]]
    assert seen == ["Bearer token-0", "Bearer token-1", "Bearer token-2"]
    assert all("api-key" not in r.headers for r in server.requests[-3:])

    async def async_calls() -> list[str]:
        for _ in range(2):
            await model.arun(MESSAGES)
        await model.aclose()
        return [r.headers["authorization"] for r in server.requests[-2:]]

    assert asyncio.run(async_calls()) == ["Bearer token-3", "Bearer token-4"]


def test_async_token_provider_for_async_client(server: AzureServer) -> None:
    counter = itertools.count()

    async def provider() -> str:
        return f"token-async-{next(counter)}"

    model = AzureOpenAIModel(
        "d",
        azure_ad_token_provider=provider,
        url=server.base_url,
        api_version="2024-10-21",
        max_retries=0,
    )

    async def calls() -> list[str]:
        await model.arun(MESSAGES)
        await model.arun(MESSAGES)
        await model.aclose()
        return [r.headers["authorization"] for r in server.requests[-2:]]

    assert asyncio.run(calls()) == ["Bearer token-async-0", "Bearer token-async-1"]
    with pytest.raises(Exception, match="sync client needs a sync provider"):
        model.run(MESSAGES)


def test_custom_clients_used_as_is(server: AzureServer) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=server.base_url,
        api_version="custom",
        api_key="test-key",
        default_headers={"x-rl-framework": "sync"},
        max_retries=0,
    )
    async_client = openai.AsyncAzureOpenAI(
        azure_endpoint=server.base_url,
        api_version="custom",
        api_key="test-key",
        default_headers={"x-rl-framework": "async"},
        max_retries=0,
    )
    model = AzureOpenAIModel("d", client=client, async_client=async_client)
    model.run(MESSAGES)
    assert server.requests[-1].headers["x-rl-framework"] == "sync"
    assert server.requests[-1].query["api-version"] == "custom"

    async def call() -> None:
        await model.arun(MESSAGES)
        await async_client.close()

    asyncio.run(call())
    assert server.requests[-1].headers["x-rl-framework"] == "async"
    client.close()


def test_registry_passes_custom_clients(models: ModelRegistry, server: AzureServer) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=server.base_url, api_version="v9", api_key="test-key", max_retries=0
    )
    models.create("chat", client=client).run(MESSAGES)
    assert server.requests[-1].query["api-version"] == "v9"


def test_sdk_error_keeps_type_and_names_model(models: ModelRegistry, server: AzureServer) -> None:
    server.deployments = {"something-else"}
    with pytest.raises(openai.NotFoundError) as caught:
        models.create("chat").run(MESSAGES)
    message = str(caught.value)
    assert "model 'chat'" in message and "gpt-4o-dep" in message
    assert "test-key" not in message


def test_wrong_key_is_authentication_error(models: ModelRegistry, server: AzureServer) -> None:
    with pytest.raises(openai.AuthenticationError, match="model 'chat'"):
        models.create("chat", api_key="wrong-key").run(MESSAGES)


def test_openai_compatible_backend(models: ModelRegistry, server: AzureServer) -> None:
    model = models.create("local")
    reply = model.run(MESSAGES)
    assert reply.choices[0].message.content.endswith("You said: Hello")
    request = server.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer local-key"
    assert request.body["model"] == "llama3"
    stream = models.create("local", config={"stream": True}).run(MESSAGES)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    parsed = model.run(MESSAGES, response_format=Weather)
    assert parsed.choices[0].message.parsed == Weather(city="text", degrees=7)


def test_hundred_models_share_one_pool(models: ModelRegistry, server: AzureServer) -> None:
    built: list[Any] = [models.create("chat", deployment=f"dep-{i}") for i in range(100)]
    for model in built:
        model.run(MESSAGES)
    assert models._pool.counts() == (1, 0)
    assert server.connections() == 1
    assert {r.deployment for r in server.requests} == {f"dep-{i}" for i in range(100)}


def test_async_models_share_one_pool_per_loop(models: ModelRegistry, server: AzureServer) -> None:
    built = [models.create("chat", deployment=f"dep-{i}") for i in range(20)]

    async def calls() -> None:
        for model in built:
            await model.arun(MESSAGES)
        await models.aclose()

    asyncio.run(calls())
    assert server.connections() == 1


def test_first_request_builds_client_lazily(models: ModelRegistry) -> None:
    model = models.create("chat")
    assert model._sync_client is None  # type: ignore[attr-defined]
    assert models._pool.counts() == (0, 0)
