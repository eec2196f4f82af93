"""The registry: resolve names with the active environment and build backends through plugins."""

from __future__ import annotations

import inspect
import logging
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from registry.building import BuildContext
from registry.errors import ConfigError, PluginError, RegistryWarning, did_you_mean
from registry.layers import model_names, orphan_message
from registry.overrides import ClientOverride, active_override, check_client
from registry.plugins import PluginHost, get_plugin_host
from registry.pools import HttpClientPool
from registry.resolve import resolve_fields
from registry.settings import Settings, choose_env, load_settings, orphan_environment_message
from registry.spec import ExplainedField, ModelSpec
from registry.spec_validation import FALLBACK_FIELDS, explained_fields, resolve

if TYPE_CHECKING:
    from backends.base import BaseModelBackend
    from backends.capabilities import ModelCapabilities
    from backends.token_counting import BaseTokenCounter
    from registry.routing.plan import FallbackRules, RoutingPlan

__all__ = ["Explanation", "ModelRegistry", "create_model"]

#: Keyword arguments that are objects for the backend, not settings fields.
_CLIENT_SIDES = ("client", "async_client")
_RUNTIME_ALWAYS = frozenset(_CLIENT_SIDES)
_RUNTIME_IF_OBJECT = frozenset({"azure_ad_token_provider", "token_counter"})

_shared_pool = HttpClientPool()
logger = logging.getLogger("modelreg")
_warned_orphans: set[str] = set()
_warned_lock = threading.Lock()


def _warn_orphans(settings: Settings, env: str | None) -> None:
    """Warn once per process about each variable that names no model or environment (typos)."""
    names = model_names(settings, env)
    messages = {variable: orphan_message(names, variable) for variable in names.orphans}
    for origin, name in settings.orphan_environments().items():
        messages[origin] = orphan_environment_message(settings, origin, name)
    for variable, message in sorted(messages.items()):
        with _warned_lock:
            if variable in _warned_orphans:
                continue
            _warned_orphans.add(variable)
        warnings.warn(message, RegistryWarning, stacklevel=4)


def _configure(model: BaseModelBackend, spec: ModelSpec, context: BuildContext) -> None:
    """What every model built from ``spec`` gets besides its constructor's arguments."""
    model.use_token_counter_factory(context.token_counter_factory)
    if spec.common.capabilities:
        model.use_capabilities(spec.common.capabilities)
    model.use_capability_layers(context.capability_layers)
    if spec.common.check_context:
        model.check_context = True
    if not model.sources:
        model.sources = spec.sources


def _fallback_rules(spec: ModelSpec) -> FallbackRules | None:
    """The model's fallbacks by name; None when it names none (routing is then not imported)."""
    common = spec.common
    if not any(getattr(common, name) for name in FALLBACK_FIELDS):
        return None
    from registry.routing.plan import FallbackRules

    return FallbackRules(
        tuple(common.fallbacks),
        tuple(common.context_window_fallbacks),
        tuple(common.content_policy_fallbacks),
        common.max_fallback_depth,
    )


@dataclass(frozen=True)
class Explanation:
    """A model's resolved values with their sources (what ``modelreg show`` prints)."""

    name: str
    env: str | None
    backend: str
    settings_file: str
    fields: dict[str, ExplainedField]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: name, env, backend, settings_file and ``fields: {f: {value, source}}``."""
        return {
            "name": self.name,
            "env": self.env,
            "backend": self.backend,
            "settings_file": self.settings_file,
            "fields": {key: field.to_dict() for key, field in self.fields.items()},
        }


def _split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate settings-field overrides from runtime objects (clients, callables, counters)."""
    fields: dict[str, Any] = {}
    runtime: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in _RUNTIME_ALWAYS or (key in _RUNTIME_IF_OBJECT and not isinstance(value, str)):
            if value is not None:
                runtime[key] = value
        else:
            fields[key] = value
    return fields, runtime


class ModelRegistry:
    """Models by name: settings sources + active environment + plugins + shared HTTP clients.

    Use :meth:`from_settings` to load the settings file, ``MODELREG_*`` variables and ``.env``.
    A registry owns the HTTP connection pools of the models it creates: close it (or use it as
    a context manager) when done.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        env: str | None = None,
        plugins: PluginHost | None = None,
        pool: HttpClientPool | None = None,
        env_from_variables: bool = True,
        warn_unused_variables: bool = True,
    ) -> None:
        self._env_from_variables = env_from_variables
        self._warn_unused_variables = warn_unused_variables
        self._plugins = plugins
        self._pool = pool if pool is not None else HttpClientPool()
        self._explicit_env = env
        self._lock = threading.Lock()
        # Settings and environment change together (reload), so they live in one tuple that is
        # replaced atomically; resolved specs are cached on the Settings object itself, so a
        # resolution racing a reload can never cache an old spec under the new settings.
        self._state = (settings, choose_env(settings, env, from_variables=env_from_variables))

    @classmethod
    def from_settings(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: str | None = None,
        dotenv_path: str | os.PathLike[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Self:
        """Load settings (see :func:`registry.settings.load_settings`) into a new registry.

        ``options`` sets any registry option by name, above the environment
        (``{"secrets_dir": "/run/secrets", "plugins": ["acme"]}``).
        """
        return cls(load_settings(path, dotenv_path=dotenv_path, options=options), env=env)

    @property
    def settings(self) -> Settings:
        """The loaded settings sources."""
        return self._state[0]

    @property
    def env(self) -> str | None:
        """The active environment, or None."""
        return self._state[1]

    @property
    def plugins(self) -> PluginHost:
        """The plugin host that backends, token counters and client providers come from."""
        return self._plugins if self._plugins is not None else get_plugin_host()

    def reload(self) -> None:
        """Re-read the settings sources; models already created keep working unchanged."""
        current = self._state[0]
        settings = load_settings(
            current.path, dotenv_path=current.dotenv_path, options=current.given_options
        )
        env = choose_env(settings, self._explicit_env, from_variables=self._env_from_variables)
        with self._lock:
            self._state = (settings, env)

    def names(self) -> list[str]:
        """Model names defined for the active environment (aliases excluded), sorted."""
        settings, env = self._state
        return sorted(model_names(settings, env).names)

    def aliases(self) -> dict[str, str]:
        """Alias → model name for the active environment."""
        settings, env = self._state
        return dict(model_names(settings, env).aliases)

    def resolve(self, name: str | None = None, **overrides: Any) -> ModelSpec:
        """Resolve a name or alias (None: ``default_model``) to a validated :class:`ModelSpec`."""
        settings, env = self._state
        key = ("spec", name, env)
        if not overrides:
            cached: ModelSpec | None = settings.memo.get(key)
            if cached is not None:
                return cached
        spec = resolve(settings, self.plugins, name, env=env, overrides=overrides)
        if not overrides:
            settings.memo[key] = spec
        return spec

    def explain(self, name: str | None = None) -> Explanation:
        """Every field of a model with where it came from; secrets are ``***``.

        An unset ``${VAR}`` does not raise here: the field is shown as unset with the variable.
        """
        settings, env = self._state
        resolved = resolve_fields(settings, self.plugins, name, env=env, strict=False)
        fields = explained_fields(settings, self.plugins, resolved)
        backend = resolved.fields["backend"].value
        return Explanation(resolved.name, env, backend, settings.label, fields)

    def create(self, name: str | None = None, **overrides: Any) -> BaseModelBackend:
        """Build the backend for ``name``; keyword arguments override any settings field.

        ``client`` / ``async_client`` replace the model's SDK clients for this instance; a
        callable ``azure_ad_token_provider`` and a ``token_counter`` instance are passed through.
        """
        field_overrides, runtime = _split_overrides(overrides)
        spec = self.resolve(name, **field_overrides)
        if self._warn_unused_variables:
            _warn_orphans(*self._state)
        backend_cls = self.plugins.backend(spec.backend)
        clients = self._client_override(spec, runtime)
        context = BuildContext(
            runtime=runtime,
            http_clients=self._pool,
            token_counter_factory=self._token_counter_factory(spec),
            capability_layers=self._capability_layers,
        )
        model: BaseModelBackend = backend_cls.from_spec(spec, context)
        _configure(model, spec, context)
        model.use_clients(clients, timeout=spec.common.timeout, max_retries=spec.common.max_retries)
        fallbacks = _fallback_rules(spec)
        if spec.deployments or fallbacks is not None:
            model.use_routing(self._routing_plan(spec, context, fallbacks))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "created model %r (backend %r, env %r) from %s; runtime objects: %s",
                spec.name,
                spec.backend,
                spec.env,
                self.settings.label,
                sorted(runtime) or "none",
            )
        return model

    def _routing_plan(
        self, spec: ModelSpec, context: BuildContext, fallbacks: FallbackRules | None
    ) -> RoutingPlan:
        """The model's pool (a backend per deployment, SDK retries 0) and its fallbacks."""
        from registry.routing.from_spec import pool_for
        from registry.routing.plan import FallbackRules, RoutingPlan

        common = spec.common
        pool = None
        members: dict[str, BaseModelBackend] = {}
        if spec.deployments:
            pool = pool_for(spec, self.settings.options)
            backend_cls = self.plugins.backend(spec.backend)
            single = common.model_copy(update={"max_retries": 0})
            for deployment, member in zip(pool.deployments, spec.deployments, strict=True):
                member_spec = replace(
                    spec,
                    options=member.options,
                    common=single,
                    deployments=(),
                    sources={**spec.sources, **member.sources},  # 401 hints name the entry
                )
                built: BaseModelBackend = backend_cls.from_spec(member_spec, context)
                _configure(built, member_spec, context)
                members[deployment.id] = built
        timeout = common.timeout
        return RoutingPlan(
            spec.name,
            pool,
            members,
            fallbacks or FallbackRules(),
            self.create,
            max_retries=common.max_retries,
            budget=None if timeout is None else timeout * (common.max_retries + 1),
        )

    def token_counter(self, name: str | None = None, **overrides: Any) -> BaseTokenCounter:
        """The token counter a model would use, without building the model (no credentials)."""
        return self._token_counter_factory(self.resolve(name, **overrides))()

    def _capability_layers(self) -> list[Any]:
        return list(self.plugins.layers("capabilities"))

    def _client_override(self, spec: ModelSpec, runtime: dict[str, Any]) -> ClientOverride | None:
        """The model's own override, used at each call when no scope is active.

        ``create(client=...)`` (sides it lacks from its provider), else the scope the model is
        created in (kept as is, strict or not), else its provider's.
        Client objects also go into ``runtime`` for the backend's constructor (CAMEL's
        ``client``/``async_client``); each is checked for the methods a call needs.
        """
        given = [side for side in _CLIENT_SIDES if side in runtime]
        scope = active_override()
        if scope is not None and not given:
            for side in _CLIENT_SIDES:
                if getattr(scope, side) is not None:
                    runtime[side] = getattr(scope, side)
            return scope
        provider = self._add_provider_clients(spec, runtime)
        for side in _CLIENT_SIDES:
            if side in runtime:
                check_client(
                    runtime[side],
                    where=f"model {spec.name!r}, {side}",
                    api=spec.common.api,
                )
        if not given and not provider:
            return None
        label = f"create({'=..., '.join(given)}=...)" if given else f"client provider {provider!r}"
        return ClientOverride(
            runtime.get("client"), runtime.get("async_client"), fallback=True, label=label
        )

    def _add_provider_clients(self, spec: ModelSpec, runtime: dict[str, Any]) -> str | None:
        """Fill the sides ``runtime`` lacks from the model's client provider.

        Returns the provider's name if any side came from it.
        """
        name = spec.common.client_provider
        if not name:
            return None
        try:
            provider = self.plugins.lookup("client_providers", name)
        except PluginError as exc:
            raise PluginError(f"model {spec.name!r}, field 'client_provider': {exc}") from None
        except KeyError:
            known = self.plugins.names("client_providers")
            raise ConfigError(
                f"model {spec.name!r}, field 'client_provider' "
                f"({spec.sources.get('client_provider')}): no client provider {name!r}."
                f"{did_you_mean(name, known)} Registered: {', '.join(known) or 'none'} "
                "(providers come from plugins; see `modelreg plugins`)."
            ) from None
        used = None
        for side in _CLIENT_SIDES:
            method = getattr(provider, "sync_client" if side == "client" else side, None)
            if side not in runtime and callable(method):
                client = method(spec)
                if client is not None:
                    runtime[side], used = client, name
        return used

    def capabilities(self, name: str | None = None, **overrides: Any) -> ModelCapabilities:
        """What a model's base model can do, without building the model (no credentials).

        The capability table's entry for its ``model`` (else its deployment), under the
        plugins' entries and the model's ``[models.NAME.capabilities]``: what the built model's
        ``capabilities`` holds.
        """
        spec = self.resolve(name, **overrides)
        capabilities = self._capabilities(spec)
        if capabilities is None:
            raise PluginError(
                f"model {spec.name!r}: backend {spec.backend!r} has no lookup_capabilities "
                "(subclass backends.base.BaseModelBackend)"
            )
        return capabilities

    def _capabilities(self, spec: ModelSpec) -> ModelCapabilities | None:
        """Asked of the backend class, so the registry imports no backend module."""
        lookup = getattr(self.plugins.backend(spec.backend), "lookup_capabilities", None)
        if not callable(lookup):
            return None
        capabilities: ModelCapabilities = lookup(
            _base_model(spec),
            spec.common.capabilities or None,
            layers=self._capability_layers,
            context=f"model {spec.name!r}",
        )
        return capabilities

    def _token_counter_factory(self, spec: ModelSpec) -> Callable[[], BaseTokenCounter]:
        """Look the counter up now (so ``create`` and ``check`` reject a bad name); build later.

        A factory with an ``image_rule`` parameter (the built-in ones) gets the base model's
        rule, so images are counted as that model is billed for them.
        """
        base = _base_model(spec)
        name = spec.common.token_counter or "openai"
        plugins = self.plugins
        options = self._state[0].options
        directory = options.get("tiktoken_cache_dir")
        cache_dir = (directory, options.origin("tiktoken_cache_dir")) if directory else None
        try:  # checked now; a built-in's class is imported when the model first counts
            plugins.lookup("token_counters", name, load=False)
        except KeyError:
            known = plugins.names("token_counters")
            message = (
                f"model {spec.name!r}, field 'token_counter': no token counter {name!r}."
                f"{did_you_mean(name, known)} Registered: {', '.join(known)}."
            )
            raise ConfigError(message) from None
        except PluginError as exc:
            raise PluginError(f"model {spec.name!r}, field 'token_counter': {exc}") from None

        def build() -> BaseTokenCounter:
            factory = plugins.lookup("token_counters", name)
            arguments: dict[str, Any] = {}
            if name == "openai" and cache_dir is not None:
                arguments = {"cache_dir": cache_dir[0], "cache_dir_origin": cache_dir[1]}
            if _takes_image_rule(factory):
                capabilities = self._capabilities(spec)
                if capabilities is not None:
                    arguments["image_rule"] = capabilities.image_tokens
            counter: BaseTokenCounter = factory(base, **arguments)
            return counter

        return build

    def close(self) -> None:
        """Release the HTTP connection pools of the models this registry created."""
        self._pool.close()

    async def aclose(self) -> None:
        """Release the async (and sync) HTTP connection pools."""
        await self._pool.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"ModelRegistry(settings={self.settings.label!r}, env={self.env!r})"


def _base_model(spec: ModelSpec) -> str:
    """The name capabilities and token counts are looked up by: ``model``, else the deployment."""
    base: str = spec.common.model or getattr(spec.options, "deployment", None) or spec.name
    return base


def _takes_image_rule(factory: Any) -> bool:
    """Whether a token counter factory names an ``image_rule`` parameter."""
    try:
        return "image_rule" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin, a C type)
        return False


def create_model(
    name: str | None = None,
    *,
    env: str | None = None,
    settings: str | os.PathLike[str] | Settings | None = None,
    **overrides: Any,
) -> BaseModelBackend:
    """Build the model called ``name`` (None: ``default_model``) from the settings sources.

    Args:
        name: a model name or alias.
        env: the environment overlay to apply (default ``MODELREG_ENV``).
        settings: a settings file path, or already loaded :class:`Settings`; default
            ``MODELREG_SETTINGS``, else ``./settings.toml``.
        **overrides: settings fields (highest precedence), or ``client`` / ``async_client``.

    Models made by ``create_model`` share one process-wide HTTP pool per endpoint.
    """
    loaded = settings if isinstance(settings, Settings) else load_settings(settings)
    return ModelRegistry(loaded, env=env, pool=_shared_pool).create(name, **overrides)
