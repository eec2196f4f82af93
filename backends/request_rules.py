"""What the base model's capabilities say about one request, applied before it is sent.

* **Parameter rules** (:meth:`ModelCapabilities.config_problems
  <backends.capabilities.ModelCapabilities.config_problems>`). Reasoning models (o-series,
  gpt-5) reject ``temperature``, ``top_p``, the penalties, ``logprobs``, ``top_logprobs`` and
  ``logit_bias`` (``rejected_params``): a request carrying one is refused with a
  :class:`~registry.errors.ConfigError` — the message ``modelreg check`` gives for the same
  settings — instead of being sent for a certain 400. Giving both ``max_tokens`` and
  ``max_completion_tokens`` to such a model is refused too.
* **max_tokens.** A model whose ``max_tokens_param`` is ``max_completion_tokens`` gets
  ``max_tokens`` under that name (the API rejects ``max_tokens`` for reasoning models).
* **The context window** (``check_context = true``): the prompt's tokens, counted by the model's
  token counter (tools included), plus the reply's budget — ``max_completion_tokens``,
  ``max_tokens`` or ``max_output_tokens`` of the request, else the model's longest reply — must
  fit the context window, and the prompt the input limit; else
  :class:`~registry.errors.ContextWindowExceededError`, and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from registry.errors import ContextWindowExceededError

if TYPE_CHECKING:
    from backends.capabilities import ModelCapabilities
    from backends.token_counting import BaseTokenCounter

__all__ = ["OUTPUT_KEYS", "adapted", "context_overflow"]

#: Request keys that budget the reply, in the order one is taken.
OUTPUT_KEYS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def adapted(capabilities: ModelCapabilities, request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with ``max_tokens`` under the name the model takes (a copy when renamed)."""
    if capabilities.max_tokens_param == "max_completion_tokens" and "max_tokens" in request:
        request = dict(request)
        value = request.pop("max_tokens")
        if request.get("max_completion_tokens") is None:
            request["max_completion_tokens"] = value
    return request


def _reply_budget(capabilities: ModelCapabilities, request: Mapping[str, Any]) -> tuple[int, str]:
    """Tokens the reply may take and where that number comes from."""
    for key in OUTPUT_KEYS:
        value = request.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value, f"{key} = {value:,}"
    if capabilities.max_output_tokens is not None:
        return capabilities.max_output_tokens, (
            f"the model's longest reply, {capabilities.max_output_tokens:,} (no max_tokens set)"
        )
    return 0, "no reply budget: no max_tokens set, and the model's longest reply is not known"


def context_overflow(
    capabilities: ModelCapabilities,
    counter: BaseTokenCounter,
    messages: list[dict[str, Any]],
    request: Mapping[str, Any],
    *,
    model: str,
) -> ContextWindowExceededError | None:
    """The error to raise when the request does not fit the context window, else None."""
    tools = request.get("tools")
    prompt = counter.count_tokens_from_messages(messages, tools=tools or None)
    output, source = _reply_budget(capabilities, request)
    window, input_limit = capabilities.context_window, capabilities.input_limit
    if prompt + output <= window and prompt <= input_limit:
        return None
    base = capabilities.model
    counted = f"counted with {counter.encoding_name or type(counter).__name__}"
    counted += "" if counter.exact else ", approximately"
    if prompt > input_limit and input_limit < window:
        what = (
            f"the prompt's {prompt:,} tokens ({counted}) exceed {base!r}'s input limit of "
            f"{input_limit:,}"
        )
    else:
        what = (
            f"the prompt's {prompt:,} tokens ({counted}) plus the reply's {output:,} ({source}) "
            f"exceed {base!r}'s context window of {window:,} tokens"
        )
    return ContextWindowExceededError(
        f"[model {model!r}] {what}; nothing was sent (check_context = true). Shorten the "
        "messages, lower max_tokens, or use a model with a larger context window.",
        model=model,
        base_model=base,
        prompt_tokens=prompt,
        output_tokens=output,
        output_source=source,
        context_window=window,
        input_limit=input_limit,
        exact=counter.exact,
    )
