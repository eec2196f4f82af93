"""Cold first request: a fresh process goes from a model's name to a completed request.

modelreg defers importing the SDK until the first request, so this — not ``create_model``
alone — is what a serverless cold start pays. Both sides call the same loopback server
(tests/azure_server.py, in its own process):

* the floor: ``import openai; AzureOpenAI(...)`` and ``client.chat.completions.create(...)``;
* modelreg: ``from registry import create_model; create_model("chat").run(...)`` with a
  ``settings.toml`` in a temporary directory naming the same server (and no ``.env``).

Each process times itself from its first import to the reply (the interpreter's own start is the
same on both sides). The ratio is the median of per-pair ratios of alternating fresh processes
(:func:`benchmarks._processes.paired_children`), with bytecode compiled for both sides; a second
row runs our sources without bytecode (see :mod:`benchmarks._processes`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks._processes import child_env, paired_children
from benchmarks._server import ServerProcess
from benchmarks._util import Figure

OURS = """
import time
start = time.perf_counter()
from registry import create_model
reply = create_model("chat").run([{"role": "user", "content": "Hello"}])
elapsed = time.perf_counter() - start
import json
print(json.dumps({"seconds": elapsed, "text": reply.choices[0].message.content}))
"""

FLOOR = """
import time
start = time.perf_counter()
import openai
client = openai.AzureOpenAI(
    azure_endpoint={url!r}, azure_deployment="d", api_version="2024-10-21", api_key="test-key",
    max_retries=0,
)
reply = client.chat.completions.create(
    messages=[{{"role": "user", "content": "Hello"}}], model="d"
)
elapsed = time.perf_counter() - start
import json
print(json.dumps({{"seconds": elapsed, "text": reply.choices[0].message.content}}))
"""

SETTINGS = """\
[models.chat]
backend = "azure"
deployment = "d"
endpoint = "{url}"
api_version = "2024-10-21"
api_key = "test-key"
max_retries = 0
"""

TARGET = 1.02


def _answered(result: dict[str, Any]) -> None:
    assert "Hello" in result["text"], f"unexpected reply: {result['text']!r}"


def run(quick: bool) -> list[Figure]:
    runs = 3 if quick else 15
    server = ServerProcess()
    figures = []
    try:
        with tempfile.TemporaryDirectory(prefix="modelreg-first-request-") as directory:
            Path(directory, "settings.toml").write_text(SETTINGS.format(url=server.base_url))
            floor = FLOOR.format(url=server.base_url)
            for compiled, label in ((True, ""), (False, ", sources without bytecode")):
                with child_env(compiled=compiled) as env:
                    paired = paired_children(
                        OURS, floor, runs, env=env, cwd=Path(directory), check=_answered
                    )
                figures.append(
                    Figure(
                        f"cold first request: create_model('chat').run(...){label}",
                        paired.ours * 1000,
                        "ms",
                        paired.floor * 1000,
                        "import openai; AzureOpenAI(...); chat.completions.create(...)",
                        f"<= {TARGET}x" if compiled else "",
                        paired.ratio <= TARGET if compiled else None,
                        paired_ratio=paired.ratio,
                    )
                )
    finally:
        server.stop()
    return figures
