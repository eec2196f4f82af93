"""Concurrency (threads, 500 concurrent async calls, reload in flight) and Entra ID tokens."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from registry import ConfigError, ModelRegistry
from tests.azure_server import AzureServer

MESSAGES = [{"role": "user", "content": "Hello"}]


def azure_settings(url: str, deployment: str = "dep", extra: str = "") -> str:
    return f"""
        [defaults]
        backend = "azure"
        endpoint = "{url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        max_retries = 0
        [models.chat]
        deployment = "{deployment}"
        aliases = ["assistant"]
        {extra}
        [models.other]
        deployment = "other-dep"
    """


def test_32_threads_create_and_resolve(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(azure_settings(server.base_url))
    registry = ModelRegistry.from_settings()
    barrier = threading.Barrier(32)

    def work(index: int) -> list[str]:
        barrier.wait()
        seen = []
        for round_ in range(20):
            name = "assistant" if (index + round_) % 2 else "other"
            spec = registry.resolve(name)
            model = registry.create(name, deployment=f"t{index}-{round_}")
            seen.append(f"{spec.name}:{model.model_type}")
        return seen

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(work, range(32)))
    for index, seen in enumerate(results):
        for round_, entry in enumerate(seen):
            name = "chat" if (index + round_) % 2 else "other"
            assert entry == f"{name}:t{index}-{round_}"
    assert registry._pool.counts() == (0, 0)  # nothing was requested, nothing was built


def test_500_concurrent_async_calls_share_pools(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(azure_settings(server.base_url))
    registry = ModelRegistry.from_settings()
    models = [registry.create("chat", deployment=f"d{i}") for i in range(10)]

    async def run_all() -> list[Any]:
        try:
            return await asyncio.gather(*(models[i % 10].arun(MESSAGES) for i in range(500)))
        finally:
            await registry.aclose()

    replies = asyncio.run(run_all())
    assert len(replies) == 500
    assert all(r.choices[0].message.content.endswith("You said: Hello") for r in replies)
    assert len(server.requests) == 500
    assert {r.deployment for r in server.requests} == {f"d{i}" for i in range(10)}


def test_reload_while_calls_in_flight(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(azure_settings(server.base_url, "before"))
    registry = ModelRegistry.from_settings()
    model = registry.create("chat")
    stop = threading.Event()
    errors: list[BaseException] = []
    calls = 0

    def caller() -> None:
        nonlocal calls
        while not stop.is_set():
            try:
                model.run(MESSAGES)
                registry.create("chat").run(MESSAGES)
                calls += 1
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for version in range(10):
        write_settings(azure_settings(server.base_url, f"after-{version}"))
        registry.reload()
    stop.set()
    for thread in threads:
        thread.join()
    registry.close()
    assert errors == []
    assert calls > 0
    assert registry.resolve("chat").options.deployment == "after-9"  # type: ignore[attr-defined]
    assert model.model_type == "before"


# -- Entra ID through the optional azure-identity extra (a fake credential stands in) ----------


class FakeCredential:
    instances: list[FakeCredential] = []

    def __init__(self) -> None:
        self.scopes: list[str] = []
        FakeCredential.instances.append(self)

    def get_token(self, scope: str) -> Any:
        self.scopes.append(scope)
        return types.SimpleNamespace(token=f"token-entra-{len(self.scopes)}")


class FakeAsyncCredential(FakeCredential):
    async def get_token(self, scope: str) -> Any:  # type: ignore[override]
        return FakeCredential.get_token(self, scope)


@pytest.fixture
def fake_azure_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCredential.instances = []
    identity = types.ModuleType("azure.identity")
    identity.DefaultAzureCredential = FakeCredential  # type: ignore[attr-defined]
    identity.get_bearer_token_provider = lambda cred, scope: lambda: cred.get_token(scope).token  # type: ignore[attr-defined]
    aio = types.ModuleType("azure.identity.aio")
    aio.DefaultAzureCredential = FakeAsyncCredential  # type: ignore[attr-defined]

    def async_provider(cred: Any, scope: str) -> Any:
        async def provide() -> str:
            return (await cred.get_token(scope)).token

        return provide

    aio.get_bearer_token_provider = async_provider  # type: ignore[attr-defined]
    azure = types.ModuleType("azure")
    azure.identity = identity  # type: ignore[attr-defined]
    identity.aio = aio  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure", azure)
    monkeypatch.setitem(sys.modules, "azure.identity", identity)
    monkeypatch.setitem(sys.modules, "azure.identity.aio", aio)


ENTRA = """
    [models.chat]
    backend = "azure"
    deployment = "dep"
    endpoint = "{url}"
    api_version = "2024-10-21"
    azure_ad_token_provider = "azure-identity"
    max_retries = 0
"""


@pytest.mark.usefixtures("fake_azure_identity")
def test_azure_identity_provider_sync_and_async(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(ENTRA.replace("{url}", server.base_url))
    registry = ModelRegistry.from_settings()
    model = registry.create("chat")
    assert FakeCredential.instances == []  # no credential until the first request
    model.run(MESSAGES)
    model.run(MESSAGES)
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer token-entra-1",
        "Bearer token-entra-2",
    ]
    assert (
        FakeCredential.instances[0].scopes == ["https://cognitiveservices.azure.com/.default"] * 2
    )

    async def async_call() -> None:
        await model.arun(MESSAGES)
        await registry.aclose()

    asyncio.run(async_call())
    assert isinstance(FakeCredential.instances[-1], FakeAsyncCredential)
    assert server.requests[-1].headers["authorization"] == "Bearer token-entra-1"
    registry.close()


def test_azure_identity_missing_extra_is_clear(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    write_settings(ENTRA.replace("{url}", "https://r.example.com"))
    with pytest.raises(ConfigError, match=r"pip install 'modelreg\[azure-identity\]'"):
        ModelRegistry.from_settings().create("chat")


def test_unknown_named_provider(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        ENTRA.replace("{url}", "https://r.example.com").replace(
            '"azure-identity"', '"azure-identiy"'
        )
    )
    with pytest.raises(ConfigError, match="Did you mean 'azure-identity'"):
        ModelRegistry.from_settings().create("chat")
