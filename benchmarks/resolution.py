"""Warm ``resolve(name)`` and ``create(name)`` per call, against parsing the settings file."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path

from benchmarks._util import REPO, Figure, median_seconds


def run(quick: bool) -> list[Figure]:
    from registry import ModelRegistry

    settings = REPO / "settings.toml"
    previous = Path.cwd()
    os.chdir(tempfile.mkdtemp())  # no stray .env
    try:
        registry = ModelRegistry.from_settings(settings)
        registry.create("chat", api_key="k")
        repeats = 2000 if quick else 20000
        resolve = median_seconds(lambda: registry.resolve("chat"), repeats)
        create = median_seconds(lambda: registry.create("chat", api_key="k"), repeats // 4)
        text = settings.read_text()
        parse = median_seconds(lambda: tomllib.loads(text), repeats // 4)
    finally:
        os.chdir(previous)
    return [
        Figure(
            "warm resolve('chat')",
            resolve * 1e6,
            "us",
            parse * 1e6,
            "tomllib.loads(settings.toml)",
            "microseconds",
            None,
        ),
        Figure(
            "warm create('chat', api_key=...)",
            create * 1e6,
            "us",
            parse * 1e6,
            "tomllib.loads(settings.toml)",
            "microseconds",
            None,
        ),
    ]
