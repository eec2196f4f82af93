"""CAMEL-shaped custom clients: ``.chat.completions.create()`` and ``.beta.chat.completions.parse()``.

The clients here are plain objects of the shape CAMEL documents for RL frameworks, not the openai
SDK: they answer from their own "engine" (text made here) and record what they were asked, as a
rollout client does; nothing about them speaks HTTP, so neither do these tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamManager
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ParsedChatCompletion
from pydantic import BaseModel

from backends.azure import AzureOpenAIModel
from backends.results import chunks_from_text, completion_from_text
from registry import BackendError

MESSAGES = [{"role": "user", "content": "Hello"}]


class Answer(BaseModel):
    city: str
    degrees: int


ANSWER = Answer(city="Oslo", degrees=3)


def reply_text(request: dict[str, Any]) -> str:
    """JSON when a schema was asked for, else plain text (what the engine would generate)."""
    if request.get("response_format") is not None:
        return ANSWER.model_dump_json()
    return "rollout says hi"


class Completions:
    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = calls

    def create(self, **request: Any) -> Any:
        self.calls.append(("chat.completions.create", request))
        text = reply_text(request)
        if request.get("stream"):
            return iter(list(chunks_from_text([text[:5], text[5:]], model=request["model"])))
        return completion_from_text(text, model=request["model"])


class BetaCompletions:
    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = calls

    def parse(self, **request: Any) -> Any:
        self.calls.append(("beta.chat.completions.parse", request))
        schema = request["response_format"]
        return completion_from_text(
            reply_text(request), model=request["model"], response_format=schema
        )


class RolloutClient:
    """``client.chat.completions.create`` and ``client.beta.chat.completions.parse`` only."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.chat = SimpleNamespace(completions=Completions(self.calls))
        self.beta = SimpleNamespace(chat=SimpleNamespace(completions=BetaCompletions(self.calls)))


class AsyncCompletions(Completions):
    async def create(self, **request: Any) -> Any:  # type: ignore[override]
        self.calls.append(("chat.completions.create", request))
        text = reply_text(request)
        if request.get("stream"):
            chunks = list(chunks_from_text([text[:5], text[5:]], model=request["model"]))

            async def stream() -> AsyncIterator[ChatCompletionChunk]:
                for chunk in chunks:
                    yield chunk

            return stream()
        return completion_from_text(text, model=request["model"])


class AsyncBetaCompletions(BetaCompletions):
    async def parse(self, **request: Any) -> Any:  # type: ignore[override]
        return super().parse(**request)


class AsyncRolloutClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.chat = SimpleNamespace(completions=AsyncCompletions(self.calls))
        self.beta = SimpleNamespace(
            chat=SimpleNamespace(completions=AsyncBetaCompletions(self.calls))
        )


def model_with(client: Any = None, async_client: Any = None, **config: Any) -> AzureOpenAIModel:
    return AzureOpenAIModel(
        "rollout-dep", config, client=client, async_client=async_client, name="rl"
    )


def test_create() -> None:
    client = RolloutClient()
    reply = model_with(client, temperature=0.5).run(MESSAGES)
    assert isinstance(reply, ChatCompletion)
    assert reply.choices[0].message.content == "rollout says hi"
    [(method, request)] = client.calls
    assert method == "chat.completions.create"
    assert request == {"messages": MESSAGES, "model": "rollout-dep", "temperature": 0.5}


def test_stream() -> None:
    client = RolloutClient()
    chunks = list(model_with(client, stream=True).run(MESSAGES))
    assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "rollout says hi"
    assert client.calls[0][1]["stream"] is True


def test_parse_goes_to_beta() -> None:
    client = RolloutClient()
    reply = model_with(client).run(MESSAGES, response_format=Answer)
    assert isinstance(reply, ParsedChatCompletion)
    assert reply.choices[0].message.parsed == ANSWER
    [(method, request)] = client.calls
    assert method == "beta.chat.completions.parse" and request["response_format"] is Answer


def test_stream_parse_over_create() -> None:
    """No stream() anywhere: the SDK's stream manager over the client's create(stream=True)."""
    client = RolloutClient()
    manager = model_with(client, stream=True).run(MESSAGES, response_format=Answer)
    assert isinstance(manager, ChatCompletionStreamManager)
    with manager as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "content.done" in events
    assert final.choices[0].message.parsed == ANSWER
    [(method, request)] = client.calls
    assert method == "chat.completions.create" and request["stream"] is True
    assert request["response_format"]["type"] == "json_schema"  # the schema, as the SDK sends it
    assert request["response_format"]["json_schema"]["name"] == "Answer"


def test_stream_parse_prefers_the_clients_own_stream() -> None:
    client = RolloutClient()
    used: list[str] = []

    def stream(**request: Any) -> Any:
        used.append("beta.chat.completions.stream")
        return client.chat.completions.create(**request) and SDKLikeManager()

    class SDKLikeManager:
        def __enter__(self) -> Iterator[str]:
            return iter(["from the client's own stream()"])

        def __exit__(self, *exc: object) -> None:
            pass

    client.beta.chat.completions.stream = stream  # type: ignore[attr-defined]
    with model_with(client, stream=True).run(MESSAGES, response_format=Answer) as events:
        assert list(events) == ["from the client's own stream()"]
    assert used == ["beta.chat.completions.stream"]


def test_async_paths() -> None:
    client = AsyncRolloutClient()
    model = model_with(async_client=client)
    streaming = model_with(async_client=client, stream=True)

    async def scenario() -> None:
        reply = await model.arun(MESSAGES)
        assert reply.choices[0].message.content == "rollout says hi"
        chunks = [chunk async for chunk in await streaming.arun(MESSAGES)]
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "rollout says hi"
        parsed = await model.arun(MESSAGES, response_format=Answer)
        assert parsed.choices[0].message.parsed == ANSWER
        async with await streaming.arun(MESSAGES, response_format=Answer) as stream:
            events = [event.type async for event in stream]
            final = await stream.get_final_completion()
        assert "content.done" in events and final.choices[0].message.parsed == ANSWER

    asyncio.run(scenario())
    assert [method for method, _ in client.calls] == [
        "chat.completions.create",
        "chat.completions.create",
        "beta.chat.completions.parse",
        "chat.completions.create",
    ]


def test_a_client_without_parse_anywhere_says_so() -> None:
    client = RolloutClient()
    del client.beta
    with pytest.raises(BackendError) as caught:
        model_with(client).run(MESSAGES, response_format=Answer)
    message = str(caught.value)
    assert "no chat.completions.parse() (nor beta.chat.completions.parse())" in message
    assert client.calls == []


def test_through_the_registry(write_settings: Any) -> None:
    from registry import ModelRegistry

    write_settings(
        """
        [models.rl]
        backend = "azure"
        deployment = "rollout-dep"
        model = "gpt-4o"
        [models.rl.config]
        stream = true
        """
    )
    client = RolloutClient()
    model = ModelRegistry.from_settings().create("rl", client=client)
    with model.run(MESSAGES, response_format=Answer) as stream:
        assert stream.get_final_completion().choices[0].message.parsed == ANSWER
    assert json.loads(json.dumps(client.calls[0][1]["messages"])) == MESSAGES
