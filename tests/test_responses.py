"""``api = "responses"`` and Azure's three wire shapes, over real HTTP on the loopback server.

The same calls return the same types in both API modes; requests are translated to the
Responses API and replies converted back; conversations chain by ``previous_response_id``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from backends.azure import AzureOpenAIModel
from backends.conversations import conversation
from backends.openai_compatible import OpenAICompatibleModel
from backends.responses import native_response
from registry import BackendError, ConfigError, ModelRegistry
from tests.azure_server import AzureServer, Fault, RecordedRequest
from tests.test_requests import MESSAGES, TOOLS, Weather

KEY = "test-key"
KINDS = ("create", "stream", "parse", "stream-parse")


def azure(server: AzureServer, api: str = "responses", **options: Any) -> AzureOpenAIModel:
    config = options.pop("config", {})
    arguments: dict[str, Any] = {
        "api_key": KEY,
        "url": server.base_url,
        "api_version": "2025-04-01-preview",
        "max_retries": 0,
        "name": "chat",
        "api_mode": api,
        **options,
    }
    return AzureOpenAIModel("dep", config, **arguments)


def call(model: Any, kind: str, messages: list[dict[str, Any]] = MESSAGES) -> Any:
    """One request down ``kind``'s path: (what run returned, what it gave when read)."""
    model.model_config_dict["stream"] = kind in ("stream", "stream-parse")
    result = model.run(messages, response_format=Weather if "parse" in kind else None)
    if kind == "stream":
        return result, list(result)
    if kind == "stream-parse":
        with result as stream:
            events = [event.type for event in stream]
            return (result, stream, events), stream.get_final_completion()
    return result, result


async def acall(model: Any, kind: str) -> Any:
    model.model_config_dict["stream"] = kind in ("stream", "stream-parse")
    result = await model.arun(MESSAGES, response_format=Weather if "parse" in kind else None)
    if kind == "stream":
        return result, [chunk async for chunk in result]
    if kind == "stream-parse":
        async with result as stream:
            events = [event.type async for event in stream]
            return (result, stream, events), await stream.get_final_completion()
    return result, result


def text_of(kind: str, read: Any) -> Any:
    """What the reply says: its text, or (parse kinds) the parsed object."""
    if kind == "stream":
        return "".join(c.choices[0].delta.content or "" for c in read if c.choices)
    message = read.choices[0].message
    return message.parsed if "parse" in kind else message.content


# -- 1. the api field ---------------------------------------------------------------------------


def test_api_is_a_model_field_with_its_origin(
    server: AzureServer, write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "dep"
        endpoint = "{server.base_url}"
        api_version = "2025-04-01-preview"
        api_key = "{KEY}"
        api = "responses"

        [models.plain]
        backend = "azure"
        deployment = "dep"
        endpoint = "{server.base_url}"
        api_version = "2025-04-01-preview"
        api_key = "{KEY}"
        """
    )
    with ModelRegistry.from_settings() as registry:
        shown = registry.explain("chat").fields["api"]
        assert (shown.value, shown.source) == ("responses", "settings.toml [models.chat]")
        default = registry.explain("plain").fields["api"]
        assert (default.value, default.source) == ("chat_completions", "built-in default")
        assert registry.create("chat").api == "responses"  # type: ignore[attr-defined]
        assert registry.create("plain").api == "chat_completions"  # type: ignore[attr-defined]
        assert registry.create("plain", api="responses").api == "responses"  # type: ignore[attr-defined]
        registry.create("chat").run(MESSAGES)
        assert server.requests[-1].path == "/openai/responses"
    monkeypatch.setenv("MODELREG_MODELS__PLAIN__API", "responses")
    with ModelRegistry.from_settings() as registry:
        shown = registry.explain("plain").fields["api"]
        assert (shown.value, shown.source) == ("responses", "env MODELREG_MODELS__PLAIN__API")


@pytest.mark.parametrize("value", ["sk-looks-like-a-key-1234567890", "Responses", 3])
def test_other_api_values_are_named_errors_never_echoed(
    write_settings: Callable[[str], Path], value: Any
) -> None:
    shown = json.dumps(value)
    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "dep"
        endpoint = "https://contoso.openai.azure.com"
        api_version = "2024-10-21"
        api_key = "k"
        api = {shown}
        """
    )
    with ModelRegistry.from_settings() as registry, pytest.raises(ConfigError) as caught:
        registry.resolve("chat")
    message = str(caught.value)
    assert "field 'api' (settings.toml [models.chat])" in message
    assert '"chat_completions" or "responses"' in message
    assert str(value) not in message


def test_camel_api_mode(server: AzureServer) -> None:
    assert azure(server, api_mode=None).api == "chat_completions"  # CAMEL's default
    model = AzureOpenAIModel(
        "dep", api_key=KEY, url=server.base_url, api_version="v1", api_mode="responses"
    )
    assert (model.api, model.api_mode) == ("responses", "responses")
    for bad in ("chat", "sk-secret-value-123456"):
        with pytest.raises(ValueError) as caught:
            AzureOpenAIModel(
                "dep", api_key=KEY, url=server.base_url, api_version="v1", api_mode=bad
            )
        assert isinstance(caught.value, ConfigError)
        assert "api_mode: must be" in str(caught.value) and f"{bad!r}" not in str(caught.value)
    with pytest.raises(ConfigError, match="disagree"):
        AzureOpenAIModel(
            "dep",
            api_key=KEY,
            url=server.base_url,
            api_version="v1",
            api_mode="responses",
            api="chat_completions",
        )
    with pytest.raises(ConfigError, match="model 'local', api: must be"):
        OpenAICompatibleModel("m", url=f"{server.base_url}/v1", api="chat", name="local")


# -- 2. three Azure wire shapes (and the OpenAI-compatible one) ---------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("api", "version", "path", "query"),
    [
        (
            "chat_completions",
            "2024-10-21",
            "/openai/deployments/dep/chat/completions",
            {"api-version": "2024-10-21"},
        ),
        (
            "responses",
            "2025-04-01-preview",
            "/openai/responses",
            {"api-version": "2025-04-01-preview"},
        ),
        ("chat_completions", "v1", "/openai/v1/chat/completions", {}),
        ("responses", "v1", "/openai/v1/responses", {}),
    ],
)
def test_wire_shapes_with_a_key(
    server: AzureServer, api: str, version: str, path: str, query: dict[str, str], use_async: bool
) -> None:
    model = azure(server, api, api_version=version)
    for kind in KINDS:
        _, read = (
            asyncio.run(_closing(model, acall(model, kind))) if use_async else call(model, kind)
        )
        assert text_of(kind, read) in (
            "Hello from the loopback server. You said: Hello",
            Weather(city="text", degrees=7),
        )
        request = server.requests[-1]
        assert (request.path, request.query) == (path, query)
        assert request.headers["api-key"] == KEY and "authorization" not in request.headers
        assert request.body["model"] == "dep"
    model.close()


async def _closing(model: Any, work: Any) -> Any:
    try:
        return await work
    finally:
        await model.aclose()


@pytest.mark.parametrize("api", ["chat_completions", "responses"])
def test_v1_entra_token_from_the_provider_on_every_request(server: AzureServer, api: str) -> None:
    counter = itertools.count()
    model = azure(
        server,
        api,
        api_version="v1",
        api_key=None,
        azure_ad_token_provider=lambda: f"token-{next(counter)}",
    )
    for _ in range(3):
        model.run(MESSAGES)
    assert [r.headers["authorization"] for r in server.requests] == [
        f"Bearer token-{i}" for i in range(3)
    ]
    assert all("api-key" not in r.headers and not r.query for r in server.requests)

    async def provider() -> str:
        return f"token-async-{next(counter)}"

    async_model = azure(
        server, api, api_version="v1", api_key=None, azure_ad_token_provider=provider
    )

    async def calls() -> None:
        await async_model.arun(MESSAGES)
        await async_model.arun(MESSAGES)
        await async_model.aclose()

    asyncio.run(calls())
    assert [r.headers["authorization"] for r in server.requests[3:]] == [
        "Bearer token-async-3",
        "Bearer token-async-4",
    ]
    model.close()


def test_v1_static_token_and_401_renewal(server: AzureServer) -> None:
    model = azure(server, api_version="v1", api_key=None, azure_ad_token="token-static")
    model.run(MESSAGES)
    assert server.requests[-1].headers["authorization"] == "Bearer token-static"
    tokens = (f"token-{i}" for i in itertools.count())
    renewing = azure(
        server, api_version="v1", api_key=None, azure_ad_token_provider=lambda: next(tokens)
    )
    server.add_faults(Fault(status=401, body={"error": {"code": "401", "message": "expired"}}))
    assert renewing.run(MESSAGES).choices[0].message.content.startswith("Hello")
    assert [r.headers["authorization"] for r in server.requests[1:]] == [
        "Bearer token-0",
        "Bearer token-1",
    ]


def test_a_key_sent_as_a_bearer_token_is_refused_on_v1(server: AzureServer) -> None:
    # The server checks what Azure checks: a key belongs in api-key. The plain OpenAI client
    # would send it as a bearer token; this is what the v1 key client is for.
    sdk = openai.OpenAI(api_key=KEY, base_url=f"{server.base_url}/openai/v1/", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        sdk.responses.create(model="dep", input="Hello")
    sdk.close()


def test_v1_refuses_an_api_version_query(server: AzureServer) -> None:
    sdk = openai.AzureOpenAI(
        base_url=f"{server.base_url}/openai/v1/",
        api_version="2024-10-21",
        api_key=KEY,
        max_retries=0,
    )
    with pytest.raises(openai.BadRequestError, match="api-version"):
        sdk.responses.create(model="dep", input="Hello")
    sdk.close()


def test_wire_shapes_from_settings(
    server: AzureServer, write_settings: Callable[[str], Path]
) -> None:
    write_settings(
        f"""
        [defaults]
        backend = "azure"
        deployment = "gpt-4o"
        endpoint = "{server.base_url}"
        api_key = "{KEY}"
        max_retries = 0

        [models.chat]
        api_version = "2024-10-21"

        [models.responses]
        api = "responses"
        api_version = "2025-04-01-preview"

        [models.v1]
        api = "responses"
        api_version = "v1"

        [models.local]
        backend = "openai"
        model = "llama3"
        base_url = "{server.base_url}/v1"
        api = "responses"
        """
    )
    expected = {
        "chat": "/openai/deployments/gpt-4o/chat/completions",
        "responses": "/openai/responses",
        "v1": "/openai/v1/responses",
        "local": "/v1/responses",
    }
    with ModelRegistry.from_settings() as registry:
        for name, path in expected.items():
            reply = registry.create(name).run(MESSAGES)
            assert isinstance(reply, ChatCompletion)
            assert reply.choices[0].message.content.endswith("You said: Hello")
            assert server.requests[-1].path == path
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"  # OpenAI-compatible
    assert server.requests[-1].body["model"] == "llama3"


# -- 3. the same result types in both modes ----------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_same_types_and_content_in_both_modes(
    server: AzureServer, kind: str, use_async: bool
) -> None:
    outcomes = []
    for api in ("chat_completions", "responses"):
        model = azure(server, api)
        returned, read = (
            asyncio.run(_closing(model, acall(model, kind))) if use_async else call(model, kind)
        )
        model.close()
        outcomes.append((returned, read))
    (chat_returned, chat_read), (resp_returned, resp_read) = outcomes
    assert text_of(kind, chat_read) == text_of(kind, resp_read)
    if kind == "stream-parse":
        assert type(chat_returned[0]) is type(resp_returned[0])  # the stream manager
        assert type(chat_returned[1]) is type(resp_returned[1])  # the SDK's ChatCompletionStream
        assert isinstance(resp_returned[1], ChatCompletionStream) != use_async
        assert chat_returned[2] == resp_returned[2]  # the same event types, in the same order
    else:
        assert type(chat_returned) is type(resp_returned)
    if kind == "stream":
        assert all(type(chunk) is ChatCompletionChunk for chunk in resp_read)
        assert [c.choices[0].finish_reason for c in resp_read][-1] == "stop"
    else:
        assert type(resp_read) is type(chat_read)
        assert resp_read.choices[0].finish_reason == "stop"


def test_native_response_is_reachable(server: AzureServer) -> None:
    model = azure(server)
    reply = model.run(MESSAGES)
    native = native_response(reply)
    assert (
        isinstance(native, Response)
        and native.id == reply.id
        and native.output_text == reply.choices[0].message.content
    )
    assert "_modelreg_response" not in reply.model_dump()  # not part of the completion's data
    stream = azure(server, config={"stream": True}).run(MESSAGES)
    first = next(iter(stream))
    assert native_response(stream) is None  # not before the stream has ended
    rest = list(stream)
    assert isinstance(native_response(stream), Response) and native_response(stream).id == first.id
    assert rest[-1].choices[0].finish_reason == "stop"
    with azure(server, config={"stream": True}).run(MESSAGES, response_format=Weather) as events:
        events.until_done()
        assert native_response(events).status == "completed"
    chat_reply = azure(server, "chat_completions").run(MESSAGES)
    assert native_response(chat_reply) is None


def test_usage_and_tool_calls_convert(server: AzureServer) -> None:
    model = azure(server)
    reply = model.run([{"role": "user", "content": "please use a tool"}], tools=TOOLS)
    call_ = reply.choices[0].message.tool_calls[0]
    assert (call_.id, call_.function.name, json.loads(call_.function.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "text"},
    )
    assert (
        reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.content is None
    )
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (
        5,
        7,
        12,
    )
    streamed = azure(server, config={"stream": True, "stream_options": {"include_usage": True}})
    chunks = list(streamed.run([{"role": "user", "content": "please use a tool"}], tools=TOOLS))
    calls = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert calls[0].id == "call_1" and calls[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments or "" for d in calls)) == {"city": "text"}
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 12
    assert "stream_options" not in server.requests[-1].body  # include_usage is the chat side's


def test_incomplete_and_failed_replies(server: AzureServer) -> None:
    model = azure(server)
    server.add_faults(Fault(length_finish=True))
    assert model.run(MESSAGES).choices[0].finish_reason == "length"
    server.add_faults(Fault(length_finish=True))
    with pytest.raises(openai.LengthFinishReasonError, match=r"\[model 'chat', deployment 'dep'\]"):
        model.run(MESSAGES, response_format=Weather)  # as chat mode's parse does
    server.add_faults(Fault(content_filter_finish=True))
    assert model.run(MESSAGES).choices[0].finish_reason == "content_filter"
    server.add_faults(Fault(failed_response=True))
    with pytest.raises(
        BackendError, match=r"the response failed \(code 'server_error': 'The model failed"
    ):
        model.run(MESSAGES)
    server.add_faults(Fault(failed_response=True))
    with pytest.raises(
        openai.APIError, match=r"^\[model 'chat', deployment 'dep'\] the response failed"
    ):
        list(azure(server, config={"stream": True}).run(MESSAGES))


# -- requests, translated -----------------------------------------------------------------------


def test_messages_translate_to_input_items(server: AzureServer) -> None:
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "content": "please use a tool"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "4 degrees"},
        {"role": "assistant", "content": [{"type": "text", "text": "It is 4 degrees."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
    ]
    azure(server).run(history)
    assert server.requests[-1].body["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "input_text", "text": "Use metric units."}]},
        {"role": "user", "content": "please use a tool"},
        {
            "type": "function_call",
            "call_id": "call_9",
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        },
        {"type": "function_call_output", "call_id": "call_9", "output": "4 degrees"},
        {"role": "assistant", "content": "It is 4 degrees."},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "And this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
            ],
        },
    ]


def test_a_reply_message_object_goes_back_into_the_history(server: AzureServer) -> None:
    model = azure(server)
    first = model.run([{"role": "user", "content": "please use a tool"}], tools=TOOLS)
    history = [
        {"role": "user", "content": "please use a tool"},
        first.choices[0].message,  # the SDK object itself, as agent loops append it
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    model.run(history, tools=TOOLS)
    assert server.requests[-1].body["input"][1:] == [
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "text"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]


def test_settings_translate(server: AzureServer) -> None:
    config = {
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "reasoning_effort": "low",
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "user": "u-1",
        "logprobs": True,
        "top_logprobs": 2,
        "n": 1,
    }
    azure(server, config=config).run(MESSAGES, tools=TOOLS)
    body = server.requests[-1].body
    assert body["max_output_tokens"] == 50 and "max_tokens" not in body
    assert body["reasoning"] == {"effort": "low"} and "reasoning_effort" not in body
    assert body["tools"] == [
        {
            "type": "function",
            "strict": False,
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": TOOLS[0]["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert (body["temperature"], body["top_p"], body["parallel_tool_calls"], body["user"]) == (
        0.2,
        0.9,
        False,
        "u-1",
    )
    assert body["include"] == ["message.output_text.logprobs"] and body["top_logprobs"] == 2
    assert "n" not in body and "logprobs" not in body
    assert body["store"] is False  # modelreg's default: nothing kept on the server
    azure(server, config={"max_completion_tokens": 30}).run(MESSAGES)
    assert server.requests[-1].body["max_output_tokens"] == 30


def test_response_formats_translate(server: AzureServer) -> None:
    model = azure(server)
    parsed = model.run(MESSAGES, response_format=Weather)
    text = server.requests[-1].body["text"]
    assert text["format"]["type"] == "json_schema" and text["format"]["name"] == "Weather"
    assert text["format"]["strict"] is True and text["format"]["schema"]["required"] == [
        "city",
        "degrees",
    ]
    assert "response_format" not in server.requests[-1].body
    assert parsed.choices[0].message.parsed == Weather(city="text", degrees=7)
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": Weather.model_json_schema()},
    }
    reply = model.run(MESSAGES, response_format=schema)
    assert server.requests[-1].body["text"] == {
        "format": {"type": "json_schema", "name": "w", "schema": Weather.model_json_schema()}
    }
    assert json.loads(reply.choices[0].message.content) == {"city": "text", "degrees": 7}
    model.run(MESSAGES, response_format={"type": "json_object"})
    assert server.requests[-1].body["text"] == {"format": {"type": "json_object"}}


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"n": 3}, "config.n: must be 1"),
        ({"stop": ["\n"]}, 'config.stop: is not supported with api = "responses"'),
        ({"presence_penalty": 0.5}, "config.presence_penalty"),
        ({"logit_bias": {"50256": -100}}, "config.logit_bias"),
        ({"seed": 7}, "config.seed"),
    ],
)
def test_settings_the_responses_api_lacks_are_errors(
    server: AzureServer, write_settings: Callable[[str], Path], config: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=f"model 'chat': {named}"):
        azure(server, config=config)
    azure(server, "chat_completions", config=config)  # fine for chat completions
    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "dep"
        endpoint = "{server.base_url}"
        api_version = "v1"
        api_key = "{KEY}"
        api = "responses"
        config = {json.dumps(config).replace(":", " =")}
        """
    )
    with ModelRegistry.from_settings() as registry, pytest.raises(ConfigError) as caught:
        registry.create("chat")
    message = str(caught.value)
    assert f"field '{named.split(':')[0]}' (settings.toml [models.chat.config])" in message


def test_a_client_without_responses_is_a_clear_error(server: AzureServer) -> None:
    class ChatOnly:
        def __init__(self) -> None:
            self.chat = openai.OpenAI(api_key=KEY, base_url=f"{server.base_url}/v1").chat

    model = AzureOpenAIModel("dep", client=ChatOnly(), api_mode="responses", name="chat")
    with pytest.raises(
        BackendError, match=r"no responses.create\(\), needed for api = \"responses\""
    ):
        model.run(MESSAGES)


# -- conversations ------------------------------------------------------------------------------


def _reply_text(reply: ChatCompletion) -> dict[str, Any]:
    return {"role": "assistant", "content": reply.choices[0].message.content}


def test_conversation_sends_only_new_messages(server: AzureServer) -> None:
    model = azure(server, config={"store": True})
    history: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    with conversation():
        first = model.run(history)
        history += [_reply_text(first), {"role": "user", "content": "And then?"}]
        second = model.run(history)
        history += [
            second.choices[0].message,
            {"role": "user", "content": "Last one"},
        ]  # an SDK object
        third = model.run(history)
        history += [_reply_text(third), {"role": "user", "content": "One more"}]
        edited = [history[0], {"role": "user", "content": "Hi, edited"}, *history[2:]]
        model.run(edited)  # an earlier message differs: the whole history again
        model.run(history[:2])  # shorter than the chain: the whole history again
    model.run(history)  # outside the block: nothing is chained
    bodies = [r.body for r in server.requests]
    assert [b.get("previous_response_id") for b in bodies] == [
        None,
        first.id,
        second.id,
        None,
        None,
        None,
    ]
    assert [len(b["input"]) for b in bodies] == [2, 1, 1, 8, 2, 8]
    assert bodies[1]["input"] == [{"role": "user", "content": "And then?"}]
    assert all(b["store"] is True for b in bodies)


def test_conversation_needs_store_and_recovers_a_lost_response(server: AzureServer) -> None:
    unstored = azure(server)  # store defaults to false: no chaining, the full history each time
    with conversation():
        first = unstored.run(MESSAGES)
        unstored.run([*MESSAGES, _reply_text(first), {"role": "user", "content": "More"}])
    assert [r.body.get("previous_response_id") for r in server.requests] == [None, None]
    model = azure(server, config={"store": True})
    with conversation():
        first = model.run(MESSAGES)
        server.stored.clear()  # the server lost it (expired after 30 days, deleted...)
        history = [*MESSAGES, _reply_text(first), {"role": "user", "content": "More"}]
        second = model.run(history)
        assert second.choices[0].message.content.endswith("More")
        model.run([*history, _reply_text(second), {"role": "user", "content": "Again"}])
    bodies = [r.body for r in server.requests[2:]]
    assert [b.get("previous_response_id") for b in bodies] == [None, first.id, None, second.id]
    assert [len(b["input"]) for b in bodies] == [1, 1, 3, 1]


def test_conversation_chains_streams(server: AzureServer) -> None:
    model = azure(server, config={"store": True, "stream": True})
    with conversation():
        chunks = list(model.run(MESSAGES))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        list(
            model.run(
                [
                    *MESSAGES,
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": "Go on"},
                ]
            )
        )
    assert server.requests[1].body["previous_response_id"] == chunks[0].id
    assert server.requests[1].body["input"] == [{"role": "user", "content": "Go on"}]


def test_fifty_concurrent_conversations_never_mix(server: AzureServer) -> None:
    model = azure(server, config={"store": True})

    async def one(n: int) -> tuple[str, str]:
        with conversation():
            history: list[Any] = [{"role": "user", "content": f"conversation {n}"}]
            first = await model.arun(history)
            await asyncio.sleep(0)  # let the other conversations run in between
            history += [_reply_text(first), {"role": "user", "content": f"follow-up {n}"}]
            await model.arun(history)
            return first.id, f"follow-up {n}"

    async def all_of_them() -> list[tuple[str, str]]:
        try:
            return await asyncio.gather(*(one(n) for n in range(50)))
        finally:
            await model.aclose()

    results = asyncio.run(all_of_them())

    def threaded(n: int, out: dict[int, tuple[str, str]]) -> None:
        with conversation():
            history: list[Any] = [{"role": "user", "content": f"thread {n}"}]
            first = model.run(history)
            history += [_reply_text(first), {"role": "user", "content": f"thread follow-up {n}"}]
            model.run(history)
            out[n] = (first.id, f"thread follow-up {n}")

    out: dict[int, tuple[str, str]] = {}
    threads = [threading.Thread(target=threaded, args=(n, out)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = {
        r.body["input"][0]["content"]: r.body.get("previous_response_id")
        for r in server.requests
        if "follow-up" in r.body["input"][0]["content"]
    }
    expected = dict((text, first_id) for first_id, text in [*results, *out.values()])
    assert len(expected) == 100 and sent == expected


# -- the README's examples ----------------------------------------------------------------------


def test_readme_wire_shapes_settings(
    server: AzureServer, write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import readme_block

    block = readme_block("**Azure's three wire shapes.**", "toml")
    write_settings(block.replace("https://contoso.openai.azure.com", server.base_url))
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    expected = {
        "chat": ("/openai/deployments/gpt-4o/chat/completions", {"api-version": "2024-10-21"}),
        "assistant": ("/openai/responses", {"api-version": "2025-04-01-preview"}),
        "reasoner": ("/openai/v1/responses", {}),
    }
    with ModelRegistry.from_settings() as registry:
        for name, (path, query) in expected.items():
            reply = registry.create(name).run(MESSAGES)
            assert reply.choices[0].message.content.endswith("You said: Hello")
            request = server.requests[-1]
            assert (request.path, request.query, request.headers["api-key"]) == (path, query, KEY)


def test_readme_conversation_example(
    server: AzureServer, write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import readme_block

    settings = readme_block("**Azure's three wire shapes.**", "toml")
    write_settings(settings.replace("https://contoso.openai.azure.com", server.base_url))
    code = readme_block("**Conversations and `store`.**", "python")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "AZURE_OPENAI_API_KEY": KEY},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    bodies = [r.body for r in server.requests]
    assert [len(b["input"]) for b in bodies] == [1, 1]
    assert bodies[1]["input"] == [{"role": "user", "content": "And then?"}]


def test_a_backend_that_speaks_only_chat_refuses_responses(
    write_settings: Callable[[str], Path],
) -> None:
    pytest.importorskip("modelreg_example_plugin")  # a plugin backend that knows no api field
    write_settings('[models.echo]\nbackend = "echo"\napi = "responses"\n')
    with ModelRegistry.from_settings() as registry, pytest.raises(ConfigError) as caught:
        registry.create("echo")
    assert (
        "field 'api' (settings.toml [models.echo]): EchoModel speaks 'chat_completions' only"
        in str(caught.value)
    )
    # the fake backend answers alike in both modes, so a test overlay keeps working
    write_settings(
        """
        [models.chat]
        backend = "azure"
        deployment = "dep"
        endpoint = "https://contoso.openai.azure.com"
        api_version = "v1"
        api_key = "k"
        api = "responses"

        [environments.test.models.chat]
        backend = "fake"
        reply = "fake"
        """
    )
    with ModelRegistry.from_settings(env="test") as registry:
        assert registry.create("chat").run(MESSAGES).choices[0].message.content == "fake"


def test_a_reply_that_does_not_match_the_response_format(server: AzureServer) -> None:
    body = server.response(RecordedRequest("POST", "/openai/responses", {}, {}, {"model": "d"}, 0))
    body["output"][0]["content"][0]["text"] = '{"city": "Oslo"}'  # no degrees
    server.add_faults(Fault(body=body))
    with pytest.raises(
        BackendError, match="the reply does not match the response_format"
    ) as caught:
        azure(server).run(MESSAGES, response_format=Weather)
    assert "[model 'chat', deployment 'dep']" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_logprobs_and_refusals_convert(server: AzureServer) -> None:
    body = server.response(RecordedRequest("POST", "/openai/responses", {}, {}, {"model": "d"}, 0))
    top = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}
    body["output"][0]["content"][0].update(
        text="Hi", logprobs=[{**top, "top_logprobs": [top, {**top, "token": "Ho"}]}]
    )
    body["output"][0]["content"].append({"type": "refusal", "refusal": "Not that part."})
    server.add_faults(Fault(body=body))
    reply = azure(server, config={"logprobs": True, "top_logprobs": 2}).run(MESSAGES)
    choice = reply.choices[0]
    assert (choice.message.content, choice.message.refusal) == ("Hi", "Not that part.")
    token = choice.logprobs.content[0]
    assert (token.token, token.logprob, token.bytes) == ("Hi", -0.1, [72, 105])
    assert [t.token for t in token.top_logprobs] == ["Hi", "Ho"]
    server.add_faults(Fault(body=body))
    assert azure(server).run(MESSAGES).choices[0].logprobs is None  # not asked for


def test_streamed_refusals_and_logprobs_convert() -> None:
    from openai.types.responses import ResponseRefusalDeltaEvent, ResponseTextDeltaEvent

    from backends.responses_results import ChunkConverter

    converter = ChunkConverter("dep", logprobs=True)
    where = {"item_id": "m", "output_index": 0, "content_index": 0, "sequence_number": 1}
    text = ResponseTextDeltaEvent.model_validate(
        {
            "type": "response.output_text.delta",
            "delta": "Hi",
            "logprobs": [{"token": "Hi", "logprob": -0.5}],
            **where,
        }
    )
    refusal = ResponseRefusalDeltaEvent.model_validate(
        {"type": "response.refusal.delta", "delta": "No.", **where}
    )
    chunks = [
        ChatCompletionChunk.model_validate(c) for e in (text, refusal) for c in converter.chunks(e)
    ]
    assert chunks[0].choices[0].delta.content == "Hi"
    assert chunks[0].choices[0].logprobs.content[0].logprob == -0.5
    assert chunks[1].choices[0].delta.refusal == "No."
