"""The interface every model backend implements, and what the registry hands it at build time."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from pydantic import BaseModel, ConfigDict

from backends.configs import ChatGPTConfig, check_model_config

if TYPE_CHECKING:
    from backends.token_counting import BaseTokenCounter
    from registry.spec import ModelSpec

__all__ = ["BackendSettings", "BaseModelBackend", "BuildContext", "HttpClientSource", "Messages"]

#: OpenAI-format chat messages: ``[{"role": "user", "content": "Hello"}]``.
Messages = list[dict[str, Any]]


class BackendSettings(BaseModel):
    """Base of a backend's own settings fields (``settings_model``); unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class HttpClientSource(Protocol):
    """Where backends get shared HTTP clients (the registry's pool), one per endpoint."""

    def sync_client(self, key: str) -> Any:
        """An ``httpx2.Client`` shared by every model on the endpoint ``key``."""
        ...

    def async_client(self, key: str) -> Any:
        """An ``httpx2.AsyncClient`` shared on the endpoint ``key`` (per event loop)."""
        ...


@dataclass
class BuildContext:
    """What the registry's factory gives a backend besides the spec.

    Attributes:
        runtime: per-call objects that are not settings (``client``, ``async_client``, a callable
            ``azure_ad_token_provider``, a ``token_counter`` instance).
        http_clients: the shared HTTP client pool, or None to let the SDK build its own.
        token_counter_factory: builds the model's token counter on first use.
    """

    runtime: Mapping[str, Any] = field(default_factory=dict)
    http_clients: HttpClientSource | None = None
    token_counter_factory: Callable[[], BaseTokenCounter] | None = None


def current_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop, or None outside one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class BaseModelBackend(ABC):
    """A chat model: ``run``/``arun`` take OpenAI-format messages and return SDK types.

    Subclasses set ``settings_model`` (their fields in ``[models.X]``), ``env_fallbacks`` (the
    conventional variables of each field) and implement :meth:`from_spec`, :meth:`_run` and
    :meth:`_arun`.
    """

    settings_model: ClassVar[type[BaseModel]] = BackendSettings
    config_model: ClassVar[type[BaseModel]] = ChatGPTConfig
    env_fallbacks: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Groups of fields (credentials) of which only one may come from conventional variables.
    exclusive_fallbacks: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def __init__(
        self,
        model_type: str,
        model_config_dict: Mapping[str, Any] | None = None,
        *,
        token_counter: BaseTokenCounter | None = None,
        name: str | None = None,
        base_model: str | None = None,
    ) -> None:
        self.model_type = model_type
        self.name = name or model_type
        self.base_model = base_model
        self.model_config_dict: dict[str, Any] = dict(model_config_dict or {})
        self._token_counter = token_counter
        self._token_counter_factory: Callable[[], BaseTokenCounter] | None = None
        self.check_model_config()

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> Self:
        """Build the backend from a resolved spec (the registry's entry point)."""

    def use_token_counter_factory(self, factory: Callable[[], BaseTokenCounter] | None) -> None:
        """Build the token counter with ``factory`` on first use, unless one was given."""
        if self._token_counter is None and factory is not None:
            self._token_counter_factory = factory

    def check_model_config(self) -> None:
        """Reject unknown or ill-typed keys in ``model_config_dict`` with a ConfigError."""
        check_model_config(self.model_config_dict, context=f"model {self.name!r}")

    @property
    def token_counter(self) -> BaseTokenCounter:
        """The token counter, built on first use (OpenAI's, for the base model, by default)."""
        if self._token_counter is None:
            if self._token_counter_factory is not None:
                self._token_counter = self._token_counter_factory()
            else:
                from backends.token_counting import OpenAITokenCounter

                self._token_counter = OpenAITokenCounter(self.base_model or self.model_type)
        return self._token_counter

    @property
    def stream(self) -> bool:
        """Whether requests stream (``config.stream``)."""
        return bool(self.model_config_dict.get("stream", False))

    def run(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Send ``messages``; see :meth:`_run` for what comes back."""
        return self._run(messages, response_format, tools)

    async def arun(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Async :meth:`run`."""
        return await self._arun(messages, response_format, tools)

    @abstractmethod
    def _run(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Return a ChatCompletion, a Stream, a parsed completion, or a stream manager."""

    @abstractmethod
    async def _arun(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Async :meth:`_run`."""

    def __repr__(self) -> str:
        # getattr: repr() must work on an instance whose __init__ raised part-way.
        name, model_type = getattr(self, "name", None), getattr(self, "model_type", None)
        return f"{type(self).__name__}(name={name!r}, model_type={model_type!r})"
