"""Loading settings: which files, which sources, and the shape each source must have.

:func:`load_settings` reads the registry's options (:mod:`registry.options`: argument, the
environment, ``.env``), finds the ``.env`` file (``MODELREG_DOTENV``, else ``./.env``) and the
settings file (``MODELREG_SETTINGS``, else ``./settings.toml``), reads every source once and checks
its shape. It does not merge them: resolution applies the precedence per field
(:mod:`registry.precedence`) so that each value keeps its origin.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import ConfigError, did_you_mean
from registry.masking import escape_control, shown_key, shown_names
from registry.precedence import KWARG_SOURCE
from registry.sources import (
    TOP_LEVEL_KEYS,
    DotEnvFileSource,
    EnvironmentSource,
    Source,
    TomlFileSource,
    display_path,
    read_dotenv_variables,
)
from registry.variables import Found, Variables, variable_sources

if TYPE_CHECKING:
    from registry.options import LoadedOptions

__all__ = [
    "DEFAULT_DOTENV_FILE",
    "DEFAULT_SETTINGS_FILE",
    "Settings",
    "choose_env",
    "load_settings",
    "orphan_environment_message",
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
    options: LoadedOptions
    #: ``MODELREG_*`` variables that are neither options nor settings paths → did-you-mean.
    unknown_variables: Mapping[str, str] = field(default_factory=dict)
    #: Options given as arguments (kept for :meth:`ModelRegistry.reload`).
    given_options: Mapping[str, Any] = field(default_factory=dict)
    #: Derived data (merged tables, name maps) cached by resolution; sources never change.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False)

    def variable(self, name: str, *, secret_stores: bool = True) -> Found | None:
        """Look a variable up (environment, ``.env``, then the secret stores), or None."""
        return self.variables.get(name, secret_stores=secret_stores)

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
        """The environments the settings file defines (variables may only overlay them)."""
        names: set[str] = set()
        for source in self.sources_of("toml"):
            names.update(str(name) for name in source.data.get("environments", {}))
        return sorted(names)

    def orphan_environments(self) -> dict[str, str]:
        """Variables that overlay an environment the settings file does not define.

        Each maps the variable's origin to the (lower-cased) environment name it uses.
        """
        known = {name.lower() for name in self.environment_names()}
        orphans: dict[str, str] = {}
        for kind in ("env", "dotenv"):
            for source in self.sources_of(kind):
                for name in source.data.get("environments", {}):
                    if str(name).lower() not in known:
                        orphans[source.describe(("environments", str(name)))] = str(name)
        return orphans

    def __repr__(self) -> str:
        dotenv = display_path(self.dotenv_path) if self.dotenv_path else None
        return f"Settings(path={self.label!r}, dotenv={dotenv!r})"


def orphan_environment_message(settings: Settings, origin: str, name: str) -> str:
    """What to say about a variable that overlays an environment the file does not define."""
    known = settings.environment_names()
    return (
        f"{origin} overlays environment {escape_control(repr(name))}, which {settings.label} "
        f"does not define, so it has no effect.{did_you_mean(name, known)} Defined: "
        f"{', '.join(known) or 'none'}."
    )


def choose_env(settings: Settings, env: str | None, *, from_variables: bool = True) -> str | None:
    """The active environment: ``env``, else ``MODELREG_ENV`` (environment, then ``.env``).

    Raises:
        ConfigError: the environment has no overlay anywhere in the settings.
    """
    origin = KWARG_SOURCE
    if env is None:
        env = settings.options.get("env") if from_variables else None
        if env is None:
            return None
        origin = settings.options.origin("env")
    known = settings.environment_names()
    if env in known:
        return env
    folded: dict[str, list[str]] = {}
    for name in known:
        folded.setdefault(name.lower(), []).append(name)
    if len(folded.get(env.lower(), [])) == 1:
        return folded[env.lower()][0]  # MODELREG_ENV=PROD means prod
    raise ConfigError(
        f"environment {escape_control(repr(env))} (from {origin}) is not defined in "
        f"{settings.label}.{did_you_mean(env, known)} Defined environments: "
        f"{shown_names(known) or 'none'} (add an [environments.NAME] table)."
    )


def _chosen_file(option: tuple[str, str] | None, default: str, what: str) -> Path | None:
    """The file an option names (it must exist), else ``./default`` if it exists."""
    if option is None:
        candidate = Path(default)
        return candidate if candidate.is_file() else None
    chosen = Path(option[0])
    if not chosen.is_file():
        raise ConfigError(
            f"{what} {escape_control(str(chosen))!r} (from {option[1]}) does not exist "
            f"or is not a file. Check the path, or unset it to use ./{default}."
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
            f"{source.describe((*path, shown_key(key, quoted=False)) if not path else (*path, ''))}"
            f": unknown {where} {shown_key(key)}.{did_you_mean(key, allowed)} Allowed: "
            f"{', '.join(sorted(allowed))}."
        )


def _check_shape(source: Source) -> None:
    """Check one source's structure; errors name the source, the path and what is expected."""
    data = source.data
    _check_unknown(source, (), data, TOP_LEVEL_KEYS)
    _expect_string(source, ("default_model",), data.get("default_model"))
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
    env: str | None = None,
    options: Mapping[str, Any] | None = None,
    given_origin: str = KWARG_SOURCE,
) -> Settings:
    """Read the options, the settings file, ``MODELREG_*`` variables and ``.env``.

    Args:
        path: the settings file; default ``MODELREG_SETTINGS``, else ``./settings.toml`` if present.
        dotenv_path: the ``.env`` file; default ``MODELREG_DOTENV``, else ``./.env`` if present.
        env: the environment overlay (the ``MODELREG_ENV`` option); checked by the registry.
        options: any other option by name (``{"secrets_dir": "/run/secrets"}``); above the
            environment, as every argument is.
        given_origin: how to name the arguments above in origins (``--env`` on the CLI...).

    Raises:
        ConfigError: a named file is missing, a source is malformed, an option is invalid.
    """
    from registry.options import (
        early_option,
        load_options,
        unknown_variables,
        warn_unknown_variables,
    )

    environ = dict(os.environ)
    given = {**(options or {}), "settings": path, "dotenv": dotenv_path, "env": env}
    dotenv_file = _chosen_file(
        early_option("dotenv", given, given_origin, environ), DEFAULT_DOTENV_FILE, ".env file"
    )
    dotenv_variables = read_dotenv_variables(dotenv_file)
    dotenv_label = display_path(dotenv_file) if dotenv_file else ".env"
    settings_file = _chosen_file(
        early_option("settings", given, given_origin, environ, dotenv_variables, dotenv_label),
        DEFAULT_SETTINGS_FILE,
        "settings file",
    )
    toml = TomlFileSource(settings_file) if settings_file is not None else None
    loaded = load_options(
        given,
        environ=environ,
        dotenv=dotenv_variables,
        dotenv_label=dotenv_label,
        toml=toml.data if toml else None,
        toml_label=toml.label if toml else "settings.toml",
        given_origin=given_origin,
    )
    unknown = unknown_variables(environ, dotenv_variables)
    warn_unknown_variables(unknown)
    sources: list[Source] = [EnvironmentSource(environ)]
    if dotenv_file is not None:
        sources.append(DotEnvFileSource(dotenv_file, dotenv_variables))
    if toml is not None:
        sources.append(toml)
    for source in sources:
        _check_shape(source)
    return Settings(
        path=settings_file,
        dotenv_path=dotenv_file,
        sources=tuple(sources),
        variables=variable_sources(
            environ, dotenv_variables, dotenv_label, lambda: _secret_stores(loaded)
        ),
        options=loaded,
        unknown_variables=unknown,
        given_options=dict(options or {}),
    )


def _secret_stores(options: LoadedOptions) -> list[Any]:
    from registry.secret_stores import secret_stores

    return secret_stores(options)
