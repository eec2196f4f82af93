"""Building 1,000 distinct models on one endpoint: time per model and peak RSS.

Baseline: what CAMEL's constructor does per model, eagerly building an ``AzureOpenAI`` and an
``AsyncAzureOpenAI`` client (each with its own connection pool), in a separate fresh process.
"""

from __future__ import annotations

from benchmarks._util import Figure, run_child

OURS = """
import json, resource, time, pathlib, tempfile, os
os.chdir(tempfile.mkdtemp())
pathlib.Path("settings.toml").write_text('''
[models.chat]
backend = "azure"
deployment = "d"
endpoint = "https://contoso.openai.azure.com"
api_version = "2024-10-21"
api_key = "k"
''')
from registry import ModelRegistry
registry = ModelRegistry.from_settings()
registry.create("chat", deployment="warm-up")
N = {n}
start = time.perf_counter()
models = [registry.create("chat", deployment=f"dep-{{i}}") for i in range(N)]
elapsed = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"per_model": elapsed / N, "rss_mib": rss}}))
"""

BASELINE = """
import json, resource, time
import openai
N = {n}
start = time.perf_counter()
clients = []
for i in range(N):
    kwargs = dict(azure_endpoint="https://contoso.openai.azure.com", azure_deployment=f"dep-{{i}}",
                  api_version="2024-10-21", api_key="k")
    clients.append((openai.AzureOpenAI(**kwargs), openai.AsyncAzureOpenAI(**kwargs)))
elapsed = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"per_model": elapsed / N, "rss_mib": rss}}))
"""


def run(quick: bool) -> list[Figure]:
    n = 200 if quick else 1000
    ours = run_child(OURS.format(n=n))
    base = run_child(BASELINE.format(n=n))
    return [
        Figure(
            f"build {n} models: time per model",
            ours["per_model"] * 1000,
            "ms",
            base["per_model"] * 1000,
            "eager AzureOpenAI + AsyncAzureOpenAI (CAMEL)",
            "<= 0.2 ms",
            ours["per_model"] <= 0.0002,
        ),
        Figure(
            f"build {n} models: peak RSS",
            ours["rss_mib"],
            "MiB",
            base["rss_mib"],
            "eager AzureOpenAI + AsyncAzureOpenAI (CAMEL)",
            "<= 100 MiB",
            ours["rss_mib"] <= 100,
        ),
    ]
