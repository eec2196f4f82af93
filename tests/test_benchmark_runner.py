"""``python -m benchmarks``: the exit status tells whether a row missed; rows skip, not crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import _format, _verdict
from benchmarks._util import Figure, skipped

REPO = Path(__file__).resolve().parents[1]


def figures(*met: bool | None) -> list[Figure]:
    return [Figure(f"row {i}", 1.0, "us", 1.0, target="<= 1x", met=m) for i, m in enumerate(met)]


def test_a_missed_row_fails_a_full_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert _verdict(figures(True, None, True), quick=False) == 0
    assert _verdict(figures(True, False, None), quick=False) == 1
    assert "1 rows missed their targets: row 1" in capsys.readouterr().err


def test_a_quick_run_is_informational_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert _verdict(figures(False, False, True), quick=True) == 0
    out = capsys.readouterr().out
    assert "quick run: informational, misses do not fail (2 of 3 rows missed" in out


def test_a_skipped_row_shows_its_reason_and_neither_meets_nor_misses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    row = skipped("count once", "<= 1.1x", "tokenizer files absent")
    assert _format(row) == "| count once | skipped: tokenizer files absent | - | - | <= 1.1x | - |"
    assert _verdict([row], quick=False) == 0
    assert "skipped: count once: tokenizer files absent" in capsys.readouterr().err
    assert row.to_dict()["value"] is None  # strict JSON, no NaN


def test_token_rows_skip_without_tokenizer_files(tmp_path: Path) -> None:
    """No TIKTOKEN_CACHE_DIR and no shared cache beside the checkout: skipped, no traceback."""
    env = {k: v for k, v in os.environ.items() if "TIKTOKEN" not in k and k != "DATA_GYM_CACHE_DIR"}
    env["TIKTOKEN_CACHE_DIR"] = str(tmp_path / "empty")
    output = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "token_counting", "--output", str(output)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = [line for line in result.stdout.splitlines() if "skipped:" in line]
    assert len(rows) == 2
    assert "o200k_base" in rows[0] and "modelreg tokens --prefetch" in rows[0]
    saved = json.loads(output.read_text())
    assert all(figure["skipped"] for figure in saved["figures"])
