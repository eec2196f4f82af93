"""Carrying a client-override scope into worker threads.

``override_clients`` is a :mod:`contextvars` variable. asyncio tasks and ``asyncio.to_thread``
copy the context, so they see the scope; a ``threading.Thread``, a
``concurrent.futures.ThreadPoolExecutor`` worker and ``loop.run_in_executor`` do not: a model
called there sees no scope and uses its own clients — its configured endpoint, with its real
key. A framework that fans a rollout out over threads uses one of these instead:

* :class:`ContextThreadPoolExecutor`: a ``ThreadPoolExecutor`` whose ``submit`` (and ``map``)
  run each task in a copy of the submitter's context;
* :func:`carry_context`: wraps a callable so that it runs in a copy of the context it was
  wrapped in (a ``threading.Thread`` target, an executor you do not own).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["ContextThreadPoolExecutor", "carry_context"]

P = ParamSpec("P")
T = TypeVar("T")


def carry_context(fn: Callable[P, T]) -> Callable[P, T]:
    """``fn`` bound to the current context: each call runs in a fresh copy of it.

    The copy is taken now (inside the ``override_clients`` block), so a thread started with
    ``target=carry_context(work)`` sees the scope even if the block has ended since. Each call
    gets its own copy, so the result may run in several threads at once.
    """
    context = contextvars.copy_context()

    def in_context(*args: P.args, **kwargs: P.kwargs) -> T:
        return context.copy().run(fn, *args, **kwargs)

    return in_context


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks see the submitter's client override (its context)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a worker, in a copy of the caller's context."""
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)
