"""Settings sources: the TOML file, ``MODELREG_*`` environment variables and ``.env``.

Each source turns its input into the nested shape of a settings file and can name where the
value at a path came from (:meth:`describe`), so every resolved value keeps its origin. They are
small on purpose: the TOML file is read with :mod:`tomllib`, ``.env`` with python-dotenv (never
copied into ``os.environ``), and a variable ``MODELREG_A__B__C`` becomes ``{"a": {"b": {"c": v}}}``.
No pydantic here: ``modelreg list`` must start in a fraction of pydantic's import time.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "TOP_LEVEL_KEYS",
    "DotEnvFileSource",
    "EnvironmentSource",
    "Source",
    "TomlFileSource",
    "display_path",
    "env_name",
    "read_dotenv_variables",
]

ENV_PREFIX = "MODELREG_"
_DELIMITER = "__"
#: The keys a settings source may have at its top level.
TOP_LEVEL_KEYS = frozenset(
    {"default_model", "tiktoken_cache_dir", "defaults", "models", "environments"}
)
_TABLE_KEYS = frozenset({"defaults", "models", "environments"})


def env_name(path: tuple[str, ...]) -> str:
    """Return the ``MODELREG_*`` variable for ``path`` (``models.chat.deployment``)."""
    return ENV_PREFIX + _DELIMITER.join(part.upper() for part in path)


def display_path(path: Path) -> str:
    """Show ``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


class Source:
    """One source's data in the shape of a settings file, and how to name its values' origins."""

    kind = "source"

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def describe(self, path: tuple[str, ...]) -> str:  # pragma: no cover - overridden
        """Return a human-readable origin for the value at ``path``."""
        raise NotImplementedError


class TomlFileSource(Source):
    """The settings file; a syntax error names the file and the line."""

    kind = "toml"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = display_path(path)
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{self.label}: not valid TOML: {exc}. Fix the syntax at that line."
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{self.label}: not UTF-8 text ({exc.reason}).") from None
        except OSError as exc:
            raise ConfigError(f"{self.label}: cannot read settings file: {exc.strerror}.") from None
        super().__init__(data)

    def describe(self, path: tuple[str, ...]) -> str:
        """Name the file and the TOML table, e.g. ``settings.toml [models.chat]``."""
        return f"{self.label} [{'.'.join(path[:-1])}]" if len(path) > 1 else self.label


def _nest(variables: Mapping[str, str | None], describe: Any) -> dict[str, Any]:
    """Turn ``MODELREG_A__B=v`` variables into ``{"a": {"b": "v"}}`` (names are lower-cased)."""
    data: dict[str, Any] = {}
    for name in sorted(variables):
        value = variables[name]
        if value is None or not name.upper().startswith(ENV_PREFIX):
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split(_DELIMITER))
        if path[0] not in TOP_LEVEL_KEYS or any(not part for part in path):
            continue  # MODELREG_ENV, MODELREG_PLUGINS ... are not settings values
        parsed: Any = value
        if len(path) == 1 and path[0] in _TABLE_KEYS:
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(
                    f"{describe(path)}: must be a JSON table, e.g. '{{\"chat\": {{...}}}}'; "
                    f"or set single values with {env_name((*path, 'name', 'field'))}."
                ) from None
        table = data
        for depth, part in enumerate(path[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(
                    f"{describe(path)} conflicts with {describe(path[: depth + 1])}: "
                    "one sets a value where the other needs a table. Unset one of them."
                )
        if isinstance(table.get(path[-1]), dict):
            raise ConfigError(
                f"{describe(path)} conflicts with variables below it; unset one of them."
            )
        table[path[-1]] = parsed
    return data


class EnvironmentSource(Source):
    """``MODELREG_*`` variables of the process environment, nested with ``__``."""

    kind = "env"

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(_nest(environ, self.describe))

    def describe(self, path: tuple[str, ...]) -> str:
        """Name the variable, e.g. ``env MODELREG_MODELS__CHAT__DEPLOYMENT``."""
        return f"env {env_name(path)}"


def read_dotenv_variables(path: Path | None) -> dict[str, str]:
    """Every variable of a ``.env`` file (empty when there is none), never put in os.environ."""
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


class DotEnvFileSource(Source):
    """``MODELREG_*`` names in a ``.env`` file (other names serve ``${VAR}`` and fallbacks)."""

    kind = "dotenv"

    def __init__(self, path: Path, variables: Mapping[str, str]) -> None:
        self.path = path
        self.label = display_path(path)
        super().__init__(_nest(variables, self.describe))

    def describe(self, path: tuple[str, ...]) -> str:
        """Name the file and the variable, e.g. ``.env (MODELREG_MODELS__CHAT__API_KEY)``."""
        return f"{self.label} ({env_name(path)})"
