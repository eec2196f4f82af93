"""Cold start: a fresh process resolves "chat" from settings.toml and builds its backend.

Baseline (the floor): ``import openai; openai.AzureOpenAI(...)`` in a fresh process. The ratio is
the median of per-pair ratios of alternating fresh processes, bytecode compiled for both sides
(:mod:`benchmarks._processes`); a second row runs our sources without bytecode. Also the wall
time of ``modelreg list`` on the repository's settings.toml.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks._processes import child_env, paired_children
from benchmarks._util import REPO, Figure, wall_time

OURS = """
import time
start = time.perf_counter()
from registry import create_model
model = create_model("chat", api_key="k")
elapsed = time.perf_counter() - start
import json, sys
print(json.dumps({"seconds": elapsed, "openai_imported": "openai" in sys.modules}))
"""

FLOOR = """
import time
start = time.perf_counter()
import openai
client = openai.AzureOpenAI(
    azure_endpoint="https://contoso-dev.openai.azure.com", azure_deployment="gpt-4o-mini",
    api_version="2024-10-21", api_key="k",
)
elapsed = time.perf_counter() - start
import json
print(json.dumps({"seconds": elapsed}))
"""

TARGET = 0.35


def _no_sdk(result: dict[str, Any]) -> None:
    assert not result["openai_imported"], "create_model imported openai"


def run(quick: bool) -> list[Figure]:
    runs = 3 if quick else 11
    figures = []
    for compiled, label in ((True, ""), (False, ", sources without bytecode")):
        with child_env(compiled=compiled) as env:
            paired = paired_children(OURS, FLOOR, runs, env=env, cwd=REPO, check=_no_sdk)
        figures.append(
            Figure(
                f"cold start: create_model('chat'){label}",
                paired.ours * 1000,
                "ms",
                paired.floor * 1000,
                "import openai; AzureOpenAI(...)",
                f"<= {TARGET}x" if compiled else "",
                paired.ratio <= TARGET if compiled else None,
                paired_ratio=paired.ratio,
            )
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "AZURE_"))}
    cli = shutil.which("modelreg", path=str(Path(sys.executable).parent)) or "modelreg"
    list_times = [wall_time([cli, "list"], cwd=REPO, env=env) for _ in range(runs)]
    list_median = statistics.median(list_times)
    figures.append(
        Figure(
            "modelreg list (wall)",
            list_median * 1000,
            "ms",
            None,
            "",
            "<= 250 ms",
            list_median <= 0.25,
        )
    )
    return figures
