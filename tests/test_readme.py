"""The README's examples run as written, so a documented command can never break silently.

Every ```bash and ```python block of README.md is executed, each in a fresh folder with the
venv's `bench` on PATH and a copy of results/ (so `bench table` cannot touch the checkout),
unless its fence says why it cannot run here, e.g. ```bash (needs CIFAR-10 files); a block
marked ```bash slow runs under `make test-slow` only."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)[ \t]*(.*?)\s*\n(.*?)^```\s*$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    note: str  # "" (runs), "slow", or "(why it cannot run here)"
    code: str

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.lang}"


def blocks(text: str) -> list[Block]:
    return [Block(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2), m.group(3))
            for m in FENCE.finditer(text) if m.group(1) in ("bash", "python")]


BLOCKS = blocks((ROOT / "README.md").read_text(encoding="utf-8"))


def test_every_example_block_runs_or_says_why_not():
    assert len(BLOCKS) >= 8
    for b in BLOCKS:
        assert b.note in ("", "slow") or re.fullmatch(r"\(.+\)", b.note), (
            f"{b.id}: a block that does not run here says why in parentheses, not {b.note!r}")
    assert sum(b.note == "" for b in BLOCKS) >= 4


def _params(selected):
    for b in selected:
        marks = [pytest.mark.slow] if b.note == "slow" else []
        yield pytest.param(b, id=b.id, marks=marks)


RUNNABLE = [b for b in BLOCKS if b.note in ("", "slow")]


@pytest.mark.parametrize("block", list(_params(RUNNABLE)))
def test_readme_example_runs(block: Block, tmp_path: Path):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    env = dict(os.environ, BENCH_RESULTS=str(results), MPLBACKEND="Agg",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("BENCH_DATA", None)
    if block.lang == "python":
        command = [sys.executable, "-c", block.code]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"{block.id} failed:\n{block.code}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
