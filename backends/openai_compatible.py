"""OpenAI's API and any OpenAI-compatible server (vLLM, Ollama, LM Studio, Azure ``/openai/v1/``).

``backend = "openai"`` with ``base_url`` makes "dev on a local model, prod on Azure" one settings
file. The request paths are the Azure backend's (:mod:`backends.chat_requests`); the model sent
on each request is the ``model`` field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from backends.azure import checked_client_kwargs
from backends.base import BackendSettings, BuildContext, Credential
from backends.chat_requests import ChatCompletionsBackend
from registry.endpoints import check_base_url
from registry.errors import ConfigError, MissingCredentialsError
from registry.validation import checked
from registry.wire import credential_secret

if TYPE_CHECKING:
    from backends.token_counting import BaseTokenCounter
    from registry.spec import ModelSpec

__all__ = [
    "NO_KEY_PLACEHOLDER",
    "OPENAI_ENV_FALLBACKS",
    "OPENAI_RESERVED_KWARGS",
    "OpenAICompatibleModel",
    "OpenAISettings",
]

OPENAI_ENV_FALLBACKS: Mapping[str, tuple[str, ...]] = {
    "base_url": ("OPENAI_BASE_URL",),
    "api_key": ("OPENAI_API_KEY",),
    "organization": ("OPENAI_ORG_ID",),
    "project": ("OPENAI_PROJECT_ID",),
}
#: Sent as the key to a local server that needs none (the SDK insists on one).
NO_KEY_PLACEHOLDER = "no-key-required"
#: Client arguments modelreg sets itself, and the settings field that sets each.
OPENAI_RESERVED_KWARGS: Mapping[str, str] = {
    "api_key": "api_key",
    "base_url": "base_url",
    "organization": "organization",
    "project": "project",
    "timeout": "timeout",
    "max_retries": "max_retries",
}


class OpenAISettings(BackendSettings):
    """The fields a ``backend = "openai"`` model table may set, besides the common ones.

    Its validator is built on first use (``defer_build``), not by every process that imports
    the built-in backends.
    """

    model_config = ConfigDict(defer_build=True)

    allow_http: bool = False
    base_url: str | None = None
    api_key: Credential = None
    organization: str | None = None
    project: str | None = None
    require_finish_reason: bool = True
    client_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _base_url_is_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        allow_http = bool(info.data.get("allow_http"))
        return None if value is None else check_base_url(value, allow_http=allow_http)

    @field_validator("client_kwargs")
    @classmethod
    def _accepted_by_sdk(cls, value: dict[str, Any]) -> dict[str, Any]:
        return checked_client_kwargs(value, "openai.OpenAI", OPENAI_RESERVED_KWARGS)


class OpenAICompatibleModel(ChatCompletionsBackend):
    """Chat completions on OpenAI or an OpenAI-compatible server.

    Args:
        model_type: the model name sent on each request (``gpt-4o``, ``llama3.1:8b``...).
        model_config_dict: request settings (:class:`~backends.configs.ChatGPTConfig` keys).
        api_key: API key; optional when ``url`` points at a local server.
        url: the server's base URL (``http://localhost:11434/v1``); None is OpenAI's API.
        organization, project: OpenAI account routing headers.
        require_finish_reason: a stream that ends before every choice has a finish_reason
            raises :class:`~registry.errors.IncompleteStreamError`; False accepts it (for
            servers that never send one).
        api: ``"chat_completions"`` (``/chat/completions``) or ``"responses"`` (``/responses``).
        **kwargs: passed to the SDK client's constructor; ignored for an injected client.
    """

    settings_model = OpenAISettings
    env_fallbacks = OPENAI_ENV_FALLBACKS
    # Class-level defaults keep repr() working on an instance whose __init__ raised.
    url: str | None = None
    _api_key: SecretStr | None = None

    def __init__(
        self,
        model_type: str,
        model_config_dict: Mapping[str, Any] | None = None,
        api_key: str | SecretStr | None = None,
        url: str | None = None,
        timeout: float = 180.0,
        token_counter: BaseTokenCounter | None = None,
        max_retries: int = 3,
        client: Any = None,
        async_client: Any = None,
        *,
        organization: str | None = None,
        project: str | None = None,
        name: str | None = None,
        base_model: str | None = None,
        allow_http: bool = False,
        require_finish_reason: bool = True,
        api: str = "chat_completions",
        **kwargs: Any,
    ) -> None:
        where = f"model {name or model_type!r}"
        kwargs = checked(
            lambda k: checked_client_kwargs(k, "openai.OpenAI", OPENAI_RESERVED_KWARGS),
            kwargs,
            where,
        )
        super().__init__(
            model_type,
            model_config_dict,
            client=client,
            async_client=async_client,
            timeout=timeout,
            max_retries=max_retries,
            token_counter=token_counter,
            name=name,
            base_model=base_model,
            client_kwargs=kwargs,
            require_finish_reason=require_finish_reason,
            api=api,
        )
        self.url = (
            None
            if url is None
            else checked(
                lambda u: check_base_url(u, allow_http=allow_http), url, f"{where}, base_url"
            )
        )
        self._api_key: SecretStr | None = checked(credential_secret, api_key, f"{where}, api_key")
        self.organization = organization
        self.project = project
        if not self._overridden() and self._missing_settings():
            raise MissingCredentialsError(f"model {self.name!r}: {self._missing_settings()}")

    def _missing_settings(self) -> str | None:
        if self.url is None and self._api_key is None:
            return (
                "no api_key for OpenAI's API: set api_key (or OPENAI_API_KEY), or base_url "
                "for a local OpenAI-compatible server"
            )
        return None

    def _context(self) -> str:
        return f"model {self.name!r}, requested model {self.model_type!r}"

    def _secret_values(self) -> list[str]:
        return [self._api_key.get_secret_value()] if self._api_key else []

    def credential(self) -> tuple[str, str] | None:
        """The API key and its origin; a local server called without one says so."""
        if self._api_key is not None:
            return "API key (api_key)", self.sources.get("api_key", "the constructor")
        origin = self.sources.get("base_url", "the constructor")
        return f"none: no api_key, so requests to base_url (from {origin}) carry no key", ""

    def _hint(self, exc: BaseException) -> str:
        kind, server = type(exc).__name__, self.url or "OpenAI's API"
        if kind == "AuthenticationError":
            origin = self.sources.get("api_key", "the constructor or OPENAI_API_KEY")
            return f"Check the credential: {server} rejected api_key (from {origin})."
        if kind == "NotFoundError":
            return (
                f"Check `base_url` (from {self.sources.get('base_url', 'the constructor')}): "
                f"{server} should be the API root (often ending in /v1); and `model` "
                f"({self.model_type!r}, from {self.sources.get('model', 'the constructor')}): "
                "is it a model this server serves?"
            )
        return super()._hint(exc)

    @property
    def pool_key(self) -> str:
        """Models on the same server share one HTTP connection pool."""
        return self.url or "https://api.openai.com/v1"

    def _client_arguments(self, http_client: Any, side: str) -> dict[str, Any]:
        problem = self._missing_settings()
        if problem:
            raise self._missing_side(side, problem)
        key = self._api_key.get_secret_value() if self._api_key else NO_KEY_PLACEHOLDER
        arguments: dict[str, Any] = {
            "api_key": key,
            "base_url": self.url,
            "organization": self.organization,
            "project": self.project,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            **self.client_kwargs,
        }
        if http_client is not None:
            arguments["http_client"] = http_client
        return arguments

    def _new_sync_client(self, http_client: Any) -> Any:
        from openai import OpenAI

        return OpenAI(**self._client_arguments(http_client, "sync"))

    def _new_async_client(self, http_client: Any) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(**self._client_arguments(http_client, "async"))

    @classmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> Self:
        """Map registry fields: ``model`` → the request's model, ``base_url`` → url."""
        options = spec.options
        assert isinstance(options, OpenAISettings)
        if not spec.common.model:
            raise ConfigError(
                f"model {spec.name!r}: backend 'openai' needs the field 'model' (the model name "
                'the server expects, e.g. model = "gpt-4o" or "llama3.1:8b").'
            )
        runtime = context.runtime
        model = cls(
            spec.common.model,
            spec.config,
            api_key=options.api_key,
            url=options.base_url,
            timeout=spec.common.timeout,
            token_counter=runtime.get("token_counter"),
            max_retries=spec.common.max_retries,
            client=runtime.get("client"),
            async_client=runtime.get("async_client"),
            organization=options.organization,
            project=options.project,
            name=spec.name,
            base_model=spec.common.model,
            allow_http=options.allow_http,
            require_finish_reason=options.require_finish_reason,
            api=spec.common.api,
            **options.client_kwargs,
        )
        model._use_http_clients(context.http_clients)
        model.sources = spec.sources
        return model

    def __repr__(self) -> str:
        return (
            f"OpenAICompatibleModel(name={getattr(self, 'name', None)!r}, "
            f"model={getattr(self, 'model_type', None)!r}, url={self.url!r}, "
            f"api={getattr(self, 'api', None)!r})"
        )
