"""What arrived instead of a chat completion: the checks, and plain words for error messages.

The openai SDK builds its response objects without validating them, so a 200 that is not a chat
completion comes back as a ``str`` (an HTML page) or as a ``ChatCompletion`` whose ``choices``
is None; a stream cut by a proxy simply ends. These helpers say what is wrong, naming only
field names, content types and short excerpts with the model's own secrets masked.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from registry.masking import mask_values

__all__ = [
    "StreamProgress",
    "completion_problem",
    "connection_problem",
    "excerpt",
    "is_completion",
]


def excerpt(text: str | bytes, secrets: Iterable[str] = (), limit: int = 80) -> str:
    """The start of ``text`` as a quoted literal (control characters escaped), secrets masked."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = mask_values(text, secrets)
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def _field_names(value: Any) -> str:
    names = set(getattr(value, "model_fields_set", ()) or ()) | set(
        getattr(value, "model_extra", None) or {}
    )
    return ", ".join(sorted(names)) or "none"


def _error_message(value: Any, secrets: Iterable[str]) -> str:
    error = (getattr(value, "model_extra", None) or {}).get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return f"; its error says {excerpt(message, secrets, 200)}" if isinstance(message, str) else ""


def is_completion(result: Any) -> bool:
    """Whether ``result`` has a non-empty ``choices`` list whose choices all have a message."""
    choices = getattr(result, "choices", None)
    return (
        type(choices) is list
        and bool(choices)
        and all(getattr(choice, "message", None) is not None for choice in choices)
    )


def completion_problem(result: Any, secrets: Iterable[str] = ()) -> str:
    """Why ``result`` (from an SDK client, not :func:`is_completion`) is not a completion."""
    choices = getattr(result, "choices", None)
    if type(choices) is list and choices:
        for index, choice in enumerate(choices):
            if getattr(choice, "message", None) is None:
                return (
                    f"choice {index} of the server's 200 response has no `message` (its fields: "
                    f"{_field_names(choice)}); is base URL a /completions endpoint rather than "
                    "chat completions?"
                )
    if isinstance(result, str | bytes):
        return (
            f"the server answered 200 with a body that is not JSON ({len(result)} characters, "
            f"starting {excerpt(result, secrets)}); is the endpoint an OpenAI-compatible API, "
            "or did a proxy or login page answer instead?"
        )
    what = "an empty `choices` list" if type(choices) is list else "no `choices`"
    return (
        f"the server answered 200 with JSON that is not a chat completion: {what} (its fields: "
        f"{_field_names(result)}){_error_message(result, secrets)}"
    )


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


def connection_problem(exc: BaseException) -> str:
    """What went wrong under an ``openai.APIConnectionError``: DNS, refused, TLS, reset..."""
    import ssl  # loaded by the SDK already; not at import (a cold start would pay ~3 ms)

    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    host = f"{url.host}:{url.port}" if url is not None and url.port else getattr(url, "host", "")
    root = _root_cause(exc)
    reason = str(root) or type(root).__name__
    if isinstance(root, socket.gaierror):
        what = f"DNS lookup of {getattr(url, 'host', 'the host')!r} failed ({root.strerror})"
    elif isinstance(root, ConnectionRefusedError):
        what = f"{host} refused the connection (is the endpoint's host and port right?)"
    elif isinstance(root, ssl.SSLCertVerificationError):
        what = f"TLS certificate of {host} could not be verified ({root.verify_message})"
    elif isinstance(root, ssl.SSLError):
        what = f"TLS handshake with {host} failed ({reason}); does it speak https?"
    elif isinstance(root, ConnectionResetError | BrokenPipeError):
        what = f"{host} reset the connection"
    elif isinstance(root, TimeoutError):
        what = f"connecting to {host} timed out"
    else:
        what = f"the connection to {host} failed ({reason})"
    return what[0].upper() + what[1:] + "."


class StreamProgress:
    """Which choices of a chat completion stream have finished, for the end-of-stream check."""

    __slots__ = ("chunks", "finished", "open")
    #: What the stream should have been, for messages.
    contents = "chat completion chunks"

    def __init__(self) -> None:
        self.chunks = 0
        self.finished: set[Any] = set()
        self.open: set[Any] = set()

    def see(self, chunk: Any) -> None:
        """Note one chunk: a choice is open until a chunk gives it a finish_reason."""
        self.chunks += 1
        for choice in getattr(chunk, "choices", None) or ():
            index = getattr(choice, "index", None)
            if getattr(choice, "finish_reason", None):
                self.finished.add(index)
                self.open.discard(index)
            elif index not in self.open and index not in self.finished:
                self.open.add(index)

    @property
    def complete(self) -> bool:
        """Every choice that appeared has finished (and at least one did)."""
        return bool(self.finished) and not self.open

    def describe(self) -> str:
        """Where the stream stopped, for IncompleteStreamError."""
        if not self.chunks:
            return "the stream ended before its first chunk"
        unfinished = ", ".join(str(i) for i in sorted(self.open, key=str)) or "any"
        return (
            f"the stream ended after {self.chunks} chunk(s) without a finish_reason for choice "
            f"{unfinished}"
        )
