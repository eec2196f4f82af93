"""Settings sources: the TOML file, ``MODELREG_*`` environment variables and ``.env``.

Each source turns its input into the nested shape of a settings file and can name where the
value at a path came from (:meth:`Source.describe`), so every resolved value keeps its origin.
They are small on purpose: the TOML file is read with :mod:`tomllib`, ``.env`` with
python-dotenv's parser (never copied into ``os.environ``), and a variable ``MODELREG_A__B__C``
becomes ``{"a": {"b": {"c": v}}}``. No pydantic here: ``modelreg list`` must start in a fraction
of pydantic's import time.

Variable names are case-insensitive (``MODELREG_MODELS__CHAT__...`` is lower-cased to
``models.chat``); resolution matches the model and environment names they carry against the
settings file's names without regard to case.
"""

from __future__ import annotations

import io
import json
import tomllib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry.errors import ConfigError, RegistryWarning
from registry.masking import escape_control

__all__ = [
    "ENV_PREFIX",
    "FILE_OPTIONS",
    "SETTINGS_PATH_KEYS",
    "TOP_LEVEL_KEYS",
    "DotEnvFileSource",
    "EnvironmentSource",
    "Source",
    "TomlFileSource",
    "decode_text",
    "display_path",
    "env_name",
    "parse_json",
    "read_dotenv_variables",
    "read_text",
]

ENV_PREFIX = "MODELREG_"
_DELIMITER = "__"
#: What ``MODELREG_<PATH>`` variables may set: settings values (the rest are options).
SETTINGS_PATH_KEYS = frozenset({"default_model", "defaults", "models", "environments"})
#: Options that may also be set as a top-level key of settings.toml (see registry.options).
FILE_OPTIONS = ("tiktoken_cache_dir", "secrets_dir", "azure_key_vault_url", "routing_state")
#: The keys a settings source may have at its top level.
TOP_LEVEL_KEYS = SETTINGS_PATH_KEYS | frozenset(FILE_OPTIONS)
_BOM = "\ufeff"


def env_name(path: tuple[str, ...]) -> str:
    """Return the ``MODELREG_*`` variable for ``path`` (``models.chat.deployment``)."""
    return ENV_PREFIX + _DELIMITER.join(part.upper() for part in path)


def display_path(path: Path) -> str:
    """Show ``path`` relative to the working directory when it is below it, else absolute."""
    try:
        shown = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(path.resolve())
    return escape_control(shown)


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file (a leading byte-order mark is dropped with a warning).

    Raises:
        ConfigError: the file cannot be read or is not UTF-8 (naming the line, not the bytes).
    """
    label = display_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read {what}: {exc.strerror}.") from None
    return decode_text(data, label, what)


def decode_text(data: bytes, label: str, what: str) -> str:
    """UTF-8 ``data`` of the file ``label`` (see :func:`read_text`)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problem = f"{label}: not UTF-8 text (line {line}, byte {exc.start})"
        text = ""
    else:
        problem = ""
    if problem:
        raise ConfigError(f"{problem}. Save it as UTF-8.")
    if text.startswith(_BOM):
        warnings.warn(
            f"{label}: {what} starts with a byte-order mark, which was ignored; save it as "
            "UTF-8 without BOM.",
            RegistryWarning,
            stacklevel=2,
        )
        text = text[1:]
    return text


class Source:
    """One source's data in the shape of a settings file, and how to name its values' origins."""

    kind = "source"

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def describe(self, path: tuple[str, ...]) -> str:  # pragma: no cover - overridden
        """Return a human-readable origin for the value at ``path``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self.data)} top-level key(s)>"


class TomlFileSource(Source):
    """The settings file; a syntax error names the file and the line."""

    kind = "toml"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = display_path(path)
        text = read_text(path, "settings file")
        try:
            data = tomllib.loads(text)
            problem = ""
        except tomllib.TOMLDecodeError as exc:
            problem = f"not valid TOML: {exc}. Fix the syntax there."
        except RecursionError:
            problem = "tables or arrays are nested too deeply to read."
        if problem:
            raise ConfigError(f"{self.label}: {problem}")
        super().__init__(data)

    def describe(self, path: tuple[str, ...]) -> str:
        """Name the file and the TOML table, e.g. ``settings.toml [models.chat]``."""
        if len(path) == 1:
            return f"{self.label} ({escape_control(path[0])})"
        if not path:
            return self.label
        return escape_control(f"{self.label} [{'.'.join(path[:-1])}]")


def _is_table_path(path: tuple[str, ...]) -> bool:
    """Whether a settings path must hold a table (``models``, ``models.chat``, ...)."""
    head, depth = path[0], len(path)
    if head == "models":
        return depth <= 2
    if head == "defaults":
        return depth == 1
    if head == "environments":
        if depth == 3:
            return path[2] in ("models", "defaults")
        return depth <= 2 or (depth == 4 and path[2] == "models")
    return False


class _VariableSource(Source):
    """``MODELREG_*`` variables nested with ``__``; each path remembers the variable that set it."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.names: dict[tuple[str, ...], str] = {}
        super().__init__({})
        for name in sorted(variables):
            if name.upper().startswith(ENV_PREFIX):
                self._add(name, variables[name])

    def _label(self, variable: str) -> str:
        raise NotImplementedError

    def describe(self, path: tuple[str, ...]) -> str:
        """The variable that set ``path``, the JSON table it is inside, or the ones below it."""
        for size in range(len(path), 0, -1):
            variable = self.names.get(path[:size])
            if variable is not None:
                return self._label(variable)
        below = sorted(v for p, v in self.names.items() if p[: len(path)] == path)
        if below:
            return ", ".join(self._label(variable) for variable in below)
        return self._label(env_name(path))

    def _add(self, name: str, value: str) -> None:
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split(_DELIMITER))
        if path[0] not in SETTINGS_PATH_KEYS or any(not part for part in path):
            return  # MODELREG_ENV, MODELREG_PLUGINS ... are options, not settings values
        if path in self.names:
            raise ConfigError(
                f"{self._label(name)} and {self._label(self.names[path])} set the same value "
                "(variable names are case-insensitive). Unset one of them."
            )
        parsed: Any = value
        if _is_table_path(path):
            parsed, problem = parse_json(value, table=True)
            if problem:
                raise ConfigError(f"{self._label(name)}: {problem}. {_table_hint(path)}")
        self.names[path] = name
        self._store(path, parsed)

    def _store(self, path: tuple[str, ...], value: Any) -> None:
        table = self.data
        for depth, part in enumerate(path[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(
                    f"{self.describe(path)} conflicts with {self.describe(path[: depth + 1])}: "
                    "one sets a value where the other needs a table. Unset one of them."
                )
        if isinstance(table.get(path[-1]), dict) and not isinstance(value, dict):
            raise ConfigError(
                f"{self.describe(path)} conflicts with variables below it; unset one of them."
            )
        if isinstance(value, dict) and isinstance(table.get(path[-1]), dict):
            value = {**value, **table[path[-1]]}  # more specific variables win
        table[path[-1]] = value


def parse_json(text: str, *, table: bool = False) -> tuple[Any, str]:
    """JSON from a variable, and ``""`` — or None and what is wrong (never the text itself).

    Parsed here, not in an ``except`` block of the caller's, so no error carries the text.
    """
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        problem = "is JSON nested too deeply"
    else:
        if table and not isinstance(parsed, dict):
            return None, f"must be a JSON table ({{...}}), not {type(parsed).__name__}"
        return parsed, ""
    return None, problem + "; the value is not shown"


def _table_hint(path: tuple[str, ...]) -> str:
    """How to write the table variable at ``path``, or single values below it."""
    below: tuple[str, ...]
    if path in (("models",), ("environments",)):
        example, below = '{"chat": {"backend": "azure", ...}}', (*path, "<NAME>", "<FIELD>")
    else:
        example, below = '{"<field>": ..., ...}', (*path, "<FIELD>")
    return f"Write it as {example}, or set single values with {env_name(below)}."


class EnvironmentSource(_VariableSource):
    """``MODELREG_*`` variables of the process environment, nested with ``__``."""

    kind = "env"

    def _label(self, variable: str) -> str:
        return f"env {escape_control(variable)}"


def _parse_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file with python-dotenv's parser; bad lines are warned about by number."""
    from dotenv.main import resolve_variables
    from dotenv.parser import parse_stream

    label = display_path(path)
    pairs: list[tuple[str, str | None]] = []
    for binding in parse_stream(io.StringIO(read_text(path, ".env file"))):
        if binding.error:
            warnings.warn(
                f"{label}, line {binding.original.line}: python-dotenv cannot parse this line; "
                "it was skipped (its text is not shown). Write NAME=value.",
                RegistryWarning,
                stacklevel=3,
            )
        elif binding.key is not None:
            pairs.append((binding.key, binding.value))
    values = resolve_variables(pairs, override=True)
    return {key: value for key, value in values.items() if value is not None}


def read_dotenv_variables(path: Path | None) -> dict[str, str]:
    """Every variable of a ``.env`` file (empty when there is none), never put in os.environ."""
    if path is None or not path.is_file():
        return {}
    return _parse_dotenv(path)


class DotEnvFileSource(_VariableSource):
    """``MODELREG_*`` names in a ``.env`` file (other names serve ``${VAR}`` and fallbacks)."""

    kind = "dotenv"

    def __init__(self, path: Path, variables: Mapping[str, str]) -> None:
        self.path = path
        self.label = display_path(path)
        super().__init__(variables)

    def _label(self, variable: str) -> str:
        return f"{self.label} ({escape_control(variable)})"
