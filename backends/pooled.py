"""A routed model's request path: its pool's deployments, then its fallbacks by name.

:meth:`BaseModelBackend.run` hands a call here when the registry gave the model a
:class:`~registry.routing.plan.RoutingPlan` and no client override applies (an override takes
the call as it would without a pool: an RL framework's client or gateway is the deployment).

* A pool's call is one retry loop (:meth:`registry.routing.pool.Pool.call`): each attempt goes
  to one member backend, whose SDK retries are 0, and the pool spends ``max_retries`` across
  the deployments.
* When the model cannot answer, the call goes on to its fallbacks, as
  :mod:`registry.routing.plan` rules (which list, how deep, never back).
* A stream counts as answered once its first chunk has arrived: until then a failure moves
  it to another deployment or a fallback; after, the error reaches the caller (no chunk is
  ever sent twice). A stream-parse manager is answered once entered and its first chunk
  read: the whole routing happens in ``__enter__``.

Each failover and fallback logs at INFO on ``modelreg.routing``; the model and deployment that
answered are recorded for :func:`registry.routing.served.served_calls`.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel

from backends.base import _CALL_CONFIG
from registry.routing.plan import CallChain, RoutingPlan, active_chain, chain_scope
from registry.routing.served import Served, record_served, recording_served

if TYPE_CHECKING:
    from backends.base import BaseModelBackend, Messages
    from registry.masking import Redacted
    from registry.routing.state import Deployment

__all__ = ["RoutedCalls"]

logger = logging.getLogger("modelreg.routing")


class RoutedCalls:
    """The calls of ``owner`` (a model with a routing plan), as the module docstring says."""

    def __init__(self, owner: BaseModelBackend, plan: RoutingPlan) -> None:
        self.owner = owner
        self.plan = plan

    # -- entry points -----------------------------------------------------------------------

    def run(self, messages: Messages, rf: Any, tools: Any, config: Mapping[str, Any]) -> Any:
        """What ``owner.run`` returns; stream-parse: a manager that routes when entered."""
        chain = self._chain()
        call = _Call(messages, rf, tools, config, _call_settings(self.owner))
        if self._managed(rf):
            from backends.stream_managers import RoutedStreamManager

            return RoutedStreamManager(lambda: self._call(call, chain))
        return self._call(call, chain)

    async def arun(self, messages: Messages, rf: Any, tools: Any, config: Mapping[str, Any]) -> Any:
        """What ``owner.arun`` returns (see :meth:`run`)."""
        chain = self._chain()
        call = _Call(messages, rf, tools, config, _call_settings(self.owner))
        if self._managed(rf):
            from backends.stream_managers import AsyncRoutedStreamManager

            return AsyncRoutedStreamManager(lambda: self._acall(call, chain))
        return await self._acall(call, chain)

    def _chain(self) -> CallChain:
        chain = active_chain()
        if chain is not None and chain.visited[-1] == self.plan.name:
            return chain  # this model is a fallback in a call already under way
        plan = self.plan
        return CallChain.start(plan.name, plan.fallbacks.max_depth, plan.budget)

    def _managed(self, rf: Any) -> bool:
        """Whether this call returns a stream manager (stream-parse)."""
        chosen = rf if rf is not None else self.owner.model_config_dict.get("response_format")
        is_model = isinstance(chosen, type) and issubclass(chosen, BaseModel)
        return is_model and self.owner.stream

    # -- sync -------------------------------------------------------------------------------

    def _call(self, call: _Call, chain: CallChain) -> Any:
        try:
            return self._serve(call, chain)
        except Exception as exc:
            hops, why = self._hops(exc, chain)
            if not hops:
                raise
            last: Exception = exc
            for name in hops:
                if name in chain.visited:  # an earlier fallback's own fallbacks went there
                    continue
                self._log_fallback(name, why, last)
                try:
                    with chain_scope(chain.hop(name)):
                        model = self.plan.fallback(name)
                        result = _ready(model.run(*call.arguments, **call.config))
                        _record_plain(model, name, chain)
                        return result
                except Exception as fallback_exc:
                    last = fallback_exc
            _note_fallbacks(last, self.plan.name, hops, why)
            raise last from exc

    def _serve(self, call: _Call, chain: CallChain) -> Any:
        plan = self.plan
        served: list[Deployment] = []
        if plan.pool is None:
            with _calling(self.owner, call.settings):
                result = _ready(self.owner._run(*call.arguments))
            self._record(None, 1, chain)
            return result

        def send(deployment: Deployment) -> Any:
            served.append(deployment)
            member = plan.members[deployment.id]
            with _calling(member, call.settings):
                return _ready(member._run(*call.arguments))

        result = plan.pool.call(send, max_retries=plan.max_retries, budget=chain.time_left())
        self._record(served[-1], len(served), chain)
        return result

    # -- async ------------------------------------------------------------------------------

    async def _acall(self, call: _Call, chain: CallChain) -> Any:
        try:
            return await self._aserve(call, chain)
        except Exception as exc:
            hops, why = self._hops(exc, chain)
            if not hops:
                raise
            last: Exception = exc
            for name in hops:
                if name in chain.visited:
                    continue
                self._log_fallback(name, why, last)
                try:
                    with chain_scope(chain.hop(name)):
                        model = self.plan.fallback(name)
                        reply = await model.arun(*call.arguments, **call.config)
                        result = await _aready(reply)
                        _record_plain(model, name, chain)
                        return result
                except Exception as fallback_exc:
                    last = fallback_exc
            _note_fallbacks(last, self.plan.name, hops, why)
            raise last from exc

    async def _aserve(self, call: _Call, chain: CallChain) -> Any:
        plan = self.plan
        served: list[Deployment] = []
        if plan.pool is None:
            with _calling(self.owner, call.settings):
                result = await _aready(await self.owner._arun(*call.arguments))
            self._record(None, 1, chain)
            return result

        async def send(deployment: Deployment) -> Any:
            served.append(deployment)
            member = plan.members[deployment.id]
            with _calling(member, call.settings):
                return await _aready(await member._arun(*call.arguments))

        result = await plan.pool.acall(send, max_retries=plan.max_retries, budget=chain.time_left())
        self._record(served[-1], len(served), chain)
        return result

    # -- shared -----------------------------------------------------------------------------

    def _hops(self, exc: Exception, chain: CallChain) -> tuple[list[str], str]:
        names, why = self.plan.fallbacks.for_error(exc)
        return chain.next_hops(names), why

    def _record(self, deployment: Deployment | None, attempts: int, chain: CallChain) -> None:
        if not recording_served():
            return
        left = tuple(chain.visited[: chain.visited.index(self.plan.name)])
        label = None if deployment is None else deployment.label
        record_served(Served(self.plan.name, label, attempts, left))

    def _log_fallback(self, name: str, why: str, exc: Exception) -> None:
        logger.info(
            "model %r: falling back to %r: %s (%s)",
            self.plan.name,
            name,
            why,
            type(exc).__name__,
        )


def _record_plain(model: Any, name: str, chain: CallChain) -> None:
    """Record a fallback that has no routing of its own (a routed one records itself)."""
    if recording_served() and getattr(model, "routing_plan", None) is None:
        left = tuple(chain.visited[: chain.visited.index(name)])
        record_served(Served(name, None, 1, left))


def _note_fallbacks(exc: Exception, name: str, hops: list[str], why: str) -> None:
    tried = ", ".join(map(repr, hops))
    exc.add_note(f"model {name!r} fell back to {tried} ({why}); none answered.")


class _Call(NamedTuple):
    """One call's arguments, and its settings (``run(..., seed=1)`` over the model's)."""

    messages: Messages
    rf: Any
    tools: Any
    config: Mapping[str, Any]
    settings: Redacted | None

    @property
    def arguments(self) -> tuple[Messages, Any, Any]:
        """What ``_run``/``_arun`` take."""
        return self.messages, self.rf, self.tools


def _call_settings(owner: BaseModelBackend) -> Redacted | None:
    """The settings of the call ``owner`` is making, when it has some of its own."""
    call = _CALL_CONFIG.get()
    return call[1] if call is not None and call[0] is owner else None


_NO_SETTINGS = nullcontext()


def _calling(model: BaseModelBackend, settings: Redacted | None) -> AbstractContextManager[None]:
    """Give ``model`` the call's settings while it makes the call.

    Captured when ``run`` was called: a stream-parse manager is entered after ``run`` returned.
    """
    return _NO_SETTINGS if settings is None else _with_settings(model, settings)


@contextmanager
def _with_settings(model: BaseModelBackend, settings: Redacted) -> Iterator[None]:
    token = _CALL_CONFIG.set((model, settings))
    try:
        yield
    finally:
        _CALL_CONFIG.reset(token)


# -- "answered": a stream's first chunk has arrived, a manager is entered ---------------------


def _ready(result: Any) -> Any:
    """``result`` once it has answered: a stream's first chunk read (a manager's: entered)."""
    if isinstance(result, BaseModel):  # a completion: answered (most calls; checked first)
        return result
    if _is_manager(result, "__enter__"):
        events = result.__enter__()
        try:
            return (result, _PeekedStream(events))
        except BaseException:
            result.__exit__(*sys.exc_info())  # the failed attempt's connection goes back
            raise
    if hasattr(type(result), "__next__") or (
        hasattr(type(result), "__iter__") and not isinstance(result, Mapping)
    ):
        return _PeekedStream(result)
    return result


async def _aready(result: Any) -> Any:
    """Async :func:`_ready`."""
    if isinstance(result, BaseModel):
        return result
    if _is_manager(result, "__aenter__"):
        events = _PeekedAsyncStream(await result.__aenter__())
        try:
            await events.peek()
        except BaseException:
            await result.__aexit__(*sys.exc_info())
            raise
        return (result, events)
    if hasattr(type(result), "__anext__") or hasattr(type(result), "__aiter__"):
        stream = _PeekedAsyncStream(result)
        await stream.peek()
        return stream
    return result


def _is_manager(result: Any, enter: str) -> bool:
    cls = type(result)
    return hasattr(cls, enter) and not hasattr(cls, "__next__") and not hasattr(cls, "__anext__")


_OWN = frozenset({"_source", "_iterator", "_first"})


def _delegated(peeked: Any, name: str) -> Any:
    """The stream's attribute ``name`` (``_raw_stream`` too: ``native_response`` reads it)."""
    if name in _OWN or (name.startswith("__") and name.endswith("__")):
        raise AttributeError(name)
    return getattr(peeked._source, name)


class _PeekedStream:
    """A stream whose first chunk has been read (errors before it are the attempt's).

    Also a stream-parse manager's event stream: ``get_final_completion`` and the like go to
    the SDK's stream, whose state already holds the peeked chunk.
    """

    def __init__(self, source: Any) -> None:
        self._source = source
        self._iterator: Iterator[Any] = iter(source)
        self._first: list[Any] = []
        for chunk in self._iterator:
            self._first.append(chunk)
            break

    def __iter__(self) -> _PeekedStream:
        return self

    def __next__(self) -> Any:
        if self._first:
            return self._first.pop()
        return next(self._iterator)

    def close(self) -> None:
        """Close the stream (its connection goes back to the pool)."""
        close = getattr(self._source, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> _PeekedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return _delegated(self, name)


class _PeekedAsyncStream:
    """Async :class:`_PeekedStream`; :meth:`peek` reads the first chunk."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._iterator: AsyncIterator[Any] = source.__aiter__()
        self._first: list[Any] = []

    async def peek(self) -> None:
        """Read the first chunk (none: the stream was empty)."""
        async for chunk in self._iterator:
            self._first.append(chunk)
            break

    def __aiter__(self) -> _PeekedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._first:
            return self._first.pop()
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """Close the stream."""
        for name in ("aclose", "close"):
            close = getattr(self._source, name, None)
            if callable(close):
                outcome = close()
                if inspect.isawaitable(outcome):
                    await outcome
                return

    async def __aenter__(self) -> _PeekedAsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        return _delegated(self, name)
