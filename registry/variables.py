"""Variables: where ``${VAR}`` references and conventional variables are looked up.

The lookup order: the process environment, then ``.env``, then the secret stores registered
through ``modelreg_register_settings_sources`` in their declared order (the secrets directory,
Azure Key Vault, plugins). The secret stores are consulted lazily — only for a variable no earlier
source has — and only for ``${VAR}`` references and credentials, so a model that needs no secret
never reaches them. A value read from a secret store is a secret from that moment.

:func:`substitute` replaces ``${VAR}`` and ``${VAR:-default}`` in settings strings; ``$${`` writes
a literal ``${``. A malformed reference (``${DEPLOY``, ``${1BAD}``) is an error that says what is
wrong without repeating the value.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "Found",
    "MalformedReference",
    "Reference",
    "VariableSource",
    "Variables",
    "find_references",
    "substitute",
    "variable_sources",
]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(rf"\$\{{(?P<name>{_NAME})(?::-(?P<default>[^}}]*))?\}}")


class Found(NamedTuple):
    """A variable's value, where it came from, and whether it is a secret from a secret store."""

    value: str
    origin: str
    secret: bool = False


@dataclass(frozen=True)
class VariableSource:
    """One place variables come from, and how to name a variable found there."""

    kind: str
    lookup: Callable[[str], str | None]
    label: Callable[[str], str]
    secret: bool = False

    def __repr__(self) -> str:
        return f"<VariableSource {self.kind}>"


class Variables:
    """Variables by name: the environment and ``.env``, then (lazily) the secret stores."""

    def __init__(
        self,
        sources: Sequence[VariableSource],
        secret_stores: Callable[[], Sequence[VariableSource]] | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self._build_stores = secret_stores
        self._stores: tuple[VariableSource, ...] | None = None
        self._lock = threading.Lock()

    def get(self, name: str, *, secret_stores: bool = True) -> Found | None:
        """``name``'s value and origin, or None; ``secret_stores=False`` skips the stores."""
        for source in self.sources:
            value = source.lookup(name)
            if value is not None:
                return Found(value, source.label(name), source.secret)
        if not secret_stores:
            return None
        for store in self.stores():
            value = store.lookup(name)
            if value is not None:
                return Found(value, store.label(name), True)
        return None

    def where(self, name: str) -> list[str]:
        """The places ``name`` was looked for (for "not set" messages)."""
        return [source.label(name) for source in (*self.sources, *self.stores())]

    def stores(self) -> tuple[VariableSource, ...]:
        """The secret stores, built on first use (they may import plugins or clients)."""
        if self._stores is None:
            with self._lock:
                if self._stores is None:
                    built = self._build_stores() if self._build_stores else ()
                    self._stores = tuple(built)
        return self._stores

    def __repr__(self) -> str:
        return f"Variables({', '.join(s.kind for s in self.sources)}, secret stores)"


def variable_sources(
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    dotenv_label: str | None,
    secret_stores: Callable[[], Sequence[VariableSource]] | None = None,
) -> Variables:
    """The lookup chain, highest first: the process environment, ``.env``, the secret stores."""
    label = dotenv_label or ".env"
    return Variables(
        [
            VariableSource("env", environ.get, lambda name: f"env {name}"),
            VariableSource("dotenv", dotenv.get, lambda name: f"{label} ({name})"),
        ],
        secret_stores,
    )


@dataclass(frozen=True)
class Reference:
    """A ``${NAME}`` or ``${NAME:-default}`` in a settings string."""

    start: int
    end: int
    name: str
    default: str | None


class MalformedReference(ValueError):
    """A ``${`` that does not start a valid reference; the message does not echo the value."""


def find_references(text: str) -> list[Reference]:
    """Every reference in ``text`` (``$${`` escapes are skipped).

    Raises:
        MalformedReference: a ``${`` with no closing ``}`` or without a valid variable name.
    """
    found: list[Reference] = []
    index = text.find("${")
    while index != -1:
        if index > 0 and text[index - 1] == "$":
            index = text.find("${", index + 2)
            continue
        match = _REFERENCE.match(text, index)
        if match is None:
            raise MalformedReference(_malformed(text, index))
        found.append(Reference(index, match.end(), match["name"], match["default"]))
        index = text.find("${", match.end())
    return found


def _malformed(text: str, index: int) -> str:
    position = f"the ${{ at character {index + 1}"
    closing = text.find("}", index)
    if closing == -1:
        return f"{position} has no closing }}: write ${{NAME}} or ${{NAME:-default}}"
    inner = text[index + 2 : closing]
    name = re.match(_NAME, inner)
    if name is not None and inner[name.end() :].startswith(("-", ":=", "=", "?", ":?")):
        return f"{position} uses a shell form modelreg does not support: write ${{NAME:-default}}"
    return (
        f"{position} is not followed by a valid variable name (a letter or _, then letters, "
        "digits or _); write ${NAME}, or $${ for a literal ${"
    )


def substitute(
    text: str, lookup: Callable[[str], Found | None]
) -> tuple[str, list[Found], list[str]]:
    """Replace references in ``text``: the result, the variables used, the names that are unset.

    A used variable's ``origin`` reads ``${NAME} from <where>`` (or ``unset, default used``).
    """
    references = find_references(text)
    if not references:
        return text.replace("$${", "${"), [], []
    used: list[Found] = []
    missing: list[str] = []
    pieces: list[str] = []
    position = 0
    for ref in references:
        pieces.append(text[position : ref.start].replace("$${", "${"))
        found = lookup(ref.name)
        if found is not None:
            used.append(found._replace(origin=f"${{{ref.name}}} from {found.origin}"))
            pieces.append(found.value)
        elif ref.default is not None:
            used.append(Found(ref.default, f"${{{ref.name}}} unset, default used"))
            pieces.append(ref.default)
        else:
            missing.append(ref.name)
        position = ref.end
    pieces.append(text[position:].replace("$${", "${"))
    return "".join(pieces), used, missing
