"""What a backend returns is checked; backends.results builds what it may return."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel

from backends.base import BackendSettings, BaseModelBackend, BuildContext
from backends.results import achunks_from_text, chunks_from_text, completion_from_text
from registry import BackendError, create_model, hookimpl
from registry.cli import main
from registry.spec import ModelSpec
from registry.testing import use_plugins
from tests.test_plugins import MESSAGES, install_fake_dist


class Scripted(BaseModelBackend):
    """Returns whatever ``make()`` makes, from both ``_run`` and ``_arun``."""

    settings_model = BackendSettings

    @staticmethod
    def make() -> Any:
        return None

    @classmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> Self:
        return cls("scripted", spec.config, name=spec.name)

    def _run(self, messages: Any, response_format: Any = None, tools: Any = None) -> Any:
        return self.make()

    async def _arun(self, messages: Any, response_format: Any = None, tools: Any = None) -> Any:
        return self.make()


class ScriptedPlugin:
    """Registers backend ``scripted`` returning ``make()``."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.backend = type("Scripted", (Scripted,), {"make": staticmethod(make)})

    @hookimpl
    def modelreg_register_backends(self, register: Callable[[str, Any], None]) -> None:
        register("scripted", self.backend)


def scripted(make: Callable[[], Any], write_settings: Callable[[str], Path]) -> Any:
    write_settings('[models.m]\nbackend = "scripted"\n')
    return use_plugins(ScriptedPlugin(make))


async def _coroutine() -> Any:
    return completion_from_text("late", model="x")


async def _async_chunks() -> AsyncIterator[Any]:
    yield completion_from_text("x", model="x")


BAD_RESULTS: list[tuple[str, Callable[[], Any], str]] = [
    ("str", lambda: "hello", "returned a value of type str"),
    ("dict", lambda: {"choices": []}, "returned a value of type dict"),
    ("none", lambda: None, "returned None (a missing `return`?)"),
    ("list", lambda: list(chunks_from_text("x", model="x")), "returned a value of type list"),
    ("completion class", lambda: ChatCompletion, "returned a value of type pydantic._internal"),
]


@pytest.mark.parametrize("label, make, expected", BAD_RESULTS, ids=[b[0] for b in BAD_RESULTS])
def test_bad_results_name_the_plugin(
    write_settings: Callable[[str], Path], label: str, make: Callable[[], Any], expected: str
) -> None:
    with scripted(make, write_settings):
        model = create_model("m")
        with pytest.raises(BackendError) as caught:
            model.run(MESSAGES)
        message = str(caught.value)
        assert message.startswith("model 'm': backend 'scripted' (")
        assert "plugin ScriptedPlugin" in message and f"_run {expected}" in message
        assert "completion_from_text" in message
        with pytest.raises(BackendError, match=re.escape(f"_arun {expected}")):
            asyncio.run(model.arun(MESSAGES))


def test_wrong_kind_of_result_for_the_side(write_settings: Callable[[str], Path]) -> None:
    with scripted(_coroutine, write_settings):
        with pytest.raises(BackendError, match=r"_run returned a coroutine \(make _run a plain"):
            create_model("m").run(MESSAGES)  # an `async def _run`; closed, so no warning later
        with pytest.raises(BackendError, match=r"_arun returned a coroutine \(a missing `await`"):
            asyncio.run(create_model("m").arun(MESSAGES))  # an _arun returning one un-awaited
    with (
        scripted(_async_chunks, write_settings),
        pytest.raises(BackendError, match="_run returned an async iterator"),
    ):
        create_model("m").run(MESSAGES)
    with (
        scripted(lambda: chunks_from_text("x", model="x"), write_settings),
        pytest.raises(BackendError, match="_arun returned a plain iterator"),
    ):
        asyncio.run(create_model("m").arun(MESSAGES))


def test_installed_plugin_named_with_its_distribution(
    write_settings: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    install_fake_dist(
        site,
        "lazy-plugin",
        """
        from registry import hookimpl
        from tests.test_backend_results import Scripted

        class Lazy(Scripted):
            @staticmethod
            def make():
                return "just a string"

        @hookimpl
        def modelreg_register_backends(register):
            register("lazy", Lazy)
        """,
        version="4.2",
    )
    write_settings('[models.m]\nbackend = "lazy"\n')
    with pytest.raises(BackendError) as caught:
        create_model("m").run(MESSAGES)
    assert "backend 'lazy' (lazy_plugin.Lazy, plugin lazy_plugin (lazy-plugin 4.2))" in str(
        caught.value
    )
    assert "just a string" not in str(caught.value)  # described, never echoed


def test_streams_are_checked_chunk_by_chunk(write_settings: Callable[[str], Path]) -> None:
    def strings() -> Iterator[Any]:
        yield from chunks_from_text(["fine "], model="x")  # role chunk, content, stop
        yield "not a chunk"

    closed: list[bool] = []

    def tracked() -> Iterator[Any]:
        try:
            yield from strings()
        finally:
            closed.append(True)

    with scripted(tracked, write_settings):
        stream = create_model("m").run(MESSAGES)
        first = [next(stream), next(stream)]
        assert all(isinstance(c, ChatCompletionChunk) for c in first)
        with pytest.raises(
            BackendError, match="_run returned a stream that yielded a value of type str"
        ):
            next(stream)
        assert closed == [True]

    async def astrings() -> AsyncIterator[Any]:
        yield completion_from_text("a completion is not a chunk", model="x")

    with scripted(astrings, write_settings):

        async def consume() -> None:
            async for _ in await create_model("m").arun(MESSAGES):
                pass

        with pytest.raises(
            BackendError,
            match=r"yielded a value of type openai\.types\.chat\.chat_completion\.ChatCompletion",
        ):
            asyncio.run(consume())


class Answer(BaseModel):
    text: str


def test_good_results_pass_unchanged(write_settings: Callable[[str], Path]) -> None:
    completion = completion_from_text("hi", model="x", prompt_tokens=3, completion_tokens=1)
    assert completion.usage is not None and completion.usage.total_tokens == 4
    with scripted(lambda: completion, write_settings):
        assert create_model("m").run(MESSAGES) is completion
        assert asyncio.run(create_model("m").arun(MESSAGES)) is completion
    parsed = completion_from_text('{"text": "ok"}', model="x", response_format=Answer)
    assert parsed.choices[0].message.parsed == Answer(text="ok")  # type: ignore[attr-defined]
    with scripted(lambda: parsed, write_settings):
        assert create_model("m").run(MESSAGES, response_format=Answer) is parsed


def test_checked_stream_keeps_the_iterator_s_own_attributes(
    write_settings: Callable[[str], Path],
) -> None:
    class WithResponse:
        response = "the raw response"

        def __init__(self) -> None:
            self._chunks = chunks_from_text("x", model="x")

        def __iter__(self) -> Iterator[Any]:
            return self

        def __next__(self) -> Any:
            return next(self._chunks)

    with scripted(WithResponse, write_settings), create_model("m").run(MESSAGES) as stream:
        assert stream.response == "the raw response"
        assert [c.choices[0].finish_reason for c in stream] == [None, "stop"]


def test_chunks_are_made_lazily() -> None:
    asked: list[str] = []

    def pieces() -> Iterator[str]:
        for piece in ("a", "b"):
            asked.append(piece)
            yield piece

    stream = chunks_from_text(pieces(), model="m", id="s1")
    first = next(stream)
    assert asked == ["a"]
    assert (first.id, first.model, first.choices[0].delta.role) == ("s1", "m", "assistant")
    rest = list(stream)
    assert [c.choices[0].delta.content for c in rest] == ["b", None]
    assert rest[0].choices[0].delta.role is None  # the role comes once, as from the API

    async def apieces() -> AsyncIterator[str]:
        for piece in ("x", "y"):
            yield piece

    async def collect(source: Any) -> list[str | None]:
        return [c.choices[0].delta.content async for c in achunks_from_text(source, model="m")]

    assert asyncio.run(collect(apieces())) == ["x", "y", None]
    assert asyncio.run(collect("whole")) == ["whole", None]


def test_custom_client_result_is_checked_too(write_settings: Callable[[str], Path]) -> None:
    class Completions:
        def create(self, **kwargs: Any) -> Any:
            return "a string from the client"

    client = type("Client", (), {"chat": type("Chat", (), {"completions": Completions()})()})()
    write_settings(
        '[models.m]\nbackend = "azure"\ndeployment = "d"\nendpoint = "https://x.example.com"\n'
        'api_version = "2024-10-21"\napi_key = "k"\n'
    )
    with pytest.raises(BackendError) as caught:
        create_model("m", client=client).run(MESSAGES)
    message = str(caught.value)
    assert "backend 'azure'" in message and "backends.builtin (built-in)" in message
    assert "a custom client (client=, client_provider, override_clients) returned this" in message


@pytest.mark.parametrize("stream", [False, True])
def test_chat_command_reports_a_bad_result_without_traceback(
    write_settings: Callable[[str], Path], capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    make: Callable[[], Any] = (lambda: iter(["a", "b"])) if stream else (lambda: "a str")
    write_settings(
        f'[models.m]\nbackend = "scripted"\nconfig = {{ stream = {str(stream).lower()} }}\n'
    )
    with use_plugins(ScriptedPlugin(make)):
        assert main(["chat", "m", "hello"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("modelreg: error: model 'm': backend 'scripted'")
    assert "Traceback" not in err


def test_chat_command_with_no_choices(
    write_settings: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    empty = ChatCompletion.model_validate(
        {"id": "x", "object": "chat.completion", "created": 0, "model": "x", "choices": []}
    )
    write_settings('[models.m]\nbackend = "scripted"\n')
    with use_plugins(ScriptedPlugin(lambda: empty)):
        assert main(["chat", "m", "hello"]) == 1
    assert capsys.readouterr().err == "modelreg: error: model 'm' replied with no choices.\n"
