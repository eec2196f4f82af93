"""modelreg: ask for a model by name, get a ready backend.

>>> from registry import create_model
>>> model = create_model("chat")  # settings.toml + MODELREG_* variables + .env
>>> reply = model.run([{"role": "user", "content": "Hello"}])

Importing this package loads no ``.env``, no plugins, no network, and neither ``openai`` nor
``tiktoken``: those happen when first needed.
"""

from registry.errors import (
    BackendError,
    ConfigError,
    MissingCredentialsError,
    PluginError,
    RegistryError,
    TokenizerUnavailableError,
    UnknownModelError,
)
from registry.factory import Explanation, ModelRegistry, create_model
from registry.hookspecs import hookimpl
from registry.overrides import override_clients
from registry.settings import Settings, load_settings
from registry.spec import ModelSpec

__all__ = [
    "BackendError",
    "ConfigError",
    "Explanation",
    "MissingCredentialsError",
    "ModelRegistry",
    "ModelSpec",
    "PluginError",
    "RegistryError",
    "Settings",
    "TokenizerUnavailableError",
    "UnknownModelError",
    "create_model",
    "hookimpl",
    "load_settings",
    "override_clients",
]
