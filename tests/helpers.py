"""Helpers shared by test modules."""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["modelreg"]


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
