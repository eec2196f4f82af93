"""Concurrency (threads, 500 concurrent async calls, reload in flight) and Entra ID tokens."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from registry import ConfigError, MissingCredentialsError, ModelRegistry
from tests.azure_server import AzureServer, Fault

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
            for model in models:  # one after another: all ten reuse one pooled connection
                await model.arun(MESSAGES)
            assert server.connections() == 1
            return await asyncio.gather(*(models[i % 10].arun(MESSAGES) for i in range(500)))
        finally:
            assert registry._pool.counts() == (0, 1)  # one async client for the endpoint
            await registry.aclose()

    replies = asyncio.run(run_all())
    assert len(replies) == 500
    assert all(r.choices[0].message.content.endswith("You said: Hello") for r in replies)
    assert len(server.requests) == 510
    assert {r.deployment for r in server.requests} == {f"d{i}" for i in range(10)}
    assert server.wait_for_closed_connections() == 0


def test_reload_while_calls_in_flight(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(azure_settings(server.base_url, "before"))
    registry = ModelRegistry.from_settings()
    model = registry.create("chat")
    release = threading.Event()
    server.add_faults(*[Fault(hold=release) for _ in range(4)])
    results: list[Any] = []
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            results.append(model.run(MESSAGES))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    server.wait_for_requests(4)  # four calls are in flight, held by the server
    for version in range(10):
        write_settings(azure_settings(server.base_url, f"after-{version}"))
        registry.reload()
        registry.create("chat").run(MESSAGES)  # a new model while the old calls wait
    release.set()
    for thread in threads:
        thread.join()
    registry.close()
    assert errors == [] and len(results) == 4
    assert [r.deployment for r in server.requests[:4]] == ["before"] * 4
    assert [r.deployment for r in server.requests[4:]] == [f"after-{v}" for v in range(10)]
    assert registry.resolve("chat").options.deployment == "after-9"  # type: ignore[attr-defined]
    assert model.model_type == "before"


# -- event loops: asyncio.run per call, and one loop per thread ----------------------------------


def test_asyncio_run_per_call_leaves_no_socket_open(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    from backends.azure import AzureOpenAIModel

    write_settings(azure_settings(server.base_url))
    registry = ModelRegistry.from_settings()
    pooled = registry.create("chat")
    own = AzureOpenAIModel("dep", api_key="test-key", url=server.base_url, api_version="2024-10-21")
    for model in (pooled, own):
        for _ in range(5):
            reply = asyncio.run(model.arun(MESSAGES))  # nothing closed by hand
            assert reply.choices[0].message.content.endswith("You said: Hello")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unclosed transport or socket would warn here
        gc.collect()
    assert server.wait_for_closed_connections() == 0
    assert len(server.requests) == 10


def test_threads_with_their_own_loops_keep_one_client_each(
    write_settings: Callable[[str], Path], server: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(azure_settings(server.base_url))
    registry = ModelRegistry.from_settings()
    model = registry.create("chat")
    built: list[Any] = []
    original = type(model)._new_async_client

    def counting(self: Any, http_client: Any) -> Any:
        built.append(http_client)
        return original(self, http_client)

    monkeypatch.setattr(type(model), "_new_async_client", counting)
    barrier = threading.Barrier(4)

    def worker() -> None:
        async def calls() -> None:
            barrier.wait()  # all four loops are running at once
            for _ in range(10):
                await model.arun(MESSAGES)
                await asyncio.sleep(0)

        asyncio.run(calls())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(server.requests) == 40
    assert len(built) == 4  # one SDK client per loop, not one per call
    assert len({id(client) for client in built}) == 4  # each on its loop's HTTP client
    registry.close()
    assert server.wait_for_closed_connections() == 0


# -- Entra ID through the optional azure-identity extra --------------------------------------
# azure-identity is not a test dependency: a module stand-in provides DefaultAzureCredential
# (sync and aio) with the real API — get_token(*scopes) -> AccessToken(token, expires_on) — and
# azure.core.exceptions.ClientAuthenticationError. Each credential issues a new token per call;
# the caching is modelreg's provider's, as it would be in production.


class AccessToken(NamedTuple):
    token: str
    expires_on: int


class ClientAuthenticationError(Exception):
    """Stands in for azure.core.exceptions.ClientAuthenticationError."""


class CredentialUnavailableError(ClientAuthenticationError):
    """Stands in for azure.identity.CredentialUnavailableError (no login at all)."""


NOT_SIGNED_IN = "\n".join(
    ["DefaultAzureCredential failed to retrieve a token from the included credentials."]
    + [f"\tCredential{i}: not available. Try `az login` ..." for i in range(48)]
)


class FakeCredential:
    instances: list[FakeCredential] = []
    lifetime = 3600  # seconds until a token expires
    signed_in = True

    def __init__(self) -> None:
        self.scopes: list[str] = []
        FakeCredential.instances.append(self)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if not self.signed_in:
            raise CredentialUnavailableError(NOT_SIGNED_IN)
        self.scopes.extend(scopes)
        return AccessToken(f"token-entra-{len(self.scopes)}", int(time.time()) + self.lifetime)


class FakeAsyncCredential(FakeCredential):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        await asyncio.sleep(0)
        return FakeCredential.get_token(self, *scopes)


@pytest.fixture
def fake_azure_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCredential.instances = []
    monkeypatch.setattr(FakeCredential, "lifetime", 3600)
    monkeypatch.setattr(FakeCredential, "signed_in", True)
    identity = types.ModuleType("azure.identity")
    identity.DefaultAzureCredential = FakeCredential  # type: ignore[attr-defined]
    identity.CredentialUnavailableError = CredentialUnavailableError  # type: ignore[attr-defined]
    aio = types.ModuleType("azure.identity.aio")
    aio.DefaultAzureCredential = FakeAsyncCredential  # type: ignore[attr-defined]
    exceptions = types.ModuleType("azure.core.exceptions")
    exceptions.ClientAuthenticationError = ClientAuthenticationError  # type: ignore[attr-defined]
    azure = types.ModuleType("azure")
    azure.identity = identity  # type: ignore[attr-defined]
    identity.aio = aio  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure", azure)
    monkeypatch.setitem(sys.modules, "azure.identity", identity)
    monkeypatch.setitem(sys.modules, "azure.identity.aio", aio)
    monkeypatch.setitem(sys.modules, "azure.core.exceptions", exceptions)


ENTRA = """
    [models.chat]
    backend = "azure"
    deployment = "dep"
    endpoint = "{url}"
    api_version = "2024-10-21"
    azure_ad_token_provider = "azure-identity"
    max_retries = 0
"""
EXPIRED = Fault(status=401, body={"error": {"code": "401", "message": "Token expired"}})


def bearer_tokens(server: AzureServer) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ") for r in server.requests]


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
    assert bearer_tokens(server) == ["token-entra-1", "token-entra-1"]  # cached
    assert FakeCredential.instances[0].scopes == ["https://cognitiveservices.azure.com/.default"]

    async def async_calls() -> None:
        await asyncio.gather(*(model.arun(MESSAGES) for _ in range(20)))
        await registry.aclose()

    asyncio.run(async_calls())
    assert isinstance(FakeCredential.instances[-1], FakeAsyncCredential)
    assert len(FakeCredential.instances[-1].scopes) == 1  # 20 concurrent calls, one token
    assert bearer_tokens(server)[2:] == ["token-entra-1"] * 20
    registry.close()


@pytest.mark.usefixtures("fake_azure_identity")
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_azure_identity_token_renewed_after_401(
    write_settings: Callable[[str], Path], server: AzureServer, use_async: bool
) -> None:
    write_settings(ENTRA.replace("{url}", server.base_url))
    registry = ModelRegistry.from_settings()
    model = registry.create("chat")

    async def twice() -> None:
        await model.arun(MESSAGES)
        server.add_faults(EXPIRED)
        await model.arun(MESSAGES)
        await registry.aclose()

    if use_async:
        asyncio.run(twice())
    else:
        model.run(MESSAGES)
        server.add_faults(EXPIRED)
        model.run(MESSAGES)
    # The cached token was rejected; the retry sent one fetched past the cache.
    assert bearer_tokens(server) == ["token-entra-1", "token-entra-1", "token-entra-2"]
    registry.close()


@pytest.mark.usefixtures("fake_azure_identity")
def test_azure_identity_token_near_expiry_is_replaced(
    write_settings: Callable[[str], Path], server: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeCredential, "lifetime", 120)  # inside the 5-minute margin
    write_settings(ENTRA.replace("{url}", server.base_url))
    with ModelRegistry.from_settings() as registry:
        model = registry.create("chat")
        model.run(MESSAGES)
        model.run(MESSAGES)
    assert bearer_tokens(server) == ["token-entra-1", "token-entra-2"]


@pytest.mark.usefixtures("fake_azure_identity")
def test_azure_identity_not_signed_in_is_missing_credentials(
    write_settings: Callable[[str], Path],
    server: AzureServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from registry.cli import main

    monkeypatch.setattr(FakeCredential, "signed_in", False)
    write_settings(ENTRA.replace("{url}", server.base_url))
    with ModelRegistry.from_settings() as registry:
        model = registry.create("chat")
        with pytest.raises(MissingCredentialsError) as caught:
            model.run(MESSAGES)
        with pytest.raises(MissingCredentialsError):
            asyncio.run(model.arun(MESSAGES))
    message = str(caught.value)
    assert message.startswith("model 'chat': azure_ad_token_provider could not get")
    assert "`az login`" in message and "AZURE_CLIENT_SECRET" in message
    assert "Credential3" not in message  # the first line of azure-identity's 49, not all
    assert isinstance(caught.value.__cause__, CredentialUnavailableError)
    assert server.requests == []
    assert main(["chat", "chat", "Hello"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("modelreg: error: model 'chat': azure_ad_token_provider could not get")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


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


def test_model_dropped_without_close_leaves_no_socket_open(server: AzureServer) -> None:
    from backends.azure import AzureOpenAIModel

    model = AzureOpenAIModel(
        "dep", api_key="test-key", url=server.base_url, api_version="2024-10-21"
    )
    model.run(MESSAGES)
    del model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "unclosed socket" would be raised here
        gc.collect()
    assert server.wait_for_closed_connections() == 0


def test_real_azure_identity_errors_and_tokens(server: AzureServer) -> None:
    # With azure-identity installed (the dev extra has it), its own exception and token types.
    pytest.importorskip("azure.identity")
    from azure.core.credentials import AccessToken as RealAccessToken
    from azure.identity import CredentialUnavailableError as RealUnavailable

    from backends.azure import AzureOpenAIModel
    from backends.token_providers import AzureIdentityTokenProvider

    class StandIn:
        signed_in = False
        calls = 0

        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            if not self.signed_in:
                raise RealUnavailable("EnvironmentCredential authentication unavailable.\nmore")
            StandIn.calls += 1
            return RealAccessToken(f"token-real-{StandIn.calls}", int(time.time()) + 3600)

    credential = StandIn()
    provider = AzureIdentityTokenProvider(credential=credential)
    model = AzureOpenAIModel(
        "dep", azure_ad_token_provider=provider, url=server.base_url, api_version="2024-10-21"
    )
    with pytest.raises(MissingCredentialsError, match=r"\(EnvironmentCredential .*unavailable\.\)"):
        model.run(MESSAGES)
    credential.signed_in = True
    server.add_faults(EXPIRED)
    model.run(MESSAGES)
    assert bearer_tokens(server) == ["token-real-1", "token-real-2"]
    model.close()
