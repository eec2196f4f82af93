"""Loading settings: which files, which sources, and the shape each source must have.

:func:`load_settings` finds the settings file (argument, ``MODELREG_SETTINGS``, else
``./settings.toml``) and the ``.env`` file (argument, ``MODELREG_DOTENV``, else ``./.env``), reads
every source once and checks its shape. It does not merge them: resolution applies the
precedence per field so that each value keeps its origin.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import ConfigError, did_you_mean
from registry.sources import (
    TOP_LEVEL_KEYS,
    DotEnvFileSource,
    EnvironmentSource,
    Source,
    TomlFileSource,
    display_path,
    read_dotenv_variables,
)

__all__ = [
    "DEFAULT_DOTENV_FILE",
    "DEFAULT_SETTINGS_FILE",
    "Layer",
    "Settings",
    "choose_env",
    "load_settings",
]

DEFAULT_SETTINGS_FILE = "settings.toml"
DEFAULT_DOTENV_FILE = ".env"
_ENVIRONMENT_KEYS = frozenset({"default_model", "defaults", "models"})


@dataclass(frozen=True)
class Layer:
    """One source's data (already shape-checked) and how to describe its values' origins."""

    source: Source
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

    @functools.cached_property
    def label(self) -> str:
        """The settings file as shown to users, or a note that there is none."""
        if self.path is None:
            return (
                "(no settings file: ./settings.toml not found; use --settings or MODELREG_SETTINGS)"
            )
        return display_path(self.path)

    def environment_names(self) -> list[str]:
        """Every environment any source defines an overlay for."""
        names: set[str] = set()
        for layer in self.layers:
            names.update(layer.data.get("environments", {}))
        return sorted(names)


def choose_env(settings: Settings, env: str | None, *, from_variables: bool = True) -> str | None:
    """The active environment: ``env``, else ``MODELREG_ENV`` (environment, then ``.env``).

    Raises:
        ConfigError: the environment has no overlay anywhere in the settings.
    """
    origin = "env="
    if env is None:
        found = settings.variable("MODELREG_ENV") if from_variables else None
        if found is None or not found[0]:
            return None
        env, origin = found[0], found[1]
    known = settings.environment_names()
    if env not in known:
        raise ConfigError(
            f"environment {env!r} (from {origin}) is not defined in {settings.label}."
            f"{did_you_mean(env, known)} Defined environments: "
            f"{', '.join(known) or 'none'} (add an [environments.{env}] table)."
        )
    return env


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


def _expect_table(source: Source, path: tuple[str, ...], value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{source.describe((*path, ''))}: {'.'.join(path)} must be a table, "
            f"not {type(value).__name__}."
        )
    return value


def _expect_string(source: Source, path: tuple[str, ...], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            f"{source.describe(path)}: {'.'.join(path)} must be a string, "
            f"not {type(value).__name__}."
        )


def _check_models(source: Source, path: tuple[str, ...], value: Any) -> None:
    for name, table in _expect_table(source, path, value).items():
        _expect_table(source, (*path, name), table)


def _check_shape(source: Source) -> None:
    """Check one source's structure; errors name the source, the path and what is expected."""
    data = source.data
    unknown = sorted(set(data) - TOP_LEVEL_KEYS)
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{source.describe((key,))}: unknown top-level key {key!r}."
            f"{did_you_mean(key, TOP_LEVEL_KEYS)} Allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}."
        )
    for key in ("default_model", "tiktoken_cache_dir"):
        _expect_string(source, (key,), data.get(key))
    _expect_table(source, ("defaults",), data.get("defaults", {}))
    _check_models(source, ("models",), data.get("models", {}))
    for env, overlay in _expect_table(
        source, ("environments",), data.get("environments", {})
    ).items():
        path = ("environments", env)
        overlay = _expect_table(source, path, overlay)
        unknown = sorted(set(overlay) - _ENVIRONMENT_KEYS)
        if unknown:
            raise ConfigError(
                f"{source.describe((*path, ''))}: unknown key {unknown[0]!r} in an environment."
                f"{did_you_mean(unknown[0], _ENVIRONMENT_KEYS)} Allowed: "
                f"{', '.join(sorted(_ENVIRONMENT_KEYS))}."
            )
        _expect_string(source, (*path, "default_model"), overlay.get("default_model"))
        _expect_table(source, (*path, "defaults"), overlay.get("defaults", {}))
        _check_models(source, (*path, "models"), overlay.get("models", {}))


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
    environ = dict(os.environ)
    dotenv_variables = read_dotenv_variables(dotenv_file)

    sources: list[Source] = [EnvironmentSource(environ)]
    if dotenv_file is not None:
        sources.append(DotEnvFileSource(dotenv_file, dotenv_variables))
    if settings_file is not None:
        sources.append(TomlFileSource(settings_file))
    for source in sources:
        _check_shape(source)

    return Settings(
        path=settings_file,
        dotenv_path=dotenv_file,
        layers=tuple(Layer(source, source.data) for source in sources),
        environ=environ,
        dotenv_variables=dotenv_variables,
    )
