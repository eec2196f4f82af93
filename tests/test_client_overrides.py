"""Client overrides (issue 15): every backend honours them, scopes are strict, gateways, threads.

Plugin backends here are registered for one test with ``registry.testing.use_plugins``; the
clients are the recording stand-ins of tests/test_plugins.py or the real openai SDK talking to
the loopback server (tests/azure_server.py). The model's configured endpoint is a second
loopback server, so a call that bypasses an override is seen there instead of failing to
connect: ``configured.requests == []`` is the proof nothing went to it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import openai
import pytest

from backends.base import BaseModelBackend
from backends.results import completion_from_text
from registry import BackendError, ConfigError, PluginError, create_model, hookimpl
from registry.overrides import override_clients
from registry.scoped_threads import ContextThreadPoolExecutor, carry_context
from registry.testing import use_plugins
from tests.azure_server import AzureServer
from tests.test_plugins import MESSAGES, AsyncRecordingClient, RecordingClient, text


@pytest.fixture(scope="module")
def configured_server() -> Iterator[AzureServer]:
    """Stands for the deployment in settings: nothing under an override may reach it."""
    server = AzureServer().start()
    yield server
    server.stop()


@pytest.fixture
def configured(configured_server: AzureServer) -> AzureServer:
    configured_server.reset()
    return configured_server


class EchoModel(BaseModelBackend):
    """A plugin backend with no client of its own (the default: routed)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("echo-model", **kwargs)
        self.answered = 0

    @classmethod
    def from_spec(cls, spec: Any, context: Any) -> EchoModel:
        return cls(model_config_dict=spec.config, name=spec.name)

    def _reply(self, messages: list[dict[str, Any]]) -> Any:
        self.answered += 1
        return completion_from_text(f"echo: {messages[-1]['content']}", model="echo-model")

    def _run(self, messages: Any, response_format: Any = None, tools: Any = None) -> Any:
        return self._reply(messages)

    async def _arun(self, messages: Any, response_format: Any = None, tools: Any = None) -> Any:
        return self._reply(messages)


class LocalOnlyModel(EchoModel):
    """A backend that cannot send through a client, and says so."""

    client_overrides = "refused"


class EchoPlugin:
    """Registers the backends above and a client provider handing out a recording client."""

    provided: ClassVar[dict[str, Any]] = {}

    @hookimpl
    def modelreg_register_backends(self, register: Callable[[str, Any], None]) -> None:
        register("echo", EchoModel)
        register("local-only", LocalOnlyModel)

    @hookimpl
    def modelreg_register_client_providers(self, register: Callable[[str, Any], None]) -> None:
        register("rl", self)

    def sync_client(self, spec: Any) -> Any:
        return self.provided.get("client")

    def async_client(self, spec: Any) -> Any:
        return self.provided.get("async_client")


@pytest.fixture
def plugin(write_settings: Callable[[str], Path], configured: AzureServer) -> Iterator[None]:
    write_settings(
        f"""
        [models.echo]
        backend = "echo"
        config = {{ temperature = 0.3 }}
        [models.provided]
        backend = "echo"
        client_provider = "rl"
        [models.local]
        backend = "local-only"
        [models.fake]
        backend = "fake"
        reply = "the fake answered"
        [models.chat]
        backend = "azure"
        deployment = "policy"
        endpoint = "{configured.base_url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        max_retries = 0
        """
    )
    EchoPlugin.provided = {}
    with use_plugins(EchoPlugin()):
        yield


# -- 1. every backend honours overrides ------------------------------------------------------


@pytest.mark.usefixtures("plugin")
def test_plugin_backend_calls_reach_a_scope_client() -> None:
    model = create_model("echo")
    client = RecordingClient("from the override")
    with override_clients(client=client):
        assert text(model.run(MESSAGES)) == "from the override"
    assert client.calls == [{"messages": MESSAGES, "model": "echo-model", "temperature": 0.3}]
    assert model.answered == 0
    assert text(model.run(MESSAGES)) == "echo: Hello"  # outside the scope: its own _run


@pytest.mark.usefixtures("plugin")
def test_plugin_backend_calls_reach_create_and_provider_clients() -> None:
    given = RecordingClient("given to create")
    assert text(create_model("echo", client=given).run(MESSAGES)) == "given to create"
    EchoPlugin.provided = {"client": RecordingClient("provided"), "async_client": None}
    assert text(create_model("provided").run(MESSAGES)) == "provided"
    # the provider supplies no async side: that side falls back to the backend's own _arun
    assert text(asyncio.run(create_model("provided").arun(MESSAGES))) == "echo: Hello"
    assert len(given.calls) == 1


@pytest.mark.usefixtures("plugin")
def test_plugin_backend_async_calls_reach_the_scope() -> None:
    model = create_model("echo")
    clients = {"x": AsyncRecordingClient("x"), "y": AsyncRecordingClient("y")}

    async def rollout(label: str) -> list[str]:
        with override_clients(async_client=clients[label]):
            return [text(await model.arun(MESSAGES)) for _ in range(3)]

    async def main() -> list[list[str]]:
        return list(await asyncio.gather(rollout("x"), rollout("y")))

    assert asyncio.run(main()) == [["x"] * 3, ["y"] * 3]
    assert model.answered == 0


@pytest.mark.usefixtures("plugin")
def test_fake_backend_is_routed_to_the_override() -> None:
    fake = create_model("fake")
    client = RecordingClient("framework's client")
    with override_clients(client=client):
        assert text(fake.run(MESSAGES)) == "framework's client"
    assert text(fake.run(MESSAGES)) == "the fake answered"
    assert len(client.calls) == 1 and len(fake.calls) == 1  # type: ignore[attr-defined]


def test_routed_calls_keep_the_model_s_request_rules(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        '[models.f]\nbackend = "fake"\nmodel = "gpt-4o"\n'
        'capabilities = { rejected_params = ["seed"] }\n'
    )
    client = RecordingClient("never")
    with override_clients(client=client), pytest.raises(ConfigError, match="not accept 'seed'"):
        create_model("f").run(MESSAGES, seed=1)
    assert client.calls == []


@pytest.mark.usefixtures("plugin")
def test_backend_that_cannot_use_a_client_refuses_instead_of_bypassing() -> None:
    model = create_model("local")
    client = RecordingClient("never")
    with override_clients(client=client), pytest.raises(BackendError) as caught:
        model.run(MESSAGES)
    message = str(caught.value)
    assert "model 'local'" in message and "client_overrides = 'refused'" in message
    assert "override_clients(client=...)" in message
    with pytest.raises(BackendError, match="refused"):
        create_model("local", client=client).run(MESSAGES)
    assert client.calls == [] and model.answered == 0
    assert text(model.run(MESSAGES)) == "echo: Hello"  # no override: fine


def test_misspelt_client_overrides_mode_is_a_plugin_error(
    write_settings: Callable[[str], Path],
) -> None:
    class Sloppy(EchoModel):
        client_overrides = "refuse"  # type: ignore[assignment]

    class SloppyPlugin:
        @hookimpl
        def modelreg_register_backends(self, register: Callable[[str, Any], None]) -> None:
            register("sloppy", Sloppy)

    expected = r"client_overrides is 'refuse'.*Did you mean 'refused'"
    with pytest.raises(PluginError, match=expected), use_plugins(SloppyPlugin()):
        pass


# -- 2. strict scopes ------------------------------------------------------------------------


@pytest.mark.usefixtures("plugin")
@pytest.mark.parametrize("name", ["chat", "echo", "fake"])
def test_scope_missing_a_side_raises_instead_of_calling_the_endpoint(
    name: str, configured: AzureServer
) -> None:
    model = create_model(name)
    sync_only = override_clients(client=RecordingClient("sync only"))
    expected = r"arun\(\) inside override_clients\(client=\.\.\.\)"
    with sync_only, pytest.raises(BackendError, match=expected):
        asyncio.run(model.arun(MESSAGES))
    async_only = override_clients(async_client=AsyncRecordingClient("async only"))
    with async_only, pytest.raises(BackendError, match="not sent to the model's configured"):
        model.run(MESSAGES)
    assert configured.requests == []


@pytest.mark.usefixtures("plugin")
def test_fallback_is_an_explicit_opt_in(configured: AzureServer) -> None:
    chat, echo = create_model("chat"), create_model("echo")
    with override_clients(client=RecordingClient("sync"), fallback=True):
        assert text(chat.run(MESSAGES)) == "sync"
        assert "You said: Hello" in text(asyncio.run(chat.arun(MESSAGES)))  # its own endpoint
        assert text(asyncio.run(echo.arun(MESSAGES))) == "echo: Hello"  # its own _arun
    assert len(configured.requests) == 1


@pytest.mark.usefixtures("plugin")
def test_model_made_in_a_scope_keeps_it_strict(configured: AzureServer) -> None:
    with override_clients(client=RecordingClient("kept")):
        model = create_model("chat")
    assert text(model.run(MESSAGES)) == "kept"
    with pytest.raises(BackendError, match="supplies only client"):
        asyncio.run(model.arun(MESSAGES))
    assert configured.requests == []


@pytest.mark.usefixtures("plugin")
def test_plain_threads_do_not_inherit_a_scope_and_the_helpers_carry_it(
    configured: AzureServer,
) -> None:
    model = create_model("chat")
    client = RecordingClient("scoped")
    with override_clients(client=client):
        results: list[str] = []
        thread = threading.Thread(target=lambda: results.append(text(model.run(MESSAGES))))
        thread.start()
        thread.join()
        assert len(configured.requests) == 1  # what a bare thread does: the real endpoint
        with ContextThreadPoolExecutor(max_workers=4) as pool:
            replies = list(pool.map(lambda _: text(model.run(MESSAGES)), range(8)))
        carried = threading.Thread(
            target=carry_context(lambda: results.append(text(model.run(MESSAGES))))
        )
    carried.start()  # started after the block ended: the context was taken when wrapped
    carried.join()
    assert replies == ["scoped"] * 8 and results[-1] == "scoped"
    assert len(client.calls) == 9 and len(configured.requests) == 1


def test_carry_context_may_run_in_several_threads_at_once() -> None:
    seen: list[Any] = []
    barrier = threading.Barrier(3, timeout=10)
    client = RecordingClient("c")
    with override_clients(client=client) as scope:

        def work() -> None:
            barrier.wait()
            from registry.overrides import active_override

            seen.append(active_override())

        wrapped = carry_context(work)
    threads = [threading.Thread(target=wrapped) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert seen == [scope] * 3


# -- 3. gateway overrides ---------------------------------------------------------------------


def gateway(server: AzureServer, session: str = "s1", **kwargs: Any) -> Any:
    return override_clients(
        base_url=f"{server.base_url}/sessions/{session}/v1",
        api_key="gateway-key",
        default_headers={"X-Session-ID": session},
        **kwargs,
    )


@pytest.mark.usefixtures("plugin")
@pytest.mark.parametrize("name", ["chat", "echo", "fake"])
def test_gateway_takes_every_path_of_every_backend(
    name: str, server: AzureServer, configured: AzureServer
) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    model = create_model(name)
    with gateway(server, extra_body={"return_token_ids": True}):
        assert "You said: Hello" in text(model.run(MESSAGES))
        assert "You said: Hello" in text(asyncio.run(model.arun(MESSAGES)))
        chunks = list(model.run(MESSAGES, stream=True))
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert model.run(MESSAGES, response_format=Answer).choices[0].message.parsed.text
        with model.run(MESSAGES, response_format=Answer, stream=True) as events:
            assert events.get_final_completion().choices[0].message.parsed.text == "text"
    assert configured.requests == []
    assert len(server.requests) == 5
    for request in server.requests:
        assert request.path == "/sessions/s1/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer gateway-key"
        assert request.headers["x-session-id"] == "s1"
        assert request.body["return_token_ids"] is True


def test_responses_models_take_the_gateway_and_responses_only_clients(
    write_settings: Callable[[str], Path], server: AzureServer, configured: AzureServer
) -> None:
    """A Responses model under a gateway posts to the gateway's /responses; a client that has
    only ``responses.create`` serves it, and is refused for a chat model (nothing to call)."""
    write_settings(
        f"""
        [models.r]
        backend = "azure"
        api = "responses"
        deployment = "policy"
        endpoint = "{configured.base_url}"
        api_version = "2025-04-01-preview"
        api_key = "test-key"
        [models.c]
        backend = "azure"
        deployment = "policy"
        endpoint = "{configured.base_url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        """
    )
    model = create_model("r")
    with gateway(server):
        assert "You said: Hello" in text(model.run(MESSAGES))
        assert "You said: Hello" in text(asyncio.run(model.arun(MESSAGES)))
    assert [r.path for r in server.requests] == ["/sessions/s1/v1/responses"] * 2
    sdk = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="own-key", max_retries=0)
    responses_only = type("ResponsesOnly", (), {"responses": sdk.responses})()
    assert "You said: Hello" in text(create_model("r", client=responses_only).run(MESSAGES))
    assert server.requests[-1].path == "/v1/responses"
    with pytest.raises(ConfigError, match=r"model 'c', client: .* no chat\.completions\.create"):
        create_model("c", client=responses_only)
    with override_clients(client=responses_only):
        assert "You said: Hello" in text(model.run(MESSAGES))
    assert configured.requests == []


@pytest.mark.usefixtures("plugin")
def test_gateway_fields_win_over_the_request(server: AzureServer) -> None:
    model = create_model("echo")  # config temperature = 0.3
    with gateway(server, extra_body={"temperature": 1.0, "seed": 7}):
        model.run(MESSAGES, seed=1, extra_headers={"X-Session-ID": "hijack", "X-Trace": "t"})
    (request,) = server.requests
    assert request.body["temperature"] == 1.0 and request.body["seed"] == 7
    assert request.headers["x-session-id"] == "s1" and request.headers["x-trace"] == "t"


@pytest.mark.usefixtures("plugin")
def test_gateway_reuses_pooled_connections_across_scopes(server: AzureServer) -> None:
    model = create_model("chat")
    for session in range(20):
        with gateway(server, f"s{session}"):
            model.run(MESSAGES)

    async def scopes() -> None:
        for session in range(20):
            with gateway(server, f"a{session}"):
                await model.arun(MESSAGES)

    asyncio.run(scopes())
    assert len(server.requests) == 40
    assert server.connections() == 2  # one sync, one async (per event loop)


@pytest.mark.usefixtures("plugin")
def test_gateway_timeout_bounds_each_attempt(server: AzureServer) -> None:
    from tests.azure_server import Fault

    model = create_model("chat", timeout=0.3, max_retries=0)
    server.add_faults(Fault(delay=2.0))
    with gateway(server), pytest.raises(openai.APITimeoutError) as caught:
        model.run(MESSAGES)
    assert "The call went to override_clients(base_url=" in str(caught.value)
    assert "gateway-key" not in str(caught.value)


def test_model_without_credentials_is_made_and_used_inside_a_gateway_scope(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings('[models.policy]\nbackend = "azure"\ndeployment = "policy"\n')
    with pytest.raises(ConfigError, match="no Azure endpoint"):
        create_model("policy")  # outside a scope: it cannot work
    with gateway(server):
        model = create_model("policy")
        assert "You said: Hello" in text(model.run(MESSAGES))
    assert text(model.run(MESSAGES)).endswith("You said: Hello")  # it kept the scope
    assert [r.headers["x-session-id"] for r in server.requests] == ["s1", "s1"]


@pytest.mark.usefixtures("plugin")
def test_reply_excerpts_mask_the_gateway_key(server: AzureServer) -> None:
    from tests.azure_server import Fault

    server.add_faults(Fault(body={"error": {"message": "bad key gateway-key-0123456789"}}))
    with (
        override_clients(base_url=f"{server.base_url}/v1", api_key="gateway-key-0123456789"),
        pytest.raises(BackendError) as caught,
    ):
        create_model("chat").run(MESSAGES)
    assert "its error says 'bad key ***'" in str(caught.value)


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        (
            {"base_url": "https://gw.example.com/v1?key=sk-secret-1"},
            "base_url=...): must not have a query",
        ),
        ({"base_url": "http://gw.example.com/v1"}, "base_url=...): uses http://"),
        ({"base_url": "sk-secret-1"}, "base_url=...): is not a URL"),
        (
            {"base_url": "https://gw.example.com/v1", "api_key": "sk-secret-1 x"},
            "api_key=...): contains a space or line break",
        ),
        (
            {
                "base_url": "https://gw.example.com/v1",
                "default_headers": {"X-Key": "sk-secret-1\r\n"},
            },
            "default_headers=...): header 'X-Key' contains a line break",
        ),
        (
            {"base_url": "https://gw.example.com/v1", "default_headers": "X-Key: sk-secret-1"},
            "default_headers=...): must be a mapping",
        ),
        (
            {"base_url": "https://gw.example.com/v1", "extra_body": {"t": float("nan")}},
            "extra_body=...): t: must be a finite number",
        ),
        ({"api_key": "sk-secret-1"}, "api_key= go with base_url="),
        ({"client": RecordingClient("c"), "allow_http": True}, "allow_http= go with base_url="),
        ({"client": RecordingClient("c"), "base_url": "https://gw.example.com/v1"}, "not both"),
        ({}, "pass a client, an async_client, both, or a gateway"),
    ],
)
def test_bad_gateway_arguments_are_named_never_shown(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught, override_clients(**kwargs):
        pass
    assert problem in str(caught.value)
    assert "sk-secret-1" not in str(caught.value)


def test_gateway_key_and_header_values_never_show(server: AzureServer) -> None:
    with override_clients(
        base_url=f"{server.base_url}/v1",
        api_key="sk-gateway-secret",
        default_headers={"X-Api-Key": "sk-header-secret", "X-Session-ID": "s9"},
        extra_body={"session": "s9"},
    ) as scope:
        shown = repr(scope) + str(scope)
    assert "sk-gateway-secret" not in shown and "sk-header-secret" not in shown
    assert "X-Api-Key" in shown and "session" in shown


def test_plain_http_gateway_needs_allow_http() -> None:
    with override_clients(base_url="http://gateway.cluster.local:8000/v1", allow_http=True):
        pass


# -- the rollout scenario ---------------------------------------------------------------------


@pytest.mark.usefixtures("plugin")
def test_rollout_of_50_concurrent_sessions_has_no_cross_talk(
    server: AzureServer, configured: AzureServer
) -> None:
    """50 tasks, each with its own gateway scope and session header, share one model."""
    model = create_model("chat")
    turns = 3

    async def episode(session: str) -> list[str]:
        replies = []
        with gateway(server, session, extra_body={"session": session}):
            for turn in range(turns):
                await asyncio.sleep(0)  # let the other sessions interleave
                messages = [{"role": "user", "content": f"{session} turn {turn}"}]
                replies.append(text(await model.arun(messages, seed=turn)))
        return replies

    async def rollout() -> list[list[str]]:
        return list(await asyncio.gather(*(episode(f"sess-{n}") for n in range(50))))

    results = asyncio.run(rollout())
    for n, replies in enumerate(results):
        assert [reply.rsplit("You said: ", 1)[1] for reply in replies] == [
            f"sess-{n} turn {turn}" for turn in range(turns)
        ]
    assert len(server.requests) == 50 * turns and configured.requests == []
    for request in server.requests:
        session = request.headers["x-session-id"]
        assert request.path == f"/sessions/{session}/v1/chat/completions"
        assert request.body["session"] == session
        assert request.body["messages"][0]["content"].startswith(f"{session} turn ")
        assert request.headers["authorization"] == "Bearer gateway-key"
    sessions = [r.headers["x-session-id"] for r in server.requests]
    assert sorted(set(sessions)) == sorted(f"sess-{n}" for n in range(50))


# -- the README's section, run as written -----------------------------------------------------


def test_readme_client_override_examples(
    write_settings: Callable[[str], Path],
    server: AzureServer,
    configured: AzureServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.helpers import readme_block

    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "policy"
        endpoint = "{configured.base_url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        """
    )
    monkeypatch.setenv("RL_GATEWAY_URL", server.base_url)
    monkeypatch.setenv("RL_GATEWAY_KEY", "gateway-key")
    namespace: dict[str, Any] = {}
    exec(readme_block("Three ways, and one rule for all of them", "python"), namespace)
    assert len(namespace["token_ids"]) == 8
    assert all(ids and all(isinstance(i, int) for i in ids) for ids in namespace["token_ids"])
    sessions = {r.headers["x-session-id"]: r for r in server.requests}
    assert sorted(sessions) == [f"s{n}" for n in range(8)]
    for session, request in sessions.items():
        assert request.path == f"/sessions/{session}/v1/chat/completions"
        assert request.body["seed"] == 7 and request.body["return_token_ids"] is True
    exec(readme_block("`registry.scoped_threads.carry_context(fn)`", "python"), namespace)
    assert ["Question" in r.choices[0].message.content for r in namespace["replies"]] == [True] * 4
    assert [r.path for r in server.requests[8:]] == ["/sessions/batch/v1/chat/completions"] * 4
    assert configured.requests == []
