"""The precedence of settings values, written once.

:data:`LEVELS` is the README's table "Where values come from": each level says which settings
tables supply it, and :func:`model_tables` walks them in that order, so resolution, ``modelreg
list`` and ``show`` cannot disagree. A test compares the README's table with :data:`LEVELS`.

Within a level, an environment overlay (``[environments.<env>...]``) comes before the base table
of the same source. ``MODELREG_*`` names are case-insensitive, so a variable's model and
environment names match the settings file's names without regard to case.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.settings import Settings
    from registry.sources import Source

__all__ = [
    "BUILTIN_LEVEL",
    "BUILTIN_SOURCE",
    "CONVENTIONAL_LEVEL",
    "DEFAULTS_LEVEL",
    "KWARG_SOURCE",
    "LEVELS",
    "SOURCE_ORDER",
    "Level",
    "Slot",
    "Table",
    "lookup",
    "model_tables",
    "root_values",
]

KWARG_SOURCE = "keyword argument"
BUILTIN_SOURCE = "built-in default"


@dataclass(frozen=True)
class Slot:
    """Where a level's tables are read: a source kind, model or defaults tables, overlay or not."""

    source: str  # "keyword" | "env" | "dotenv" | "toml"
    scope: str  # "model" | "defaults"
    overlay: bool


@dataclass(frozen=True)
class Level:
    """One row of the precedence table."""

    number: int
    title: str
    slots: tuple[Slot, ...] = ()


def _both(source: str, scope: str) -> tuple[Slot, ...]:
    return (Slot(source, scope, True), Slot(source, scope, False))


LEVELS: tuple[Level, ...] = (
    Level(
        1,
        "keyword arguments to `create_model` / `ModelRegistry.create`",
        (Slot("keyword", "model", False),),
    ),
    Level(2, "`MODELREG_*` environment variables, nested with `__`", _both("env", "model")),
    Level(
        3,
        "the same names in `.env` (read with python-dotenv, never put into `os.environ`)",
        _both("dotenv", "model"),
    ),
    Level(4, "`[environments.<env>.models.<name>]`", (Slot("toml", "model", True),)),
    Level(5, "`[models.<name>]`", (Slot("toml", "model", False),)),
    Level(
        6,
        "`[defaults]` (and `[environments.<env>.defaults]` above it)",
        _both("env", "defaults") + _both("dotenv", "defaults") + _both("toml", "defaults"),
    ),
    Level(7, "the backend's conventional variables"),
    Level(8, "built-in defaults"),
)
DEFAULTS_LEVEL = 6
CONVENTIONAL_LEVEL = 7
BUILTIN_LEVEL = 8
#: Sources in precedence order (also the order of top-level values such as ``default_model``).
SOURCE_ORDER: tuple[str, ...] = tuple(
    dict.fromkeys(slot.source for level in LEVELS for slot in level.slots)
)


@dataclass(frozen=True)
class Table:
    """One settings table that applies to a model, with its place in the precedence."""

    level: int
    rank: int
    data: Mapping[str, Any]
    path: tuple[str, ...]
    source: Source | None  # None: keyword arguments

    @property
    def from_variables(self) -> bool:
        """Values from variables are strings; JSON lists and tables in them are decoded."""
        return self.source is not None and self.source.kind != "toml"

    def origin(self, *keys: str) -> str:
        """Where the value at ``keys`` in this table came from."""
        if self.source is None:
            return KWARG_SOURCE
        return self.source.describe((*self.path, *keys))


def lookup(data: Mapping[str, Any], path: tuple[str, ...], *, fold_case: bool) -> Any:
    """The value at ``path`` in nested ``data``, or None (case-insensitively for variables)."""
    found: Any = data
    for part in path:
        if not isinstance(found, Mapping):
            return None
        found = found.get(part.lower() if fold_case else part)
        if found is None:
            return None
    return found


def _slot_path(slot: Slot, name: str, env: str | None) -> tuple[str, ...] | None:
    base = ("models", name) if slot.scope == "model" else ("defaults",)
    if not slot.overlay:
        return base
    return None if env is None else ("environments", env, *base)


def model_tables(
    settings: Settings, name: str, env: str | None, overrides: Mapping[str, Any]
) -> Iterator[Table]:
    """Every table that applies to model ``name`` in ``env``, highest precedence first."""
    rank = 0
    for level in LEVELS:
        for slot in level.slots:
            if slot.source == "keyword":
                if overrides:
                    yield Table(level.number, -1, overrides, (), None)
                continue
            path = _slot_path(slot, name, env)
            if path is None:
                continue
            for source in settings.sources_of(slot.source):
                data = lookup(source.data, path, fold_case=slot.source != "toml")
                if data is not None:
                    key_path = tuple(p.lower() for p in path) if slot.source != "toml" else path
                    yield Table(level.number, rank, data, key_path, source)
                    rank += 1


def root_values(settings: Settings, env: str | None, key: str) -> Iterator[tuple[Any, str]]:
    """A top-level value (``default_model``...) from every source, highest first, with origins.

    The overlay's ``[environments.<env>]`` value comes before the same source's top-level one.
    """
    for kind in SOURCE_ORDER:
        for source in settings.sources_of(kind):
            fold = kind != "toml"
            paths = [(key,)] if env is None else [("environments", env, key), (key,)]
            for path in paths:
                value = lookup(source.data, path, fold_case=fold)
                if value is not None:
                    shown = tuple(p.lower() for p in path) if fold else path
                    yield value, source.describe(shown)
