"""scripts/torch_peer.py without torch: its table from fixed records, and its refusal to run.

The figures below are made-up test data (round numbers chosen so the ratios are exact), not
measurements: the script's timing needs torch, which `make test` does not install.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "torch_peer.py"


@pytest.fixture(scope="module")
def peer():
    spec = importlib.util.spec_from_file_location("torch_peer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["torch_peer"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["torch_peer"]


# Test data in the shape `bench speed -f json` writes (only the fields the script reads, plus a
# --compare result that must not leak into the table).
OURS = {"model": "cifar_resnet20_v1", "mode": "infer", "batch_size": 16, "dtype": "bfloat16",
        "fused": False, "ours": {"name": "cifar_resnet20_v1", "images_per_sec": 300.0,
                                 "rounds": [290.0, 300.0, 320.0]},
        "compare": "float32", "theirs": {"name": "cifar_resnet20_v1", "images_per_sec": 1.0,
                                         "rounds": [1.0]}}
# Test data in the shape of the script's own --json records.
TORCH = [{"network": "cifar_resnet20_v1", "batch": 16, "mode": "infer", "framework": "torch",
          "implementation": "local cifar_resnet20_v1", "precision": "float32",
          "images_per_sec": 150.0, "rounds": [140.0, 150.0, 160.0]},
         {"network": "cifar_resnet20_v1", "batch": 16, "mode": "infer", "framework": "torch",
          "implementation": "local cifar_resnet20_v1", "precision": "float32 channels_last",
          "images_per_sec": 225.0, "rounds": [225.0]}]


def _cells(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if not set(line) <= set("|-: ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_table_puts_ours_next_to_torch_with_ratios_to_torch_fp32(peer):
    figures = [peer.Figure(**t) for t in TORCH] + [peer.figure_from_ours(OURS)]
    rows = peer.table_rows(figures)
    assert rows == [
        ["cifar_resnet20_v1", 16, "infer", "mxnet (ours)", "bench cifar_resnet20_v1",
         "bfloat16", 300.0, "290.0-320.0", "2.00x"],
        ["cifar_resnet20_v1", 16, "infer", "torch", "local cifar_resnet20_v1", "float32",
         150.0, "140.0-160.0", "1.00x"],
        ["cifar_resnet20_v1", 16, "infer", "torch", "local cifar_resnet20_v1",
         "float32 channels_last", 225.0, "225.0-225.0", "1.50x"],
    ]


def test_a_group_without_torch_fp32_has_no_ratio(peer):
    other = dict(OURS, batch_size=64)
    rows = peer.table_rows([peer.figure_from_ours(other)])
    assert rows[0][1] == 64 and rows[0][-1] is None


def test_markdown_table_is_the_same_with_and_without_tabulate(peer, monkeypatch):
    rows = peer.table_rows([peer.Figure(**t) for t in TORCH] + [peer.figure_from_ours(OURS)])
    pytest.importorskip("tabulate")
    with_tabulate = peer.render_table(rows)
    monkeypatch.setitem(sys.modules, "tabulate", None)  # import tabulate now fails
    plain = peer.render_table(rows)
    assert _cells(with_tabulate) == _cells(plain)
    assert _cells(plain)[0] == peer.HEADERS
    assert _cells(plain)[1][-1] == "2.00x"
    assert plain.splitlines()[1].startswith("|---")  # a markdown header rule


def test_parameter_line_says_whether_counts_equal_ours(peer):
    line = peer.params_line({"cifar_resnet20_v1": {"ours": 272474,
                                                   "torch": {"local cifar_resnet20_v1": 272474}},
                             "resnet50_v1d": {"ours": 25576264,
                                              "torch": {"timm resnet50d": 25576265}}})
    assert "272,474 learnable = ours" in line
    assert "25,576,265 learnable != ours 25,576,264" in line


def test_every_mapped_name_is_registered(peer):
    from bench.models import get_spec
    for name, (_, size, classes) in peer.NAME_MAP.items():
        spec = get_spec(name)
        assert (spec.input_size, spec.classes) == (size, classes), name


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None,
                    reason="this Python has torch: the script would run")
def test_without_torch_the_script_exits_2_with_one_line():
    done = subprocess.run([sys.executable, str(SCRIPT), "--models", "cifar_resnet20_v1"],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: torch is not importable")
    assert "pip install torch timm torchvision" in lines[0]


def test_saved_results_decide_what_torch_times(peer):
    saved = [OURS, dict(OURS, dtype="int8"), dict(OURS, batch_size=64, mode="train"),
             dict(OURS, model="resnet18_v1b")]  # no torch peer mapped: table only
    assert peer.configurations(None, None, None, saved) == [
        ("cifar_resnet20_v1", 16, "infer"), ("cifar_resnet20_v1", 64, "train")]
    assert peer.configurations(None, [64], None, saved) == [("cifar_resnet20_v1", 64, "train")]
    assert peer.configurations(["resnet50_v1d"], [16, 64], "both") == [
        ("resnet50_v1d", 16, "infer"), ("resnet50_v1d", 16, "train"),
        ("resnet50_v1d", 64, "infer"), ("resnet50_v1d", 64, "train")]
    assert len(peer.configurations(None, None, None)) == len(peer.NAME_MAP)
