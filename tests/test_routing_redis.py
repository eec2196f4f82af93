"""Pool state shared on a real redis-server (Debian's package), started per test on a free port.

Processes sharing a pool are real subprocesses (tests/routing_child.py) driven over stdin.
The tests are skipped when redis-server is not installed; `.ci/run` installs it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import ConfigError
from registry.routing import (
    CooldownKind,
    CooldownRules,
    Deployment,
    ErrorKind,
    Failure,
    Pool,
    RedisStateStore,
)
from registry.routing.stores import close_shared_state_stores, shared_state_store
from tests.redis_server import RedisServer, redis_server_path

REPO = Path(__file__).resolve().parents[1]
DEPLOYMENTS = [Deployment(f"chat#{i}", f"region{i}.example.com/gpt-4o") for i in range(3)]

pytestmark = pytest.mark.skipif(
    redis_server_path() is None,
    reason="redis-server is not installed (apt-get install redis-server)",
)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory=tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[Any]:
    """A plain redis-py client on the same server, to look at the keys."""
    import redis

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


def make_pool(url: str, strategy: str = "weighted", **options: Any) -> Pool:
    store = RedisStateStore(url, reconnect_after=options.pop("reconnect_after", 0.05))
    return Pool("chat", DEPLOYMENTS, strategy=strategy, store=store, **options)


class Child:
    """tests/routing_child.py in its own process, sharing the pool through Redis."""

    def __init__(self, url: str, strategy: str = "weighted") -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.routing_child", url, strategy],
            cwd=str(REPO),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, line: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def quit(self) -> list[str]:
        warnings: list[str] = self.ask("quit")
        self.close()
        return warnings

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.close()  # its loop ends at end of input
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def children(redis_server: RedisServer) -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        child.close()


def test_two_processes_share_a_cooldown(redis_server: RedisServer, children: list[Child]) -> None:
    first, second = Child(redis_server.url), Child(redis_server.url)
    children += [first, second]
    verdict = first.ask("fail 0 429 retry-after-ms=30000")
    assert verdict["cooldown"] == 30
    picks = second.ask("pick 300")
    assert set(picks) == {"chat#1", "chat#2"} and sum(picks.values()) == 300
    state = second.ask("state")[0]
    assert state["cooldown_kind"] == "rate-limited" and 29 < state["cooldown_remaining"] <= 30
    assert state["cooldown_reason"] == "429, retry-after-ms 30 s"
    assert first.quit() == [] and second.quit() == []


def test_a_cooldown_never_lags(redis_server: RedisServer, children: list[Child]) -> None:
    """A pick right after another process cools a deployment avoids it; right after the
    cooldown ends, takes it again: no cache in between."""
    child = Child(redis_server.url, "ordered")
    children.append(child)
    pool = make_pool(redis_server.url, "ordered")
    for _ in range(10):
        assert pool.pick() == DEPLOYMENTS[0]
        child.ask("fail 0 429 retry-after-ms=150")
        assert pool.pick() == DEPLOYMENTS[1]  # the very next pick
        deadline = time.monotonic() + 5
        while pool.pick() != DEPLOYMENTS[0]:
            assert time.monotonic() < deadline
        state = pool.snapshot()[0]
        assert state.available
    pool.store.close()


def test_failures_are_counted_across_processes(
    redis_server: RedisServer, children: list[Child]
) -> None:
    first, second = Child(redis_server.url), Child(redis_server.url)
    children += [first, second]
    for child in (first, second, first):  # allowed_fails is 3
        assert child.ask("fail 2 500")["cooldown"] is None
    verdict = second.ask("fail 2 503")  # the fourth within the minute, counted in Redis
    assert verdict["cooldown"] == 5 and verdict["reason"] == "4 failures within 60 s, the last 503"
    assert first.ask("state")[2]["failures"] == 4
    assert "chat#2" not in first.ask("pick 100")


def test_keys_are_named_as_documented_and_all_expire(redis_server: RedisServer, raw: Any) -> None:
    pool = make_pool(redis_server.url, rules=CooldownRules(failure_window=0.3))
    pool.record_failure(DEPLOYMENTS[0], Failure.from_response(429, {"retry-after": "7"}))
    pool.record_failure(DEPLOYMENTS[1], Failure.from_response(502))
    assert sorted(raw.keys("*")) == [
        "modelreg:chat:chat#0:cooldown",
        "modelreg:chat:chat#1:failures",
    ]
    assert 6900 < raw.pttl("modelreg:chat:chat#0:cooldown") <= 7000
    assert 0 < raw.pttl("modelreg:chat:chat#1:failures") <= 300
    kind, end, reason = raw.get("modelreg:chat:chat#0:cooldown").split("|")
    assert (kind, reason) == ("rate-limited", "429, retry-after 7 s")
    assert abs(int(end) / 1000 - time.time() - 7) < 1
    pool.store.close()


def test_failure_counters_expire(redis_server: RedisServer, raw: Any) -> None:
    """A window runs from its first failure: later failures do not extend it."""
    pool = make_pool(redis_server.url, rules=CooldownRules(failure_window=0.4, allowed_fails=5))
    start = time.monotonic()
    pool.record_failure(DEPLOYMENTS[0], Failure(ErrorKind.TIMEOUT))
    time.sleep(0.25)
    pool.record_failure(DEPLOYMENTS[0], Failure(ErrorKind.TIMEOUT))
    assert pool.snapshot(failures=True)[0].failures == 2
    assert 0 < raw.pttl("modelreg:chat:chat#0:failures") <= 400 - 250 + 20
    time.sleep(max(0.0, start + 0.45 - time.monotonic()))
    assert raw.exists("modelreg:chat:chat#0:failures") == 0
    assert pool.snapshot(failures=True)[0].failures == 0
    pool.record_failure(DEPLOYMENTS[0], Failure(ErrorKind.TIMEOUT))
    assert pool.snapshot(failures=True)[0].failures == 1
    pool.store.close()


def test_a_longer_cooldown_is_kept_and_a_shorter_one_does_not_shorten_it(
    redis_server: RedisServer, raw: Any
) -> None:
    pool = make_pool(redis_server.url)
    other = make_pool(redis_server.url)  # another process's view: nothing local
    pool.record_failure(DEPLOYMENTS[0], Failure.from_response(429, {"retry-after": "30"}))
    pool.record_failure(DEPLOYMENTS[0], Failure.from_response(429, {"retry-after": "1"}))
    assert raw.pttl("modelreg:chat:chat#0:cooldown") > 29_000
    cooldown = other.snapshot()[0].cooldown
    assert cooldown is not None and cooldown.remaining > 29
    pool.store.close()
    other.store.close()


def test_a_clock_ahead_of_the_writer_s_falls_back_to_the_keys_ttl(
    redis_server: RedisServer, raw: Any
) -> None:
    """The value's end is in the past by this clock, but the key still exists: its PTTL wins."""
    raw.set("modelreg:chat:chat#0:cooldown", "failing|1000|skewed", px=5000)
    pool = make_pool(redis_server.url)
    cooldown = pool.snapshot()[0].cooldown
    assert cooldown is not None and 4.5 < cooldown.remaining <= 5 and cooldown.reason == "skewed"
    assert cooldown.kind is CooldownKind.FAILING
    pool.store.close()


def test_redis_down_mid_run_then_back(
    redis_server: RedisServer, children: list[Child], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelreg")
    pool = make_pool(redis_server.url, "ordered")
    assert pool.pick() == DEPLOYMENTS[0]

    redis_server.stop()
    for _ in range(50):  # picks keep succeeding, on this process's state
        assert pool.pick() == DEPLOYMENTS[0]
    verdict = pool.record_failure(DEPLOYMENTS[0], Failure.from_response(429, {"retry-after": "1"}))
    assert verdict.cooldown == 1
    assert pool.record_failure(DEPLOYMENTS[2], Failure(ErrorKind.TIMEOUT)).retry
    assert pool.pick() == DEPLOYMENTS[1]  # its own cooldown counts while Redis is away
    time.sleep(0.1)
    assert pool.pick() == DEPLOYMENTS[1]  # probing again (reconnect_after) changes nothing
    down = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(down) == 1 and "unreachable (ConnectionError)" in down[0].getMessage()
    assert f"127.0.0.1:{redis_server.port}" in down[0].getMessage()

    redis_server.start()  # empty: it had no persistence
    time.sleep(0.1)
    child = Child(redis_server.url, "ordered")
    children.append(child)
    child.ask("fail 1 429 retry-after-ms=30000")  # sharing resumes: seen at once here
    assert pool.pick() == DEPLOYMENTS[2]
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    pool.store.close()


def test_a_redis_that_never_answers_costs_one_timeout_per_reconnect_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A socket that accepts and then says nothing (a hung Redis, a black hole)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    store = RedisStateStore(url, timeout=0.1, reconnect_after=3600)
    pool = Pool("chat", DEPLOYMENTS, strategy="ordered", store=store)
    done = threading.Event()

    def picks() -> None:
        for _ in range(100):
            assert pool.pick() == DEPLOYMENTS[0]
        done.set()

    worker = threading.Thread(target=picks, daemon=True)
    worker.start()
    worker.join(timeout=20)  # a liveness bound, not a speed figure: without timeouts, never
    stop.set()
    thread.join()
    listener.close()
    for connection in accepted:
        connection.close()
    assert done.is_set()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1 and "unreachable (TimeoutError)" in messages[0]
    assert len(accepted) <= 2  # one probe (and its one reconnect), not one per pick
    store.close()


def test_the_password_of_the_url_is_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(password="s3cret-pass", directory=tmp_path).start()
    try:
        good = RedisStateStore(server.url)
        wrong = RedisStateStore(server.url.replace("s3cret-pass", "wrong-pass"))
        pool = Pool("chat", DEPLOYMENTS, store=good, strategy="ordered")
        pool.record_failure(DEPLOYMENTS[0], Failure.from_response(429))
        assert Pool("chat", DEPLOYMENTS, store=wrong, strategy="ordered").pick() == DEPLOYMENTS[0]
        assert pool.pick() == DEPLOYMENTS[1]
        shown = [repr(good), repr(wrong), good.where, *(r.getMessage() for r in caplog.records)]
        assert all("s3cret" not in text and "wrong-pass" not in text for text in shown)
        assert any("AuthenticationError" in text for text in shown)
        good.close()
        wrong.close()
    finally:
        server.stop()


def test_async_picks_and_failures_share_the_same_keys(redis_server: RedisServer, raw: Any) -> None:
    pool = make_pool(redis_server.url, "ordered")

    async def main() -> list[Any]:
        verdict = await pool.arecord_failure(
            DEPLOYMENTS[0], Failure.from_response(429, {"retry-after-ms": "5000"})
        )
        picked = await pool.apick()
        states = await pool.asnapshot(failures=True)
        await pool.arecord_failure(DEPLOYMENTS[1], Failure(ErrorKind.CONNECTION))
        counted = (await pool.asnapshot(failures=True))[1].failures
        await pool.store.aclose()  # type: ignore[attr-defined]
        return [verdict.cooldown, picked, states[0].cooldown, counted]

    cooldown, picked, state, counted = asyncio.run(main())
    assert cooldown == 5 and picked == DEPLOYMENTS[1] and counted == 1
    assert state is not None and 4.5 < state.remaining <= 5
    assert 4000 < raw.pttl("modelreg:chat:chat#0:cooldown") <= 5000


def test_async_falls_back_while_redis_is_down(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(redis_server.url, "ordered")
    redis_server.stop()

    async def main() -> Any:
        await pool.arecord_failure(DEPLOYMENTS[0], Failure.from_response(429))
        picked = await pool.apick()
        await pool.store.aclose()  # type: ignore[attr-defined]
        return picked

    assert asyncio.run(main()) == DEPLOYMENTS[1]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_one_store_per_process_and_url(redis_server: RedisServer) -> None:
    try:
        store = shared_state_store(redis_server.url, origin="env MODELREG_ROUTING_STATE")
        assert shared_state_store(redis_server.url) is store
        assert isinstance(store, RedisStateStore)
        assert shared_state_store(None) is shared_state_store(None)
        assert shared_state_store(None) is not store
    finally:
        close_shared_state_stores()


def test_without_the_redis_package_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    with pytest.raises(ConfigError) as raised:
        RedisStateStore("redis://:pw@127.0.0.1:6379/0", origin="env MODELREG_ROUTING_STATE")
    message = str(raised.value)
    assert "env MODELREG_ROUTING_STATE" in message and "pip install 'modelreg[redis]'" in message
    assert "pw" not in message.replace("pip", "")


def test_a_url_redis_cannot_parse_is_a_config_error_without_its_password() -> None:
    with pytest.raises(ConfigError, match=r"is not a Redis URL") as raised:
        RedisStateStore("redis://user:s3cret@127.0.0.1:notaport/0")
    assert "s3cret" not in str(raised.value)
