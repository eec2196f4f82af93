"""Helpers shared by test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["README", "modelreg", "readme_block"]

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(after: str, language: str) -> str:
    """The first ``language`` code block after the text ``after`` in the README."""
    content = README.read_text(encoding="utf-8")
    start = content.index(f"```{language}\n", content.index(after)) + len(language) + 4
    return content[start : content.index("```", start)]


def modelreg(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m registry`` in a subprocess, as a user would (this process's environment,
    which the test isolation has cleaned, plus ``env``)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        timeout=60,
    )
