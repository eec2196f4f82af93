"""Request configuration schemas (CAMEL's ``ChatGPTConfig``, extended for current models).

A model's ``[models.X.config]`` table and the ``model_config_dict`` constructor argument are
validated against :class:`ChatGPTConfig`; an unknown key is an error that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from registry.errors import ConfigError, did_you_mean

__all__ = ["ChatGPTConfig", "check_model_config", "config_problems", "validation_problems"]


class ChatGPTConfig(BaseModel):
    """Keyword arguments for ``chat.completions.create``; unset fields are not sent."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    # CAMEL's ChatGPTConfig fields.
    tools: list[dict[str, Any]] | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stream: bool | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    # A dict ({"type": "json_object"} or a json_schema dict) or a pydantic model class.
    response_format: dict[str, Any] | type[BaseModel] | None = None
    logit_bias: dict[str, int] | None = None
    user: str | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    parallel_tool_calls: bool | None = None
    prompt_cache_key: str | None = None
    extra_headers: dict[str, str] | None = None
    # What current models need and CAMEL rejects.
    max_completion_tokens: int | None = None
    seed: int | None = None
    stream_options: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    extra_body: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return only the fields that were set, ready to pass to the SDK."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def validation_problems(error: ValidationError, *, prefix: str = "") -> list[tuple[str, str]]:
    """``(field path, message)`` pairs of a pydantic error, never echoing the input value.

    pydantic's own ``str()`` includes ``input_value=...``, which may be a secret.
    """
    return [
        (prefix + ".".join(str(part) for part in item["loc"]) or "value", item["msg"])
        for item in error.errors(include_url=False, include_input=False)
    ]


def config_problems(
    config: Mapping[str, Any], model: type[BaseModel] = ChatGPTConfig
) -> tuple[BaseModel | None, list[tuple[str, str]]]:
    """Validate a request configuration: the instance, or ``(field, message)`` problems."""
    allowed = model.model_fields
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        listing = ", ".join(sorted(allowed))
        return None, [
            (
                f"config.{key}",
                f"unknown config key {key!r}.{did_you_mean(key, allowed)} Allowed keys: {listing}.",
            )
            for key in unknown
        ]
    try:
        return model.model_validate(dict(config)), []
    except ValidationError as exc:
        return None, validation_problems(exc, prefix="config.")


def check_model_config(
    config: Mapping[str, Any] | None, *, context: str = "model"
) -> ChatGPTConfig:
    """Validate a ``model_config_dict``; unknown keys raise :class:`ConfigError` naming them.

    Args:
        config: the request configuration (``None`` is an empty one).
        context: words that say whose configuration this is, used in error messages.
    """
    validated, problems = config_problems(config or {})
    if problems:
        raise ConfigError(f"{context}: " + "; ".join(f"{field}: {msg}" for field, msg in problems))
    assert isinstance(validated, ChatGPTConfig)
    return validated
