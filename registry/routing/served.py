"""Which model and deployment served each call: ``served_calls()`` records them for a block.

::

    from registry.routing import served_calls

    with served_calls() as served:
        model.run(messages)
    served[-1].model, served[-1].deployment   # "chat", "eastus.example.com/gpt-4o"

A context variable holds the list, so each thread and asyncio task records its own calls (tasks
started inside the block append to the same list, as they inherit its context). Calls to a
model that is neither a pool nor has fallbacks are not recorded: there is nothing to choose.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Served", "record_served", "recording_served", "served_calls"]


@dataclass(frozen=True)
class Served:
    """One call that reached an answer.

    Attributes:
        model: the model that answered (a fallback's name when the call fell back).
        deployment: the pool member that answered (``host/deployment``), or None (not a pool).
        attempts: attempts this model made for the call (1: the first one answered).
        fell_back_from: the models the call left before this one, in order.
    """

    model: str
    deployment: str | None
    attempts: int = 1
    fell_back_from: tuple[str, ...] = ()


_SERVED: ContextVar[list[Served] | None] = ContextVar("modelreg_served", default=None)


@contextmanager
def served_calls() -> Iterator[list[Served]]:
    """Record every routed call made in the block (in the order they were answered)."""
    served: list[Served] = []
    token = _SERVED.set(served)
    try:
        yield served
    finally:
        _SERVED.reset(token)


def record_served(entry: Served) -> None:
    """Append ``entry`` to the innermost ``served_calls()`` block's list, if any."""
    served = _SERVED.get()
    if served is not None:
        served.append(entry)


def recording_served() -> bool:
    """Whether a ``served_calls()`` block is active (else a call need not build its record)."""
    return _SERVED.get() is not None
