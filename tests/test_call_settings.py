"""Per-call request settings (``run(messages, **config)``) and engine fields passing through.

Issue 15, points 4 and 5: what a rollout sets for one call reaches the server for that call only,
validated like ``[models.X.config]``; what a serving engine adds to its replies (vLLM's
``prompt_token_ids``, per-choice ``token_ids``, ``logprobs``) reaches the caller on every path.
The loopback server (tests/azure_server.py) adds those fields as vLLM does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from registry import ConfigError, create_model, override_clients
from tests.azure_server import PROMPT_TOKEN_IDS, AzureServer
from tests.test_plugins import MESSAGES

TOKEN_IDS = {"return_token_ids": True}


class Answer(BaseModel):
    text: str


@pytest.fixture
def settings(write_settings: Callable[[str], Path], server: AzureServer) -> None:
    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "d"
        endpoint = "{server.base_url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        max_retries = 0
        config = {{ temperature = 0.2, extra_headers = {{ X-Team = "rl" }} }}
        [models.fake]
        backend = "fake"
        """
    )


# -- 4. per-call settings ---------------------------------------------------------------------


@pytest.mark.usefixtures("settings")
def test_call_settings_reach_the_server_for_that_call_only(server: AzureServer) -> None:
    model = create_model("chat")
    model.run(
        MESSAGES,
        temperature=0.9,
        seed=11,
        user="rollout-7",
        metadata={"episode": "7"},
        extra_body={"top_k": 20},
        extra_headers={"X-Session-ID": "s7"},
    )
    asyncio.run(model.arun(MESSAGES, seed=12))
    model.run(MESSAGES)
    first, second, third = server.requests
    assert {k: first.body[k] for k in ("temperature", "seed", "user", "metadata", "top_k")} == {
        "temperature": 0.9,
        "seed": 11,
        "user": "rollout-7",
        "metadata": {"episode": "7"},
        "top_k": 20,
    }
    # extra_headers are laid over the model's key by key: its X-Team stays
    assert first.headers["x-session-id"] == "s7" and first.headers["x-team"] == "rl"
    assert second.body["seed"] == 12 and second.body["temperature"] == 0.2
    assert "seed" not in third.body and third.body["temperature"] == 0.2
    assert "x-session-id" not in third.headers
    assert model.model_config_dict == {"temperature": 0.2, "extra_headers": {"X-Team": "rl"}}


@pytest.mark.usefixtures("settings")
def test_call_can_stream_and_change_tools(server: AzureServer) -> None:
    model = create_model("chat")
    chunks = list(model.run(MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.total_tokens == 12
    assert server.requests[-1].body["stream"] is True
    assert model.stream is False  # outside the call, the model's own setting


@pytest.mark.usefixtures("settings")
@pytest.mark.parametrize(
    "config, problem",
    [
        ({"temprature": 0.5}, "config.temprature: unknown config key 'temprature'. Did you mean"),
        ({"temperature": 5}, "config.temperature: must be from 0 to 2"),
        ({"seed": "sk-secret-1"}, "config.seed: Input should be a valid integer"),
        ({"top_p": float("nan")}, "config.top_p: must be a finite number"),
        ({"extra_headers": {"X-Key": "sk-secret-1\n"}}, "header 'X-Key' contains a line break"),
        ({"user": ["sk-secret-1"]}, "config.user: Input should be a valid string"),
    ],
)
def test_call_settings_are_validated_naming_the_key_never_the_value(
    config: dict[str, Any], problem: str, server: AzureServer
) -> None:
    model = create_model("chat")
    with pytest.raises(ConfigError) as caught:
        model.run(MESSAGES, **config)
    assert str(caught.value).startswith("model 'chat', run(): ")
    assert problem in str(caught.value)
    assert "sk-secret-1" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"model 'chat', arun\(\): "):
        asyncio.run(model.arun(MESSAGES, **config))
    assert server.requests == []


@pytest.mark.usefixtures("settings")
def test_plugin_backends_see_the_call_settings_while_they_run() -> None:
    fake = create_model("fake")
    reply = fake.run(MESSAGES, temperature=0.7, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in reply) == "fake reply to: Hello"
    asyncio.run(fake.arun(MESSAGES, seed=3))
    fake.run(MESSAGES)
    configs = [call["config"] for call in fake.calls]  # type: ignore[attr-defined]
    assert configs == [{"temperature": 0.7, "stream": True}, {"seed": 3}, {}]


@pytest.mark.usefixtures("settings")
def test_call_settings_stay_with_their_call_and_their_model() -> None:
    fake, other = create_model("fake"), create_model("fake")
    seen: dict[int, list[Any]] = {}
    barrier = threading.Barrier(2)

    def calls(seed: int) -> None:
        barrier.wait()
        for _ in range(50):
            fake.run(MESSAGES, seed=seed)
            other.run(MESSAGES)  # a model called meanwhile does not see another's settings
        seen[seed] = [
            c["config"].get("seed") for c in fake.calls if c["config"].get("seed") == seed
        ]  # type: ignore[attr-defined]

    threads = [threading.Thread(target=calls, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen[1]) == len(seen[2]) == 50
    assert all(call["config"] == {} for call in other.calls)  # type: ignore[attr-defined]


def test_a_model_called_inside_another_s_call_does_not_see_its_settings() -> None:
    from backends.fake import FakeModel

    class Relay(FakeModel):
        """A composite backend: its _run asks another model first."""

        def __init__(self, inner: FakeModel) -> None:
            super().__init__("relay")
            self.inner = inner

        def _run(self, messages: Any, response_format: Any = None, tools: Any = None) -> Any:
            self.inner.run(messages)
            return super()._run(messages, response_format, tools)

    inner = FakeModel("inner")
    relay = Relay(inner)
    relay.run(MESSAGES, temperature=0.9)
    assert relay.calls[0]["config"] == {"temperature": 0.9}
    assert inner.calls[0]["config"] == {}


@pytest.mark.usefixtures("settings")
def test_call_settings_go_through_a_client_override() -> None:
    from tests.test_plugins import RecordingClient

    fake, client = create_model("fake"), RecordingClient("client")
    with override_clients(client=client):
        fake.run(MESSAGES, temperature=0.1, extra_body={"k": 1})
    assert client.calls == [
        {"messages": MESSAGES, "model": "fake", "temperature": 0.1, "extra_body": {"k": 1}}
    ]


@pytest.mark.usefixtures("settings")
def test_model_config_dict_stays_assignable() -> None:
    fake = create_model("fake")
    fake.model_config_dict["temperature"] = 0.4  # CAMEL code changes it in place
    fake.run(MESSAGES)
    fake.model_config_dict = {"seed": 5}
    fake.run(MESSAGES, temperature=1.0)
    configs = [call["config"] for call in fake.calls]  # type: ignore[attr-defined]
    assert configs == [{"temperature": 0.4}, {"seed": 5, "temperature": 1.0}]
    assert "sk-" not in repr(
        create_model("fake", config={"extra_headers": {"X-Key": "sk-1"}}).model_config_dict
    )


# -- 5. engine fields pass through --------------------------------------------------------------


def _assert_engine_fields(completion: Any) -> None:
    choice = completion.choices[0]
    assert completion.prompt_token_ids == PROMPT_TOKEN_IDS
    assert choice.token_ids == [ord(c) for c in choice.message.content]
    assert [t.token for t in choice.logprobs.content] == list(choice.message.content)


@pytest.mark.usefixtures("settings")
def test_engine_fields_survive_every_path(server: AzureServer) -> None:
    model = create_model("chat")
    engine = {"logprobs": True, "extra_body": TOKEN_IDS}
    _assert_engine_fields(model.run(MESSAGES, **engine))
    _assert_engine_fields(asyncio.run(model.arun(MESSAGES, **engine)))
    _assert_engine_fields(model.run(MESSAGES, response_format=Answer, **engine))

    chunks = list(model.run(MESSAGES, stream=True, **engine))
    assert chunks[0].prompt_token_ids == PROMPT_TOKEN_IDS
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert [i for c in chunks for i in c.choices[0].token_ids] == [ord(c) for c in text]
    assert [t.token for c in chunks for t in c.choices[0].logprobs.content] == list(text)

    with model.run(MESSAGES, response_format=Answer, stream=True, **engine) as events:
        _assert_engine_fields(events.get_final_completion())

    async def stream_parse() -> Any:
        manager = await model.arun(MESSAGES, response_format=Answer, stream=True, **engine)
        async with manager as events:
            return await events.get_final_completion()

    _assert_engine_fields(asyncio.run(stream_parse()))


@pytest.mark.usefixtures("settings")
def test_engine_fields_survive_through_a_gateway_for_a_plugin_backend(server: AzureServer) -> None:
    fake = create_model("fake")
    with override_clients(base_url=f"{server.base_url}/v1", extra_body=TOKEN_IDS):
        _assert_engine_fields(fake.run(MESSAGES, logprobs=True))
        chunks = list(fake.run(MESSAGES, stream=True))
    assert chunks[0].prompt_token_ids == PROMPT_TOKEN_IDS
    assert all(isinstance(c.choices[0].token_ids, list) for c in chunks if c.choices)


def test_engine_fields_joined_for_a_custom_client_s_stream_parse() -> None:
    """A client with create only (AReaL-style): the SDK's stream helper over its chunks."""
    from openai.types.chat import ChatCompletionChunk

    from backends.fake import FakeModel

    text = '{"text": "hi"}'
    pieces = [text[:5], text[5:], ""]

    def chunk(index: int, piece: str) -> Any:
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": piece} if piece else {},
            "finish_reason": None if piece else "stop",
            "token_ids": [ord(c) for c in piece],
        }
        extra = {"prompt_token_ids": PROMPT_TOKEN_IDS} if index == 0 else {}
        return ChatCompletionChunk.model_validate(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [choice],
                **extra,
            }
        )

    class Completions:
        def create(self, **request: Any) -> Any:
            return (chunk(i, piece) for i, piece in enumerate(pieces))

    client = type("Client", (), {"chat": type("Chat", (), {"completions": Completions()})()})()
    model = FakeModel("m", {"stream": True})
    with override_clients(client=client), model.run(MESSAGES, response_format=Answer) as events:
        final = events.get_final_completion()
    assert final.choices[0].message.parsed == Answer(text="hi")
    assert final.choices[0].token_ids == [ord(c) for c in text]
    assert final.prompt_token_ids == PROMPT_TOKEN_IDS
