"""Variables: where ``${VAR}`` references and conventional variables are looked up.

The lookup order is written once, in :func:`variable_sources`: the process environment, then
``.env``. (A new variable source — a secrets directory, a vault — is one more entry there and one
row in the README.) :func:`substitute` replaces ``${VAR}`` and ``${VAR:-default}`` in settings
strings; ``$${`` writes a literal ``${``. A malformed reference (``${DEPLOY``, ``${1BAD}``) is an
error that says what is wrong without repeating the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
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


@dataclass(frozen=True)
class VariableSource:
    """One place variables come from, and how to name a variable found there."""

    kind: str
    values: Mapping[str, str]
    label: Callable[[str], str]

    def __repr__(self) -> str:
        return f"<VariableSource {self.kind}: {len(self.values)} variable(s)>"


class Variables:
    """Variables by name from several sources, highest first: ``(value, origin)``."""

    def __init__(self, sources: Sequence[VariableSource]) -> None:
        self.sources = tuple(sources)

    def get(self, name: str) -> tuple[str, str] | None:
        """The value of ``name`` and where it came from, or None when no source has it."""
        for source in self.sources:
            value = source.values.get(name)
            if value is not None:
                return value, source.label(name)
        return None

    def __repr__(self) -> str:
        return f"Variables({', '.join(s.kind for s in self.sources)})"


def variable_sources(
    environ: Mapping[str, str], dotenv: Mapping[str, str], dotenv_label: str | None
) -> Variables:
    """The lookup chain, highest first: the process environment, then ``.env``."""
    label = dotenv_label or ".env"
    return Variables(
        [
            VariableSource("env", environ, lambda name: f"env {name}"),
            VariableSource("dotenv", dotenv, lambda name: f"{label} ({name})"),
        ]
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
    text: str, lookup: Callable[[str], tuple[str, str] | None]
) -> tuple[str, list[str], list[str]]:
    """Replace references in ``text``: the result, what was used (for origins), what is unset."""
    references = find_references(text)
    if not references:
        return text.replace("$${", "${"), [], []
    used: list[str] = []
    missing: list[str] = []
    pieces: list[str] = []
    position = 0
    for ref in references:
        pieces.append(text[position : ref.start].replace("$${", "${"))
        found = lookup(ref.name)
        if found is not None:
            used.append(f"${{{ref.name}}} from {found[1]}")
            pieces.append(found[0])
        elif ref.default is not None:
            used.append(f"${{{ref.name}}} unset, default used")
            pieces.append(ref.default)
        else:
            missing.append(ref.name)
        position = ref.end
    pieces.append(text[position:].replace("$${", "${"))
    return "".join(pieces), used, missing
