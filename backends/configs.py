"""Request settings (``config``): every parameter the installed SDK's create method takes.

A model's ``[models.X.config]`` table, the ``model_config_dict`` constructor argument (CAMEL's
name) and per-call settings are validated here, per API:

* ``chat_completions`` (the default): the parameters of ``chat.completions.create``; a
  parameter only ``responses.create`` has is refused, saying to set ``api = "responses"``;
* ``responses``: those of ``responses.create`` (sent as they are), plus every chat parameter
  (typed as chat types it), which the Responses translation maps (``max_tokens`` →
  ``max_output_tokens``, ``response_format`` → ``text.format``...) or refuses with its reason
  (``stop``, ``n`` above 1: the translation's rule, not this module's); ``tools``,
  ``tool_choice`` and ``stream_options`` in either API's shape;

each plus the SDK's request options ``extra_headers``, ``extra_query`` and ``extra_body``.
Keys and types are the SDK's own (:mod:`backends.sdk_params` reads them from its source without
importing it), so an SDK upgrade needs no edit. On top of the types, the API's ranges
(:data:`RANGES`: temperature 0 to 2, top_p 0 to 1...), header-safe ``extra_headers``, and no
NaN or infinity anywhere; any other unknown key has a did-you-mean. ``response_format`` may
also be a pydantic model class (parsed replies). Messages name the key, never the value.

:func:`config_model_for` is what resolution and the backends call: the schema of one API.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Mapping
from typing import Any, Protocol, Union

from pydantic import BaseModel, TypeAdapter, ValidationError

from registry.errors import ConfigError, did_you_mean
from registry.masking import shown_key
from registry.validation import Problem, config_problems, non_finite_paths, validation_problems
from registry.wire import check_header_values

__all__ = [
    "API_MODES",
    "RANGES",
    "REQUEST_OPTIONS",
    "ConfigSchema",
    "PydanticConfig",
    "RequestConfig",
    "check_model_config",
    "config_model_for",
]

#: The APIs a model can use (``api`` in settings).
API_MODES = ("chat_completions", "responses")
#: Keys whose value may be in either API's shape on the Responses API (chat's is translated).
_EITHER_SHAPE = frozenset({"tools", "tool_choice", "stream_options"})
#: The SDK's per-request options (keyword arguments of every create method, not body fields).
REQUEST_OPTIONS: Mapping[str, Any] = {
    "extra_headers": dict[str, str],
    "extra_query": dict[str, Any],
    "extra_body": dict[str, Any],
}
#: Inclusive (low, high) bounds of numbers, from the OpenAI API reference; None: unbounded.
RANGES: Mapping[str, tuple[float | None, float | None]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "n": (1, 128),
    "max_tokens": (1, None),
    "max_completion_tokens": (1, None),
    "max_output_tokens": (1, None),
    "max_tool_calls": (1, None),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
    "top_logprobs": (0, 20),
}
#: Bounds of every value of a mapping-valued key.
_VALUE_RANGES: Mapping[str, tuple[float, float]] = {"logit_bias": (-100, 100)}
#: Create parameters that are not settings, and where they come from instead.
_NOT_SETTINGS = {
    "messages": "the messages are what run() is given",
    "input": "the input is built from the messages run() is given",
    "model": "the request's model is the model's deployment (or its model field)",
    "timeout": "set the model's timeout field (seconds per attempt) instead",
}


class ConfigSchema(Protocol):
    """What validates one API's request settings (the interface resolution uses)."""

    def keys(self) -> frozenset[str]:
        """Every accepted key."""
        ...

    def check(self, config: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Problem]]:
        """The validated settings, or None and ``(config.key, message)`` problems."""
        ...


def _range_problem(value: Any, low: float | None, high: float | None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None  # the type check (or the NaN check) reports it
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            return f"must be at least {low:g}"
        return f"must be at most {high:g}" if low is None else f"must be from {low:g} to {high:g}"
    return None


def _rule_problems(key: str, value: Any) -> list[Problem]:
    """The ranges and rules beyond the SDK's types."""
    path = f"config.{key}"
    if key in RANGES:
        problem = _range_problem(value, *RANGES[key])
        return [(path, problem)] if problem else []
    if key in _VALUE_RANGES and isinstance(value, Mapping):
        low, high = _VALUE_RANGES[key]
        return [
            (f"{path}.{name}", problem)
            for name, item in value.items()
            if (problem := _range_problem(item, low, high))
        ]
    if key == "extra_headers" and isinstance(value, Mapping):
        try:
            check_header_values(value)
        except ValueError as exc:
            return [(path, str(exc))]
    return []


def _without_tags(problems: list[Problem]) -> list[Problem]:
    """Drop the union members (``~function``) pydantic puts in error locations."""
    from backends.sdk_params import TAG_PREFIX

    cleaned: dict[str, str] = {}
    for path, message in problems:
        parts = [part for part in path.split(".") if not part.startswith(TAG_PREFIX)]
        cleaned.setdefault(".".join(parts), message)
    return list(cleaned.items())


class RequestConfig:
    """The request settings of one API, from the installed SDK (see the module docstring)."""

    def __init__(self, api: str) -> None:
        self.api = api

    @functools.cached_property
    def _sdk(self) -> Any:
        from backends.sdk_params import chat_params, responses_params

        return responses_params() if self.api == "responses" else chat_params()

    @functools.cached_property
    def _chat(self) -> Any:
        from backends.sdk_params import chat_params

        return chat_params()

    def keys(self) -> frozenset[str]:
        """Every key this API's create method accepts as a setting (chat's too, on Responses)."""
        keys = self._sdk.keys() | frozenset(REQUEST_OPTIONS)
        if self.api == "responses":
            keys |= self._chat.keys()
        return frozenset(keys)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def _validator(self, key: str) -> TypeAdapter[Any]:
        if key in REQUEST_OPTIONS:
            return _option_adapter(key)
        if self.api != "responses":
            return self._sdk.adapter(key)  # type: ignore[no-any-return]
        if key in _EITHER_SHAPE:
            return _either_adapter(key)
        if key in self._sdk.keys():  # noqa: SIM118 - a method, not a dict's
            return self._sdk.adapter(key)  # type: ignore[no-any-return]
        return self._chat.adapter(key)  # type: ignore[no-any-return]

    def _unknown(self, key: str, allowed: frozenset[str]) -> str:
        """Why ``key`` is not accepted, and what to do instead."""
        if key in _NOT_SETTINGS:
            return f"{key!r} is not a request setting: {_NOT_SETTINGS[key]}"
        if self.api != "responses" and key in config_model_for("responses"):
            return (
                f"{key!r} is a Responses API parameter, not a chat completions one: set "
                'api = "responses" for this model, or remove it'
            )
        return (
            f"unknown config key {shown_key(key)}.{did_you_mean(str(key), allowed)} Accepted keys "
            f"(the installed openai SDK's {self._method()} parameters): "
            f"{', '.join(sorted(allowed))}."
        )

    def _method(self) -> str:
        if self.api == "responses":
            return "responses.create and (translated) chat.completions.create"
        return "chat.completions.create"

    def check(self, config: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Problem]]:
        """Validate ``config``: the clean settings, or None and every problem.

        An empty config has nothing to check: the SDK's parameter files are not read for it.
        """
        if not config:
            return {}, []
        allowed = self.keys()
        problems: list[Problem] = [
            (f"config.{shown_key(key, quoted=False)}", self._unknown(key, allowed))
            for key in config
            if key not in allowed
        ]
        if problems:
            return None, problems
        clean: dict[str, Any] = {}
        for key, value in config.items():
            if key == "response_format" and _is_model_class(value):
                clean[key] = value  # a parsed reply's schema
                continue
            try:
                clean[key] = self._validator(key).validate_python(value)
            except ValidationError as exc:
                problems += _without_tags(validation_problems(exc, prefix=f"config.{key}."))
                continue
            problems += _rule_problems(key, clean[key])
        return (None, problems) if problems else (clean, [])


def _is_model_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


class PydanticConfig:
    """A backend's own pydantic schema of its settings (``config_model`` on the class)."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def keys(self) -> frozenset[str]:
        """The model's fields."""
        return frozenset(self.model.model_fields)

    def check(self, config: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Problem]]:
        """Validate with the model; the fields that were set."""
        validated, problems = config_problems(config, self.model)
        if validated is None:
            return None, problems
        return {key: getattr(validated, key) for key in validated.model_fields_set}, []


@functools.cache
def _option_adapter(key: str) -> TypeAdapter[Any]:
    return TypeAdapter(REQUEST_OPTIONS[key])


@functools.cache
def _either_adapter(key: str) -> TypeAdapter[Any]:
    """The Responses shape or the chat shape (which the translation converts)."""
    from backends.sdk_params import chat_params, responses_params

    return TypeAdapter(_either(responses_params().type_of(key), chat_params().type_of(key)))


def _either(first: Any, second: Any) -> Any:
    """A type accepting either; two list types become a list of either's items (tools mixed)."""
    if typing.get_origin(first) is list and typing.get_origin(second) is list:
        (item,), (other,) = typing.get_args(first), typing.get_args(second)
        return list[Union[item, other]]  # type: ignore[valid-type]  # noqa: UP007
    return Union[first, second]  # noqa: UP007 - built at run time


def config_model_for(api: str | None = None) -> RequestConfig:
    """The request settings of ``api`` (``chat_completions`` or ``responses``), one per API.

    None, or a value that is not an API (reported as the ``api`` field's own error), is
    ``chat_completions``.
    """
    return _schema("responses" if api == "responses" else "chat_completions")


@functools.cache
def _schema(api: str) -> RequestConfig:
    return RequestConfig(api)


def check_model_config(
    config: Mapping[str, Any] | None,
    *,
    context: str = "model",
    api: str | None = None,
    schema: ConfigSchema | None = None,
) -> dict[str, Any]:
    """Validate request settings: the clean settings, or a ConfigError naming every problem.

    Args:
        config: the request settings (``None`` is an empty one).
        context: whose settings these are, for messages (``"model 'chat'"``).
        api: the API they are for (default chat completions).
        schema: validate with this instead (a backend's own ``config_model``).
    """
    config = config or {}
    validated, problems = (schema or config_model_for(api)).check(config)
    reported = {path for path, _ in problems}
    problems += [
        (f"config.{path}", "must be a finite number")
        for path in non_finite_paths(config)
        if f"config.{path}" not in reported
    ]
    if problems:
        raise ConfigError(f"{context}: " + "; ".join(f"{field}: {msg}" for field, msg in problems))
    assert validated is not None
    return validated
