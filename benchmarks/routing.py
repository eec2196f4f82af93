"""Pool routing: a pick in memory, and a pick on Redis against a bare Redis GET, same server.

A pick reads the state of every deployment (one ``MGET`` when the state is on Redis), asks the
strategy, and returns a deployment: it runs before every attempt of every call through a pool.
The Redis rows start Debian's ``redis-server`` on a free loopback port (no persistence) and
compare, in adjacent alternating blocks, ``pool.pick()`` with a plain ``GET`` on a redis-py
client of the same server. Without redis-server or the redis package they are left out, and
the run says so on stderr.

The one-deployment pool row puts ``run()`` on a model with a single
``[[models.pooled.deployments]]`` against the same model without one, both on the in-process
transport of :mod:`benchmarks.request_overhead`: what a pool adds to a call (a pick, the retry
loop, the served record), not the network's noise.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._util import Figure, paired_blocks
from benchmarks.request_overhead import MESSAGES, in_process_transport

TWO_REGIONS = [("chat#0", "eastus.example.com/gpt-4o", 2.0), ("chat#1", "sweden.example.com", 1.0)]


def _pool(store: Any = None) -> Any:
    from registry.routing import Deployment, Pool

    deployments = [Deployment(i, label, weight) for i, label, weight in TWO_REGIONS]
    return Pool("chat", deployments, store=store, seed=1)


def _per_call(function: Callable[[], object], calls: int, block: int = 1000) -> float:
    """Median seconds per call over blocks of ``block`` calls."""
    samples = []
    for _ in range(max(3, calls // block)):
        start = time.perf_counter()
        for _ in range(block):
            function()
        samples.append((time.perf_counter() - start) / block)
    return statistics.median(samples)


def _in_memory(quick: bool) -> Figure:
    pool = _pool()
    population = list(pool.deployments)
    weights = [d.weight for d in population]
    rng = random.Random(1)
    calls = 20_000 if quick else 200_000
    for _ in range(1000):
        pool.pick()
    ours = _per_call(pool.pick, calls)
    floor = _per_call(lambda: rng.choices(population, weights), calls)
    return Figure(
        "routing: pick in memory (2 deployments, weighted)",
        ours * 1e6,
        "us",
        floor * 1e6,
        "(reference) random.choices over the weights",
        "microseconds",
    )


#: One model in a pool of one deployment, and the same model without a pool.
ONE_DEPLOYMENT_POOL = """
[models.plain]
backend = "azure"
api_key = "k"
api_version = "2024-10-21"
endpoint = "https://x.example.com"
deployment = "d"

[models.pooled]
backend = "azure"
api_key = "k"
api_version = "2024-10-21"

[[models.pooled.deployments]]
endpoint = "https://x.example.com"
deployment = "d"
"""


def _in_process_registry(directory: Path) -> Any:
    """A registry of ONE_DEPLOYMENT_POOL (empty ``.env``) whose HTTP clients answer in-process."""
    from registry import ModelRegistry
    from registry.http_clients import TimedHttpClient
    from registry.pools import HttpClientPool
    from registry.settings import load_settings

    class InProcess(HttpClientPool):
        def sync_client(self, key: str) -> Any:
            with self._lock:
                client = self._sync.get(key)
                if client is None:
                    client = self._sync[key] = TimedHttpClient(transport=in_process_transport())
            return client

    (directory / "settings.toml").write_text(ONE_DEPLOYMENT_POOL)
    (directory / ".env").write_text("")
    settings = load_settings(directory / "settings.toml", dotenv_path=directory / ".env")
    return ModelRegistry(settings, pool=InProcess())


def _one_deployment_pool(quick: bool) -> Figure:
    """``run()`` through a pool of one deployment against the same model without a pool."""
    with tempfile.TemporaryDirectory() as directory:
        registry = _in_process_registry(Path(directory))
        pooled, plain = registry.create("pooled"), registry.create("plain")
    assert pooled.routing_plan is not None and plain.routing_plan is None

    def pooled_call() -> None:
        pooled.run(MESSAGES)

    def plain_call() -> None:
        plain.run(MESSAGES)

    for _ in range(100):
        pooled_call()
        plain_call()
    ours, raw, ratio = paired_blocks(pooled_call, plain_call, 400 if quick else 4000, 100)
    registry.close()
    return Figure(
        "routing: run() through a one-deployment pool, in-process transport",
        ours * 1e6,
        "us/call",
        raw * 1e6,
        "the same model without a pool",
        "<= 1.02x",
        ratio <= 1.02,
        paired_ratio=ratio,
    )


def _redis_figures(url: str, quick: bool) -> list[Figure]:
    import redis

    from registry.routing import Failure, RedisStateStore

    calls = 2000 if quick else 20_000
    store = RedisStateStore(url)
    pool = _pool(store)
    bare = redis.Redis.from_url(url, decode_responses=True)
    bare.set("modelreg:bench:plain", "x")

    def get() -> None:
        bare.get("modelreg:bench:plain")

    for _ in range(500):
        pool.pick()
        get()
    figures = []
    for label, picking in (("pick on Redis", True), ("pick on Redis, 1 of 2 cooling", False)):
        if not picking:
            pool.record_failure(
                pool.deployments[1], Failure.from_response(429, {"retry-after": "600"})
            )
        ours, raw, ratio = paired_blocks(pool.pick, get, calls, 100)
        figures.append(
            Figure(
                f"routing: {label}",
                ours * 1e6,
                "us",
                raw * 1e6,
                "redis-py GET, same server",
                "<= 1.5x",
                ratio <= 1.5,
                paired_ratio=ratio,
            )
        )
    figures.append(asyncio.run(_async_figure(url, calls)))
    bare.close()
    store.close()
    return figures


async def _async_figure(url: str, calls: int) -> Figure:
    import redis.asyncio

    from registry.routing import RedisStateStore

    store = RedisStateStore(url)
    pool = _pool(store)
    bare = redis.asyncio.Redis.from_url(url, decode_responses=True)
    ours_times: list[float] = []
    raw_times: list[float] = []
    ratios: list[float] = []
    for index in range(max(2, calls // 100)):
        sides = [(pool.apick, ours_times), (lambda: bare.get("modelreg:bench:plain"), raw_times)]
        for function, sink in sides if index % 2 == 0 else reversed(sides):
            start = time.perf_counter()
            for _ in range(100):
                await function()
            sink.append((time.perf_counter() - start) / 100)
        ratios.append(ours_times[-1] / raw_times[-1])
    await bare.aclose()
    await store.aclose()
    ours, raw = statistics.median(ours_times), statistics.median(raw_times)
    ratio = statistics.median(ratios)
    return Figure(
        "routing: pick on Redis (asyncio)",
        ours * 1e6,
        "us",
        raw * 1e6,
        "redis.asyncio GET, same server",
        "<= 1.5x",
        ratio <= 1.5,
        paired_ratio=ratio,
    )


def run(quick: bool) -> list[Figure]:
    figures = [_in_memory(quick), _one_deployment_pool(quick)]
    try:
        import redis  # noqa: F401
    except ImportError:
        print("# routing: the redis package is not installed: Redis rows left out", file=sys.stderr)
        return figures
    from tests.redis_server import RedisServer, redis_server_path

    if redis_server_path() is None:
        print("# routing: redis-server is not installed: Redis rows left out", file=sys.stderr)
        return figures
    server = RedisServer().start()
    try:
        figures += _redis_figures(server.url, quick)
    finally:
        server.stop()
        import shutil

        shutil.rmtree(server.directory, ignore_errors=True)
    return figures
