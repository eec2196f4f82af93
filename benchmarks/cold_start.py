"""Cold start: a fresh process resolves "chat" from settings.toml and builds its backend.

Baseline (the floor): ``import openai; openai.AzureOpenAI(...)`` in a fresh process. Also the
wall time of ``modelreg list`` on the repository's settings.toml.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from pathlib import Path

from benchmarks._util import REPO, Figure, run_child, wall_time

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


def run(quick: bool) -> list[Figure]:
    runs = 3 if quick else 11
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "AZURE_"))}
    ours, floor = [], []
    for _ in range(runs):  # interleaved, so drift affects both alike
        result = run_child(OURS, env=env)
        assert not result["openai_imported"], "create_model imported openai"
        ours.append(result["seconds"])
        floor.append(run_child(FLOOR, env=env)["seconds"])
    ours_median, floor_median = statistics.median(ours), statistics.median(floor)
    cli = shutil.which("modelreg", path=str(Path(sys.executable).parent)) or "modelreg"
    list_times = [wall_time([cli, "list"], cwd=REPO, env=env) for _ in range(runs)]
    list_median = statistics.median(list_times)
    return [
        Figure(
            "cold start: create_model('chat')",
            ours_median * 1000,
            "ms",
            floor_median * 1000,
            "import openai; AzureOpenAI(...)",
            "<= 0.45x",
            ours_median / floor_median <= 0.45,
        ),
        Figure(
            "modelreg list (wall)",
            list_median * 1000,
            "ms",
            None,
            "",
            "<= 250 ms",
            list_median <= 0.25,
        ),
    ]
