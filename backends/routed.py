"""How a backend without clients of its own honours a client override: through its client.

A plugin's backend (``client_overrides = "routed"``, the default, as for ``backend = "fake"``)
answers from its ``_run``/``_arun`` until a client override applies to a call. Then
``run``/``arun`` send the call through the override's client instead — the model's name, its
settings and this call's, the same request paths, checks and error translation as the
OpenAI-family backends (:mod:`backends.chat_requests`) — so a framework's client sees every call,
whatever backend the settings chose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from backends.chat_requests import ChatCompletionsBackend
from registry.errors import BackendError

if TYPE_CHECKING:
    from backends.base import BaseModelBackend, BuildContext, Messages
    from registry.spec import ModelSpec

__all__ = ["RoutedCalls"]


class RoutedCalls(ChatCompletionsBackend):
    """The chat-completions request path of ``owner``, on the clients of its override only."""

    def __init__(self, owner: BaseModelBackend) -> None:
        self.owner = owner
        timeout, retries = owner._client_limits
        super().__init__(
            owner.model_type,
            timeout=timeout,
            max_retries=retries,
            name=owner.name,
            base_model=owner.base_model,
        )
        self._clients = owner._clients

    @property
    def model_config_dict(self) -> dict[str, Any]:
        """The owner's settings (with the settings of the call it is making)."""
        return self.owner.model_config_dict

    @model_config_dict.setter
    def model_config_dict(self, value: Mapping[str, Any]) -> None:
        return  # always the owner's

    @classmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> Self:
        """Not a backend of its own: built by :meth:`BaseModelBackend.run` for its owner."""
        raise TypeError("RoutedCalls is built by its owner's run(), not from settings")

    def check_model_config(self) -> None:
        """The owner's settings were checked with the owner's config model."""

    def prepared_request(self, messages: Messages, request: dict[str, Any]) -> dict[str, Any]:
        """The owner's request rules (its capabilities, ``check_context``, token counter)."""
        return self.owner.prepared_request(messages, request)

    def _no_client(self) -> BackendError:
        return BackendError(
            f"model {self.name!r}: {type(self.owner).__name__} has no client of its own, and "
            "no client override applies any more (was a stream manager entered after its "
            "override_clients block ended?)."
        )

    def _new_sync_client(self, http_client: Any) -> Any:
        raise self._no_client()

    def _new_async_client(self, http_client: Any) -> Any:
        raise self._no_client()

    def _http_client(self, *, is_async: bool) -> Any:
        return None
