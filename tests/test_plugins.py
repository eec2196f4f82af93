"""Plugins: entry-point discovery, limits, isolation of faulty plugins, client providers."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.results import completion_from_text
from registry import (
    BackendError,
    ConfigError,
    ModelRegistry,
    PluginError,
    create_model,
    hookimpl,
    override_clients,
)
from registry.plugins import get_plugin_host
from tests.azure_server import AzureServer

MESSAGES = [{"role": "user", "content": "Hello"}]


def text(reply: Any) -> str:
    """The reply's text (what a RecordingClient put there: its label)."""
    content: str = reply.choices[0].message.content
    return content


def example_plugin_installed() -> bool:
    try:
        importlib.metadata.distribution("modelreg-example-plugin")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_example = pytest.mark.skipif(
    not example_plugin_installed(),
    reason="pip install examples/modelreg-example-plugin (.ci/run does)",
)


def install_fake_dist(
    site: Path, name: str, module_source: str, *, version: str = "1.0", entry: str | None = None
) -> None:
    """Lay out an installed distribution (dist-info + module) that importlib.metadata finds."""
    module = name.replace("-", "_")
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[modelreg]\n{entry or module} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    return directory


FAKE_AND_AZURE = """
    [models.ok]
    backend = "fake"
    reply = "still working"
    [models.needs_plugin]
    backend = "{backend}"
"""


# -- the example plugin, installed with pip, found through its entry point --------------------


@needs_example
def test_example_plugin_backend_counter_and_provider(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    import modelreg_example_plugin as example

    write_settings(
        f"""
        [models.echo]
        backend = "echo"
        prefix = ">> "
        token_counter = "words"
        [models.rl]
        backend = "azure"
        deployment = "policy"
        endpoint = "{server.base_url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        max_retries = 0
        client_provider = "recorder"
        """
    )
    echo = create_model("echo")
    assert echo.run(MESSAGES).choices[0].message.content == ">> Hello"
    assert echo.token_counter.count_tokens_from_messages(MESSAGES) == 1
    assert echo.token_counter.exact is False

    before = len(example.RECORDED)
    reply = create_model("rl").run(MESSAGES)
    assert reply.choices[0].message.content.endswith("You said: Hello")
    assert example.RECORDED[before:] == [("rl", {"messages": MESSAGES, "model": "policy"})]
    assert server.requests[-1].deployment == "policy"


@needs_example
def test_client_provider_switched_on_by_variable(
    write_settings: Callable[[str], Path], server: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelreg_example_plugin as example

    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "d"
        endpoint = "{server.base_url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        """
    )
    monkeypatch.setenv("MODELREG_MODELS__CHAT__CLIENT_PROVIDER", "recorder")
    before = len(example.RECORDED)
    create_model("chat").run(MESSAGES)
    assert len(example.RECORDED) == before + 1


@needs_example
def test_plugins_command_lists_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "registry", "plugins", "--json"], capture_output=True, text=True
    )
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["example"]["distribution"] == "modelreg-example-plugin"
    assert plugins["example"]["version"] == "0.1.0"
    assert plugins["example"]["backends"] == ["echo"]
    assert plugins["example"]["token_counters"] == ["words"]
    assert plugins["example"]["client_providers"] == ["recorder"]
    assert plugins["backends.builtin"]["builtin"] is True


@needs_example
@pytest.mark.parametrize(
    "variable, value", [("MODELREG_PLUGINS", ""), ("MODELREG_DISABLE_PLUGINS", "example")]
)
def test_installed_plugin_kept_out(
    write_settings: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    write_settings(FAKE_AND_AZURE.replace("{backend}", "echo"))
    monkeypatch.setenv(variable, value)
    registry = ModelRegistry.from_settings()
    with pytest.raises(PluginError) as caught:
        registry.create("needs_plugin")
    assert "backend 'echo' is not registered" in str(caught.value)
    assert f"example (modelreg-example-plugin 0.1.0), kept out by env {variable}" in str(
        caught.value
    )
    assert registry.create("ok").run(MESSAGES).choices[0].message.content == "still working"


@needs_example
def test_plugins_allow_list_by_name(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(FAKE_AND_AZURE.replace("{backend}", "echo"))
    monkeypatch.setenv("MODELREG_PLUGINS", "example")
    assert (
        ModelRegistry.from_settings()
        .create("needs_plugin")
        .run(MESSAGES)
        .choices[0]
        .message.content
        == "echo: Hello"
    )


def test_entry_points_not_loaded_for_builtin_names(
    write_settings: Callable[[str], Path], site: Path
) -> None:
    install_fake_dist(site, "loud-plugin", "raise RuntimeError('must not be imported')\n")
    write_settings('[models.ok]\nbackend = "fake"\n')
    create_model("ok").run(MESSAGES)
    assert "loud_plugin" not in sys.modules


# -- faulty plugins: reported with their name, other models unaffected -----------------------


def test_plugin_that_fails_to_import(write_settings: Callable[[str], Path], site: Path) -> None:
    install_fake_dist(site, "broken-import", "import no_such_module_anywhere\n", version="2.3")
    write_settings(FAKE_AND_AZURE.replace("{backend}", "mystery"))
    registry = ModelRegistry.from_settings()
    assert registry.create("ok").run(MESSAGES).choices[0].message.content == "still working"
    with pytest.raises(PluginError) as caught:
        registry.create("needs_plugin")
    message = str(caught.value)
    assert "broken-import 2.3" in message and "ModuleNotFoundError" in message
    assert "model 'needs_plugin'" in message
    info = {p.name: p for p in get_plugin_host().plugins()}["broken_import"]
    assert info.errors and info.errors[0].startswith("failed to load")


def test_plugin_that_raises_in_a_hook(write_settings: Callable[[str], Path], site: Path) -> None:
    install_fake_dist(
        site,
        "raising-plugin",
        """
        from registry import hookimpl
        from backends.fake import FakeModel

        @hookimpl
        def modelreg_register_backends(register):
            register("half", FakeModel)
            raise ValueError("boom in hook")

        @hookimpl
        def modelreg_register_token_counters(register):
            from backends.token_counting import ApproximateTokenCounter
            register("still-fine", ApproximateTokenCounter)
        """,
    )
    write_settings(FAKE_AND_AZURE.replace("{backend}", "half"))
    registry = ModelRegistry.from_settings()
    with pytest.raises(PluginError, match=r"raising-plugin 1\.0.*boom in hook"):
        registry.create("needs_plugin")
    assert registry.create("ok").run(MESSAGES)
    assert "still-fine" in get_plugin_host().names("token_counters")


def test_plugin_registering_bad_objects(write_settings: Callable[[str], Path], site: Path) -> None:
    install_fake_dist(
        site,
        "sloppy-plugin",
        """
        from registry import hookimpl
        from backends.fake import FakeModel

        @hookimpl
        def modelreg_register_backends(register):
            register("azure", FakeModel)       # clash with a built-in
            register("notabackend", dict)      # not a backend class

        @hookimpl
        def modelreg_register_client_providers(register):
            register("useless", object())      # neither sync_client nor async_client
        """,
    )
    write_settings(
        FAKE_AND_AZURE.replace("{backend}", "notabackend")
        + '\n[models.az]\nbackend = "azure"\ndeployment = "d"\nendpoint = "https://x.example.com"\n'
        'api_version = "2024-10-21"\napi_key = "k"\n'
    )
    registry = ModelRegistry.from_settings()
    with pytest.raises(PluginError, match=r"sloppy-plugin 1\.0.*not a backend class"):
        registry.create("needs_plugin")
    assert type(registry.create("az")).__name__ == "AzureOpenAIModel"  # the built-in kept its name
    errors = {p.name: p for p in get_plugin_host().plugins()}["sloppy_plugin"].errors
    assert any("'azure'" in e and "refused, the name is built in" in e for e in errors)
    assert any("'useless'" in e for e in errors)


class OneTestPlugin:
    """A plugin registered for one test only, the way plugin authors test theirs."""

    @hookimpl
    def modelreg_register_client_providers(self, register: Callable[[str, Any], None]) -> None:
        register("scripted", self)

    def __init__(self) -> None:
        self.client = RecordingClient("scripted")

    def sync_client(self, spec: Any) -> Any:
        return self.client


class RecordingClient:
    """An OpenAI-compatible stand-in that records which thread/task called it."""

    def __init__(self, label: str, *, with_parse: bool = True) -> None:
        self.label = label
        self.calls: list[dict[str, Any]] = []
        client = self

        class Completions:
            def create(self, **kwargs: Any) -> Any:
                client.calls.append(kwargs)
                return completion_from_text(client.label, model=kwargs["model"])

        if with_parse:
            Completions.parse = Completions.create  # type: ignore[attr-defined]
        self.chat = type("Chat", (), {"completions": Completions()})()


class AsyncRecordingClient(RecordingClient):
    def __init__(self, label: str) -> None:
        super().__init__(label)
        client = self

        class Completions:
            async def create(self, **kwargs: Any) -> Any:
                await asyncio.sleep(0.01)
                client.calls.append(kwargs)
                return completion_from_text(client.label, model=kwargs["model"])

        self.chat = type("Chat", (), {"completions": Completions()})()


def test_plugin_registered_for_one_test(write_settings: Callable[[str], Path]) -> None:
    plugin = OneTestPlugin()
    host = get_plugin_host()
    host.pm.register(plugin, name="one-test")
    try:
        write_settings(
            '[models.m]\nbackend = "azure"\ndeployment = "d"\nclient_provider = "scripted"\n'
        )
        assert text(create_model("m").run(MESSAGES)) == "scripted"
        assert plugin.client.calls[0]["model"] == "d"
    finally:
        host.pm.unregister(name="one-test")
    with pytest.raises(ConfigError, match="not a registered client provider"):
        create_model("m")


def test_provider_client_missing_methods(write_settings: Callable[[str], Path]) -> None:
    class NoParse(OneTestPlugin):
        def __init__(self) -> None:
            self.client = RecordingClient("np", with_parse=False)

    class NoCreate(OneTestPlugin):
        def sync_client(self, spec: Any) -> Any:
            return object()

    write_settings(
        '[models.m]\nbackend = "azure"\ndeployment = "d"\nclient_provider = "scripted"\n'
    )
    host = get_plugin_host()
    host.pm.register(NoParse(), name="np")
    try:
        model = create_model("m")
        assert text(model.run(MESSAGES)) == "np"

        class Answer(__import__("pydantic").BaseModel):
            text: str

        with pytest.raises(BackendError, match=r"no chat\.completions\.parse\(\)"):
            model.run(MESSAGES, response_format=Answer)
    finally:
        host.pm.unregister(name="np")
    host.pm.register(NoCreate(), name="nc")
    try:
        with pytest.raises(ConfigError, match=r"has no chat\.completions\.create"):
            create_model("m")
    finally:
        host.pm.unregister(name="nc")


# -- override_clients: per thread and per asyncio task ---------------------------------------


def azure_model(write_settings: Callable[[str], Path]) -> Any:
    write_settings(
        '[models.m]\nbackend = "azure"\ndeployment = "d"\nendpoint = "https://unused.example.com"\n'
        'api_version = "2024-10-21"\napi_key = "k"\n'
    )
    return create_model("m")


def test_override_clients_two_threads_at_once(write_settings: Callable[[str], Path]) -> None:
    model = azure_model(write_settings)
    clients = {"a": RecordingClient("a"), "b": RecordingClient("b")}
    barrier = threading.Barrier(2)
    results: dict[str, list[str]] = {}

    def rollout(label: str) -> None:
        with override_clients(client=clients[label]):
            barrier.wait()
            results[label] = [text(model.run(MESSAGES)) for _ in range(20)]

    threads = [threading.Thread(target=rollout, args=(label,)) for label in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"a": ["a"] * 20, "b": ["b"] * 20}
    assert len(clients["a"].calls) == len(clients["b"].calls) == 20


def test_override_clients_two_tasks_at_once(write_settings: Callable[[str], Path]) -> None:
    model = azure_model(write_settings)
    clients = {"x": AsyncRecordingClient("x"), "y": AsyncRecordingClient("y")}

    async def rollout(label: str) -> list[str]:
        with override_clients(async_client=clients[label]):
            return [text(await model.arun(MESSAGES)) for _ in range(5)]

    async def main() -> list[list[str]]:
        return list(await asyncio.gather(rollout("x"), rollout("y")))

    assert asyncio.run(main()) == [["x"] * 5, ["y"] * 5]


def test_model_created_inside_override_keeps_its_clients(
    write_settings: Callable[[str], Path],
) -> None:
    client = RecordingClient("inside")
    with override_clients(client=client):
        model = azure_model(write_settings)
    assert text(model.run(MESSAGES)) == "inside"


def test_override_checks_client_methods() -> None:
    with (
        pytest.raises(ConfigError, match=r"no chat\.completions\.create"),
        override_clients(client=object()),
    ):
        pass


# -- the fake backend through every request path ---------------------------------------------


def test_fake_backend_every_path(write_settings: Callable[[str], Path]) -> None:
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str
        score: int

    write_settings(
        """
        [models.f]
        backend = "fake"
        replies = ["one", "two"]
        tool_call = true
        [models.s]
        backend = "fake"
        reply = "streamed reply"
        config = { stream = true }
        """
    )
    fake = create_model("f")
    first, second = fake.run(MESSAGES), fake.run(MESSAGES)
    assert isinstance(first, ChatCompletion)
    assert [first.choices[0].message.content, second.choices[0].message.content] == ["one", "two"]
    parsed = fake.run(MESSAGES, response_format=Answer)
    assert parsed.choices[0].message.parsed == Answer(text="fake", score=0)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    call = fake.run(MESSAGES, tools=tools).choices[0].message.tool_calls[0]
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"q": "fake"}

    streamer = create_model("s")
    chunks = list(streamer.run(MESSAGES))
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "streamed reply"
    with streamer.run(MESSAGES, response_format=Answer) as manager:
        assert manager.get_final_completion().choices[0].message.parsed == Answer(
            text="fake", score=0
        )

    async def async_paths() -> None:
        reply = await fake.arun(MESSAGES)
        assert isinstance(reply, ChatCompletion)
        text = "".join(
            [c.choices[0].delta.content or "" async for c in await streamer.arun(MESSAGES)]
        )
        assert text == "streamed reply"

    asyncio.run(async_paths())
