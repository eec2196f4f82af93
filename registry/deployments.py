"""Deployment pools in settings: ``[[models.NAME.deployments]]``, one entry per deployment.

Each entry is a partial model table over the backend's own fields (``deployment``, ``endpoint``,
``api_key``, ``api_version``...) plus ``weight``: the model's own values fill what an entry does
not set, and every value keeps its origin (``settings.toml [models.chat] deployments #2``). An
environment overlay that sets ``deployments`` replaces the whole list (lists never merge). Every
entry has the model's base ``model``: moving to another model is a fallback, not a pool member.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from registry.errors import ConfigError, did_you_mean
from registry.layers import Fields, Sourced
from registry.masking import shown_key
from registry.precedence import DEFAULTS_LEVEL

if TYPE_CHECKING:
    from registry.resolve import Resolved

__all__ = ["DEPLOYMENTS", "ENTRY_FIELDS", "DeploymentSpec", "Entry", "split_deployments"]

DEPLOYMENTS = "deployments"
#: Fields an entry may set besides the backend's own.
ENTRY_FIELDS = frozenset({"weight", "model"})


@dataclass(frozen=True)
class DeploymentSpec:
    """One member of a pool, validated.

    Attributes:
        index: its position in the list, from 1.
        weight: its share of the ``weighted`` routing (a number >= 0; 0: a standby).
        options: the backend's fields for it (the model's, with the entry's on top).
        sources: where the entry's own fields came from (``weight``, ``endpoint``...).
        secret_values: its fields whose value came from a secret store.
    """

    index: int
    weight: float
    options: BaseModel
    sources: Mapping[str, str] = field(default_factory=dict)
    secret_values: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"DeploymentSpec(index={self.index}, weight={self.weight})"


@dataclass
class Entry:
    """An entry's fields (the model's backend fields with its own on top), before validation."""

    index: int
    fields: Fields
    own: frozenset[str]


def _entries(name: str, sourced: Sourced) -> list[Mapping[str, Any]]:
    value = sourced.value
    if sourced.level == DEFAULTS_LEVEL:
        raise ConfigError(
            f"{sourced.origin}: deployments cannot be a default; set them in the model's table."
        )
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"model {name!r}, field 'deployments' ({sourced.origin}): must be a non-empty list "
            "of tables, one per deployment ([[models.NAME.deployments]] in TOML)."
        )
    for index, entry in enumerate(value, 1):
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"model {name!r}, field 'deployments' ({sourced.origin}): entry #{index} must be "
                f"a table, not {type(entry).__name__}."
            )
    return value


def _entry(
    resolved: Resolved,
    pool: Sourced,
    index: int,
    entry: Mapping[str, Any],
    backend_fields: Collection[str],
) -> Entry:
    """The entry's fields over the model's; an entry's credential replaces the model's."""
    origin = f"{pool.origin} deployment #{index}"
    allowed = frozenset(backend_fields) | ENTRY_FIELDS
    for key in entry:
        if key not in allowed:
            raise ConfigError(
                f"model {resolved.name!r} ({origin}): unknown field "
                f"{shown_key(key)} in a deployment.{did_you_mean(str(key), allowed)} "
                f"A deployment may set: {', '.join(sorted(allowed))}."
            )
    fields = {k: v for k, v in resolved.fields.items() if k in backend_fields}
    groups: tuple[tuple[str, ...], ...] = getattr(resolved.backend_cls, "exclusive_fallbacks", ())
    for group in groups:
        if any(key in entry for key in group):
            for key in group:
                fields.pop(key, None)
    fields.update({k: Sourced(v, origin, pool.level, pool.rank) for k, v in entry.items()})
    return Entry(index, fields, frozenset(entry))


def split_deployments(
    resolved: Resolved, pool: Sourced, backend_fields: Collection[str]
) -> list[Entry]:
    """Each entry of ``pool`` (the ``deployments`` field) as fields with origins."""
    entries = [
        _entry(resolved, pool, index, entry, backend_fields)
        for index, entry in enumerate(_entries(resolved.name, pool), 1)
    ]
    expected = resolved.fields["model"].value if "model" in resolved.fields else None
    for entry in entries:
        own = entry.fields.pop("model", None)
        if own is not None and own.value != expected:
            raise ConfigError(
                f"model {resolved.name!r} ({own.origin}): deployment #{entry.index} sets another "
                "base model than the pool's: a pool's deployments share one base model (moving "
                'to another model is a fallback: fallbacks = ["other-name"]).'
            )
    return entries


def entry_weight(entry: Entry, name: str) -> float:
    """An entry's ``weight`` (default 1; 0 is a standby, used while every weighted one cools)."""
    sourced = entry.fields.get("weight")
    if sourced is None:
        return 1.0
    value = sourced.value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
        raise ConfigError(
            f"model {name!r}, field 'deployments' ({sourced.origin}): weight must be a number "
            "from 0 (a standby) to 1e9 (the value is not shown)."
        )
    return float(value)
