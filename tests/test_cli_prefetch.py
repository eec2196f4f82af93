"""``modelreg tokens --prefetch``: through the console script, against a loopback mirror.

The mirror serves the official encoding files (from the shared tiktoken cache) and misbehaves on
request: the first path segment picks the behaviour (``ok``, ``500``, ``cut``, ``corrupt``,
``half`` — the second file fails —, ``slow``, ``auth``). Nothing reaches the internet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pty
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from backends import encodings
from tests.cli_script import MODELREG_SCRIPT, run_script
from tests.conftest import tiktoken_cache

OFFICIAL = {
    url.rsplit("/", 1)[1]: encodings.cached_file(Path(tiktoken_cache() or ""), name).read_bytes()
    for name, (url, _) in encodings.ENCODING_FILES.items()
}
CACHE_NAMES = sorted(encodings.cached_file(Path(), name).name for name in encodings.ENCODING_FILES)


class Mirror(BaseHTTPRequestHandler):
    requests: list[tuple[str, str | None]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        mode, _, file = self.path.strip("/").partition("/")
        Mirror.requests.append((self.path, self.headers.get("Authorization")))
        body = OFFICIAL.get(file)
        wanted = "Basic " + base64.b64encode(b"mirror-user:s3cret pass").decode()
        if (
            body is None
            or mode == "500"
            or (mode == "half" and file.startswith("o200k"))
            or (mode == "auth" and self.headers.get("Authorization") != wanted)
        ):
            self.send_response(404 if body is None else 401 if mode == "auth" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode in ("elsewhere", "here"):  # a redirect to another origin, or the same one
            port = self.server.server_address[1]
            origin = f"http://localhost:{port}" if mode == "elsewhere" else ""
            self.send_response(302)
            self.send_header("Location", f"{origin}/ok/{file}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "corrupt":
            body = body[:-1] + b"X"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":
            self.wfile.write(body[:100_000])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        step = len(body) // 8 + 1 if mode == "slow" else len(body)
        for start in range(0, len(body), step):
            self.wfile.write(body[start : start + step])
            self.wfile.flush()
            if mode == "slow":
                time.sleep(0.15)


@pytest.fixture(scope="module")
def mirror() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def prefetch(target: Path | str, base: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_script("tokens", "--prefetch", target, "--prefetch-from", base, *extra)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- success -----------------------------------------------------------------------------------


def test_piped_prefetch_writes_plain_lines_and_a_working_cache(mirror: str, isolated: Path) -> None:
    target = isolated / "new" / "tiktoken-cache"
    result = prefetch(target, f"{mirror}/ok/")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # piped: no bar, no carriage returns
    lines = result.stdout.splitlines()
    assert [line.split(" (")[1] for line in lines] == [
        "cl100k_base, 1.7 MB)",
        "o200k_base, 3.6 MB)",
    ]
    assert all(line.startswith(f"wrote {target}/") for line in lines)
    assert listing(target) == CACHE_NAMES  # tiktoken's layout, no temporary file left
    for name, (_, sha256) in encodings.ENCODING_FILES.items():
        data = encodings.cached_file(target, name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256
    # the directory is what air-gapped machines point at: counting works from it alone
    (isolated / "settings.toml").write_text('[models.m]\nbackend = "fake"\nmodel = "gpt-4o"\n')
    (isolated / "m.json").write_text(json.dumps([{"role": "user", "content": "hello"}]))
    counted = run_script("tokens", "m", "m.json", env={"TIKTOKEN_CACHE_DIR": str(target)})
    assert counted.returncode == 0 and counted.stdout.startswith("8 tokens (o200k_base, exact)")


def test_prefetch_json(mirror: str, isolated: Path) -> None:
    result = prefetch("cache", f"{mirror}/ok", "--json")  # no trailing slash on the base
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["directory"] == "cache"
    assert [(f["encoding"], f["bytes"]) for f in data["files"]] == [
        ("cl100k_base", len(OFFICIAL["cl100k_base.tiktoken"])),
        ("o200k_base", len(OFFICIAL["o200k_base.tiktoken"])),
    ]
    assert sorted(Path(f["path"]).name for f in data["files"]) == CACHE_NAMES


def test_files_already_there_are_verified_not_downloaded(mirror: str, isolated: Path) -> None:
    assert prefetch("cache", f"{mirror}/ok/").returncode == 0
    Mirror.requests.clear()
    again = prefetch("cache", f"{mirror}/500/")  # a mirror that would fail: never asked
    assert again.returncode == 0, again.stderr
    assert Mirror.requests == []
    # a damaged file is not trusted: it is downloaded again
    damaged = encodings.cached_file(isolated / "cache", "o200k_base")
    damaged.write_bytes(b"not the file")
    assert prefetch("cache", f"{mirror}/ok/").returncode == 0
    assert [path for path, _ in Mirror.requests] == ["/ok/o200k_base.tiktoken"]
    assert (
        hashlib.sha256(damaged.read_bytes()).hexdigest()
        == encodings.ENCODING_FILES["o200k_base"][1]
    )


def test_credentials_in_the_mirror_url_become_basic_auth_and_are_never_printed(
    mirror: str, isolated: Path
) -> None:
    host = mirror.removeprefix("http://")
    good = prefetch("cache", f"http://mirror-user:s3cret%20pass@{host}/auth/")
    assert good.returncode == 0, good.stderr
    assert "s3cret" not in good.stdout + good.stderr
    bad = prefetch("other", f"http://mirror-user:wrong-s3cret@{host}/auth/")
    assert bad.returncode == 1
    assert (
        "HTTP 401" in bad.stderr and "s3cret" not in bad.stderr and "mirror-user" not in bad.stderr
    )
    assert not (isolated / "other").exists()


def test_credentials_are_not_sent_to_another_origin_a_redirect_names(
    mirror: str, isolated: Path
) -> None:
    host = mirror.removeprefix("http://")
    for mode, where in (("here", host), ("elsewhere", f"localhost:{host.rsplit(':', 1)[1]}")):
        Mirror.requests.clear()
        result = prefetch(mode, f"http://mirror-user:s3cret%20pass@{host}/{mode}/")
        assert result.returncode == 0, result.stderr
        sent = [auth for _, auth in Mirror.requests]
        assert [path for path, _ in Mirror.requests][:2] == [
            f"/{mode}/cl100k_base.tiktoken",
            "/ok/cl100k_base.tiktoken",
        ], where
        assert sent[0] is not None  # the mirror itself gets them
        # the same origin keeps them; another host (localhost is not 127.0.0.1) never sees them
        assert (sent[1] is not None) is (mode == "here")


def test_odd_directory_names(mirror: str, isolated: Path) -> None:
    target = os.fsencode(isolated) + b"/with space\n\xff"
    result = prefetch(os.fsdecode(target), f"{mirror}/ok/")
    assert result.returncode == 0, result.stderr
    assert "with space\\n\\xff/" in result.stdout and "\n\n" not in result.stdout
    assert len(result.stdout.splitlines()) == 2
    assert sorted(os.listdir(target)) == [os.fsencode(n) for n in CACHE_NAMES]


# -- failures: one line, nothing left behind ---------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "encoding", "problem"),
    [
        ("500", "cl100k_base", "HTTP 500 Internal Server Error"),
        ("cut", "cl100k_base", "the connection closed after 100000 of 1681126 bytes"),
        ("corrupt", "cl100k_base", "its sha256 is not the published one"),
        ("half", "o200k_base", "HTTP 500"),  # the first file was written, then removed
    ],
)
def test_a_failed_download_leaves_no_directory_and_says_one_line(
    mirror: str, isolated: Path, mode: str, encoding: str, problem: str
) -> None:
    target = isolated / "a" / "b" / "cache"
    result = prefetch(target, f"{mirror}/{mode}/")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"modelreg: error: could not download encoding {encoding!r} from 127.0.0.1: {problem}"
    )
    assert f"/{mode}/" not in lines[0]  # the host, not the whole URL
    assert listing(isolated) == []  # a/, a/b/ and cache/ were created by the run: all gone


def test_a_directory_that_existed_is_kept_with_its_files(mirror: str, isolated: Path) -> None:
    target = isolated / "cache"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = prefetch(target, f"{mirror}/half/")
    assert result.returncode == 1
    assert listing(target) == ["notes.txt"]
    empty = isolated / "empty"
    empty.mkdir()
    assert prefetch(empty, f"{mirror}/cut/").returncode == 1
    assert empty.is_dir() and listing(empty) == []


def test_unreachable_and_unwritable(mirror: str, isolated: Path) -> None:
    refused = prefetch("x/cache", "http://127.0.0.1:1/")
    assert refused.returncode == 1
    assert "from 127.0.0.1: Connection refused" in refused.stderr
    assert listing(isolated) == []
    (isolated / "a-file").write_text("")
    under_file = prefetch("a-file/cache", f"{mirror}/ok/")
    assert under_file.returncode == 1
    assert under_file.stderr.startswith(
        "modelreg: error: cannot write the tokenizer files into a-file/cache: Not a directory."
    )
    assert "Traceback" not in under_file.stderr
    bad_scheme = prefetch("cache", "ftp://user:pw@127.0.0.1/")
    assert bad_scheme.returncode == 1 and "pw" not in bad_scheme.stderr
    assert listing(isolated) == ["a-file"]


def test_json_errors(mirror: str, isolated: Path) -> None:
    result = prefetch("cache", f"{mirror}/500/", "--json")
    assert result.returncode == 1 and result.stdout == ""
    error = json.loads(result.stderr)
    assert error["kind"] == "TokenizerUnavailableError"
    assert "could not download encoding 'cl100k_base' from 127.0.0.1" in error["error"]


def test_usage_errors(isolated: Path) -> None:
    for args in (
        ("--prefetch-from", "http://127.0.0.1:1/"),
        ("chat", "--prefetch", "cache"),
        ("--prefetch", "cache", "--tools", "t.json"),
        ("--prefetch", ""),
    ):
        result = run_script("tokens", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("modelreg: error: ") and "Traceback" not in result.stderr
    assert listing(isolated) == []


def test_ctrl_c_mid_download_leaves_nothing(mirror: str, isolated: Path) -> None:
    process = subprocess.Popen(
        [MODELREG_SCRIPT, "tokens", "--prefetch", "cache", "--prefetch-from", f"{mirror}/slow/"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not any(p.suffix == ".tmp" for p in isolated.glob("cache/.*")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert listing(isolated) == []


# -- the bar, on a terminal --------------------------------------------------------------------


def run_on_terminal(*args: str) -> tuple[int, str, str]:
    """``modelreg ARGS`` with stderr on a pseudo-terminal and stdout piped."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [MODELREG_SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    out = process.stdout.read().decode() if process.stdout else ""
    if process.stdout:
        process.stdout.close()
    return process.wait(timeout=30), out, shown.decode()


def test_a_bar_on_a_terminal(mirror: str, isolated: Path) -> None:
    code, out, terminal = run_on_terminal(
        "tokens", "--prefetch", "cache", "--prefetch-from", f"{mirror}/slow/"
    )
    assert code == 0, terminal
    assert len(out.splitlines()) == 2 and out.startswith("wrote cache/")
    for name in ("cl100k_base", "o200k_base"):
        redraws = [part for part in terminal.split("\r") if part.startswith(name)]
        assert len(redraws) >= 3, terminal  # drawn as the bytes arrive, not once at the end
        assert "[" in redraws[0] and "/ " in redraws[0]
        assert f"{name}  [{'#' * 10}" in redraws[-1] and "100%" in redraws[-1]
    assert terminal.endswith("\n")


def test_a_failure_on_a_terminal_starts_its_own_line(mirror: str, isolated: Path) -> None:
    code, out, terminal = run_on_terminal(
        "tokens", "--prefetch", "cache", "--prefetch-from", f"{mirror}/cut/"
    )
    assert code == 1 and out == ""
    lines = terminal.replace("\r\n", "\n").split("\n")
    assert lines[-3].startswith("\rcl100k_base  [")  # the bar stopped mid-file...
    assert lines[-2].startswith("modelreg: ")  # ...and the error has a line of its own
    assert "could not download encoding 'cl100k_base'" in lines[-2]
    assert listing(isolated) == []
