"""Loading settings: which files, which sources, and the shape each source must have.

:func:`load_settings` finds the settings file (argument, ``MODELREG_SETTINGS``, else
``./settings.toml``) and the ``.env`` file (argument, ``MODELREG_DOTENV``, else ``./.env``), reads
every source once and checks its shape. It does not merge them: :mod:`registry.resolve` applies
the precedence per field so that each value keeps its origin.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.errors import ConfigError, did_you_mean
from registry.sources import (
    DotEnvFileSource,
    EnvironmentSource,
    LabelledSource,
    TomlFileSource,
    display_path,
    read_dotenv_variables,
)

__all__ = [
    "DEFAULT_DOTENV_FILE",
    "DEFAULT_SETTINGS_FILE",
    "EnvironmentTable",
    "Layer",
    "Settings",
    "SettingsSchema",
    "load_settings",
]

DEFAULT_SETTINGS_FILE = "settings.toml"
DEFAULT_DOTENV_FILE = ".env"


class EnvironmentTable(BaseModel):
    """``[environments.<env>]``: an overlay applied when that environment is active."""

    model_config = ConfigDict(extra="forbid")

    default_model: str | None = None
    defaults: dict[str, Any] = {}
    models: dict[str, dict[str, Any]] = {}


class SettingsSchema(BaseSettings):
    """The shape of a whole settings source (file, ``MODELREG_*`` variables or ``.env``).

    Model tables stay plain dicts here: their fields depend on the backend and are validated at
    resolution, against the common fields plus the fields the backend declares.
    """

    model_config = SettingsConfigDict(extra="forbid")

    default_model: str | None = None
    tiktoken_cache_dir: str | None = None
    defaults: dict[str, Any] = {}
    models: dict[str, dict[str, Any]] = {}
    environments: dict[str, EnvironmentTable] = {}


_TOP_LEVEL = frozenset(SettingsSchema.model_fields)


@dataclass(frozen=True)
class Layer:
    """One source's data (already shape-checked) and how to describe its values' origins."""

    source: LabelledSource
    data: Mapping[str, Any]

    @property
    def kind(self) -> str:
        """``toml``, ``env`` or ``dotenv``."""
        return self.source.kind

    def describe(self, path: tuple[str, ...]) -> str:
        """Origin of the value at ``path`` in this source."""
        return self.source.describe(path)


@dataclass(frozen=True)
class Settings:
    """Every settings source, read once, in priority order (highest first)."""

    path: Path | None
    dotenv_path: Path | None
    layers: tuple[Layer, ...]
    environ: Mapping[str, str] = field(repr=False)
    dotenv_variables: Mapping[str, str] = field(repr=False)
    #: Derived data (merged tables, name maps) cached by resolution; sources never change.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def variable(self, name: str) -> tuple[str, str] | None:
        """Look a variable up in the environment, then in ``.env``: ``(value, origin)`` or None."""
        if name in self.environ:
            return self.environ[name], f"env {name}"
        if name in self.dotenv_variables:
            label = display_path(self.dotenv_path) if self.dotenv_path else ".env"
            return self.dotenv_variables[name], f"{label} ({name})"
        return None

    @property
    def label(self) -> str:
        """The settings file as shown to users, or a note that there is none."""
        return display_path(self.path) if self.path else "(no settings file)"

    def environment_names(self) -> list[str]:
        """Every environment any source defines an overlay for."""
        names: set[str] = set()
        for layer in self.layers:
            names.update(layer.data.get("environments", {}))
        return sorted(names)


def _choose_path(
    explicit: str | os.PathLike[str] | None, variable: str, default: str, *, what: str
) -> Path | None:
    """Pick a file from an argument, then an environment variable, then a default name."""
    if explicit is not None:
        chosen, origin = Path(explicit), "given"
    elif os.environ.get(variable):
        chosen, origin = Path(os.environ[variable]), f"named by {variable}"
    else:
        candidate = Path(default)
        return candidate if candidate.is_file() else None
    if not chosen.is_file():
        raise ConfigError(
            f"{what} {str(chosen)!r} ({origin}) does not exist or is not a file. "
            f"Check the path, or unset it to use ./{default}."
        )
    return chosen


def _check_shape(source: LabelledSource, data: dict[str, Any]) -> dict[str, Any]:
    """Validate one source against :class:`SettingsSchema`, naming the source in errors."""
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{source.describe((key,))}: unknown top-level key {key!r}."
            f"{did_you_mean(key, _TOP_LEVEL)} Allowed: {', '.join(sorted(_TOP_LEVEL))}."
        )
    try:
        SettingsSchema.model_validate(data)
    except ValidationError as exc:
        problems = []
        for item in exc.errors(include_url=False, include_input=False):
            loc = tuple(str(part) for part in item["loc"])
            problems.append(f"{source.describe((*loc, ''))}: {'.'.join(loc)}: {item['msg']}")
        raise ConfigError("; ".join(problems)) from None
    return data


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    dotenv_path: str | os.PathLike[str] | None = None,
) -> Settings:
    """Read the settings file, ``MODELREG_*`` variables and ``.env`` into a :class:`Settings`.

    Args:
        path: the settings file; default ``MODELREG_SETTINGS``, else ``./settings.toml`` if present.
        dotenv_path: the ``.env`` file; default ``MODELREG_DOTENV``, else ``./.env`` if present.

    Raises:
        ConfigError: a named file is missing, or a source is malformed.
    """
    settings_file = _choose_path(
        path, "MODELREG_SETTINGS", DEFAULT_SETTINGS_FILE, what="settings file"
    )
    dotenv_file = _choose_path(
        dotenv_path, "MODELREG_DOTENV", DEFAULT_DOTENV_FILE, what=".env file"
    )

    sources: list[LabelledSource] = [EnvironmentSource(SettingsSchema)]
    if dotenv_file is not None:
        sources.append(DotEnvFileSource(SettingsSchema, dotenv_file))
    if settings_file is not None:
        sources.append(TomlFileSource(SettingsSchema, settings_file))

    layers = []
    for source in sources:
        try:
            data = source()
        except ConfigError:
            raise
        except Exception as exc:  # pydantic-settings raises SettingsError for bad JSON values
            raise ConfigError(f"{source.describe(('',))}: cannot read: {exc}") from None
        layers.append(Layer(source, _check_shape(source, data)))

    return Settings(
        path=settings_file,
        dotenv_path=dotenv_file,
        layers=tuple(layers),
        environ=dict(os.environ),
        dotenv_variables=read_dotenv_variables(dotenv_file),
    )
