"""The shape of capability data, in settings (``[models.NAME.capabilities]``) and from plugins.

The registry owns this contract, as it owns the hooks: resolution checks a model's
``capabilities`` table with it (so ``modelreg check`` names ``capabilities.context_window`` and
where it was set), and the plugin host checks what a plugin registers (so ``modelreg plugins``
shows invalid data as that plugin's error) — neither imports a backend module. What the
capabilities *mean* (the table, the merge, the lookups) is :mod:`backends.capabilities`.
Messages never show a value: a key may have been pasted into the wrong field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
)

from registry.errors import did_you_mean
from registry.masking import shown_key
from registry.validation import Problem, not_a_bool, validate

__all__ = [
    "CAPABILITY_KEYS",
    "IMAGE_RULE_KEYS",
    "CapabilityValues",
    "EntryValues",
    "capability_problems",
    "clean_capabilities",
]


class ImageRuleValues(BaseModel):
    """Fields of an ``image_tokens`` table; unset fields keep the inherited rule's."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["tile", "patch"] | None = None
    base_tokens: NonNegativeInt | None = None
    tile_tokens: NonNegativeInt | None = None
    multiplier: PositiveFloat | None = None
    max_patches: PositiveInt | None = None
    exact: bool | None = None
    note: str | None = None

    _numbers = field_validator(
        "base_tokens", "tile_tokens", "multiplier", "max_patches", mode="before"
    )(not_a_bool)


class CapabilityValues(BaseModel):
    """What settings may override: every capability, each optional."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    context_window: PositiveInt | None = None
    max_input_tokens: PositiveInt | None = None
    max_output_tokens: PositiveInt | None = None
    vision: bool | None = None
    tools: bool | None = None
    structured_outputs: bool | None = None
    responses_api: bool | None = None
    reasoning: bool | None = None
    system_messages: bool | None = None
    rejected_params: list[str] | None = None
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = None
    image_tokens: ImageRuleValues | None = None

    _numbers = field_validator(
        "context_window", "max_input_tokens", "max_output_tokens", mode="before"
    )(not_a_bool)


class EntryValues(CapabilityValues):
    """A table or plugin entry: the capabilities plus where they come from."""

    extends: str | None = None
    source: list[str] | None = None
    notes: dict[str, str] | None = None


#: The keys ``[models.NAME.capabilities]`` accepts.
CAPABILITY_KEYS: tuple[str, ...] = tuple(CapabilityValues.model_fields)
#: The keys of an ``image_tokens`` table.
IMAGE_RULE_KEYS: tuple[str, ...] = tuple(ImageRuleValues.model_fields)


def capability_problems(
    data: Any, *, entry: bool = False, prefix: str = "capabilities."
) -> list[Problem]:
    """``(path, message)`` for unknown keys (with a did-you-mean) and ill-typed values.

    Args:
        data: the table (a mapping; anything else is one problem).
        entry: a table or plugin entry, which may also give ``extends``, ``source``, ``notes``.
        prefix: put before each key in the paths (``capabilities.``).
    """
    if not isinstance(data, Mapping):
        return [(prefix.rstrip(".") or "capabilities", "expected a table of capabilities")]
    model = EntryValues if entry else CapabilityValues
    allowed = tuple(model.model_fields)
    problems: list[Problem] = [
        (
            f"{prefix}{shown_key(key, quoted=False)}",
            f"unknown capability {shown_key(key)}.{did_you_mean(str(key), allowed)} "
            f"Known: {', '.join(allowed)}.",
        )
        for key in data
        if key not in allowed
    ]
    image = data.get("image_tokens")
    if isinstance(image, Mapping):
        problems += [
            (
                f"{prefix}image_tokens.{shown_key(key, quoted=False)}",
                f"unknown image rule field {shown_key(key)}"
                f".{did_you_mean(str(key), IMAGE_RULE_KEYS)} "
                f"Known: {', '.join(IMAGE_RULE_KEYS)}.",
            )
            for key in image
            if key not in IMAGE_RULE_KEYS
        ]
    if problems:
        return problems
    return validate(model, data, prefix=prefix)[1]


def clean_capabilities(data: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, validated copy of valid data (strings from variables coerced; None is unset)."""
    clean: dict[str, Any] = EntryValues.model_validate(dict(data)).model_dump(
        exclude_unset=True, exclude_none=True
    )
    return clean
