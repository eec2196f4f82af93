"""modelreg: ask for a model by name, get a ready backend.

>>> from registry import create_model
>>> model = create_model("chat")  # settings.toml + MODELREG_* variables + .env
>>> reply = model.run([{"role": "user", "content": "Hello"}])

Importing this package loads no ``.env``, no plugins, no network, and neither ``openai`` nor
``tiktoken``; even pydantic loads only when a name in ``__all__`` that needs it is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry.errors import (
    BackendError,
    ConfigError,
    IncompleteStreamError,
    MissingCredentialsError,
    NoDeploymentAvailableError,
    PluginError,
    PluginWarning,
    RegistryError,
    RegistryWarning,
    TokenizerUnavailableError,
    UnknownModelError,
)
from registry.lazy import lazy_attributes

if TYPE_CHECKING:
    from registry.factory import Explanation, ModelRegistry, create_model
    from registry.hookspecs import hookimpl
    from registry.overrides import override_clients
    from registry.settings import Settings, load_settings
    from registry.spec import ModelSpec

__all__ = [
    "BackendError",
    "ConfigError",
    "Explanation",
    "IncompleteStreamError",
    "MissingCredentialsError",
    "ModelRegistry",
    "ModelSpec",
    "NoDeploymentAvailableError",
    "PluginError",
    "PluginWarning",
    "RegistryError",
    "RegistryWarning",
    "Settings",
    "TokenizerUnavailableError",
    "UnknownModelError",
    "create_model",
    "hookimpl",
    "load_settings",
    "override_clients",
]

_LAZY = {
    "Explanation": "registry.factory",
    "ModelRegistry": "registry.factory",
    "create_model": "registry.factory",
    "hookimpl": "registry.hookspecs",
    "override_clients": "registry.overrides",
    "Settings": "registry.settings",
    "load_settings": "registry.settings",
    "ModelSpec": "registry.spec",
}


__getattr__, __dir__ = lazy_attributes("registry", globals(), _LAZY, __all__)
