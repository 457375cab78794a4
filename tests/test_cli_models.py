"""`bench models`: listing in three formats, `show`, aliases and one-line errors."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from bench.cli import cli
from bench.models import get_spec, list_models
from tests.cli import assert_one_line_error, runner


def run(*args: str):
    return runner().invoke(cli, ["models", *args], catch_exceptions=False)


def _table_row(output: str, name: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row for {name} in:\n{output}")


def test_list_table():
    result = run("resnet50*")
    assert result.exit_code == 0, result.output
    header = _table_row(result.stdout, "name")
    assert "params (M)" in header and "GMACs" in header
    row = dict(zip(header, _table_row(result.stdout, "resnet50_v1d")))
    assert "resnet50d" in row["aliases"].split(",")
    assert row["params (M)"] == "25.63"
    assert row["input"] == "224x224"
    assert "total parameters" in result.stdout  # the note saying which count it is
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


def test_wide_table_has_every_column_in_full():
    result = run("--wide", "resnet50*")
    header = _table_row(result.stdout, "name")
    row = dict(zip(header, _table_row(result.stdout, "resnet50_v1d")))
    assert row["gluoncv"] == "resnet50_v1d" and row["family"] == "resnet"
    assert row["aliases"].split(",") == list(get_spec("resnet50_v1d").aliases)
    assert row["source"] == get_spec("resnet50_v1d").source


def test_the_whole_zoo_fits_a_100_column_terminal():
    lines = run().stdout.splitlines()
    assert len(lines) > 60 and max(len(line) for line in lines) <= 100
    assert any(line.endswith("... |") for line in lines)  # sources were shortened, visibly


def test_list_json():
    result = run("resnet50*", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list_models("resnet50*")
    assert list(rows[0]) == ["name", "aliases", "family", "dataset", "depth", "params_m",
                             "gmacs", "input", "gluoncv", "source"]
    by_name = {r["name"]: r for r in rows}
    # He et al. 2015 Table 1 gives 3.8 x 10^9 multiply-adds for ResNet-50; we count 3.858.
    assert by_name["resnet50_v1"]["gmacs"] == pytest.approx(3.86, rel=0.02)
    assert by_name["resnet50_v1d"]["params_m"] == 25.63
    assert by_name["resnet50_v1"]["dataset"] == "ImageNet"


def test_list_csv_format_before_pattern():
    result = run("--format", "csv", "cifar_resnet20*")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows] == list_models("cifar_resnet20*")
    assert rows[0]["input"] == "32x32" and rows[0]["dataset"] == "CIFAR"
    assert float(rows[0]["params_m"]) == pytest.approx(0.27, abs=0.01)


def test_show_layers():
    result = run("show", "cifar_resnet20_v1")
    assert result.exit_code == 0, result.output
    conv_rows = [line for line in result.stdout.splitlines()
                 if re.match(r"\|\s*\S+\s*\|\s*Convolution\s*\|", line)]
    assert len(conv_rows) == 21  # 19 3x3 convolutions + 2 projection shortcuts
    assert re.search(r"^total params:\s+274,042\b", result.stdout, re.M)
    assert re.search(r"^learnable params:\s+[\d,]+", result.stdout, re.M)
    assert "MiB" in result.stdout and get_spec("cifar_resnet20_v1").source in result.stdout


def test_show_alias_and_input_size():
    result = run("show", "resnet50d", "--input-size", "64")
    assert result.exit_code == 0, result.output
    assert re.search(r"^model:\s+resnet50_v1d\b", result.stdout, re.M)
    assert re.search(r"^input:\s+3x64x64\b", result.stdout, re.M)
    assert re.search(r"^total params:\s+25,629,512\b", result.stdout, re.M)


def test_show_unknown_name():
    result = run("show", "resnet50_v1x")
    _assert_quiet_error(result, "did you mean", "resnet50_v1")


def test_show_input_too_small():
    _assert_quiet_error(run("show", "resnet50_v1d", "--input-size", "1"), "1x1")


def test_pattern_matches_nothing():
    _assert_quiet_error(run("xyz*"), "no model matches 'xyz*'")


def test_help_lists_show():
    result = run("--help")
    assert result.exit_code == 0
    assert "[PATTERN]" in result.stdout and "show" in result.stdout


def _assert_quiet_error(result, *needles: str) -> None:
    assert result.exit_code == 2
    assert_one_line_error(result, *needles, quiet=True)
