"""The HTTP clients modelreg gives the openai SDK: ``timeout`` bounds an attempt, not one read.

httpx2 applies a timeout to each network operation, so a server that trickles its body (a byte
every second) keeps a request busy indefinitely. :class:`TimedHttpClient` and
:class:`AsyncTimedHttpClient` (the SDK's default clients, same limits and redirects) give each
attempt the request's read timeout (the SDK sets it from the model's ``timeout``) as a budget:

* a non-streamed attempt — connect, send, headers and the whole body — ends within ``timeout``
  of its start, or raises ``httpx2.ReadTimeout``, which the SDK retries like any timeout;
* a streamed attempt gets its headers within ``timeout``; then each server-sent event must arrive
  within ``timeout`` of the moment the reader asked for it, however long the whole stream runs.

Async attempts are bounded by a timeout scope (asyncio's, or anyio's on trio). Sync reads
cannot be cancelled, so a :class:`~registry.socket_alarms.Alarm` shuts the response's socket
down at the deadline; before the headers arrive, the socket is not reachable and each connect,
send and read is bounded by ``timeout`` on its own.

They also turn a 429 that carries only ``x-ratelimit-reset-requests`` / ``-tokens`` (Azure
sometimes omits Retry-After) into one with ``retry-after-ms``, so the SDK waits what the server
said, under the same 120-second rule as Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

import anyio
import httpx2
from openai import DefaultAsyncHttpxClient, DefaultHttpxClient

from registry.building import current_loop
from registry.socket_alarms import Alarm

__all__ = ["AsyncTimedHttpClient", "TimedHttpClient", "rate_limit_wait"]

T = TypeVar("T")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _duration(value: str) -> float | None:
    """Seconds in ``"20"`` (Azure), ``"1.5s"``, ``"250ms"`` or ``"6m0s"`` (OpenAI); else None."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def rate_limit_wait(headers: httpx2.Headers) -> float | None:
    """The wait a 429's ``x-ratelimit-reset-*`` headers ask for, in seconds, or None.

    A limit whose ``x-ratelimit-remaining-*`` is still positive is not the one that was hit.
    """
    waits = []
    for kind in ("requests", "tokens"):
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        remaining = _duration(headers.get(f"x-ratelimit-remaining-{kind}") or "")
        if reset is None or (remaining is not None and remaining > 0):
            continue
        wait = _duration(reset)
        if wait is not None and wait > 0:
            waits.append(wait)
    return max(waits) if waits else None


def _add_retry_after(response: httpx2.Response) -> None:
    headers = response.headers
    if response.status_code != 429 or "retry-after-ms" in headers or "retry-after" in headers:
        return
    wait = rate_limit_wait(headers)
    if wait is not None:
        headers["retry-after-ms"] = str(round(wait * 1000))


def _budget(client: httpx2.Client | httpx2.AsyncClient, request: httpx2.Request) -> float | None:
    timeouts = request.extensions.get("timeout") or client.timeout.as_dict()
    budget = timeouts.get("read")
    return float(budget) if budget is not None else None


def _socket_of(response: httpx2.Response) -> Any:
    extensions = response.extensions
    stream = extensions.get("network_stream")
    if stream is None or extensions.get("http_version") != b"HTTP/1.1":
        return None  # HTTP/2 multiplexes streams on one socket: never shut it
    return stream.get_extra_info("socket")


def _timed_out(request: httpx2.Request, budget: float) -> httpx2.ReadTimeout:
    return httpx2.ReadTimeout(
        f"no complete response within the timeout ({budget:g} s)", request=request
    )


def _ends_event(tail: bytes, data: bytes) -> bool:
    """Whether ``data`` (read after ``tail``) completes a server-sent event (a blank line)."""
    if b"\n\n" in data or b"\r\r" in data or b"\r\n\r\n" in data:
        return True
    window = tail + data[:3]  # a blank line split across two reads
    return b"\n\n" in window or b"\r\r" in window or b"\r\n\r\n" in window


class _TimedSyncStream(httpx2.SyncByteStream):
    """A response body read under an alarm: a whole-body deadline, or one per event."""

    def __init__(
        self,
        inner: httpx2.SyncByteStream,
        request: httpx2.Request,
        sock: Any,
        budget: float,
        deadline: float | None,
    ) -> None:
        self._inner, self._request, self._budget = inner, request, budget
        self._body_deadline = deadline  # None: each event gets the budget
        self._alarm = Alarm(sock, recheck=budget)

    @property
    def elapsed(self) -> Any:
        return getattr(self._inner, "elapsed", None)

    def __iter__(self) -> Iterator[bytes]:
        # Runs once per read of every response: attribute reads and stores rather than calls.
        alarm, budget, monotonic = self._alarm, self._budget, time.monotonic
        body_deadline = self._body_deadline
        per_event, unwatched = body_deadline is None, alarm.sock is None
        alarm.start(monotonic() + budget if body_deadline is None else body_deadline)
        tail = b""
        try:
            for data in self._inner:
                if alarm.fired or (unwatched and monotonic() >= alarm.deadline):
                    raise _timed_out(self._request, budget)
                if per_event and (b"\n\n" in data or _ends_event(tail, data)):
                    alarm.deadline = math.inf  # the reader's own time does not count
                    yield data
                    alarm.deadline = monotonic() + budget
                else:
                    yield data
                tail = data[-3:]
        except httpx2.TransportError as exc:
            if alarm.fired:  # the watchdog shut the socket
                raise _timed_out(self._request, budget) from exc
            raise
        finally:
            alarm.stop()

    def close(self) -> None:
        self._alarm.stop()
        self._inner.close()


def _loop_time() -> float:
    loop = current_loop()
    return loop.time() if loop is not None else anyio.current_time()


async def _by(deadline: float, step: Awaitable[T], request: httpx2.Request, budget: float) -> T:
    """Await ``step``, or raise ReadTimeout at ``deadline`` (event-loop time).

    asyncio's own timeout on asyncio (a few microseconds cheaper per call), anyio's elsewhere.
    """
    try:
        if current_loop() is not None:
            async with asyncio.timeout_at(deadline):
                return await step
        with anyio.fail_after(deadline - anyio.current_time()):
            return await step
    except TimeoutError as exc:
        raise _timed_out(request, budget) from exc


class _TimedAsyncEvents(httpx2.AsyncByteStream):
    """A streamed body whose every event must arrive within the budget."""

    def __init__(self, inner: httpx2.AsyncByteStream, request: httpx2.Request, budget: float):
        self._inner, self._request, self._budget = inner, request, budget

    @property
    def elapsed(self) -> Any:
        return getattr(self._inner, "elapsed", None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks, tail = self._inner.__aiter__(), b""
        deadline: float | None = None
        while True:
            if deadline is None:
                deadline = _loop_time() + self._budget
            try:
                data = await _by(deadline, chunks.__anext__(), self._request, self._budget)
            except StopAsyncIteration:
                return
            if _ends_event(tail, data):
                deadline = None
            tail = data[-3:]
            yield data

    async def aclose(self) -> None:
        await self._inner.aclose()


class TimedHttpClient(DefaultHttpxClient):
    """The SDK's default sync client, with ``timeout`` bounding each attempt."""

    def __del__(self) -> None:
        # Like the client the SDK builds for itself: a dropped client releases its sockets.
        if not self.is_closed:
            with contextlib.suppress(Exception):
                self.close()

    def send(self, request: httpx2.Request, *, stream: bool = False, **kwargs: Any) -> Any:
        """Send ``request``; the body is read within the budget (or per event if streamed)."""
        budget = _budget(self, request)
        if budget is None:
            response = super().send(request, stream=stream, **kwargs)
            _add_retry_after(response)
            return response
        started = time.monotonic()
        response = super().send(request, stream=True, **kwargs)
        _add_retry_after(response)
        assert isinstance(response.stream, httpx2.SyncByteStream)
        response.stream = _TimedSyncStream(
            response.stream,
            request,
            _socket_of(response),
            budget,
            None if stream else started + budget,
        )
        if not stream:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response


class AsyncTimedHttpClient(DefaultAsyncHttpxClient):
    """The SDK's default async client, with ``timeout`` bounding each attempt."""

    async def send(self, request: httpx2.Request, *, stream: bool = False, **kwargs: Any) -> Any:
        """Send ``request`` within the budget; streamed bodies get a deadline per event."""
        budget = _budget(self, request)
        if budget is None:
            response = await super().send(request, stream=stream, **kwargs)
            _add_retry_after(response)
            return response
        sending = super().send(request, stream=stream, **kwargs)
        timed: httpx2.Response = await _by(_loop_time() + budget, sending, request, budget)
        _add_retry_after(timed)
        if stream:
            assert isinstance(timed.stream, httpx2.AsyncByteStream)
            timed.stream = _TimedAsyncEvents(timed.stream, request, budget)
        return timed
