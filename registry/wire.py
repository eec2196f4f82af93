"""Values that go on the wire: header-safe credentials and headers, SDK-accepted client arguments.

An HTTP library that meets a line break or a non-ASCII character in a header raises an error that
quotes the header — the key. These checks run at resolution (so ``modelreg check`` finds them) and
describe the problem without the value. Client keyword arguments are checked against the installed
SDK client's own constructor signature, not a hand-written list, so an SDK upgrade needs no edit.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from registry.errors import did_you_mean

__all__ = [
    "check_client_kwargs",
    "check_credential",
    "check_header_values",
    "credential_secret",
    "header_problem",
]


def header_problem(value: Any) -> str | None:
    """Why ``value`` cannot be an HTTP header value, or None (the value is never quoted)."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    for index, char in enumerate(value):
        if char in "\r\n":
            return f"contains a line break at character {index + 1} (the value is not shown)"
        if ord(char) < 32 or ord(char) == 127:
            return f"contains a control character at character {index + 1} (not shown)"
        if ord(char) > 127:
            return f"contains a non-ASCII character at character {index + 1} (not shown)"
    return None


def check_credential(value: str | None) -> str | None:
    """A key or token as sent in a header: stripped, blank → None (unset), else header-safe.

    Raises:
        ValueError: a space, line break or other character HTTP headers cannot carry.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if any(ch.isspace() for ch in text):
        raise ValueError(
            "contains a space or line break (the value is not shown); check what was pasted"
        )
    problem = header_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def credential_secret(value: Any) -> Any:
    """A key or token (str or SecretStr) checked by :func:`check_credential`, as a SecretStr."""
    from pydantic import SecretStr

    if value is None:
        return None
    if not isinstance(value, str | SecretStr):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    checked = check_credential(raw)
    return None if checked is None else SecretStr(checked)


def _table_problem(value: Any, *, headers: bool) -> str | None:
    """Why ``value`` is not a usable table of headers (or query parameters), or None."""
    if not isinstance(value, Mapping):
        return (
            f'must be a table of names to values, e.g. {{ X-Name = "value" }}, not '
            f"{type(value).__name__} (the value is not shown)"
        )
    if not headers:
        return None
    try:
        check_header_values(value)
    except ValueError as exc:
        return str(exc)
    return None


def check_header_values(headers: Mapping[str, Any]) -> None:
    """Every header name and value must be something HTTP can carry.

    Raises:
        ValueError: naming the header, never its value.
    """
    for name, value in headers.items():
        if header_problem(name) is not None or not name or any(c in name for c in " :"):
            raise ValueError(
                "a header name is not a valid HTTP token (names are letters, digits, -)"
            )
        problem = header_problem(value)
        if problem:
            raise ValueError(f"header {name!r} {problem}")


@functools.cache
def _parameters(client: str) -> frozenset[str]:
    module_name, _, class_name = client.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    return frozenset(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}


def check_client_kwargs(
    kwargs: Mapping[str, Any], *, client: str, reserved: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Problems with ``client_kwargs`` for the SDK class ``client`` (``"openai.AzureOpenAI"``).

    Args:
        kwargs: the keyword arguments for the client's constructor.
        client: the client class, imported only when ``kwargs`` is not empty.
        reserved: arguments modelreg sets itself → the settings field to use instead.

    Returns:
        ``(client_kwargs.<name>, message)`` pairs; empty when all are accepted.
    """
    if not kwargs:
        return []
    accepted = _parameters(client)
    usable = sorted(p for p in accepted - set(reserved) if not p.startswith("_"))
    problems = []
    for name, value in kwargs.items():
        path = f"client_kwargs.{name}"
        if name in reserved:
            problems.append(
                (path, f"modelreg sets {name!r} itself: use the field {reserved[name]!r}")
            )
        elif name not in accepted or name.startswith("_"):
            problems.append(
                (
                    path,
                    f"{client} does not accept {name!r}.{did_you_mean(name, usable)} "
                    f"Accepted: {', '.join(usable)}.",
                )
            )
        elif name.endswith(("headers", "query")):
            problem = _table_problem(value, headers=name.endswith("headers"))
            if problem:
                problems.append((path, problem))
    return problems
