"""Loading tiktoken encodings once per process, offline when a cache directory is given.

tiktoken downloads its BPE files on first use. Behind an air gap, point modelreg at a directory
in tiktoken's cache layout (file name = sha1 of the download URL), filled on a connected machine
with ``modelreg tokens --prefetch DIR``:

* the settings key ``tiktoken_cache_dir = "..."`` or ``MODELREG_TIKTOKEN_CACHE_DIR``, or
* tiktoken's own ``TIKTOKEN_CACHE_DIR``.

When a directory is known and the file is not in it, :class:`TokenizerUnavailableError` says
which encoding, where it looked and the command that fixes it — no network attempt is made.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import TokenizerUnavailableError

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "ENCODING_FILES",
    "Progress",
    "cache_directory",
    "cached_file",
    "get_encoding",
    "prefetch",
]

_BASE = "https://openaipublic.blob.core.windows.net/encodings/"
#: Download URL and sha256 of each encoding modelreg uses; tiktoken caches it as sha1(url).
ENCODING_FILES = {
    "cl100k_base": (
        _BASE + "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        _BASE + "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


def cache_directory(
    explicit: str | os.PathLike[str] | None = None, origin: str | None = None
) -> tuple[Path | None, str]:
    """The directory to read encodings from, and what chose it (``origin`` names ``explicit``)."""
    if explicit:
        return Path(explicit), origin or "settings key tiktoken_cache_dir"
    for variable in ("MODELREG_TIKTOKEN_CACHE_DIR", "TIKTOKEN_CACHE_DIR"):
        if os.environ.get(variable):
            return Path(os.environ[variable]), f"env {variable}"
    return None, "tiktoken's default cache (downloads on first use)"


def cached_file(directory: Path, encoding_name: str) -> Path:
    """Where tiktoken's cache layout keeps ``encoding_name`` inside ``directory``."""
    return directory / hashlib.sha1(ENCODING_FILES[encoding_name][0].encode()).hexdigest()


@contextmanager
def _tiktoken_cache(directory: Path | None) -> Iterator[None]:
    """Point tiktoken at ``directory`` for one load (it only reads TIKTOKEN_CACHE_DIR)."""
    if directory is None:
        yield
        return
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def _fix_hint(encoding_name: str, directory: Path | None) -> str:
    target = str(directory) if directory else "DIR"
    return (
        f"On a machine with internet access run `modelreg tokens --prefetch {target}` and copy "
        f"the directory here, then set tiktoken_cache_dir in settings.toml or "
        f"MODELREG_TIKTOKEN_CACHE_DIR (or TIKTOKEN_CACHE_DIR) to it. Or use "
        f'token_counter = "approximate", which needs no download.'
    )


def get_encoding(
    encoding_name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_dir_origin: str | None = None,
) -> tiktoken.Encoding:
    """Load ``encoding_name`` once per process (thread-safe); never downloads if a dir is set."""
    encoding = _encodings.get(encoding_name)
    if encoding is not None:
        return encoding
    with _lock:
        encoding = _encodings.get(encoding_name)
        if encoding is not None:
            return encoding
        directory, origin = cache_directory(cache_dir, cache_dir_origin)
        if directory is not None and encoding_name in ENCODING_FILES:
            path = cached_file(directory, encoding_name)
            if not path.is_file():
                raise TokenizerUnavailableError(
                    f"tokenizer encoding {encoding_name!r} is not in {directory} (from {origin}); "
                    f"expected the file {path.name}. {_fix_hint(encoding_name, directory)}"
                )
        import tiktoken

        try:
            with _tiktoken_cache(directory):
                encoding = tiktoken.get_encoding(encoding_name)
        except Exception as exc:
            raise TokenizerUnavailableError(
                f"tokenizer encoding {encoding_name!r} could not be loaded from {origin}"
                f"{f' ({directory})' if directory else ''}: {type(exc).__name__}: "
                f"{str(exc)[:200]}. {_fix_hint(encoding_name, directory)}"
            ) from None
        _encodings[encoding_name] = encoding
        return encoding


#: ``progress(encoding_name, bytes_done, bytes_total_or_None)`` while :func:`prefetch` downloads.
Progress = Callable[[str, int, "int | None"], None]


def prefetch(
    directory: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Download every encoding into ``directory`` in tiktoken's cache layout (needs network).

    All or nothing: each file is checked against its sha256 before it takes its place, and on
    any failure (or Ctrl-C) the files this call wrote and the directories it created are
    removed; a directory that was there before is kept. Files already there with the right
    sha256 are kept, not downloaded again. ``base_url`` is a mirror holding the same files
    (``https://mirror.example/encodings/``); the cache names and checksums do not change.

    Raises:
        TokenizerUnavailableError: a download failed (the message names the encoding and the
            host, never the whole URL, which may carry credentials) or a file cannot be written.
    """
    from backends.encoding_downloads import Downloader

    with Downloader(Path(directory), base_url, progress) as downloader:
        return [
            downloader.fetch(name, url, sha256, cached_file(downloader.target, name))
            for name, (url, sha256) in ENCODING_FILES.items()
        ]
