"""Downloading tokenizer files for ``modelreg tokens --prefetch``: verified, all or nothing.

Only this path touches the network, and only when asked. Each file streams into a temporary file
beside its final name while its sha256 is computed; it takes its place only when the checksum
matches. When anything fails (or the user presses Ctrl-C), everything this run wrote is removed
and so are the directories it created, so a failed prefetch leaves nothing that could be copied to
an air-gapped machine by mistake.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import unquote, urlsplit

from registry.errors import TokenizerUnavailableError
from registry.masking import shown_path

__all__ = ["Downloader"]

_CHUNK = 64 * 1024
_TIMEOUT = 60.0
_HINT = "Run this on a machine with internet access, or give a mirror with --prefetch-from URL."


class _Failed(Exception):
    """A download failed; the text says how, in words fit for the one-line message."""


class Downloader:
    """Fetch files into ``target``; on leaving with an exception, undo everything it wrote."""

    def __init__(
        self,
        target: Path,
        base_url: str | None,
        progress: Callable[[str, int, int | None], None] | None,
    ) -> None:
        self.target = target
        self.base_url, self._headers = _checked_base(base_url)
        self.progress = progress
        self._written: list[Path] = []
        self._created: list[Path] = []

    def __enter__(self) -> Downloader:
        missing = [p for p in (self.target, *self.target.parents) if not p.exists()]
        try:
            self.target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(self.target, exc) from None
        self._created = missing  # deepest first
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            return
        for path in self._written:
            path.unlink(missing_ok=True)
        for directory in self._created:
            try:
                directory.rmdir()
            except OSError:
                break  # not empty (someone else's file) or gone: keep the rest

    def fetch(self, name: str, url: str, sha256: str, destination: Path) -> Path:
        """``destination`` holding the verified file (downloaded unless already there)."""
        if destination.is_file() and _sha256_of(destination) == sha256:
            size = destination.stat().st_size
            if self.progress:
                self.progress(name, size, size)
            return destination
        if self.base_url is not None:
            url = self.base_url + url.rsplit("/", 1)[1]
        partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.tmp")
        self._written.append(partial)
        try:
            digest = self._download(name, url, partial)
        except _Failed as exc:
            host = urlsplit(url).hostname or "?"
            raise TokenizerUnavailableError(
                f"could not download encoding {name!r} from {host}: {exc}. Nothing was written to "
                f"{shown_path(self.target)}. {_HINT}"
            ) from None
        except OSError as exc:  # writing, not reading: the network errors are _Failed
            raise _write_error(self.target, exc) from None
        if digest != sha256:
            host = urlsplit(url).hostname or "?"
            raise TokenizerUnavailableError(
                f"could not download encoding {name!r} from {host}: its sha256 is not the "
                f"published one (a corrupt or altered file). Nothing was written to "
                f"{shown_path(self.target)}. {_HINT}"
            )
        self._written.append(destination)
        os.replace(partial, destination)
        self._written.remove(partial)
        return destination

    def _download(self, name: str, url: str, partial: Path) -> str:
        """Stream ``url`` into ``partial``; its sha256."""
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers=self._headers)
        with open(partial, "xb") as file, _opened(request) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while True:
                chunk = _read(response, done, total)
                if not chunk:
                    break
                digest.update(chunk)
                file.write(chunk)
                done += len(chunk)
                if self.progress:
                    self.progress(name, done, total)
        if total is not None and done < total:  # read(n) returns b"" when the peer hangs up
            raise _Failed(f"the connection closed after {done} of {total} bytes")
        return digest.hexdigest()


class _RedirectKeepingCredentialsHome(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but send the mirror's credentials only to the mirror's own origin.

    urllib copies every header of the request into the redirected one, ``Authorization``
    included, so a mirror redirecting to a CDN (or an attacker's host) would hand it the
    user's password.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, parts.hostname, parts.port or default


def _opened(request: urllib.request.Request) -> http.client.HTTPResponse:
    try:
        response: http.client.HTTPResponse = urllib.request.build_opener(
            _RedirectKeepingCredentialsHome
        ).open(request, timeout=_TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise _Failed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason.strerror if isinstance(reason, OSError) else None
        raise _Failed(text or str(reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Failed(_network_problem(exc)) from None
    return response


def _read(response: http.client.HTTPResponse, done: int, total: int | None) -> bytes:
    try:
        return response.read(_CHUNK)
    except http.client.IncompleteRead as exc:
        got = done + len(exc.partial)
        raise _Failed(f"the connection closed after {got} of {total or '?'} bytes") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Failed(f"{_network_problem(exc)} after {done} bytes") from None


def _network_problem(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {_TIMEOUT:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _checked_base(base_url: str | None) -> tuple[str | None, dict[str, str]]:
    """A mirror's URL ending in ``/``, and the request headers (user-info becomes basic auth)."""
    headers = {"User-Agent": "modelreg"}
    if base_url is None:
        return None, headers
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TokenizerUnavailableError(
            "the mirror URL must be http(s)://HOST/PATH/ holding cl100k_base.tiktoken and "
            "o200k_base.tiktoken (the URL given is not shown: it may carry credentials)."
        )
    if parts.username is not None or parts.password is not None:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        host = parts.netloc.rsplit("@", 1)[1]
        base_url = parts._replace(netloc=host).geturl()
    return (base_url if base_url.endswith("/") else base_url + "/"), headers


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_error(target: Path, exc: OSError) -> TokenizerUnavailableError:
    return TokenizerUnavailableError(
        f"cannot write the tokenizer files into {shown_path(target)}: "
        f"{exc.strerror or type(exc).__name__}. Give a directory you can write to."
    )
