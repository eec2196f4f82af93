"""Deadlines for blocking socket reads: one daemon thread shuts a socket down when its time is up.

A synchronous read cannot be interrupted from the reading thread, and httpx2's read timeout
restarts with every read, so a server that trickles its body keeps a request alive for as long
as it likes. An :class:`Alarm` set on the response's socket ends that: when its deadline passes,
the watchdog thread calls ``shutdown()`` on the socket, the blocked read returns at once, and
the reader (which checks :attr:`Alarm.fired`) raises a timeout.

Costs, since every request sets one: :meth:`Alarm.start` and :meth:`Alarm.stop` take a lock
once per response; moving the deadline in between (once per event of a stream) is a plain
store to :attr:`Alarm.deadline`. The watchdog sleeps until the earliest deadline, and while
an alarm is paused (``deadline`` infinite: the reader is not waiting) it looks again every
``recheck`` seconds, so a deadline set by a lock-free move is never missed: a pause it saw
began before the move, so its next look comes at most ``recheck`` after the move. The thread
starts on first use.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time

__all__ = ["Alarm"]


class _Watchdog:
    """The thread that fires alarms whose deadline has passed."""

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        self.alarms: set[Alarm] = set()
        self.wake_at = math.inf
        self._thread: threading.Thread | None = None

    def add(self, alarm: Alarm) -> None:
        with self.condition:
            self.alarms.add(alarm)
            if alarm.deadline < self.wake_at:
                self.wake_at = alarm.deadline
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="modelreg-timeouts", daemon=True
                    )
                    self._thread.start()
                self.condition.notify()

    def remove(self, alarm: Alarm) -> None:
        with self.condition:
            self.alarms.discard(alarm)

    def _run(self) -> None:
        with self.condition:
            while True:
                now = time.monotonic()
                earliest = math.inf
                for alarm in list(self.alarms):
                    deadline = alarm.deadline  # read once: the reader may move it meanwhile
                    if deadline <= now:
                        self.alarms.discard(alarm)
                        alarm.fire()
                    else:
                        earliest = min(earliest, min(deadline, now + alarm.recheck))
                self.wake_at = earliest
                self.condition.wait(None if earliest == math.inf else earliest - now)


_watchdog = _Watchdog()


def _reset_after_fork() -> None:
    # The thread does not exist in a forked child; start afresh there.
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_reset_after_fork)


class Alarm:
    """Shuts ``sock`` down if its deadline passes between :meth:`start` and :meth:`stop`.

    Without a socket (an in-process transport) nothing is shut: the reader compares the time
    with :attr:`deadline` between reads instead.
    """

    __slots__ = ("deadline", "fired", "recheck", "sock", "watched")

    #: When to fire (``time.monotonic()``). Between start() and stop() the reader may move it
    #: without the lock: to ``math.inf`` to pause, and from a pause to ``recheck`` or more away.
    deadline: float

    def __init__(self, sock: socket.socket | None, recheck: float) -> None:
        self.sock = sock
        self.recheck = recheck  # how often the watchdog looks at a paused alarm
        self.deadline = math.inf
        self.fired = False
        self.watched = False

    def start(self, deadline: float) -> None:
        """Watch the socket until :meth:`stop`; fire at ``deadline`` (``time.monotonic()``)."""
        self.deadline = deadline
        if self.sock is not None:
            self.watched = True
            _watchdog.add(self)

    def stop(self) -> None:
        """Stop watching (idempotent; the reading thread's own call takes the lock once)."""
        if self.watched:
            self.watched = False
            _watchdog.remove(self)
        self.deadline = math.inf

    def fire(self) -> None:
        """Called by the watchdog, under its lock, so never after :meth:`stop` returned."""
        self.fired = True
        if self.sock is not None:
            # socket.socket's own shutdown: an SSLSocket's would also drop its TLS state under
            # the reading thread's feet. OSError: already closed.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
