"""A run of a modified recipe (--set, --epochs, --batch-size, --max-steps) is recorded as its own
row, labelled with what changed, with no published number; the shipped row keeps its n and
status and the gate never judges the modified row against the shipped reference."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bench.results.published import load_published
from bench.results.records import load_records, record_run
from bench.results.rows import MODIFIED, WITHIN, build_rows
from bench.results.table import generate
from tests.cli import assert_one_line_error, invoke
from tests.results.fixtures import modified_recipe, record, write_published, write_run
from tests.results.test_table_formats import parse_csv

R20 = ("he2015_cifar10_resnet20", "cifar_resnet20_v1_a")
LR_LABEL = "he2015_cifar10_resnet20 [optim.lr=0.05]"
BATCH_LABEL = "he2015_cifar10_resnet20 [--batch-size 64]"


def _rows(results):
    rows = build_rows(load_published(results / "published.toml"), load_records(results))
    return {r.recipe: r for r in rows}


@pytest.fixture
def shipped(tmp_path):
    """Two runs of the shipped ResNet-20 recipe: within its published 8.75 +- 0.5."""
    root = tmp_path / "results"
    write_published(root)
    for seed, top1 in ((0, 8.6), (1, 9.0)):
        record_run(write_run(tmp_path / f"run{seed}", record(*R20, top1, seed=seed)), root)
    return root


@pytest.fixture
def lr_run(tmp_path):
    """A run with --set optim.lr=0.05 that would be far outside the shipped row's tolerance."""
    trained = modified_recipe(R20[0], 2, optim__lr=0.05)
    return write_run(tmp_path / "lr", record(*R20, 20.0, seed=2, trained=trained), trained)


@pytest.fixture
def results(shipped, lr_run, tmp_path):
    record_run(lr_run, shipped)
    record_run(write_run(tmp_path / "batch", record(*R20, 30.0, seed=0, global_batch=64)),
               shipped)
    return shipped


def test_modified_runs_are_their_own_rows_and_the_shipped_row_is_unchanged(shipped, lr_run,
                                                                          tmp_path):
    before = _rows(shipped)[R20[0]]
    result = invoke("record", str(lr_run), "--results-dir", str(shipped))
    assert result.exit_code == 0, result.stderr
    assert f"as its own row {LR_LABEL!r}" in result.stdout
    record_run(write_run(tmp_path / "batch", record(*R20, 30.0, seed=0, global_batch=64)),
               shipped)
    rows = _rows(shipped)
    assert rows[R20[0]] == before and (before.n, before.status) == (2, WITHIN)
    for label, changed, top1 in ((LR_LABEL, ("optim.lr=0.05",), 20.0),
                                 (BATCH_LABEL, ("--batch-size 64",), 30.0)):
        row = rows[label]
        assert (row.status, row.published, row.n, row.modified) == (MODIFIED, None, 1, changed)
        assert row.top1 == (top1, 0.0) and row.recipe_name == R20[0] and row.runnable


def test_the_table_renders_the_labelled_rows(results):
    files = generate(results)
    readme = files[results / "README.md"]
    cells = next(cells for cells in ([c.strip() for c in line.split("|")]
                                     for line in readme.splitlines()) if LR_LABEL in cells)
    assert MODIFIED in cells and "20.00 ± 0.00 (n=1)" in cells
    assert "1 within, 3 not run yet, 1 reference (no recipe here), 2 modified recipe" in readme
    rows = {r["recipe"]: r for r in parse_csv(files[results / "results.csv"])}
    assert rows[LR_LABEL]["status"] == MODIFIED and rows[LR_LABEL]["n"] == "1"
    assert rows[LR_LABEL]["published_top1_err"] == "" and rows[R20[0]]["n"] == "2"
    out = invoke("table", "--row", R20[0], "--results-dir", str(results))
    assert out.exit_code == 0, out.stderr
    table = out.stdout.splitlines()[1:]
    assert len(table) == 2 + 3 and max(len(line) for line in table) <= 100
    assert table[2].endswith(" within")  # the shipped row, then the modified ones:
    assert table[3].endswith(" modified: --batch-size 64")
    assert table[4].endswith(" modified: optim.lr=0.05")


def test_the_gate_skips_modified_rows_and_judges_the_shipped_one(results):
    everything = invoke("check", R20[0], "--results-dir", str(results))
    assert everything.exit_code == 0, everything.stdout
    out = everything.stdout
    assert f"ok cifar_resnet20_v1_a / {R20[0]} / full" in out
    assert f"skipped cifar_resnet20_v1_a / {LR_LABEL} / full: a modified recipe, not " \
           "judged" in out and "1 checked: 1 within, 0 outside, 0 unchecked; 2 modified " \
           "skipped" in out
    junit = ET.fromstring(invoke("check", "--format", "junit", "--results-dir",
                                 str(results)).stdout)
    skipped = [c for c in junit.findall("testcase") if c.find("skipped") is not None]
    assert {c.get("name") for c in skipped} == {f"cifar_resnet20_v1_a / {label} / full"
                                                for label in (LR_LABEL, BATCH_LABEL)}
    assert junit.get("failures") == "0"


def test_a_gate_that_matches_only_modified_rows_fails(results):
    result = invoke("check", LR_LABEL, "--results-dir", str(results))
    assert_one_line_error(result, "matches only rows of modified recipes")


def test_check_of_a_modified_run_directory_says_what_changed(lr_run):
    result = invoke("check", str(lr_run))
    assert_one_line_error(result, "not judged: a modified he2015_cifar10_resnet20 "
                                  "(optim.lr=0.05)", "measured top-1 20.00 %")
    assert result.exit_code == 2
