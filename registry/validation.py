"""Turning invalid values into messages that name the field and its origin, never the value.

pydantic's own ``str(ValidationError)`` includes ``input_value=...``, which may be a secret (a key
pasted into the wrong field), and an exception raised while handling another keeps it as
``__context__``. Everything here returns problems as data, so callers raise outside ``except``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from registry.errors import ConfigError, did_you_mean
from registry.masking import shown_key

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "API_CHOICES",
    "Problem",
    "check_api",
    "check_max_retries",
    "check_timeout",
    "checked",
    "config_problems",
    "describe_problems",
    "non_finite_paths",
    "not_a_bool",
    "origin_of",
    "validate",
    "validation_problems",
]

T = TypeVar("T")
R = TypeVar("R")
#: A problem: the dotted field path and what is wrong with it.
Problem = tuple[str, str]
_PREFIXES = ("Value error, ", "Assertion failed, ")


def validation_problems(error: ValidationError, *, prefix: str = "") -> list[Problem]:
    """``(field path, message)`` pairs of a pydantic error, never echoing the input value."""
    problems: dict[str, str] = {}
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        message = item["msg"]
        for noise in _PREFIXES:
            message = message.removeprefix(noise)
        path = ".".join(str(part) for part in item["loc"] if not _is_union_tag(part))
        path = prefix + path if path else prefix.rstrip(".") or "value"
        problems.setdefault(path, message)  # a union reports once per member: keep the first
    return list(problems.items())


def _is_union_tag(part: object) -> bool:
    """Pydantic names the union member in an error's location (``str``, ``dict[str,any]``)."""
    return isinstance(part, str) and (
        part in _TYPE_TAGS or any(ch in part for ch in "[]-") or part.startswith("function-")
    )


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "bytes", "tuple"})


def validate(
    model: type[BaseModel], data: Mapping[str, Any], *, prefix: str = ""
) -> tuple[BaseModel | None, list[Problem]]:
    """``model`` validated from ``data``, or the problems (raising nothing)."""
    try:
        return model.model_validate(dict(data)), []
    except ValidationError as exc:
        problems = validation_problems(exc, prefix=prefix)
    return None, problems


def config_problems(
    config: Mapping[str, Any], model: type[BaseModel]
) -> tuple[BaseModel | None, list[Problem]]:
    """Validate request settings: the instance, or ``(config.key, message)`` problems."""
    allowed = model.model_fields
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        listing = ", ".join(sorted(allowed))
        return None, [
            (
                f"config.{shown_key(key, quoted=False)}",
                f"unknown config key {shown_key(key)}.{did_you_mean(key, allowed)} "
                f"Allowed keys: {listing}.",
            )
            for key in unknown
        ]
    return validate(model, config, prefix="config.")


def non_finite_paths(value: Any, path: str = "", depth: int = 0) -> list[str]:
    """Paths of NaN or infinite numbers anywhere in ``value`` (TOML and JSON both allow them).

    Values nested deeper than 100 levels are reported too: nothing here needs them.
    """
    if depth > 100:
        return [path]
    if type(value) is float:
        return [] if math.isfinite(value) else [path or "value"]
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return []
    found: list[str] = []
    for key, item in items:
        if type(item) in _SCALARS:
            continue
        found += non_finite_paths(item, f"{path}.{key}" if path else str(key), depth + 1)
    return found


_SCALARS = frozenset({str, int, bool, type(None)})


def origin_of(origins: Mapping[str, str], path: str) -> str | None:
    """Where ``path`` (or the closest enclosing field, for ``config.tools.0.type``) came from."""
    parts = path.split(".")
    for size in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:size]))
        if found:
            return found
    return None


def describe_problems(model: str, problems: list[Problem], origins: Mapping[str, str]) -> str:
    """``model 'x', field 'y' (origin): message; ...`` for every problem."""
    described = []
    for path, message in problems:
        origin = origin_of(origins, path)
        where = f" ({origin})" if origin else ""
        described.append(f"model {model!r}, field {path!r}{where}: {message}")
    return "; ".join(described)


def not_a_bool(value: Any) -> Any:
    """A ``before`` validator for numbers: ``timeout = true`` is a mistake, not 1 second."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


def check_timeout(value: Any) -> float:
    """Seconds per attempt: a positive, finite number (not true/false)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive, finite number of seconds")
    return float(value)


def check_max_retries(value: Any) -> int:
    """Retries: a whole number from 0 to 100 (not true/false)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError("must be a whole number from 0 to 100")
    return value


#: The APIs a model can speak (its ``api`` field; CAMEL's ``api_mode``).
API_CHOICES = ("chat_completions", "responses")


def check_api(value: Any) -> str:
    """``"chat_completions"`` or ``"responses"``; anything else is described, not echoed."""
    if isinstance(value, str) and value in API_CHOICES:
        return value
    allowed = " or ".join(f'"{choice}"' for choice in API_CHOICES)
    kind = "the value is not shown" if isinstance(value, str) else f"not {type(value).__name__}"
    raise ValueError(f"must be {allowed} ({kind})")


def checked(check: Callable[[T], R], value: T, where: str) -> R:
    """``check(value)``, or a :class:`ConfigError` ``"{where}: {problem}"`` for its ValueError.

    Raised outside the ``except`` block, so the error carries no ``__context__`` (which could
    hold the value).
    """
    try:
        return check(value)
    except ValueError as exc:
        problem = str(exc)
    raise ConfigError(f"{where}: {problem}")
