"""How a model's calls are routed: its pool's members, its fallbacks, the rules between them.

The registry builds a :class:`RoutingPlan` for a model with ``[[models.NAME.deployments]]`` or
fallbacks and hands it to the model (``use_routing``); the backend's request path
(:mod:`backends.pooled`) follows it. The rules that say which fallbacks an error leads to and
how far a call may fall live here, once.

Fallbacks:

* ``context_window_fallbacks`` when the request is too long for the model: the pre-call check
  (``check_context``) or the server's ``context_length_exceeded``;
* ``content_policy_fallbacks`` when the server's content filter refused it;
* ``fallbacks`` when the model could not answer: the retries are spent on errors that are the
  deployment's (429, 5xx, timeouts, connection errors, a misconfigured deployment) or no
  deployment is available in time. An error that is the caller's (any other 400) falls back
  nowhere: another model would refuse it too.

A call tries a model's fallbacks in order; each fallback follows its own rules in turn, so the
chain is followed depth first, at most ``max_fallback_depth`` (of the model first called) models
away from it. A call never comes back to a model it left: a fallback does not restart the
retry budget of the model it left, and cycles cannot loop at run time either (``check`` rejects
them in settings). The call's time budget — ``timeout * (max_retries + 1)`` of the model first
called — is shared by the whole chain: waiting for a cooldown never outlasts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from registry.errors import ContextWindowExceededError, NoDeploymentAvailableError
from registry.routing.cooldowns import (
    CONTENT_FILTER_CODES,
    CooldownRules,
    ErrorKind,
    classify,
    failure_from_exception,
)

if TYPE_CHECKING:
    from registry.routing.pool import Pool

__all__ = ["CallChain", "FallbackRules", "RoutingPlan", "active_chain", "chain_scope"]

CONTEXT_LENGTH_CODES = frozenset({"context_length_exceeded"})
_RULES = CooldownRules()


@dataclass(frozen=True)
class FallbackRules:
    """A model's fallbacks by name (``fallbacks``, ``context_window_fallbacks``...)."""

    fallbacks: tuple[str, ...] = ()
    context_window: tuple[str, ...] = ()
    content_policy: tuple[str, ...] = ()
    max_depth: int = 2

    def __bool__(self) -> bool:
        return bool(self.fallbacks or self.context_window or self.content_policy)

    def for_error(self, exc: BaseException) -> tuple[tuple[str, ...], str]:
        """The fallbacks ``exc`` leads to (maybe none), and why, for the log."""
        code = getattr(exc, "code", None)
        if isinstance(exc, ContextWindowExceededError) or code in CONTEXT_LENGTH_CODES:
            return self.context_window, "the request is too long for its context window"
        failure = failure_from_exception(exc)
        if failure.kind is ErrorKind.CONTENT_FILTER or code in CONTENT_FILTER_CODES:
            return self.content_policy, "the content filter refused it"
        if isinstance(exc, NoDeploymentAvailableError):
            return self.fallbacks, "no deployment was available"
        verdict = classify(failure, _RULES)
        if verdict.retry:
            return self.fallbacks, verdict.reason or type(exc).__name__
        return (), ""


@dataclass
class RoutingPlan:
    """What the registry hands a model whose calls are routed.

    Attributes:
        name: the model's name.
        pool: its deployments, or None (a single deployment with fallbacks).
        members: the backend built for each deployment, by deployment id (SDK retries 0).
        fallbacks: its fallbacks by name.
        fallback_model: builds (once) the model a fallback name means in the active environment.
        max_retries: the pool's retries, spent across its deployments.
        budget: seconds a call may take in all (``timeout * (max_retries + 1)``), or None.
    """

    name: str
    pool: Pool | None
    members: Mapping[str, Any]
    fallbacks: FallbackRules
    fallback_model: Callable[[str], Any]
    max_retries: int = 2
    budget: float | None = None
    _fallback_models: dict[str, Any] = field(default_factory=dict, repr=False)

    def fallback(self, name: str) -> Any:
        """The model ``name`` means (built on first use, then kept)."""
        model = self._fallback_models.get(name)
        if model is None:
            model = self._fallback_models[name] = self.fallback_model(name)
        return model


@dataclass(frozen=True)
class CallChain:
    """Where one call has been: the models it went to (shared by the whole call), its depth.

    ``visited`` is one list for the whole call, so a fallback's own fallbacks never lead back
    to a model an earlier branch of the call already tried.
    """

    visited: list[str]
    depth: int
    max_depth: int
    deadline: float | None

    @classmethod
    def start(cls, name: str, max_depth: int, budget: float | None) -> CallChain:
        """The chain of a call made to ``name``."""
        deadline = None if budget is None else time.monotonic() + budget
        return cls([name], 0, max_depth, deadline)

    def time_left(self) -> float | None:
        """Seconds left of the call's budget, or None (no budget)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def next_hops(self, names: tuple[str, ...]) -> list[str]:
        """Of ``names``, those the call may still go to (depth left, not yet visited)."""
        if self.depth >= self.max_depth:
            return []
        return [name for name in names if name not in self.visited]

    def hop(self, name: str) -> CallChain:
        """The chain of the call once it goes on to ``name``."""
        self.visited.append(name)
        return CallChain(self.visited, self.depth + 1, self.max_depth, self.deadline)


_CHAIN: ContextVar[CallChain | None] = ContextVar("modelreg_fallback_chain", default=None)


def active_chain() -> CallChain | None:
    """The chain of the call being made, when this model is a fallback in it."""
    return _CHAIN.get()


@contextmanager
def chain_scope(chain: CallChain) -> Iterator[None]:
    """Make ``chain`` the active chain while a fallback runs."""
    token = _CHAIN.set(chain)
    try:
        yield
    finally:
        _CHAIN.reset(token)
