"""What ``modelreg config`` reports: the registry's own settings as they take effect.

Not the raw options (``MODELREG_SETTINGS`` unset) but what they lead to (``settings.toml``, the
default in the working directory), each with where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.errors import RegistryError
from registry.masking import mask_url
from registry.settings import Settings, choose_env
from registry.sources import display_path

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ConfigEntry", "config_report"]

_DEFAULT = "default"


@dataclass(frozen=True)
class ConfigEntry:
    """One line of ``modelreg config``: a setting, its effective value, its origin."""

    name: str
    value: Any
    source: str
    variable: str | None = None
    #: What an unset value (None) means: ``none: ./.env not found``.
    note: str = ""

    def text(self) -> Any:
        """The value for the text table: the note in parentheses when unset."""
        return self.value if self.value is not None else f"({self.note})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: value (null when unset, with a note), source, the variable that sets it."""
        data = {"value": self.value, "source": self.source, "variable": self.variable}
        return {**data, "note": self.note} if self.value is None else data


def _origin(settings: Settings, option: str, default: str) -> str:
    origin = settings.options.origin(option)
    return default if origin == "built-in default" else origin


def _file(path: Path | None) -> str | None:
    return display_path(path) if path is not None else None


def _files(settings: Settings) -> list[ConfigEntry]:
    settings_default = f"{_DEFAULT}: settings.toml in the working directory"
    dotenv_default = f"{_DEFAULT}: .env in the working directory"
    return [
        ConfigEntry(
            "settings_file",
            _file(settings.path),
            _origin(settings, "settings", settings_default),
            "MODELREG_SETTINGS",
            "none: ./settings.toml not found",
        ),
        ConfigEntry(
            "dotenv_file",
            _file(settings.dotenv_path),
            _origin(settings, "dotenv", dotenv_default),
            "MODELREG_DOTENV",
            "none: ./.env not found",
        ),
    ]


def _environment(settings: Settings) -> list[ConfigEntry]:
    env = choose_env(settings, None)
    defined = settings.environment_names()
    return [
        ConfigEntry(
            "env",
            env,
            _origin(settings, "env", _DEFAULT),
            "MODELREG_ENV",
            "none: the base settings, no overlay",
        ),
        ConfigEntry("environments", defined, settings.label),
    ]


def _secret_sources(settings: Settings) -> list[ConfigEntry]:
    from registry.secret_stores import secret_stores

    options = settings.options
    vault = options.get("azure_key_vault_url")
    try:
        stores = [store.kind for store in secret_stores(options)]
    except RegistryError as exc:
        stores = [f"(error: {exc})"]
    return [
        ConfigEntry(
            "secrets_dir",
            str(options.get("secrets_dir")) if options.get("secrets_dir") else None,
            _origin(settings, "secrets_dir", _DEFAULT),
            "MODELREG_SECRETS_DIR",
            "none",
        ),
        ConfigEntry(
            "azure_key_vault_url",
            mask_url(vault) if vault else None,
            _origin(settings, "azure_key_vault_url", _DEFAULT),
            "MODELREG_AZURE_KEY_VAULT_URL",
            "none",
        ),
        ConfigEntry(
            "secret_sources",
            ["environment", ".env", *stores],
            "asked in this order for ${VAR} and credentials (stores: modelreg plugins)",
        ),
    ]


def _plugins(settings: Settings) -> list[ConfigEntry]:
    options = settings.options
    allowed = options.get("plugins")
    return [
        ConfigEntry(
            "plugins",
            list(allowed) if allowed is not None else None,
            _origin(settings, "plugins", _DEFAULT),
            "MODELREG_PLUGINS",
            "unset: every installed plugin may load",
        ),
        ConfigEntry(
            "disable_plugins",
            list(options.get("disable_plugins") or []),
            _origin(settings, "disable_plugins", _DEFAULT),
            "MODELREG_DISABLE_PLUGINS",
        ),
    ]


def _runtime(settings: Settings) -> list[ConfigEntry]:
    from backends.encodings import cache_directory

    options = settings.options
    given = options.get("tiktoken_cache_dir")
    directory, chosen_by = cache_directory(given, options.origin("tiktoken_cache_dir"))
    state = options.get("routing_state")
    return [
        ConfigEntry(
            "tiktoken_cache_dir",
            str(directory) if directory is not None else None,
            chosen_by if directory is not None else _DEFAULT,
            "MODELREG_TIKTOKEN_CACHE_DIR",
            "unset: tiktoken's own cache, downloads on first use",
        ),
        ConfigEntry(
            "routing_state",
            mask_url(str(state)) if state else None,
            _origin(settings, "routing_state", _DEFAULT),
            "MODELREG_ROUTING_STATE",
            "unset: in-process, each process keeps its own",
        ),
    ]


def config_report(settings: Settings) -> list[ConfigEntry]:
    """Every registry setting in effect, in the order ``modelreg config`` prints them."""
    return [
        *_files(settings),
        *_environment(settings),
        *_secret_sources(settings),
        *_plugins(settings),
        *_runtime(settings),
    ]
