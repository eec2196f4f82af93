"""The interface every model backend implements, and what the registry hands it at build time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

from backends.configs import ConfigSchema, PydanticConfig, check_model_config, config_model_for
from backends.results import checked_result
from registry.building import BuildContext, HttpClientSource, current_loop
from registry.errors import ConfigError
from registry.masking import redact
from registry.validation import Problem, describe_problems
from registry.wire import credential_secret

if TYPE_CHECKING:
    from backends.capabilities import ModelCapabilities
    from backends.token_counting import BaseTokenCounter
    from registry.spec import ModelSpec

__all__ = [
    "BackendSettings",
    "BaseModelBackend",
    "BuildContext",
    "Credential",
    "HttpClientSource",
    "Messages",
    "current_loop",
]

#: OpenAI-format chat messages: ``[{"role": "user", "content": "Hello"}]``.
Messages = list[dict[str, Any]]
#: A key or token field: held as SecretStr, blank means unset, must fit in an HTTP header.
Credential = Annotated[SecretStr | None, BeforeValidator(credential_secret)]


class BackendSettings(BaseModel):
    """Base of a backend's own settings fields (``settings_model``); unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class BaseModelBackend(ABC):
    """A chat model: ``run``/``arun`` take OpenAI-format messages and return SDK types.

    Subclasses set ``settings_model`` (their fields in ``[models.X]``), ``env_fallbacks`` (the
    conventional variables of each field) and implement :meth:`from_spec`, :meth:`_run` and
    :meth:`_arun`.
    """

    settings_model: ClassVar[type[BaseModel]] = BackendSettings
    #: A backend's own pydantic schema of its request settings; None: the openai SDK's create
    #: parameters for the model's API (:func:`config_schema`).
    config_model: ClassVar[type[BaseModel] | None] = None
    env_fallbacks: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Groups of fields (credentials) of which only one may come from conventional variables.
    exclusive_fallbacks: ClassVar[tuple[tuple[str, ...], ...]] = ()
    #: Count the prompt before each request and refuse one that cannot fit the context window
    #: (``check_context = true`` in settings; see :mod:`backends.request_rules`).
    check_context: bool = False
    #: Where each setting came from (set by the registry), for error messages.
    sources: Mapping[str, str] = {}
    #: The values of the ``api`` field this backend honours; any other is a settings error.
    apis: ClassVar[tuple[str, ...]] = ("chat_completions",)

    def __init__(
        self,
        model_type: str,
        model_config_dict: Mapping[str, Any] | None = None,
        *,
        token_counter: BaseTokenCounter | None = None,
        name: str | None = None,
        base_model: str | None = None,
        capabilities: ModelCapabilities | Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(model_type, str) or not model_type.strip():
            raise ConfigError(
                f"{type(self).__name__}: model_type must be a non-empty string (the deployment or "
                f"model name), not {type(model_type).__name__}."
            )
        if model_config_dict is not None and not isinstance(model_config_dict, Mapping):
            raise ConfigError(
                f"{type(self).__name__}: model_config_dict must be a mapping of request "
                f"settings, not {type(model_config_dict).__name__}."
            )
        self.model_type = model_type
        self.name = name or model_type
        self.base_model = base_model
        self.model_config_dict: dict[str, Any] = redact(dict(model_config_dict or {}))
        self._token_counter = token_counter
        self._token_counter_factory: Callable[[], BaseTokenCounter] | None = None
        self._capabilities: ModelCapabilities | None = None
        self._capability_overrides: Mapping[str, Any] | None = None
        self._capability_layers: Callable[[], Sequence[Any]] | None = None
        self.use_capabilities(capabilities)
        self.check_model_config()

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> Self:
        """Build the backend from a resolved spec (the registry's entry point)."""

    def use_token_counter_factory(self, factory: Callable[[], BaseTokenCounter] | None) -> None:
        """Build the token counter with ``factory`` on first use, unless one was given."""
        if self._token_counter is None and factory is not None:
            self._token_counter_factory = factory

    def use_capabilities(self, capabilities: ModelCapabilities | Mapping[str, Any] | None) -> None:
        """Set the model's capabilities: a merged result, or overrides of the base model's.

        The registry passes the result of its lookup (built-in table < plugins < settings);
        a mapping is ``[models.NAME.capabilities]``-style overrides, validated now (ConfigError
        naming the key). None: the built-in table's entry for the base model, on first use.
        """
        if isinstance(capabilities, Mapping):
            from backends.capabilities import check_capability_overrides

            check_capability_overrides(capabilities, context=f"model {self.name!r}")
            self._capability_overrides, self._capabilities = dict(capabilities), None
        else:
            self._capability_overrides, self._capabilities = None, capabilities

    def use_capability_layers(self, layers: Callable[[], Sequence[Any]] | None) -> None:
        """Look capabilities up in the plugins' layers (the registry's), not the table alone."""
        self._capability_layers = layers

    @classmethod
    def lookup_capabilities(
        cls,
        base_model: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        layers: Callable[[], Sequence[Any]] | None = None,
        context: str = "model",
    ) -> ModelCapabilities:
        """Capabilities of ``base_model``: the table < the plugins' ``layers`` < ``overrides``.

        What :attr:`capabilities` uses, and what the registry asks (through the backend class,
        never importing a backend module) for a model it has not built (its token counter).
        """
        from backends.capabilities import capabilities_for, registry_from_layers

        registry = registry_from_layers(layers()) if layers is not None else None
        return capabilities_for(base_model, overrides, registry=registry, context=context)

    @property
    def capabilities(self) -> ModelCapabilities:
        """What the base model (``base_model``, else ``model_type``) can do; looked up once."""
        if self._capabilities is None:
            self._capabilities = self.lookup_capabilities(
                self.base_model or self.model_type,
                self._capability_overrides,
                layers=self._capability_layers,
                context=f"model {self.name!r}",
            )
        return self._capabilities

    def request_problems(self, request: Mapping[str, Any]) -> list[Problem]:
        """Request settings the base model refuses (``modelreg check`` and each call ask)."""
        return self.capabilities.config_problems(request)

    def prepared_request(self, messages: Messages, request: dict[str, Any]) -> dict[str, Any]:
        """``request`` as the base model takes it, checked before anything is sent.

        Raises:
            ConfigError: a setting the model refuses (the message ``check`` gives).
            ContextWindowExceededError: with ``check_context``, the request cannot fit.
        """
        from backends.request_rules import adapted, context_overflow

        problems = self.request_problems(request)
        if problems:
            raise ConfigError(describe_problems(self.name, problems, self.sources))
        capabilities = self.capabilities
        request = adapted(capabilities, request)
        if self.check_context:
            error = context_overflow(
                capabilities, self.token_counter, messages, request, model=self.name
            )
            if error is not None:
                raise error
        return request

    @property
    def token_limit(self) -> int:
        """The context window of the base model, in tokens (CAMEL's ``token_limit``).

        From the capability table, per-model overrides applied; a model not in the table gets
        the declared default (``capabilities.known`` is False), never an unbounded number.
        """
        return self.capabilities.context_window

    @classmethod
    def config_schema(cls, api: str | None = None) -> ConfigSchema:
        """What validates this backend's request settings for ``api`` (resolution calls it).

        ``config_model`` when the class sets one; else every parameter of the installed SDK's
        create method for the API (``chat_completions`` by default, or ``responses``).
        """
        if cls.config_model is not None:
            return PydanticConfig(cls.config_model)
        return config_model_for(api)

    def check_model_config(self) -> None:
        """Reject unknown or ill-typed keys in ``model_config_dict`` with a ConfigError.

        Validated for the model's ``api`` attribute (chat completions when it has none).
        """
        check_model_config(
            self.model_config_dict,
            context=f"model {self.name!r}",
            schema=type(self).config_schema(getattr(self, "api", None)),
        )

    @classmethod
    def api_config_problems(cls, config: Mapping[str, Any], api: str) -> list[tuple[str, str]]:
        """Problems with the ``api`` field: ``(field path, message)`` pairs.

        An ``api`` this backend does not speak, or (subclasses) settings that API cannot send.
        ``modelreg check`` and the constructor both ask, so either is found before any request.
        """
        if api in cls.apis:
            return []
        return [
            (
                "api",
                f"{cls.__name__} speaks {' and '.join(repr(a) for a in cls.apis)} only; "
                f"remove api = {api!r} or use a backend that has it",
            )
        ]

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
        """Send ``messages``; see :meth:`_run` for what comes back (checked on every call)."""
        return checked_result(self, self._run(messages, response_format, tools), is_async=False)

    async def arun(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Async :meth:`run`."""
        result = await self._arun(messages, response_format, tools)
        return checked_result(self, result, is_async=True)

    @abstractmethod
    def _run(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Return a ChatCompletion, a stream of chunks, a parsed completion, or a stream manager.

        :mod:`backends.results` builds them (``completion_from_text``, ``chunks_from_text``).
        """

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
