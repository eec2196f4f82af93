"""An example modelreg plugin: one backend, one token counter, one client provider."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from backends.base import BackendSettings, BaseModelBackend, BuildContext
from backends.results import completion_from_text
from backends.token_counting import BaseTokenCounter
from registry import hookimpl
from registry.hookspecs import RegisterBackend, RegisterClientProvider, RegisterTokenCounter
from registry.spec import ModelSpec

__all__ = ["RECORDED", "EchoModel", "RecordingProvider", "WordCounter"]


class EchoSettings(BackendSettings):
    """Fields of a ``backend = "echo"`` table."""

    prefix: str = "echo: "


class EchoModel(BaseModelBackend):
    """Replies with the last user message; returns a real ``ChatCompletion``."""

    settings_model = EchoSettings

    def __init__(self, prefix: str = "echo: ", **kwargs: Any) -> None:
        super().__init__("echo", **kwargs)
        self.prefix = prefix

    @classmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> EchoModel:
        options = spec.options
        assert isinstance(options, EchoSettings)
        model = cls(options.prefix, model_config_dict=spec.config, name=spec.name)
        return model

    def _reply(self, messages: list[dict[str, Any]]) -> Any:
        text = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        return completion_from_text(f"{self.prefix}{text}", model="echo")

    def _run(
        self, messages: list[dict[str, Any]], response_format: Any = None, tools: Any = None
    ) -> Any:
        return self._reply(messages)

    async def _arun(
        self, messages: list[dict[str, Any]], response_format: Any = None, tools: Any = None
    ) -> Any:
        return self._reply(messages)


class WordCounter(BaseTokenCounter):
    """Counts whitespace-separated words: a rough budget, declared not exact."""

    exact = False
    encoding_name = "words"

    def __init__(self, model: str) -> None:
        self.model = model

    def count_tokens_from_messages(
        self,
        messages: Iterable[Mapping[str, Any]],
        tools: Iterable[Mapping[str, Any]] | None = None,
    ) -> int:
        return sum(len(str(m.get("content") or "").split()) for m in messages)

    def encode(self, text: str) -> list[int]:
        return list(range(len(text.split())))

    def decode(self, tokens: list[int]) -> str:
        raise NotImplementedError("WordCounter cannot decode")


#: Every request any recording client made: (model name, request keyword arguments).
RECORDED: list[tuple[str, dict[str, Any]]] = []
_lock = threading.Lock()


class _RecordingCompletions:
    def __init__(self, model: str, inner: Any) -> None:
        self._model = model
        self._inner = inner

    def _record(self, kwargs: dict[str, Any]) -> None:
        with _lock:
            RECORDED.append((self._model, dict(kwargs)))

    def create(self, **kwargs: Any) -> Any:
        self._record(kwargs)
        return self._inner.chat.completions.create(**kwargs)

    def parse(self, **kwargs: Any) -> Any:
        self._record(kwargs)
        return self._inner.chat.completions.parse(**kwargs)

    def stream(self, **kwargs: Any) -> Any:
        self._record(kwargs)
        return self._inner.chat.completions.stream(**kwargs)


class _RecordingClient:
    """An OpenAI-compatible client that records each request and forwards it."""

    def __init__(self, model: str, inner: Any) -> None:
        self.chat = type("Chat", (), {})()
        self.chat.completions = _RecordingCompletions(model, inner)


class RecordingProvider:
    """Client provider ``recorder``: wraps a client for the model's own Azure endpoint."""

    def sync_client(self, spec: ModelSpec) -> Any:
        import openai

        options: Any = spec.options
        inner = openai.AzureOpenAI(
            azure_endpoint=options.endpoint,
            api_version=options.api_version,
            api_key=options.api_key.get_secret_value(),
            max_retries=spec.common.max_retries,
        )
        return _RecordingClient(spec.name, inner)


@hookimpl
def modelreg_register_backends(register: RegisterBackend) -> None:
    register("echo", EchoModel)


@hookimpl
def modelreg_register_token_counters(register: RegisterTokenCounter) -> None:
    register("words", WordCounter)


@hookimpl
def modelreg_register_client_providers(register: RegisterClientProvider) -> None:
    register("recorder", RecordingProvider())
