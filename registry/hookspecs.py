"""Hook specifications of the ``modelreg`` pluggy project.

Every hook receives a ``register`` callback (the style of simonw/llm): the plugin hands objects
to the host, which validates them, records which plugin registered what, and keeps one broken
plugin from affecting models that do not need it. None of the hooks is ``firstresult``: every
plugin's implementation is called, and return values are ignored.

A plugin is a module or object with functions decorated by :data:`registry.hookimpl`, found
through the ``modelreg`` entry-point group::

    [project.entry-points.modelreg]
    my_plugin = "my_package.modelreg_plugin"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "modelreg_register_backends",
    "modelreg_register_capabilities",
    "modelreg_register_client_providers",
    "modelreg_register_settings_sources",
    "modelreg_register_token_counters",
]

PROJECT_NAME = "modelreg"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def modelreg_register_backends(register: Callable[[str, type[Any]], None]) -> None:
    """Register model backends: ``register("azure", AzureOpenAIModel)``.

    The class must subclass :class:`backends.base.BaseModelBackend` and carry the pydantic model
    of its settings fields as ``settings_model``, so that ``[models.X]`` tables naming this
    backend are validated in full (typos get a did-you-mean) and ``modelreg check`` covers them.
    The name is what ``backend = "..."`` in settings refers to; it must not clash with a
    built-in backend or another plugin's.
    """


@hookspec
def modelreg_register_token_counters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register token counters: ``register("openai", OpenAITokenCounter)``.

    The object is a factory called as ``factory(model)`` with the model's base model name
    (``model`` field, else the deployment) and returning a
    :class:`backends.token_counting.BaseTokenCounter`. A model selects it with
    ``token_counter = "name"``.
    """


@hookspec
def modelreg_register_client_providers(register: Callable[[str, Any], None]) -> None:
    """Register client-override providers: ``register("areal", provider)``.

    A provider supplies the OpenAI-compatible clients a model must use instead of building its
    own (as an RL framework does to record or route every call). It has either or both of
    ``sync_client(spec)`` and ``async_client(spec)``, each returning a client with
    ``chat.completions.create`` (and ``parse``/``stream`` when those are used), or None to let
    the backend build that side itself. A model selects it with ``client_provider = "name"``.
    """


@hookspec
def modelreg_register_settings_sources(register: Callable[[str, Any], None]) -> None:
    """Register secret stores for variables: ``register("aws-secrets", SettingsSource(...))``.

    The object is a :class:`registry.secret_stores.SettingsSource`: ``build(options)`` returns a
    pydantic-settings source (any ``PydanticBaseSettingsSource``: its ``get_field_value`` is asked
    for one variable at a time), a callable ``lookup(name) -> str | None``, or None when the
    store is not configured; ``order`` places it among the stores (secrets dir 30, Key Vault 40,
    default 50); ``label`` names the origin of its values (``"{name}"`` is the variable). Stores
    serve ``${VAR}`` references and the backends' credential variables, after the environment
    and ``.env``; values from them are secrets.
    """


@hookspec
def modelreg_register_capabilities(register: Callable[[str, Mapping[str, Any]], None]) -> None:
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
