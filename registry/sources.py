"""Settings sources: the TOML file, ``MODELREG_*`` environment variables and ``.env``.

Each source is a pydantic-settings source (so parsing of nested ``__`` names, JSON values and
``.env`` files is the library's), extended with :meth:`describe`, which names where a value
at a given path came from. The registry keeps the sources apart instead of letting
pydantic-settings merge them, so that every resolved value can say which source supplied it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources import InitSettingsSource

from registry.errors import ConfigError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = [
    "ENV_PREFIX",
    "DotEnvFileSource",
    "EnvironmentSource",
    "LabelledSource",
    "TomlFileSource",
    "display_path",
    "env_name",
]

ENV_PREFIX = "MODELREG_"
_DELIMITER = "__"


def env_name(path: tuple[str, ...]) -> str:
    """Return the ``MODELREG_*`` variable for ``path`` (``models.chat.deployment``)."""
    return ENV_PREFIX + _DELIMITER.join(part.upper() for part in path)


def display_path(path: Path) -> str:
    """Show ``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


class LabelledSource(PydanticBaseSettingsSource):
    """A source that can describe where the value at a path came from."""

    kind: str = "source"

    def describe(self, path: tuple[str, ...]) -> str:  # pragma: no cover - overridden
        """Return a human-readable origin for the value at ``path``."""
        raise NotImplementedError


class TomlFileSource(InitSettingsSource, LabelledSource):
    """The settings file, read with :mod:`tomllib`; a syntax error names the file and line."""

    kind = "toml"

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
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
        super().__init__(settings_cls, data)

    def __call__(self) -> dict[str, Any]:
        """The parsed file."""
        return dict(self.init_kwargs)

    def describe(self, path: tuple[str, ...]) -> str:
        """Name the file and the TOML table, e.g. ``settings.toml [models.chat]``."""
        return f"{self.label} [{'.'.join(path[:-1])}]" if len(path) > 1 else self.label


class EnvironmentSource(EnvSettingsSource, LabelledSource):
    """``MODELREG_*`` variables of the process environment, nested with ``__``."""

    kind = "env"

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, env_prefix=ENV_PREFIX, env_nested_delimiter=_DELIMITER)

    def describe(self, path: tuple[str, ...]) -> str:
        """Name the variable, e.g. ``env MODELREG_MODELS__CHAT__DEPLOYMENT``."""
        return f"env {env_name(path)}"


class DotEnvFileSource(DotEnvSettingsSource, LabelledSource):
    """``MODELREG_*`` names in a ``.env`` file, read by python-dotenv, never put in os.environ."""

    kind = "dotenv"

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self.path = path
        self.label = display_path(path)
        super().__init__(
            settings_cls, env_file=path, env_prefix=ENV_PREFIX, env_nested_delimiter=_DELIMITER
        )

    def __call__(self) -> dict[str, Any]:
        """The settings-shaped ``MODELREG_*`` names of the file."""
        # Other names in .env (AZURE_OPENAI_API_KEY, ...) are not settings fields; they are
        # read separately as variables for ${VAR} and the backends' conventional fallbacks.
        fields = self.settings_cls.model_fields
        return {key: value for key, value in super().__call__().items() if key in fields}

    def describe(self, path: tuple[str, ...]) -> str:
        """Name the file and the variable, e.g. ``.env (MODELREG_MODELS__CHAT__API_KEY)``."""
        return f"{self.label} ({env_name(path)})"


def read_dotenv_variables(path: Path | None) -> dict[str, str]:
    """Return every variable of a ``.env`` file (empty when there is none), without os.environ."""
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def environ_snapshot() -> dict[str, str]:
    """Copy of the process environment, taken once per settings load."""
    return dict(os.environ)
