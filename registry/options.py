"""The registry's own options (``MODELREG_SETTINGS``, ``MODELREG_ENV``...), read one way.

Every option is read the same way, highest first: a keyword argument or CLI flag, the process
environment, ``.env``, then — for the options that may live in a file (:data:`FILE_OPTIONS`) — a
top-level key of ``settings.toml``. :class:`RegistryOptions` is a pydantic-settings
``BaseSettings``; the environment and ``.env`` are read with its ``EnvSettingsSource`` (prefix
``MODELREG_``, case-insensitive), and each option keeps the origin it came from, for
``modelreg config`` (:func:`registry_options`).

Settings *values* (``MODELREG_MODELS__CHAT__DEPLOYMENT``) are not options: modelreg's own readers
handle them (:mod:`registry.sources`), because they keep per-field provenance. A ``MODELREG_*``
variable that is neither an option nor a settings path gets a warning with a did-you-mean.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from registry.endpoints import check_base_url
from registry.errors import ConfigError, RegistryWarning, did_you_mean
from registry.masking import escape_control, mask_url
from registry.precedence import KWARG_SOURCE
from registry.sources import ENV_PREFIX, FILE_OPTIONS, SETTINGS_PATH_KEYS
from registry.validation import validate

__all__ = [
    "FILE_OPTIONS",
    "LoadedOptions",
    "OptionValue",
    "RegistryOptions",
    "load_options",
    "process_options",
    "registry_options",
    "unknown_variable_message",
    "unknown_variables",
    "warn_unknown_variables",
]

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class RegistryOptions(BaseSettings):
    """Every ``MODELREG_*`` option that is not a settings value."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False, extra="forbid")

    settings: Path | None = Field(None, description="settings file (default ./settings.toml)")
    dotenv: Path | None = Field(None, description=".env file (default ./.env)")
    env: str | None = Field(None, description="active environment overlay")
    plugins: Annotated[list[str] | None, NoDecode] = Field(
        None, description="comma list of plugins to load (empty: none but the built-ins)"
    )
    disable_plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma list of plugins not to load"
    )
    tiktoken_cache_dir: Path | None = Field(
        None, description="directory of tokenizer files for offline use"
    )
    secrets_dir: Path | None = Field(
        None, description="directory with one file per variable (Docker/Kubernetes secrets)"
    )
    azure_key_vault_url: str | None = Field(
        None, description="Azure Key Vault for variables (extra modelreg[azure-keyvault])"
    )
    routing_state: str | None = Field(
        None, description="redis:// URL where pools share cooldowns across processes"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Validate what :func:`load_options` merged; it reads the sources itself, in order."""
        return (init_settings,)

    @field_validator("plugins", "disable_plugins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("env", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("azure_key_vault_url")
    @classmethod
    def _vault_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = check_base_url(value, field="azure_key_vault_url", allow_http=True)
        if not url.startswith("https://"):
            raise ValueError("must be an https:// URL such as https://NAME.vault.azure.net")
        return url

    @field_validator("routing_state")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    def __repr__(self) -> str:
        shown = {k: mask_url(v) if isinstance(v, str) else v for k, v in self.__dict__.items()}
        return f"RegistryOptions({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment reading, over a given mapping (the environment or .env)."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]) -> None:
        self._variables = variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._variables.items()}


@dataclass(frozen=True)
class OptionValue:
    """One option as ``modelreg config`` shows it."""

    name: str
    variable: str
    value: Any
    source: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        value = self.value
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, str):
            value = mask_url(value)
        return {"variable": self.variable, "value": value, "source": self.source}


@dataclass(frozen=True)
class LoadedOptions:
    """The options, validated, and where each came from (``built-in default`` when unset)."""

    values: RegistryOptions
    origins: Mapping[str, str]

    def origin(self, name: str) -> str:
        """Where option ``name`` came from."""
        return self.origins.get(name, "built-in default")

    def describe(self) -> list[OptionValue]:
        """Every option with its variable, value and source."""
        return [
            OptionValue(
                name,
                ENV_PREFIX + name.upper(),
                getattr(self.values, name),
                self.origin(name),
                info.description or "",
            )
            for name, info in RegistryOptions.model_fields.items()
        ]


def _origin_label(kind: str, name: str, dotenv_label: str, toml_label: str) -> str:
    variable = ENV_PREFIX + name.upper()
    labels = {
        "env": f"env {variable}",
        "dotenv": f"{dotenv_label} ({variable})",
        "toml": f"{toml_label} ({name})",
    }
    return labels.get(kind, kind)


def load_options(
    given: Mapping[str, Any],
    *,
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    dotenv_label: str = ".env",
    toml: Mapping[str, Any] | None = None,
    toml_label: str = "settings.toml",
    given_origin: str = KWARG_SOURCE,
) -> LoadedOptions:
    """Options from ``given`` (keyword arguments, CLI flags), the environment, ``.env``, the file.

    Raises:
        ConfigError: an option's value is invalid; the message names the variable and its origin
            but not the value.
    """
    layers: list[tuple[str, Mapping[str, Any]]] = [
        (given_origin, {k: v for k, v in given.items() if v is not None}),
        ("env", _MappingEnvSource(RegistryOptions, environ)()),
        ("dotenv", _MappingEnvSource(RegistryOptions, dotenv)()),
        ("toml", {k: toml[k] for k in FILE_OPTIONS if toml and k in toml}),
    ]
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for kind, values in layers:
        for name, value in values.items():
            if name not in merged:
                merged[name] = value
                origins[name] = _origin_label(kind, name, dotenv_label, toml_label)
    options, problems = validate(RegistryOptions, merged)
    if problems or not isinstance(options, RegistryOptions):
        raise ConfigError("; ".join(_problem(path, message, origins) for path, message in problems))
    return LoadedOptions(options, origins)


def _problem(path: str, message: str, origins: Mapping[str, str]) -> str:
    name = path.split(".")[0]
    origin = origins.get(name, KWARG_SOURCE)
    where = f"option {name!r} ({origin})" if origin == KWARG_SOURCE else origin
    return f"{where}: {message} (the value is not shown)"


def unknown_variables(*variables: Mapping[str, str]) -> dict[str, str]:
    """``MODELREG_*`` names that are neither options nor settings paths → a did-you-mean hint."""
    options = set(RegistryOptions.model_fields)
    known = [ENV_PREFIX + name.upper() for name in options]
    known += [ENV_PREFIX + key.upper() for key in SETTINGS_PATH_KEYS]
    unknown: dict[str, str] = {}
    for mapping in variables:
        for name in mapping:
            upper = name.upper()
            if not upper.startswith(ENV_PREFIX):
                continue
            head = upper[len(ENV_PREFIX) :].split("__")[0].lower()
            if head not in options and head not in SETTINGS_PATH_KEYS:
                unknown[name] = did_you_mean(upper.split("__")[0], known)
    return unknown


def unknown_variable_message(name: str, hint: str) -> str:
    """What to say about an unknown ``MODELREG_*`` variable (for warnings and ``check``)."""
    return (
        f"{escape_control(name)} is neither a modelreg option nor a settings path, so it is "
        f"ignored.{hint} Options are listed by `modelreg config`; settings values are "
        "MODELREG_MODELS__<NAME>__<FIELD>, MODELREG_DEFAULTS__<FIELD> and MODELREG_DEFAULT_MODEL."
    )


def warn_unknown_variables(unknown: Mapping[str, str]) -> None:
    """Warn once per process about each unknown ``MODELREG_*`` variable (name → hint)."""
    for name, hint in sorted(unknown.items()):
        with _warned_lock:
            if name in _warned:
                continue
            _warned.add(name)
        warnings.warn(unknown_variable_message(name, hint), RegistryWarning, stacklevel=4)


def process_options() -> LoadedOptions:
    """The options of this process: the environment and the ``.env`` file it names (or ./.env).

    For what is decided once per process (which plugins load), not per settings file.
    """
    import os

    from registry.sources import display_path, read_dotenv_variables

    environ = dict(os.environ)
    early = load_options({}, environ=environ, dotenv={})
    path = early.values.dotenv or Path(".env")
    dotenv = read_dotenv_variables(path if path.is_file() else None)
    label = display_path(path) if path.is_file() else ".env"
    return load_options({}, environ=environ, dotenv=dotenv, dotenv_label=label)


def registry_options(
    *,
    settings: str | Path | None = None,
    dotenv: str | Path | None = None,
    env: str | None = None,
) -> LoadedOptions:
    """The options in force (arguments, environment, ``.env``, settings file), with origins.

    This is what ``modelreg config`` prints.
    """
    from registry.settings import load_settings

    return load_settings(settings, dotenv_path=dotenv, env=env).options
