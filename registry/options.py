"""The registry's own options (``MODELREG_SETTINGS``, ``MODELREG_ENV``...), read one way.

Every option is read the same way, highest first: a keyword argument or CLI flag, the process
environment, ``.env``, then — for the options that may live in a file (:data:`FILE_OPTIONS`) — a
top-level key of ``settings.toml``. They are defined by one pydantic-settings ``BaseSettings``
(:class:`registry.options_model.RegistryOptions`); the environment and ``.env`` are read with its
``EnvSettingsSource`` (prefix ``MODELREG_``, case-insensitive), and each option keeps the origin
it came from, for ``modelreg config`` (:func:`registry_options`).

Settings *values* (``MODELREG_MODELS__CHAT__DEPLOYMENT``) are not options: modelreg's own readers
handle them (:mod:`registry.sources`), because they keep per-field provenance. A ``MODELREG_*``
variable that is neither an option nor a settings path gets a warning with a did-you-mean.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import ConfigError, RegistryWarning, did_you_mean
from registry.masking import escape_control, mask_url
from registry.precedence import KWARG_SOURCE
from registry.sources import ENV_PREFIX, FILE_OPTIONS, SETTINGS_PATH_KEYS

__all__ = [
    "FILE_OPTIONS",
    "LoadedOptions",
    "OptionValue",
    "early_option",
    "load_options",
    "process_options",
    "registry_options",
    "unknown_variable_message",
    "unknown_variables",
    "warn_unknown_variables",
]

_warned: set[str] = set()
_warned_lock = threading.Lock()


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
    """The options that are set, validated, and where each came from.

    An option that is set nowhere has its default (``built-in default``); :meth:`get` returns
    None for it (``disable_plugins``: an empty list).
    """

    parsed: Mapping[str, Any] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """The validated value of option ``name``, or None when it is not set."""
        return self.parsed.get(name)

    def origin(self, name: str) -> str:
        """Where option ``name`` came from."""
        return self.origins.get(name, "built-in default")

    def describe(self) -> list[OptionValue]:
        """Every option with its variable, value (the default when unset) and source."""
        from registry.options_model import RegistryOptions

        return [
            OptionValue(
                name,
                ENV_PREFIX + name.upper(),
                self.parsed.get(name, info.get_default(call_default_factory=True)),
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


def early_option(
    name: str,
    given: Mapping[str, Any],
    given_origin: str,
    environ: Mapping[str, str],
    dotenv: Mapping[str, str] | None = None,
    dotenv_label: str = ".env",
) -> tuple[str, str] | None:
    """A path option needed before the rest can be read (which ``.env``, which settings file).

    The same order as :func:`load_options` (argument, environment, ``.env``); the full, typed
    reading follows once the files are known, and reports the same value and origin.
    """
    if given.get(name) is not None:
        return str(given[name]), given_origin
    variable = ENV_PREFIX + name.upper()
    for kind, values in (("env", environ), ("dotenv", dotenv or {})):
        found = next((v for k, v in values.items() if k.upper() == variable), None)
        if found:
            return found, _origin_label(kind, name, dotenv_label, "")
    return None


def _option_like(variables: Mapping[str, str]) -> bool:
    """Whether any ``MODELREG_*`` name is not a settings path (an option, or a misspelling)."""
    for name in variables:
        upper = name.upper()
        if upper.startswith(ENV_PREFIX):
            head = upper[len(ENV_PREFIX) :].split("__")[0].lower()
            if head not in SETTINGS_PATH_KEYS:
                return True
    return False


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

    When no option is given anywhere, every option has its default and pydantic-settings is
    not even imported (it costs about as much as the rest of ``create_model``).

    Raises:
        ConfigError: an option's value is invalid; the message names the variable and its origin
            but not the value.
    """
    given = {k: v for k, v in given.items() if v is not None}
    in_file = {k: toml[k] for k in FILE_OPTIONS if toml and k in toml}
    if not (given or in_file or _option_like(environ) or _option_like(dotenv)):
        return LoadedOptions()
    from registry.options_model import environment_values, parse

    layers: list[tuple[str, Mapping[str, Any]]] = [
        (given_origin, given),
        ("env", environment_values(environ)),
        ("dotenv", environment_values(dotenv)),
        ("toml", in_file),
    ]
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for kind, values in layers:
        for name, value in values.items():
            if name not in merged:
                merged[name] = value
                origins[name] = _origin_label(kind, name, dotenv_label, toml_label)
    parsed, problems = parse(merged)
    if problems:
        raise ConfigError("; ".join(_problem(path, message, origins) for path, message in problems))
    return LoadedOptions(parsed, origins)


def _problem(path: str, message: str, origins: Mapping[str, str]) -> str:
    name = path.split(".")[0]
    origin = origins.get(name, KWARG_SOURCE)
    where = f"option {name!r} ({origin})" if origin == KWARG_SOURCE else origin
    return f"{where}: {message} (the value is not shown)"


def unknown_variables(*variables: Mapping[str, str]) -> dict[str, str]:
    """``MODELREG_*`` names that are neither options nor settings paths → a did-you-mean hint."""
    if not any(_option_like(mapping) for mapping in variables):
        return {}
    from registry.options_model import option_names

    options = option_names()
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
    chosen = early_option("dotenv", {}, KWARG_SOURCE, environ)
    path = Path(chosen[0]) if chosen else Path(".env")
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
