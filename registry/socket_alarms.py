"""Deadlines for blocking socket reads: one daemon thread shuts a socket down when its time is up.

A synchronous read cannot be interrupted from the reading thread, and httpx2's read timeout
restarts with every read, so a server that trickles its body keeps a request alive for as long
as it likes. An :class:`Alarm` set on the response's socket ends that: when its deadline passes,
the watchdog thread calls ``shutdown()`` on the socket, the blocked read returns at once, and
the reader (which checks :attr:`Alarm.fired`) raises a timeout.

The watchdog wakes only for the earliest deadline set; setting a later one (the usual case, all
requests sharing one timeout) is a lock and a set insertion. The thread starts on first use.
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
        self.armed: set[Alarm] = set()
        self.wake_at = math.inf
        self._thread: threading.Thread | None = None

    def arm(self, alarm: Alarm, deadline: float) -> None:
        with self.condition:
            alarm.deadline = deadline
            self.armed.add(alarm)
            if deadline < self.wake_at:
                self.wake_at = deadline
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="modelreg-timeouts", daemon=True
                    )
                    self._thread.start()
                self.condition.notify()

    def disarm(self, alarm: Alarm) -> None:
        with self.condition:
            self.armed.discard(alarm)

    def _run(self) -> None:
        with self.condition:
            while True:
                now = time.monotonic()
                earliest = math.inf
                for alarm in list(self.armed):
                    if alarm.deadline <= now:
                        self.armed.discard(alarm)
                        alarm.fire()
                    else:
                        earliest = min(earliest, alarm.deadline)
                self.wake_at = earliest
                self.condition.wait(None if earliest == math.inf else earliest - now)


_watchdog = _Watchdog()


def _reset_after_fork() -> None:
    # The thread does not exist in a forked child; start afresh there.
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_reset_after_fork)


class Alarm:
    """Shuts ``sock`` down if it is still armed when its deadline passes."""

    __slots__ = ("deadline", "fired", "sock")

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock
        self.deadline = math.inf
        self.fired = False

    def arm(self, deadline: float) -> None:
        """Fire at ``deadline`` (``time.monotonic()`` seconds) unless disarmed first."""
        if self.sock is not None:
            _watchdog.arm(self, deadline)
        else:
            self.deadline = deadline

    def disarm(self) -> None:
        """Do not fire (the read finished in time)."""
        if self.sock is not None:
            _watchdog.disarm(self)
        self.deadline = math.inf

    def expired(self) -> bool:
        """Whether it fired, or (without a socket to shut) its deadline has passed."""
        return self.fired or time.monotonic() >= self.deadline

    def fire(self) -> None:
        """Called by the watchdog, under its lock, so never after :meth:`disarm` returned."""
        self.fired = True
        if self.sock is not None:
            # socket.socket's own shutdown: an SSLSocket's would also drop its TLS state under
            # the reading thread's feet. OSError: already closed.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
