"""Loading settings: which files, which sources, and the shape each source must have.

:func:`load_settings` finds the settings file (argument, ``MODELREG_SETTINGS``, else
``./settings.toml``) and the ``.env`` file (argument, ``MODELREG_DOTENV``, else ``./.env``), reads
every source once and checks its shape. It does not merge them: resolution applies the
precedence per field (:mod:`registry.precedence`) so that each value keeps its origin.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import ConfigError, did_you_mean
from registry.masking import escape_control
from registry.sources import (
    TOP_LEVEL_KEYS,
    DotEnvFileSource,
    EnvironmentSource,
    Source,
    TomlFileSource,
    display_path,
    read_dotenv_variables,
)
from registry.variables import Variables, variable_sources

__all__ = [
    "DEFAULT_DOTENV_FILE",
    "DEFAULT_SETTINGS_FILE",
    "Settings",
    "choose_env",
    "load_settings",
]

DEFAULT_SETTINGS_FILE = "settings.toml"
DEFAULT_DOTENV_FILE = ".env"
_ENVIRONMENT_KEYS = frozenset({"default_model", "defaults", "models"})


@dataclass(frozen=True, repr=False)
class Settings:
    """Every settings source, read once, in priority order (highest first).

    Its repr names the files only: the sources hold keys and other secrets.
    """

    path: Path | None
    dotenv_path: Path | None
    sources: tuple[Source, ...]
    variables: Variables
    #: Derived data (merged tables, name maps) cached by resolution; sources never change.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False)

    def variable(self, name: str) -> tuple[str, str] | None:
        """Look a variable up (environment, then ``.env``): ``(value, origin)`` or None."""
        return self.variables.get(name)

    def sources_of(self, kind: str) -> tuple[Source, ...]:
        """The sources of one kind (``env``, ``dotenv``, ``toml``)."""
        return tuple(source for source in self.sources if source.kind == kind)

    @functools.cached_property
    def label(self) -> str:
        """The settings file as shown to users, or a note that there is none."""
        if self.path is None:
            return (
                "(no settings file: ./settings.toml not found; use --settings or MODELREG_SETTINGS)"
            )
        return display_path(self.path)

    def environment_names(self) -> list[str]:
        """Every environment any source defines an overlay for (file spelling first)."""
        names: dict[str, str] = {}
        for kind in ("toml", "env", "dotenv"):
            for source in self.sources_of(kind):
                for name in source.data.get("environments", {}):
                    names.setdefault(str(name).lower(), str(name))
        return sorted(names.values())

    def __repr__(self) -> str:
        dotenv = display_path(self.dotenv_path) if self.dotenv_path else None
        return f"Settings(path={self.label!r}, dotenv={dotenv!r})"


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
    if env in known:
        return env
    folded = {name.lower(): name for name in known}
    if env.lower() in folded and origin != "env=":
        return folded[env.lower()]  # variables are case-insensitive
    raise ConfigError(
        f"environment {escape_control(repr(env))} (from {origin}) is not defined in "
        f"{settings.label}.{did_you_mean(env, known)} Defined environments: "
        f"{', '.join(known) or 'none'} (add an [environments.NAME] table)."
    )


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
            f"{what} {escape_control(str(chosen))!r} ({origin}) does not exist or is not a file. "
            f"Check the path, or unset it to use ./{default}."
        )
    return chosen


def _expect_table(source: Source, path: tuple[str, ...], value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{source.describe((*path, ''))}: {escape_control('.'.join(path))} must be a table, "
            f"not {type(value).__name__}."
        )
    return value


def _expect_string(source: Source, path: tuple[str, ...], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            f"{source.describe(path)}: {escape_control('.'.join(path))} must be a string, "
            f"not {type(value).__name__}."
        )


def _check_models(source: Source, path: tuple[str, ...], value: Any) -> None:
    for name, table in _expect_table(source, path, value).items():
        _expect_table(source, (*path, name), table)


def _check_unknown(
    source: Source, path: tuple[str, ...], keys: Any, allowed: frozenset[str]
) -> None:
    unknown = sorted(set(keys) - allowed)
    if unknown:
        key = unknown[0]
        where = "top-level key" if not path else "key in an environment"
        raise ConfigError(
            f"{source.describe((*path, key) if not path else (*path, ''))}: unknown {where} "
            f"{escape_control(repr(key))}.{did_you_mean(key, allowed)} Allowed: "
            f"{', '.join(sorted(allowed))}."
        )


def _check_shape(source: Source) -> None:
    """Check one source's structure; errors name the source, the path and what is expected."""
    data = source.data
    _check_unknown(source, (), data, TOP_LEVEL_KEYS)
    for key in ("default_model", "tiktoken_cache_dir"):
        _expect_string(source, (key,), data.get(key))
    _expect_table(source, ("defaults",), data.get("defaults", {}))
    _check_models(source, ("models",), data.get("models", {}))
    environments = _expect_table(source, ("environments",), data.get("environments", {}))
    for env, overlay in environments.items():
        path = ("environments", env)
        overlay = _expect_table(source, path, overlay)
        _check_unknown(source, path, overlay, _ENVIRONMENT_KEYS)
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

    dotenv_label = display_path(dotenv_file) if dotenv_file else None
    return Settings(
        path=settings_file,
        dotenv_path=dotenv_file,
        sources=tuple(sources),
        variables=variable_sources(environ, dotenv_variables, dotenv_label),
    )
