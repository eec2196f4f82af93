"""The loopback Azure server (tests/azure_server.py) in a child process of its own.

In its own process it does not compete for the benchmark's GIL; ``base_url`` is read from the
child's first line, and closing its stdin stops it.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks._util import REPO

_CODE = (
    "import sys\n"
    "from tests.azure_server import AzureServer\n"
    "server = AzureServer().start()\n"
    "print(server.base_url, flush=True)\n"
    "sys.stdin.read()\n"
)


class ServerProcess:
    """The loopback server in a child process; ``base_url`` is read from its first line."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CODE],
            cwd=str(REPO),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)
