"""The interface every model backend implements, and what the registry hands it at build time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

from backends.configs import ConfigSchema, PydanticConfig, check_model_config, config_model_for
from backends.results import checked_result
from registry.building import BuildContext, HttpClientSource, current_loop
from registry.errors import BackendError, ConfigError
from registry.masking import Redacted, redact
from registry.overrides import ClientOverride, active_override, chosen_client
from registry.validation import Problem, describe_problems
from registry.wire import credential_secret

if TYPE_CHECKING:
    from backends.capabilities import ModelCapabilities
    from backends.token_counting import BaseTokenCounter
    from registry.routing.plan import RoutingPlan
    from registry.spec import ModelSpec

__all__ = [
    "BackendSettings",
    "BaseModelBackend",
    "BuildContext",
    "ClientOverrides",
    "Credential",
    "HttpClientSource",
    "Messages",
    "current_loop",
]

#: OpenAI-format chat messages: ``[{"role": "user", "content": "Hello"}]``.
Messages = list[dict[str, Any]]
#: A key or token field: held as SecretStr, blank means unset, must fit in an HTTP header.
Credential = Annotated[SecretStr | None, BeforeValidator(credential_secret)]
#: How a backend meets a client override: see :attr:`BaseModelBackend.client_overrides`.
ClientOverrides = Literal["routed", "handled", "refused"]
#: The settings of the call being made (``run(..., temperature=0)``), for the model making it.
_CALL_CONFIG: ContextVar[tuple[BaseModelBackend, Redacted] | None] = ContextVar(
    "modelreg_call_config", default=None
)


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
    #: What a client override (``override_clients``, ``create(client=...)``, ``client_provider``)
    #: does to this backend's calls. ``"routed"``: while one applies, ``run``/``arun`` send the
    #: request through the override's OpenAI-compatible client instead of ``_run``/``_arun``.
    #: ``"handled"``: the backend sends through :meth:`override_client` itself (the
    #: OpenAI-family backends). ``"refused"``: it cannot use a client; ``run``/``arun`` raise
    #: BackendError while one applies, so no call bypasses the override unseen.
    client_overrides: ClassVar[ClientOverrides] = "routed"
    # Class-level defaults: a subclass that skips __init__ still works.
    _clients: ClientOverride | None = None
    _routed: Any = None
    #: The model's pool and fallbacks (:meth:`use_routing`), or None: calls go to ``_run``.
    _routing: Any = None
    _client_limits: tuple[float, int] = (180.0, 3)
    _model_config: Redacted = Redacted()
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
        self.model_config_dict = model_config_dict or {}
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
        if not request and not self.check_context:
            # Every rule reads the request's keys (request_rules): a request with none needs
            # no capabilities, so a first request without settings does not look them up
            # (importing the table, loading the installed plugins that may layer over it).
            return request
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
    def model_config_dict(self) -> dict[str, Any]:
        """The request settings: the model's, with the settings of the call being made over them.

        Inside ``run(messages, temperature=0)`` (while ``_run``/``_arun`` runs) this is the
        merged dict, so every backend sees per-call settings without doing anything.
        """
        call = _CALL_CONFIG.get()
        if call is not None and call[0] is self:
            return call[1]
        return self._model_config

    @model_config_dict.setter
    def model_config_dict(self, value: Mapping[str, Any]) -> None:
        self._model_config = redact(dict(value) if not isinstance(value, Redacted) else value)

    @property
    def stream(self) -> bool:
        """Whether requests stream (``config.stream``, or this call's ``stream=``)."""
        return bool(self.model_config_dict.get("stream", False))

    def run(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        **config: Any,
    ) -> Any:
        """Send ``messages``; see :meth:`_run` for what comes back (checked on every call).

        ``config`` sets request settings for this call only (``temperature=0``, ``seed=1``,
        ``extra_headers={...}``), validated like ``[models.X.config]`` and laid over it
        (``extra_headers``/``extra_body`` key by key).
        """
        token = _CALL_CONFIG.set((self, self._call_config(config, "run"))) if config else None
        try:
            overridden = self._overridden_call()
            routed = self._routed_calls(is_async=False) if overridden else None
            if routed is not None:
                return checked_result(
                    self,
                    routed._run(messages, response_format, tools),
                    is_async=False,
                    via_client=True,
                )
            if self._routing is not None and not overridden:
                result = self._routing.run(messages, response_format, tools, config)
                return checked_result(self, result, is_async=False)
            return checked_result(self, self._run(messages, response_format, tools), is_async=False)
        finally:
            if token is not None:
                _CALL_CONFIG.reset(token)

    async def arun(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        **config: Any,
    ) -> Any:
        """Async :meth:`run`."""
        token = _CALL_CONFIG.set((self, self._call_config(config, "arun"))) if config else None
        try:
            overridden = self._overridden_call()
            routed = self._routed_calls(is_async=True) if overridden else None
            if routed is not None:
                result = await routed._arun(messages, response_format, tools)
                return checked_result(self, result, is_async=True, via_client=True)
            if self._routing is not None and not overridden:
                result = await self._routing.arun(messages, response_format, tools, config)
                return checked_result(self, result, is_async=True)
            result = await self._arun(messages, response_format, tools)
            return checked_result(self, result, is_async=True)
        finally:
            if token is not None:
                _CALL_CONFIG.reset(token)

    def _call_config(self, config: Mapping[str, Any], method: str) -> Redacted:
        """The call's settings validated (ConfigError naming the key), laid over the model's."""
        clean = check_model_config(
            config,
            context=f"model {self.name!r}, {method}()",
            schema=type(self).config_schema(getattr(self, "api", None)),
        )
        merged = dict(self.model_config_dict)
        for key, value in clean.items():
            current = merged.get(key)
            if key.startswith("extra_") and isinstance(current, Mapping) and value is not None:
                merged[key] = {**current, **value}
            else:
                merged[key] = value
        return redact(merged)

    # -- client overrides ------------------------------------------------------------------

    def use_clients(
        self,
        clients: ClientOverride | None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        """Send this model's calls through ``clients`` when no scope is active.

        The registry passes ``create(client=...)``, the ``client_provider``'s clients or the
        scope the model was made in. ``timeout``/``max_retries`` are what a gateway's clients
        use for this model.
        """
        self._clients = clients
        self._routed = None
        if timeout is not None or max_retries is not None:
            limits = self._client_limits
            self._client_limits = (
                limits[0] if timeout is None else timeout,
                limits[1] if max_retries is None else max_retries,
            )

    def use_routing(self, plan: RoutingPlan | None) -> None:
        """Send this model's calls through ``plan``: its pool's deployments, then its fallbacks.

        The registry calls it for a model with ``[[models.NAME.deployments]]`` or fallbacks. A
        client override bypasses it (the override's client or gateway is the deployment).
        """
        if plan is None:
            self._routing = None
            return
        from backends.pooled import RoutedCalls

        self._routing = RoutedCalls(self, plan)

    def credential(self) -> tuple[str, str] | None:
        """Which credential requests carry and where it came from (``modelreg show``).

        ``(kind, origin)``, origin ``""`` when there is none to name; None when this backend
        does not say.
        """
        return None

    @property
    def routing_plan(self) -> RoutingPlan | None:
        """The model's pool and fallbacks (see :meth:`use_routing`), or None."""
        return None if self._routing is None else self._routing.plan

    def _overridden_call(self) -> bool:
        """Whether a client override applies to this model's calls now."""
        return self._clients is not None or active_override() is not None

    def override_client(self, *, is_async: bool) -> Any:
        """The client this call must go through, or None: use the backend's own connection.

        The active scope's, else this model's own override (:meth:`use_clients`).

        Raises:
            BackendError: a strict scope does not supply this side.
        """
        timeout, retries = self._client_limits
        return chosen_client(
            self.name, self._clients, is_async=is_async, timeout=timeout, max_retries=retries
        )

    def _routed_calls(self, *, is_async: bool) -> Any:
        """The request path through the override's client (one applies: :meth:`_overridden_call`).

        None when the backend handles the override itself, or the override lends this side none.
        """
        mode = self.client_overrides
        if mode == "handled" or self.override_client(is_async=is_async) is None:
            return None
        if mode == "refused":
            override = active_override() or self._clients
            raise BackendError(
                f"model {self.name!r}: {type(self).__name__} cannot send its requests through "
                f"a client (client_overrides = 'refused'), and {getattr(override, 'label', '')} "
                "applies to this call: it would bypass the override. Call this model outside "
                "the override, or use a backend that takes clients."
            )
        if self._routed is None or self._routed.owner is not self:
            from backends.routed import RoutedCalls

            self._routed = RoutedCalls(self)
        return self._routed

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
