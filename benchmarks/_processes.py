"""Fresh interpreters, paired: how the cold-start rows run modelreg's and the floor's code.

**Bytecode.** Both sides load compiled bytecode, as a ``pip install`` (which compiles every
module) leaves them. The children write and read it under a private ``PYTHONPYCACHEPREFIX`` in
a temporary directory, so the benchmark writes nothing into the tree or site-packages, and both
sides are treated alike; one unmeasured warm-up process per side compiles it. With
``compiled=False`` the children run with ``PYTHONDONTWRITEBYTECODE=1`` and no prefix: our
sources (an editable install) are compiled again in every process, while the SDK's
site-packages still have the ``.pyc`` files pip wrote: the cost of a deployment that ships
sources without bytecode.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._util import run_child

__all__ = ["Paired", "child_env", "paired_children"]


@dataclass(frozen=True)
class Paired:
    """Medians of each side's seconds, and the median of the per-pair ratios."""

    ours: float
    floor: float
    ratio: float


@contextmanager
def child_env(*, compiled: bool) -> Iterator[dict[str, str]]:
    """The children's environment: no ``MODELREG_*``/``AZURE_*``, bytecode as documented above."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "AZURE_"))}
    env.pop("PYTHONPYCACHEPREFIX", None)
    if not compiled:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        yield env
        return
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="modelreg-bytecode-") as prefix:
        env["PYTHONPYCACHEPREFIX"] = prefix
        yield env


def paired_children(
    ours: str,
    floor: str,
    runs: int,
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> Paired:
    """Run ``ours`` and ``floor`` (each prints ``{"seconds": ...}``) in alternating fresh processes.

    Each pair runs back to back, which side first alternating, so this VM's drift (several
    percent within seconds) hits both sides of a pair alike; the figure is the median of the
    pairs' ratios. One unmeasured run of each side first (it compiles the bytecode).
    """
    for code in (ours, floor):
        run_child(code, env=dict(env), cwd=cwd)
    ours_times: list[float] = []
    floor_times: list[float] = []
    for index in range(runs):
        sides = [(ours, ours_times), (floor, floor_times)]
        for code, sink in sides if index % 2 == 0 else reversed(sides):
            result = run_child(code, env=dict(env), cwd=cwd)
            if check is not None and code is ours:
                check(result)
            sink.append(result["seconds"])
    ratios = [a / b for a, b in zip(ours_times, floor_times, strict=True)]
    return Paired(
        statistics.median(ours_times), statistics.median(floor_times), statistics.median(ratios)
    )
