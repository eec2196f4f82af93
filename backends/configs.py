"""Request configuration schemas (CAMEL's ``ChatGPTConfig``, extended for current models).

A model's ``[models.X.config]`` table and the ``model_config_dict`` constructor argument are
validated against :class:`ChatGPTConfig`; an unknown key is an error that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from registry.errors import ConfigError
from registry.validation import config_problems, non_finite_paths, not_a_bool
from registry.wire import check_header_values

__all__ = ["ChatGPTConfig", "check_model_config"]


class ChatGPTConfig(BaseModel):
    """Keyword arguments for ``chat.completions.create``; unset fields are not sent."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    # CAMEL's ChatGPTConfig fields; ranges are the OpenAI API reference's.
    tools: list[dict[str, Any]] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=128)
    stream: bool | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    # A dict ({"type": "json_object"} or a json_schema dict) or a pydantic model class.
    response_format: dict[str, Any] | type[BaseModel] | None = None
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    user: str | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    parallel_tool_calls: bool | None = None
    prompt_cache_key: str | None = None
    extra_headers: dict[str, str] | None = None
    # What current models need and CAMEL rejects.
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stream_options: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    extra_body: dict[str, Any] | None = None
    # Keep the reply on the server: chat's stored completions, or (api = "responses") a
    # response that a later one can continue; modelreg sends false there unless set.
    store: bool | None = None

    @field_validator(
        "temperature",
        "top_p",
        "n",
        "max_tokens",
        "presence_penalty",
        "frequency_penalty",
        "max_completion_tokens",
        "seed",
        "top_logprobs",
        mode="before",
    )
    @classmethod
    def _number(cls, value: Any) -> Any:
        return not_a_bool(value)

    @field_validator("extra_headers")
    @classmethod
    def _header_safe(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            check_header_values(value)
        return value

    def as_dict(self) -> dict[str, Any]:
        """Return only the fields that were set, ready to pass to the SDK."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def check_model_config(
    config: Mapping[str, Any] | None,
    *,
    context: str = "model",
    model: type[BaseModel] = ChatGPTConfig,
) -> BaseModel:
    """Validate a ``model_config_dict``; unknown keys raise :class:`ConfigError` naming them.

    Args:
        config: the request configuration (``None`` is an empty one).
        context: words that say whose configuration this is, used in error messages.
        model: the backend's request-config model.
    """
    config = config or {}
    validated, problems = config_problems(config, model)
    problems += [(f"config.{p}", "must be a finite number") for p in non_finite_paths(config)]
    if problems:
        raise ConfigError(f"{context}: " + "; ".join(f"{field}: {msg}" for field, msg in problems))
    assert validated is not None
    return validated
