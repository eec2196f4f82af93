"""Exceptions raised by modelreg.

Every error a user can fix is a :class:`RegistryError`; the CLI prints its message and exits 1
without a traceback. Messages name the model, the field, the file or variable and what to do,
and never contain a secret value.

Hierarchy::

    RegistryError
    ├── ConfigError              (also ValueError) bad settings, missing or invalid values
    │   ├── MissingCredentialsError     no API key, AD token or token provider for a model
    │   └── TokenizerUnavailableError   an encoding could not be loaded (air-gapped machine)
    ├── UnknownModelError        (also KeyError) no model or alias of that name
    ├── PluginError              a plugin failed to load or registered something invalid
    └── BackendError             a backend cannot do what was asked (e.g. a missing client side,
        │                        or a plugin's backend returned something run() may not
        │                        return), or the server's answer is not a chat completion
        ├── IncompleteStreamError   a stream ended before every choice had a finish_reason
        ├── ContextWindowExceededError  (``check_context = true``) the prompt plus the reply's
        │                               budget does not fit the base model's context window;
        │                               nothing was sent; carries the numbers
        └── NoDeploymentAvailableError  every deployment of a pool is cooling down (or the
                                        call's time budget ends first); lists each one's state

    RegistryWarning (UserWarning)   settings that work but probably do not do what was meant
    └── PluginWarning               MODELREG_PLUGINS or MODELREG_DISABLE_PLUGINS names no plugin

Errors from the openai SDK during a request are *not* wrapped: users catch
``openai.RateLimitError`` and friends as usual; modelreg adds the model name to the message,
and what to check where it can tell. A pool raises :class:`NoDeploymentAvailableError` only when
it has nothing left to try; it is chained (``__cause__``) to the SDK error of the last attempt,
if there was one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.routing.state import DeploymentState

__all__ = [
    "BackendError",
    "ConfigError",
    "ContextWindowExceededError",
    "IncompleteStreamError",
    "MissingCredentialsError",
    "NoDeploymentAvailableError",
    "PluginError",
    "PluginWarning",
    "RegistryError",
    "RegistryWarning",
    "TokenizerUnavailableError",
    "UnknownModelError",
    "did_you_mean",
]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidates, or ``""`` when none is close.

    A candidate that looks like a key (an alias pasted from one) is never suggested: it would
    show most of the key to whoever mistyped it.
    """
    import difflib  # only when something is misspelt: not on every cold start

    from registry.masking import escape_control, looks_like_secret

    known = sorted(c for c in set(candidates) if not looks_like_secret(c))
    matches = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    if not matches:
        return ""
    quoted = " or ".join(escape_control(repr(m)) for m in matches)
    return f" Did you mean {quoted}?"


class RegistryError(Exception):
    """Base class of every error modelreg raises on purpose."""


class ConfigError(RegistryError, ValueError):
    """The settings (file, environment, ``.env`` or keyword arguments) are wrong or incomplete."""


class MissingCredentialsError(ConfigError):
    """A model has no credentials (they may still come at run time, so ``check`` only warns)."""


class TokenizerUnavailableError(ConfigError):
    """A tokenizer encoding could not be loaded, typically on a machine without internet access."""


class UnknownModelError(RegistryError, KeyError):
    """No model or alias has the requested name."""

    def __init__(self, name: str, known: Iterable[str], *, where: str = "") -> None:
        from registry.masking import quoted_name, shown_names

        self.name = name
        self.known = sorted(set(known))
        listing = shown_names(self.known) if self.known else "none are defined"
        location = f" in {where}" if where else ""
        shown = quoted_name(name)
        message = (
            f"unknown model {shown}{location}.{did_you_mean(name, self.known)} "
            f"Known models and aliases: {listing}."
        )
        super().__init__(message)

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message; keep it readable.
        return str(self.args[0])


class PluginError(RegistryError):
    """A plugin failed to import, raised in a hook, or registered an invalid object."""


class BackendError(RegistryError):
    """A backend cannot perform the requested operation with its configuration."""


class IncompleteStreamError(BackendError):
    """A streamed reply ended before every choice had a finish_reason (e.g. a proxy cut it)."""


class ContextWindowExceededError(BackendError):
    """A request would not fit the base model's context window; it was not sent.

    Raised before sending when the model has ``check_context = true``: the prompt's tokens (the
    model's token counter) plus the reply's budget (``max_completion_tokens``, ``max_tokens``
    or ``max_output_tokens`` of the request, else the model's longest reply) exceed the context
    window, or the prompt alone exceeds the model's input limit. Catch it to fall back to a
    model with a larger window.

    Attributes:
        model: the model's name.
        base_model: the base model whose capabilities were used.
        prompt_tokens: the prompt's count.
        output_tokens: the reply's budget.
        output_source: where the budget came from (``config max_tokens``, ``the model's
            max_output_tokens``...).
        context_window: prompt plus reply tokens the base model holds.
        input_limit: the most prompt tokens it takes (lower than the window for gpt-5).
        exact: whether the count is the tokenizer the server bills with.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        base_model: str,
        prompt_tokens: int,
        output_tokens: int,
        output_source: str,
        context_window: int,
        input_limit: int,
        exact: bool,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.base_model = base_model
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.output_source = output_source
        self.context_window = context_window
        self.input_limit = input_limit
        self.exact = exact

    @property
    def needed_tokens(self) -> int:
        """Prompt plus reply budget: what the window would have to hold."""
        return self.prompt_tokens + self.output_tokens


class NoDeploymentAvailableError(BackendError):
    """No deployment of a pool can take the call now, nor within the call's time budget.

    Attributes:
        pool: the pool (model) name.
        deployments: the state of every deployment when the pool gave up, in pool order: each
            one's label (endpoint host and deployment name, never a credential), cooldown and
            its reason, calls in flight.
    """

    def __init__(
        self, message: str, *, pool: str, deployments: Sequence[DeploymentState] = ()
    ) -> None:
        super().__init__(message)
        self.pool = pool
        self.deployments = tuple(deployments)


class RegistryWarning(UserWarning):
    """Settings that work but probably do not do what was meant (a misspelt variable, a BOM)."""


class PluginWarning(RegistryWarning):
    """Plugin selection that works but is probably not what was meant (an unknown name)."""
