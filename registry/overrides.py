"""Client overrides for RL rollouts: every model call in a scope goes to the framework's clients.

Three ways to give a model other clients, one rule for all of them:

* scoped: ``with override_clients(client=..., async_client=...)`` or a gateway,
  ``with override_clients(base_url=..., api_key=..., default_headers=..., extra_body=...)``:
  every call made in this thread or asyncio task (and the tasks it starts) while the block runs;
* per model instance: ``create(name, client=..., async_client=...)``;
* per model in settings: ``client_provider = "name"`` (a plugin's provider).

At each call the active scope decides; without one, the model's own override (the ``create``
arguments, the provider, or the scope the model was created in). A scope is strict: a call
that needs a side it does not supply (``arun`` under ``override_clients(client=...)``) raises
:class:`~registry.errors.BackendError` instead of reaching the configured endpoint with its
real key, unless the scope was opened with ``fallback=True``. ``create(client=...)`` and
providers fall back per side, as CAMEL's ``client``/``async_client`` arguments do.

A scope is a :mod:`contextvars` variable: two threads or tasks can each hold their own at once.
asyncio tasks and ``asyncio.to_thread`` inherit it; threads and ``ThreadPoolExecutor`` workers
do not (:mod:`registry.scoped_threads` carries it there).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from registry.gateways import Gateway

__all__ = [
    "ClientOverride",
    "active_override",
    "check_client",
    "chosen_client",
    "override_clients",
]


@dataclass(frozen=True, eq=False)
class ClientOverride:
    """The clients (or the gateway) that replace a model's own.

    Attributes:
        client: used by ``run``; None: this override has no sync side.
        async_client: used by ``arun``; None: no async side.
        gateway: a server every call goes to instead (both sides), or None.
        fallback: a side this override lacks uses the model's own clients; False raises.
        label: what the override is, for messages (``override_clients(client=...)``).
    """

    client: Any = None
    async_client: Any = None
    gateway: Gateway | None = None
    fallback: bool = False
    label: str = "override_clients(...)"

    def client_for(self, *, is_async: bool, timeout: float, max_retries: int) -> Any:
        """The client for one side, or None when this override does not supply it.

        A gateway's SDK clients are built with the model's ``timeout`` and ``max_retries``.
        """
        if self.gateway is not None:
            return self.gateway.sdk_client(is_async=is_async, timeout=timeout, retries=max_retries)
        return self.async_client if is_async else self.client

    def secret_values(self) -> list[str]:
        """Credentials this override sends (masked in excerpts of a server's reply)."""
        return self.gateway.secret_values() if self.gateway is not None else []

    def __repr__(self) -> str:
        sides = [
            f"{side}={type(getattr(self, side)).__name__}"
            for side in ("client", "async_client")
            if getattr(self, side) is not None
        ]
        if self.gateway is not None:
            sides.append(f"gateway={self.gateway!r}")
        return f"ClientOverride({', '.join(sides)}, fallback={self.fallback})"


_ACTIVE: ContextVar[ClientOverride | None] = ContextVar("modelreg_client_override", default=None)


def active_override() -> ClientOverride | None:
    """The scope in force in this context (``override_clients``), or None."""
    return _ACTIVE.get()


def chosen_client(
    name: str,
    own: ClientOverride | None,
    *,
    is_async: bool,
    timeout: float,
    max_retries: int,
) -> Any:
    """The client a call of model ``name`` must use, or None for the model's own connection.

    The active scope decides; without one, ``own`` (the model's override, if any).

    Raises:
        BackendError: the override lacks this side and does not allow falling back.
    """
    override = _ACTIVE.get()
    if override is None:
        override = own
        if override is None:
            return None
    client = override.client_for(is_async=is_async, timeout=timeout, max_retries=max_retries)
    if client is None and not override.fallback:
        raise BackendError(_missing_side_message(name, override, is_async))
    return client


def _missing_side_message(name: str, override: ClientOverride, is_async: bool) -> str:
    call, side, other = (
        ("arun()", "async_client", "client") if is_async else ("run()", "client", "async_client")
    )
    return (
        f"model {name!r}: {call} inside {override.label}, which supplies only {other}: the call "
        "is not sent to the model's configured endpoint. Pass "
        f"{side}= too (or a gateway: base_url=...), or open the scope with fallback=True to let "
        "the missing side use the model's own client."
    )


def check_client(client: Any, *, where: str, api: str | None = None) -> None:
    """Check that ``client`` has the method a model will call.

    ``api`` is the model's API when known (``create(client=...)``): ``chat.completions.create``
    for ``"chat_completions"``, ``responses.create`` for ``"responses"``. A scope serves models
    of either API, so without ``api`` either method will do.
    """
    paths = {"chat_completions": ("chat", "completions"), "responses": ("responses",)}
    wanted = [paths[api]] if api in paths else list(paths.values())
    if any(callable(_attribute_path(client, (*path, "create"))) for path in wanted):
        return
    names = " or ".join(".".join((*path, "create")) for path in wanted)
    raise ConfigError(
        f"{where}: the client {type(client).__name__} has no {names}; an OpenAI-compatible "
        "client is needed (openai.OpenAI, openai.AzureOpenAI or an object with the same methods)."
    )


def _attribute_path(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = getattr(obj, name, None)
    return obj


def _scope(
    client: Any,
    async_client: Any,
    gateway_args: Mapping[str, Any],
    *,
    allow_http: bool,
    fallback: bool,
) -> ClientOverride:
    """The validated override for ``override_clients`` (ConfigError naming the argument)."""
    given = [key for key, value in gateway_args.items() if value is not None]
    given += ["allow_http"] if allow_http else []
    if gateway_args["base_url"] is not None:
        if client is not None or async_client is not None:
            raise ConfigError(
                "override_clients: pass clients (client=, async_client=) or a gateway "
                "(base_url=...), not both."
            )
        from registry.gateways import Gateway

        gateway = Gateway.checked(allow_http=allow_http, **gateway_args)
        return ClientOverride(gateway=gateway, fallback=fallback, label=f"{gateway!r}")
    if given:
        raise ConfigError(
            f"override_clients: {', '.join(f'{key}=' for key in given)} go with base_url= (a "
            "gateway the scope builds clients for); to send headers or body fields with your "
            "own client, set them on that client (default_headers=...)."
        )
    if client is None and async_client is None:
        raise ConfigError(
            "override_clients: pass a client, an async_client, both, or a gateway (base_url=...)."
        )
    for side, value in (("client", client), ("async_client", async_client)):
        if value is not None:
            check_client(value, where=f"override_clients({side}=...)")
    sides = ", ".join(s for s, v in (("client", client), ("async_client", async_client)) if v)
    return ClientOverride(
        client, async_client, fallback=fallback, label=f"override_clients({sides}=...)"
    )


@contextmanager
def override_clients(
    client: Any = None,
    async_client: Any = None,
    *,
    base_url: str | None = None,
    api_key: Any = None,
    default_headers: Mapping[str, str] | None = None,
    extra_body: Mapping[str, Any] | None = None,
    allow_http: bool = False,
    fallback: bool = False,
) -> Iterator[ClientOverride]:
    """Send every model call inside the block to the given clients, or to a gateway.

    Args:
        client: used by ``run`` (sync), as-is.
        async_client: used by ``arun``, as-is.
        base_url: a gateway (OpenAI-compatible server) every call goes to, in both API modes;
            the scope builds its SDK clients on pooled connections, with each model's
            ``timeout`` and ``max_retries``. Not with ``client``/``async_client``.
        api_key: the gateway's key (str or SecretStr); never the model's own is sent there.
        default_headers: headers on every request to the gateway (``X-Session-ID``); they win
            over a request's own ``extra_headers``.
        extra_body: fields added to every request body; they win over the model's config and
            the call's settings (a framework pins sampling settings this way).
        allow_http: accept an ``http://`` gateway that is not a loopback host.
        fallback: a side the scope does not supply (only ``client`` given, ``arun`` called)
            uses the model's own clients; by default such a call raises BackendError.

    Raises:
        ConfigError: a client without ``chat.completions.create``, an invalid gateway URL,
            key or header (named, never shown), or arguments that do not go together.
    """
    gateway_args = {
        "base_url": base_url,
        "api_key": api_key,
        "default_headers": default_headers,
        "extra_body": extra_body,
    }
    override = _scope(client, async_client, gateway_args, allow_http=allow_http, fallback=fallback)
    token = _ACTIVE.set(override)
    try:
        yield override
    finally:
        _ACTIVE.reset(token)
