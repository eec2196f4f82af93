"""Running the installed ``modelreg`` console script, as a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["MODELREG_SCRIPT", "run_script"]

#: The console script pip installed beside this interpreter (``[project.scripts]``).
MODELREG_SCRIPT = Path(sys.executable).parent / "modelreg"


def run_script(
    *args: str | os.PathLike[str],
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    **options: Any,
) -> subprocess.CompletedProcess[str]:
    """``modelreg ARGS`` in a subprocess: this process's (isolated) environment plus ``env``."""
    return subprocess.run(
        [MODELREG_SCRIPT, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=60,
        **options,
    )
