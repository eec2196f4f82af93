"""Hook specifications of the ``modelreg`` pluggy project.

Every hook receives a ``register`` callback (the style of simonw/llm): the plugin hands objects
to the host, which validates them, records which plugin registered what, and keeps one broken
plugin from affecting models that do not need it (:mod:`registry.registrations` has the rules).

A plugin is a module or object with functions decorated by :data:`hookimpl`, found through the
``modelreg`` entry-point group::

    [project.entry-points.modelreg]
    my_plugin = "my_package.modelreg_plugin"

**Semantics common to every hook.**

* Every implementation is called once, on its own: one that raises loses only what it would
  have registered, and the others still run. None is ``firstresult``; return values are ignored.
* Order does not matter, so ``tryfirst``/``trylast`` are accepted but change nothing: the
  implementations are called in pluggy's order, but a name registered by two plugins is
  unavailable whichever registered it first (no plugin can take over another's name).
* Wrappers (``hookwrapper=True``, ``wrapper=True``) are refused, and reported as the plugin's
  error: a wrapper runs around the other plugins' implementations, and a registration hook
  that could see or change what other plugins register could take over their names.
* A function whose name starts with ``modelreg_`` but is not a hook below (a typo), or is not
  decorated with ``@hookimpl``, would never be called: it is reported as the plugin's error
  (pluggy's ``check_pending`` rule, applied to each plugin on its own).

The parameter types name the real classes; they are imported for type checkers only, so
importing this module imports neither the backends nor pydantic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import pluggy

if TYPE_CHECKING:
    from backends.base import BaseModelBackend
    from backends.token_counting import BaseTokenCounter
    from registry.routing.strategies import RoutingStrategyFactory
    from registry.secret_stores import SettingsSource
    from registry.spec import ModelSpec

__all__ = [
    "PROJECT_NAME",
    "AsyncClientProvider",
    "ClientProvider",
    "RegisterBackend",
    "RegisterCapabilities",
    "RegisterClientProvider",
    "RegisterRoutingStrategy",
    "RegisterSettingsSource",
    "RegisterTokenCounter",
    "SyncClientProvider",
    "TokenCounterFactory",
    "hookimpl",
    "hookspec",
    "modelreg_register_backends",
    "modelreg_register_capabilities",
    "modelreg_register_client_providers",
    "modelreg_register_routing_strategies",
    "modelreg_register_settings_sources",
    "modelreg_register_token_counters",
]

PROJECT_NAME = "modelreg"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class SyncClientProvider(Protocol):
    """A client provider for ``run``."""

    def sync_client(self, spec: ModelSpec) -> Any:
        """An OpenAI-compatible client for the model ``spec``, or None to let it build its own."""
        ...


class AsyncClientProvider(Protocol):
    """A client provider for ``arun``."""

    def async_client(self, spec: ModelSpec) -> Any:
        """An async OpenAI-compatible client for ``spec``, or None to let it build its own."""
        ...


#: A client provider has either method, or both.
ClientProvider: TypeAlias = "SyncClientProvider | AsyncClientProvider"
#: Builds a model's token counter from its base model name (a class such as
#: ``OpenAITokenCounter`` is one).
TokenCounterFactory: TypeAlias = "Callable[[str], BaseTokenCounter]"
#: The ``register`` argument of :func:`modelreg_register_backends`.
RegisterBackend: TypeAlias = "Callable[[str, type[BaseModelBackend]], None]"
#: The ``register`` argument of :func:`modelreg_register_token_counters`.
RegisterTokenCounter: TypeAlias = "Callable[[str, TokenCounterFactory], None]"
#: The ``register`` argument of :func:`modelreg_register_client_providers`.
RegisterClientProvider: TypeAlias = "Callable[[str, ClientProvider], None]"
#: The ``register`` argument of :func:`modelreg_register_settings_sources`.
RegisterSettingsSource: TypeAlias = "Callable[[str, SettingsSource], None]"
#: The ``register`` argument of :func:`modelreg_register_capabilities`.
RegisterCapabilities: TypeAlias = "Callable[[str, Mapping[str, Any]], None]"
#: The ``register`` argument of :func:`modelreg_register_routing_strategies`.
RegisterRoutingStrategy: TypeAlias = "Callable[[str, RoutingStrategyFactory], None]"


@hookspec
def modelreg_register_backends(register: RegisterBackend) -> None:
    """Register model backends: ``register("azure", AzureOpenAIModel)``.

    The class must subclass :class:`backends.base.BaseModelBackend` and carry the pydantic model
    of its settings fields as ``settings_model``, so that ``[models.X]`` tables naming this
    backend are validated in full (typos get a did-you-mean) and ``modelreg check`` covers them.
    Its ``_run``/``_arun`` return what :mod:`backends.results` describes (checked on each call);
    its ``client_overrides`` says how a client override reaches it (routed through the
    override's client by default, or ``"refused"``: see :class:`backends.base.BaseModelBackend`).
    The name is what ``backend = "..."`` in settings refers to; a built-in's name is refused,
    and a name another plugin also registers is unavailable to both.
    """


@hookspec
def modelreg_register_token_counters(register: RegisterTokenCounter) -> None:
    """Register token counters: ``register("openai", OpenAITokenCounter)``.

    The object is a factory called as ``factory(model)`` with the model's base model name
    (``model`` field, else the deployment) and returning a
    :class:`backends.token_counting.BaseTokenCounter`; a factory with an ``image_rule``
    parameter also gets the base model's :class:`backends.image_tokens.ImageTokenRule` (its
    capabilities, plugins and settings applied). A model selects it with
    ``token_counter = "name"``. Names follow the same rules as backends'.
    """


@hookspec
def modelreg_register_client_providers(register: RegisterClientProvider) -> None:
    """Register client-override providers: ``register("areal", provider)``.

    A provider supplies the OpenAI-compatible clients a model must use instead of building its
    own (as an RL framework does to record or route every call). It has either or both of
    ``sync_client(spec)`` and ``async_client(spec)``, each returning a client with
    ``chat.completions.create`` (and ``parse``/``stream`` when those are used), or None to let
    the backend build that side itself. A model selects it with ``client_provider = "name"``.
    Names follow the same rules as backends'.
    """


@hookspec
def modelreg_register_settings_sources(register: RegisterSettingsSource) -> None:
    """Register secret stores for variables: ``register("aws-secrets", SettingsSource(...))``.

    The object is a :class:`registry.secret_stores.SettingsSource`: ``build(options)`` returns a
    pydantic-settings source (any ``PydanticBaseSettingsSource``: its ``get_field_value`` is asked
    for one variable at a time), a callable ``lookup(name) -> str | None``, or None when the
    store is not configured; ``order`` places it among the stores (secrets dir 30, Key Vault 40,
    default 50); ``label`` names the origin of its values (``"{name}"`` is the variable). Stores
    serve ``${VAR}`` references and the backends' credential variables, after the environment
    and ``.env``; values from them are secrets. Names follow the same rules as backends'.
    """


@hookspec
def modelreg_register_capabilities(register: RegisterCapabilities) -> None:
    """Add or override capabilities of base models: ``register("my-model", {...})``.

    The name is a base model family (``model = "..."`` in settings), matched like the built-in
    table: exactly or with a snapshot suffix (``my-model-2025-01-01``), case-insensitively. The
    mapping takes the keys of ``[models.NAME.capabilities]`` (``context_window``,
    ``max_output_tokens``, ``vision``, ``tools``, ``structured_outputs``, ``responses_api``,
    ``reasoning``, ``system_messages``, ``rejected_params``, ``max_tokens_param``,
    ``image_tokens``) plus ``extends`` (start from another family's values), ``source`` and
    ``notes``; see :mod:`backends.capabilities`.

    Layers, lowest first: the built-in table (registered through this hook by
    ``backends.builtin``) < plugins < per-model settings. A plugin entry for a built-in name is
    an override of the fields it gives; two plugins registering the same name clash and
    neither applies. Invalid data is the plugin's error, reported without its values.
    """


@hookspec
def modelreg_register_routing_strategies(register: RegisterRoutingStrategy) -> None:
    """Register pool routing strategies: ``register("round-robin", RoundRobin)``.

    The object is a factory (a class is one) called with no arguments once per pool; what it
    returns has ``choose(candidates, rng)``, which gets the deployments that may take the next
    attempt (:class:`registry.routing.strategies.Candidate`: the deployment, its position,
    this process's calls in flight and latency average; never empty, never a cooling one) and
    the pool's ``random.Random``, and returns one of them. It may be called from several
    threads at once, and must not block: it runs before every attempt. A pool selects it with
    ``routing = "name"``. The built-in ``weighted``, ``ordered``, ``least-busy`` and
    ``latency`` are registered through this hook by ``registry.routing.builtin``; their names
    are refused, and a name two plugins register is unavailable to both.
    """
