"""Run every benchmark, print the table and write it as JSON.

Usage: ``python -m benchmarks [--quick] [--only NAME ...] [--output PATH]``.

Exit status: 0 when every measured row met its target, 1 when a row missed it (the rows are
named on stderr). ``--quick`` runs few repetitions, too few to judge a target on a noisy
machine: it is informational and exits 0 whatever the rows say (CI runs it that way), and says
so. A row that cannot run here (tokenizer files absent...) is shown as skipped with the reason;
it neither meets nor misses.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

from benchmarks._util import REPO, Figure

SCRIPTS = [
    "cold_start",
    "first_request",
    "many_models",
    "request_overhead",
    "token_counting",
    "resolution",
    "routing",
]


def _format(figure: Figure) -> str:
    if figure.skipped:
        return f"| {figure.name} | skipped: {figure.skipped} | - | - | {figure.target or '-'} | - |"
    ratio = f"{figure.ratio:.3g}x" if figure.ratio is not None else "-"
    base = f"{figure.baseline:.3g} {figure.unit}" if figure.baseline is not None else "-"
    met = {True: "yes", False: "NO", None: "-"}[figure.met]
    return (
        f"| {figure.name} | {figure.value:.3g} {figure.unit} | {base} | {ratio} | "
        f"{figure.target or '-'} | {met} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions (seconds, for CI); informational: misses do not fail the run",
    )
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, help="run only these")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "latest.json"))
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    for name in args.only or SCRIPTS:
        start = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{name}")
        figures.extend(module.run(args.quick))
        print(f"# {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    print("| figure | modelreg | baseline | ratio | target | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    for figure in figures:
        print(_format(figure))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "quick": args.quick,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "figures": [f.to_dict() for f in figures],
            },
            indent=2,
        )
    )
    return _verdict(figures, quick=args.quick)


def _verdict(figures: list[Figure], *, quick: bool) -> int:
    """Say which rows missed or were skipped; the exit status (see the module docstring)."""
    missed = [figure.name for figure in figures if figure.met is False]
    for figure in figures:
        if figure.skipped:
            print(f"# skipped: {figure.name}: {figure.skipped}", file=sys.stderr)
    if quick:
        print(
            f"quick run: informational, misses do not fail ({len(missed)} of {len(figures)} "
            "rows missed their targets; run without --quick to judge them)"
        )
        return 0
    if missed:
        print(f"{len(missed)} rows missed their targets: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
