"""Request configuration schemas (CAMEL's ``ChatGPTConfig``, extended for current models).

A model's ``[models.X.config]`` table and the ``model_config_dict`` constructor argument are
validated against :class:`ChatGPTConfig`; an unknown key is an error that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from registry.errors import ConfigError, did_you_mean

__all__ = ["ChatGPTConfig", "check_model_config", "format_validation_error"]


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


_CONFIG_FIELDS = frozenset(ChatGPTConfig.model_fields)


def format_validation_error(error: ValidationError, *, prefix: str = "") -> str:
    """Render a pydantic error as ``field: message`` lines, never echoing the input value.

    pydantic's own ``str()`` includes ``input_value=...``, which may be a secret.
    """
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in item["loc"])
        field = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "value"
        lines.append(f"{field}: {item['msg']}")
    return "; ".join(lines)


def check_model_config(
    config: Mapping[str, Any] | None, *, context: str = "model"
) -> ChatGPTConfig:
    """Validate a ``model_config_dict``; unknown keys raise :class:`ConfigError` naming them.

    Args:
        config: the request configuration (``None`` is an empty one).
        context: words that say whose configuration this is, used in error messages.
    """
    config = dict(config or {})
    unknown = sorted(set(config) - _CONFIG_FIELDS)
    if unknown:
        hints = "".join(did_you_mean(key, _CONFIG_FIELDS) for key in unknown)
        raise ConfigError(
            f"{context}: unknown config key(s) {', '.join(map(repr, unknown))}.{hints} "
            f"Allowed keys: {', '.join(sorted(_CONFIG_FIELDS))}."
        )
    try:
        return ChatGPTConfig.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(f"{context}: {format_validation_error(exc, prefix='config.')}") from None
