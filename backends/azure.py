"""Azure OpenAI: CAMEL's ``AzureOpenAIModel`` constructor and behaviour, with its bugs fixed.

Differences from CAMEL, on purpose:

* one auth mode is chosen (token provider > AD token > API key), so openai 3.x never raises
  ``MutuallyExclusiveAuthError``; an explicit credential also stops the *other* credentials'
  environment variables from being consulted (the SDK's own rule);
* a missing endpoint or api_version is a :class:`~registry.errors.ConfigError` naming the
  argument and both variables, instead of a request to ``None/openai/...``;
* SDK clients are built on first use, so constructing a model neither imports :mod:`openai` nor
  allocates a connection pool;
* secrets are held as :class:`~pydantic.SecretStr` and never appear in a repr or message;
* a 401 with a token provider is retried once with a token fetched past the provider's cache;
  azure-identity failing to sign in is a :class:`~registry.errors.MissingCredentialsError`;
  401, 403 and 404 errors say which setting to check and where it came from.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from backends.base import BackendSettings, BuildContext, Credential
from backends.chat_requests import ChatCompletionsBackend
from backends.token_providers import PROVIDER_NAMES, UNKNOWN_PROVIDER
from registry.endpoints import check_api_version, check_deployment_name, check_endpoint
from registry.errors import ConfigError, MissingCredentialsError, RegistryError, did_you_mean
from registry.masking import redact
from registry.validation import check_api, checked
from registry.wire import check_client_kwargs, credential_secret

if TYPE_CHECKING:
    from backends.token_counting import BaseTokenCounter
    from registry.spec import ModelSpec

__all__ = [
    "AZURE_ENV_FALLBACKS",
    "AZURE_RESERVED_KWARGS",
    "AzureOpenAIModel",
    "AzureSettings",
    "checked_client_kwargs",
]

#: Conventional variables per registry field, CAMEL's name first, then the openai SDK's.
AZURE_ENV_FALLBACKS: Mapping[str, tuple[str, ...]] = {
    "endpoint": ("AZURE_OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT"),
    "api_version": ("AZURE_API_VERSION", "OPENAI_API_VERSION"),
    "azure_ad_token": ("AZURE_AD_TOKEN", "AZURE_OPENAI_AD_TOKEN"),
    "api_key": ("AZURE_OPENAI_API_KEY",),
}
logger = logging.getLogger("modelreg")
#: Credentials in the order one is chosen; setting any one explicitly ignores the others' vars.
AUTH_FIELDS = ("azure_ad_token_provider", "azure_ad_token", "api_key")
_AUTH_KINDS = {
    "azure_ad_token_provider": "Entra ID token provider (azure_ad_token_provider)",
    "azure_ad_token": "Entra ID token (azure_ad_token)",
    "api_key": "API key (api_key)",
}


#: Client arguments modelreg sets itself, and the settings field that sets each.
AZURE_RESERVED_KWARGS: Mapping[str, str] = {
    "azure_endpoint": "endpoint",
    "base_url": "endpoint",
    "azure_deployment": "deployment",
    "api_version": "api_version",
    "api_key": "api_key",
    "azure_ad_token": "azure_ad_token",
    "azure_ad_token_provider": "azure_ad_token_provider",
    "timeout": "timeout",
    "max_retries": "max_retries",
}


def checked_client_kwargs(
    kwargs: Mapping[str, Any], client: str, reserved: Mapping[str, str]
) -> dict[str, Any]:
    """``client_kwargs`` the SDK client accepts (see :func:`registry.wire.check_client_kwargs`)."""
    problems = check_client_kwargs(kwargs, client=client, reserved=reserved)
    if problems:
        raise ValueError("; ".join(f"{path}: {message}" for path, message in problems))
    return redact(dict(kwargs))


class AzureSettings(BackendSettings):
    """The fields a ``backend = "azure"`` model table may set, besides the common ones."""

    deployment: str
    allow_http: bool = False
    endpoint: str | None = None
    api_version: str | None = None
    api_key: Credential = None
    azure_ad_token: Credential = None
    azure_ad_token_provider: str | None = None
    require_finish_reason: bool = True
    client_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("deployment")
    @classmethod
    def _deployment_name(cls, value: str) -> str:
        return check_deployment_name(value)

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_resource_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        allow_http = bool(info.data.get("allow_http"))
        return None if value is None else check_endpoint(value, allow_http=allow_http)

    @field_validator("azure_ad_token_provider")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        if value is not None and value not in PROVIDER_NAMES:
            raise ValueError(UNKNOWN_PROVIDER + did_you_mean(value, PROVIDER_NAMES))
        return value

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str | None) -> str | None:
        return None if value is None else check_api_version(value)

    @field_validator("client_kwargs")
    @classmethod
    def _accepted_by_sdk(cls, value: dict[str, Any]) -> dict[str, Any]:
        return checked_client_kwargs(value, "openai.AzureOpenAI", AZURE_RESERVED_KWARGS)


def _from_env(*names: str) -> tuple[str, str] | None:
    """The first of ``names`` set in the environment: ``(value, variable)``."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value, name
    return None


def _is_sign_in_failure(exc: BaseException) -> bool:
    """azure-identity's ClientAuthenticationError (or CredentialUnavailableError, a subclass)."""
    return any(cls.__name__ == "ClientAuthenticationError" for cls in type(exc).__mro__)


def _seconds(raw: str) -> float:
    try:
        timeout = float(raw)
    except ValueError:
        timeout = math.nan
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError("must be a positive number of seconds (the value is not shown)")
    return timeout


def _chosen_api(api: str | None, api_mode: str | None, name: str) -> str:
    """``api``, or CAMEL's ``api_mode``; both given must agree (checked, never echoed)."""
    if api_mode is None:
        return api or "chat_completions"
    mode = checked(check_api, api_mode, f"model {name!r}, api_mode")
    if api is not None and checked(check_api, api, f"model {name!r}, api") != mode:
        raise ConfigError(
            f"model {name!r}: api ({api!r}) and api_mode ({mode!r}) disagree; api_mode is CAMEL's "
            "name for the same setting: give one of them."
        )
    return mode


def _timeout_from_env() -> float:
    raw = os.environ.get("MODEL_TIMEOUT")
    if not raw:
        return 180.0
    return checked(_seconds, raw, "env MODEL_TIMEOUT")


class AzureOpenAIModel(ChatCompletionsBackend):
    """Azure OpenAI (parity with CAMEL's ``AzureOpenAIModel``).

    Chat completions or the Responses API (``api``), on a dated API version or Azure's v1
    surface (``api_version="v1"``): see :mod:`backends.responses` and :mod:`backends.azure_v1`.

    Args:
        model_type: the Azure deployment name; sent as ``azure_deployment`` and ``model``.
        model_config_dict: request settings (:class:`~backends.configs.ChatGPTConfig` keys).
        api_key: API key; else ``AZURE_OPENAI_API_KEY``.
        url: the resource endpoint; else ``AZURE_OPENAI_BASE_URL``, then ``AZURE_OPENAI_ENDPOINT``.
        timeout: seconds per request; else ``MODEL_TIMEOUT``, else 180.
        token_counter: the token counter; default an ``OpenAITokenCounter``, built lazily.
        api_version: required; else ``AZURE_API_VERSION``, then ``OPENAI_API_VERSION``.
        azure_ad_token_provider: called on every request (sync or async callable); one with an
            ``invalidate()`` method (like the built-in ``"azure-identity"`` one) is told to drop
            its cached token after a 401, before the one retry.
        azure_ad_token: Entra ID token; else ``AZURE_AD_TOKEN``, then ``AZURE_OPENAI_AD_TOKEN``.
        max_retries: retries the SDK makes on retryable errors.
        client: a custom sync client (e.g. an RL framework's), used as-is.
        async_client: a custom async client, used as-is; each side is independent.
        azure_deployment_name: deprecated and ignored (``DeprecationWarning``).
        api_mode: CAMEL's name for ``api``: ``"chat_completions"`` (default) or ``"responses"``.
        api: the API requests use (the settings field); give this or ``api_mode``.
        async_azure_ad_token_provider: used instead of ``azure_ad_token_provider`` by the async
            client (e.g. an ``azure.identity.aio`` credential's provider).
        name: the registry name of the model (for messages).
        base_model: the base model (picks the tokenizer), e.g. ``gpt-4o`` for any deployment.
        allow_http: accept an ``http://`` endpoint that is not a loopback host.
        require_finish_reason: a stream that ends before every choice has a finish_reason
            raises :class:`~registry.errors.IncompleteStreamError`; False accepts it (for
            servers that never send one).
        **kwargs: passed to the SDK client's constructor (checked against its signature);
            ignored for an injected client.
    """

    settings_model = AzureSettings
    # Class-level defaults keep repr() working on an instance whose __init__ raised.
    url: str | None = None
    api_version: str | None = None
    azure_ad_token_provider: Callable[[], Any] | None = None
    async_azure_ad_token_provider: Callable[[], Any] | None = None
    _azure_ad_token: SecretStr | None = None
    _api_key: SecretStr | None = None
    _credential_origin = "the constructor"
    #: Credentials taken from a conventional variable: field -> ``env NAME``.
    _env_origins: Mapping[str, str] = {}
    env_fallbacks = AZURE_ENV_FALLBACKS
    exclusive_fallbacks = (AUTH_FIELDS,)

    def __init__(
        self,
        model_type: str,
        model_config_dict: Mapping[str, Any] | None = None,
        api_key: str | SecretStr | None = None,
        url: str | None = None,
        timeout: float | None = None,
        token_counter: BaseTokenCounter | None = None,
        api_version: str | None = None,
        azure_ad_token_provider: Callable[[], Any] | None = None,
        azure_ad_token: str | SecretStr | None = None,
        max_retries: int = 3,
        client: Any = None,
        async_client: Any = None,
        azure_deployment_name: str | None = None,
        api_mode: str | None = None,
        *,
        api: str | None = None,
        name: str | None = None,
        base_model: str | None = None,
        async_azure_ad_token_provider: Callable[[], Any] | None = None,
        allow_http: bool = False,
        require_finish_reason: bool = True,
        **kwargs: Any,
    ) -> None:
        if client is None and async_client is None and isinstance(model_type, str):
            # Before the name is used in any message: an invalid deployment is not repeated.
            checked(check_deployment_name, model_type, f"{type(self).__name__}, model_type")
        if azure_deployment_name is not None:
            warnings.warn(
                "AzureOpenAIModel(azure_deployment_name=...) is deprecated and ignored: the "
                "deployment is model_type (settings: deployment).",
                DeprecationWarning,
                stacklevel=2,
            )
        if os.environ.get("AZURE_DEPLOYMENT_NAME") is not None:
            warnings.warn(
                "The AZURE_DEPLOYMENT_NAME environment variable is deprecated and ignored: the "
                "deployment is model_type (settings: deployment). Unset it.",
                DeprecationWarning,
                stacklevel=2,
            )
        super().__init__(
            model_type,
            model_config_dict,
            client=client,
            async_client=async_client,
            timeout=_timeout_from_env() if timeout is None else timeout,
            max_retries=max_retries,
            token_counter=token_counter,
            name=name,
            base_model=base_model,
            client_kwargs=checked(
                lambda k: checked_client_kwargs(k, "openai.AzureOpenAI", AZURE_RESERVED_KWARGS),
                kwargs,
                f"model {name or model_type!r}",
            ),
            require_finish_reason=require_finish_reason,
            api=_chosen_api(api, api_mode, name or model_type),
        )
        self._choose_auth(api_key, azure_ad_token, azure_ad_token_provider)
        self.async_azure_ad_token_provider = async_azure_ad_token_provider
        self.allow_http = allow_http
        self.url = self._setting(url, "url", "endpoint", self._check_url)
        self.api_version = self._setting(
            api_version, "api_version", "api_version", check_api_version
        )
        if not self._overridden():
            problem = self._missing_settings()
            if problem:
                error = MissingCredentialsError if "credentials" in problem else ConfigError
                raise error(f"model {self.name!r}: {problem}")

    def _check_url(self, value: str) -> str:
        return check_endpoint(value, allow_http=self.allow_http)

    def _setting(
        self, given: str | None, argument: str, field: str, check: Callable[[str], str]
    ) -> str | None:
        """An argument, else its conventional variable; checked, naming where it came from."""
        found = (
            (given, f"{argument}=") if given is not None else _from_env(*AZURE_ENV_FALLBACKS[field])
        )
        if found is None or found[0] is None:
            return None
        value, origin = found
        where = origin if given is not None else f"env {origin}"
        return checked(check, value, f"model {self.name!r}, {field} (from {where})")

    def _credential(self, value: str | SecretStr | None, where: str) -> SecretStr | None:
        secret: SecretStr | None = checked(
            credential_secret, value, f"model {self.name!r}, {where}"
        )
        return secret

    def _choose_auth(
        self,
        api_key: str | SecretStr | None,
        azure_ad_token: str | SecretStr | None,
        provider: Callable[[], Any] | None,
    ) -> None:
        """Pick exactly one credential: provider > AD token > key (env only if none given)."""
        key = self._credential(api_key, "api_key")
        token = self._credential(azure_ad_token, "azure_ad_token")
        if provider is None and token is None and key is None:
            token = self._credential_from_env("azure_ad_token")
            if token is None:
                key = self._credential_from_env("api_key")
        self.azure_ad_token_provider = provider
        self._azure_ad_token = token if provider is None else None
        self._api_key = key if provider is None and token is None else None
        logger.debug("model %r: auth mode %s", self.name, self.auth_mode)

    def _credential_from_env(self, field: str) -> SecretStr | None:
        found = _from_env(*AZURE_ENV_FALLBACKS[field])
        if found is None:
            return None
        self._credential_origin = f"variable {found[1]}"  # for a 401's message
        self._env_origins = {**self._env_origins, field: f"env {found[1]}"}
        return self._credential(found[0], f"{field} (env {found[1]})")

    @property
    def api_mode(self) -> str:
        """CAMEL's name for :attr:`api`."""
        return self.api

    @property
    def auth_mode(self) -> str:
        """``azure_ad_token_provider``, ``azure_ad_token``, ``api_key`` or ``none``."""
        if self.azure_ad_token_provider is not None:
            return "azure_ad_token_provider"
        if self._azure_ad_token is not None:
            return "azure_ad_token"
        return "api_key" if self._api_key is not None else "none"

    def credential(self) -> tuple[str, str] | None:
        """The one credential :meth:`_choose_auth` picked, and where it came from."""
        mode = self.auth_mode
        if mode == "none":
            return None
        return _AUTH_KINDS[mode], self._origin(mode)

    def _missing_settings(self) -> str | None:
        """What stops this model from building its own client, or None."""
        if not self.url:
            return (
                "no Azure endpoint: set endpoint in its settings table (url= in code), or "
                "AZURE_OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT"
            )
        if not self.api_version:
            return (
                "no api_version: set api_version in its settings table (api_version= in code), "
                "or AZURE_API_VERSION or OPENAI_API_VERSION"
            )
        if self.auth_mode == "none":
            return (
                "no credentials: set api_key or azure_ad_token (or AZURE_OPENAI_API_KEY, "
                "AZURE_AD_TOKEN, AZURE_OPENAI_AD_TOKEN), or pass azure_ad_token_provider"
            )
        return None

    # -- errors users can act on -----------------------------------------------------------

    def _context(self) -> str:
        return f"model {self.name!r}, deployment {self.model_type!r}"

    def _secret_values(self) -> list[str]:
        return [s.get_secret_value() for s in (self._api_key, self._azure_ad_token) if s]

    def _provider(self, *, is_async: bool) -> Callable[[], Any] | None:
        """The token provider the sync or async client calls."""
        if is_async and self.async_azure_ad_token_provider is not None:
            return self.async_azure_ad_token_provider
        return self.azure_ad_token_provider

    def _renew_credentials(self, *, is_async: bool) -> bool:
        provider = self._provider(is_async=is_async) if self.azure_ad_token_provider else None
        if provider is None:
            return False
        invalidate = getattr(provider, "invalidate", None)
        if callable(invalidate):
            invalidate()  # the next call gets a new token instead of the rejected, cached one
        return True

    def _origin(self, field: str) -> str:
        origin = self.sources.get(field)
        if origin and field in self._env_origins:
            # The settings named it but left it empty (`${KEY:-}`), so the variable was used.
            origin = self._env_origins[field]
        return origin or self._credential_origin

    def _hint(self, exc: BaseException) -> str:
        kind, url = type(exc).__name__, self.url or "the endpoint"
        if "DeploymentNotFound" in str(getattr(exc, "body", "") or "") + str(exc):
            origin = self.sources.get("deployment", "the constructor")
            return (
                f"Check `deployment` (from {origin}): no deployment of that name exists on {url}."
            )
        if kind == "NotFoundError":
            responses = (
                ' (the Responses API needs "2025-03-01-preview" or later, or "v1")'
                if self.api == "responses" and self.api_version != "v1"
                else ""
            )
            return (
                f"Check `api_version` (from {self._origin('api_version')}): "
                f"{self.api_version!r} may not be supported by {url}{responses}; and that "
                "`endpoint` is the resource's own URL, without a path."
            )
        if kind == "AuthenticationError":
            return self._auth_hint(url)
        if kind == "PermissionDeniedError":
            return (
                f"The credential ({self.auth_mode}, from {self._origin(self.auth_mode)}) is "
                f"valid but not allowed on {url}: with Entra ID, give the identity the "
                "'Cognitive Services OpenAI User' role; check the resource's network rules."
            )
        return super()._hint(exc)

    def _auth_hint(self, url: str) -> str:
        mode = self.auth_mode
        origin = self._origin(mode)
        if mode == "azure_ad_token_provider":
            return (
                f"Check the credential: {url} rejected the token from azure_ad_token_provider "
                f"(from {origin}), also a fresh one; is it for this tenant, with the "
                "'Cognitive Services OpenAI User' role on the resource?"
            )
        if mode == "azure_ad_token":
            return (
                f"Check the credential: {url} rejected azure_ad_token (from {origin}); Entra ID "
                "tokens expire after about an hour: use azure_ad_token_provider to renew them."
            )
        return (
            f"Check the credential: {url} rejected api_key (from {origin}); is it this "
            "resource's key?"
        )

    def _credential_problem(self, exc: BaseException) -> RegistryError | None:
        if not _is_sign_in_failure(exc):
            return None
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return MissingCredentialsError(
            f"model {self.name!r}: azure_ad_token_provider could not get an Entra ID token "
            f"({first_line}). Sign in with `az login` (or `azd auth login`), set "
            "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET for a service principal, "
            "or run where a managed identity is available; or configure api_key instead."
        )

    @property
    def pool_key(self) -> str:
        """Models on the same endpoint share one HTTP connection pool."""
        return self.url or "default"

    def _client_arguments(self, http_client: Any, *, is_async: bool) -> dict[str, Any]:
        side = "async" if is_async else "sync"
        problem = self._missing_settings()
        if problem:
            raise self._missing_side(side, problem)
        provider = self._provider(is_async=is_async) if self.azure_ad_token_provider else None
        if provider is not None and not is_async and inspect.iscoroutinefunction(provider):
            raise self._missing_side(
                side, "azure_ad_token_provider is async; the sync client needs a sync provider"
            )
        arguments: dict[str, Any] = {
            "azure_endpoint": self.url,
            "azure_deployment": self.model_type,
            "api_version": self.api_version,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            **self.client_kwargs,
        }
        if provider is not None:
            arguments["azure_ad_token_provider"] = provider
        elif self._azure_ad_token is not None:
            arguments["azure_ad_token"] = self._azure_ad_token.get_secret_value()
        elif self._api_key is not None:
            arguments["api_key"] = self._api_key.get_secret_value()
        if http_client is not None:
            arguments["http_client"] = http_client
        return arguments

    def _construct(self, factory: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        try:
            return factory(**arguments)
        except TypeError as exc:
            raise ConfigError(
                f"model {self.name!r}: the openai client rejected an argument from "
                f"client_kwargs ({', '.join(sorted(self.client_kwargs)) or 'none'}): {exc}"
            ) from None

    def _new_sync_client(self, http_client: Any) -> Any:
        if self.api_version == "v1":
            return self._v1_client(http_client, is_async=False)
        from openai import AzureOpenAI

        return self._construct(AzureOpenAI, self._client_arguments(http_client, is_async=False))

    def _new_async_client(self, http_client: Any) -> Any:
        if self.api_version == "v1":
            return self._v1_client(http_client, is_async=True)
        from openai import AsyncAzureOpenAI

        return self._construct(AsyncAzureOpenAI, self._client_arguments(http_client, is_async=True))

    def _v1_client(self, http_client: Any, *, is_async: bool) -> Any:
        """A client for ``{endpoint}/openai/v1/`` (see :mod:`backends.azure_v1`)."""
        from openai import AsyncOpenAI, OpenAI

        from backends import azure_v1

        arguments = self._client_arguments(http_client, is_async=is_async)
        endpoint = arguments.pop("azure_endpoint")
        for azure_only in ("azure_deployment", "api_version"):
            del arguments[azure_only]
        arguments["base_url"] = azure_v1.v1_base_url(endpoint)
        provider = arguments.pop("azure_ad_token_provider", None)
        token = arguments.pop("azure_ad_token", None)
        factory: Callable[..., Any]
        if provider is not None:
            wrap = azure_v1.async_token_provider if is_async else azure_v1.token_provider
            arguments["api_key"], factory = wrap(provider), AsyncOpenAI if is_async else OpenAI
        elif token is not None:
            arguments["api_key"], factory = token, AsyncOpenAI if is_async else OpenAI
        else:  # the key goes in the api-key header
            factory = azure_v1.AsyncAzureV1KeyClient if is_async else azure_v1.AzureV1KeyClient
        return self._construct(factory, arguments)

    @classmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> Self:
        """Map registry fields onto CAMEL's constructor: deployment → model_type, endpoint → url."""
        options = spec.options
        assert isinstance(options, AzureSettings)
        runtime = context.runtime
        provider = runtime.get("azure_ad_token_provider")
        async_provider = None
        if provider is None and options.azure_ad_token_provider is not None:
            from backends.token_providers import named_token_providers

            provider, async_provider = named_token_providers(
                options.azure_ad_token_provider, spec.name
            )
        model = cls(
            options.deployment,
            spec.config,
            api_key=options.api_key,
            url=options.endpoint,
            timeout=spec.common.timeout,
            token_counter=runtime.get("token_counter"),
            api_version=options.api_version,
            azure_ad_token_provider=provider,
            azure_ad_token=options.azure_ad_token,
            max_retries=spec.common.max_retries,
            client=runtime.get("client"),
            async_client=runtime.get("async_client"),
            name=spec.name,
            base_model=spec.common.model,
            async_azure_ad_token_provider=async_provider,
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
            f"AzureOpenAIModel(name={getattr(self, 'name', None)!r}, "
            f"deployment={getattr(self, 'model_type', None)!r}, url={self.url!r}, "
            f"api_version={self.api_version!r}, api={getattr(self, 'api', None)!r}, "
            f"auth={self.auth_mode!r})"
        )
