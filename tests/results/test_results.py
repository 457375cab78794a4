"""Published numbers, records, the generated table, the gate and the plots, on fixtures."""
from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import pytest

from bench.errors import BenchError
from bench.results.published import load_published
from bench.results.records import load_records, record_run
from bench.results.table import (NOT_RUN, OUTSIDE, PEER, UNCHECKED, WITHIN, build_rows,
                                 generate, stale_files, write_table)
from tests.cli import invoke
from tests.results.fixtures import PUBLISHED, record, write_published, write_run


@pytest.fixture
def results(tmp_path):
    """A results folder with: ResNet-20 within (two seeds), ResNet-56 outside, ResNet-110 not
    run, GluonCV ResNet-20 against an unchecked number, and one incomplete run."""
    root = tmp_path / "results"
    write_published(root)
    runs = [record("he2015_cifar10_resnet20", "cifar_resnet20_v1_a", 8.6, seed=0),
            record("he2015_cifar10_resnet20", "cifar_resnet20_v1_a", 9.0, seed=1),
            record("he2015_cifar10_resnet20", "cifar_resnet20_v1_a", 30.0, seed=2, complete=False),
            record("he2015_cifar10_resnet56", "cifar_resnet56_v1_a", 8.0, seed=0),
            record("gluoncv_cifar_resnet20_v1", "cifar_resnet20_v1", 7.5, seed=0)]
    for i, rec in enumerate(runs):
        record_run(write_run(tmp_path / f"run{i}", rec), root)
    return root


def _rows(results):
    rows = build_rows(load_published(results / "published.toml"), load_records(results))
    return {r.recipe: r for r in rows}


def test_table_rows_have_the_expected_statistics_and_status(results):
    rows = _rows(results)
    r20 = rows["he2015_cifar10_resnet20"]
    assert r20.n == 2 and r20.incomplete == 1
    assert r20.top1[0] == pytest.approx(8.8) and r20.top1[1] == pytest.approx(0.28284, rel=1e-4)
    assert r20.diff1 == pytest.approx(0.05) and r20.status == WITHIN
    assert rows["he2015_cifar10_resnet56"].status == OUTSIDE
    assert rows["he2015_cifar10_resnet56"].diff1 == pytest.approx(1.03)
    assert rows["he2015_cifar10_resnet110"].status == NOT_RUN
    assert rows["he2015_cifar10_resnet110"].n == 0 and rows["he2015_cifar10_resnet110"].top1 is None
    assert rows["gluoncv_cifar_resnet20_v1"].status == UNCHECKED
    peer = rows["TV / ResNet-56 (a peer's recipe)"]
    assert peer.status == PEER and not peer.runnable and rows["he2015_cifar10_resnet110"].runnable


def test_generated_files_are_deterministic_and_complete(results):
    first = generate(results)
    assert generate(results) == first
    readme = first[results / "README.md"]
    assert "8.80 ± 0.28 (n=2)" in readme and "(1 incomplete not counted)" in readme
    assert "not run yet" in readme and "reference unchecked" in readme
    assert "5 rows, 4 runnable here (a shipped recipe trains them): 1 within, 1 outside, " \
           "1 reference unchecked, 1 not run yet, 1 reference (no recipe here)." in readme
    csv_text = first[results / "results.csv"]
    assert csv_text.count("\n") == 1 + 5


def test_check_fails_after_a_run_is_added_and_passes_after_regenerating(results, tmp_path):
    write_table(results)
    assert stale_files(results) == []
    assert invoke("table", "--check", "--results-dir", str(results)).exit_code == 0
    record_run(write_run(tmp_path / "new", record("he2015_cifar10_resnet110",
                                                  "cifar_resnet110_v1_a", 6.5)), results)
    stale = invoke("table", "--check", "--results-dir", str(results))
    assert stale.exit_code == 1 and "stale" in stale.stderr
    assert invoke("table", "--results-dir", str(results)).exit_code == 0
    assert invoke("table", "--check", "--results-dir", str(results)).exit_code == 0


def test_gate_fails_on_an_outside_row_and_passes_within(results):
    failing = invoke("check", "--results-dir", str(results))
    assert failing.exit_code == 1
    assert "FAILED cifar_resnet56_v1_a / he2015_cifar10_resnet56" in failing.stdout
    assert "warning cifar_resnet20_v1 / gluoncv_cifar_resnet20_v1" in failing.stdout
    passing = invoke("check", "he2015_cifar10_resnet20", "--results-dir", str(results))
    assert passing.exit_code == 0 and "ok cifar_resnet20_v1_a" in passing.stdout


def test_junit_has_one_case_per_checked_row(results):
    out = invoke("check", "--format", "junit", "--results-dir", str(results))
    suite = ET.fromstring(out.stdout)
    cases = suite.findall("testcase")
    assert len(cases) == 3 == int(suite.get("tests"))
    assert sum(c.find("failure") is not None for c in cases) == 1 == int(suite.get("failures"))
    assert sum(c.find("skipped") is not None for c in cases) == 1


def test_check_of_a_single_run_directory(tmp_path):
    """(The run's reference is its recipe's: He 2015's 8.75 % with tolerance 0.5.)"""
    good = write_run(tmp_path / "good", record("he2015_cifar10_resnet20",
                                               "cifar_resnet20_v1_a", 8.9))
    bad = write_run(tmp_path / "bad", record("he2015_cifar10_resnet20",
                                             "cifar_resnet20_v1_a", 12.0))
    assert invoke("check", str(good)).exit_code == 0
    result = invoke("check", str(bad), "--format", "json")
    assert result.exit_code == 1 and '"failed": true' in result.stdout


def test_a_run_at_chance_level_fails_its_row_and_the_gate(tmp_path):
    """A complete run that ended at chance level (outcome "chance", written by the engine)
    makes its row fail whatever the mean, and the gate fails it even against an unchecked
    reference, which otherwise only warns."""
    import dataclasses
    from bench.results.gate import check_rows
    from bench.results.rows import CHANCE
    root = tmp_path / "results"
    write_published(root)
    chance = dataclasses.replace(record("gluoncv_cifar_resnet20_v1", "cifar_resnet20_v1", 90.0,
                                        seed=1), outcome="chance")
    for i, rec in enumerate([record("gluoncv_cifar_resnet20_v1", "cifar_resnet20_v1", 7.5),
                             chance]):
        record_run(write_run(tmp_path / f"run{i}", rec), root)
    row = _rows(root)["gluoncv_cifar_resnet20_v1"]
    assert not row.published.verified and row.n == 2 and row.status == CHANCE
    (verdict,) = check_rows([row], "gluoncv_cifar_resnet20_v1")
    assert verdict.failed
    result = invoke("check", "gluoncv_cifar_resnet20_v1", "--results-dir", str(root))
    assert result.exit_code == 1 and "FAILED cifar_resnet20_v1" in result.stdout
    assert "at chance level" in result.stdout
    assert "at chance level" in generate(root)[root / "README.md"]
    single = invoke("check", str(tmp_path / "run1"), "--format", "junit")
    assert single.exit_code == 1 and 'message="at chance level"' in single.stdout


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plots_write_pngs_of_the_requested_size(results, tmp_path):
    runs = [write_run(tmp_path / f"c{i}", record("he2015_cifar10_resnet20",
                                                 "cifar_resnet20_v1_a", 9.0)) for i in range(2)]
    out = tmp_path / "curves.png"
    result = invoke("plot", "curves", *map(str, runs), "--out", str(out), "--size", "640x480")
    assert result.exit_code == 0, result.stderr
    assert _png_size(out) == (640, 480)
    out = tmp_path / "tradeoff.png"
    result = invoke("plot", "tradeoff", "--dataset", "cifar10", "--results-dir", str(results),
                    "--out", str(out), "--size", "500x400")
    assert result.exit_code == 0, result.stderr
    assert _png_size(out) == (500, 400)


@pytest.mark.parametrize("content, fragment", [
    (None, "no run record"),
    ("{not json", "not a readable run record"),
    ('{"schema": 2, "recipe": "x"}', "run record lacks field"),
    ('{"schema": 1, "recipe": "x"}', "record schema 1, this suite reads schema 2; it predates"),
    ('{"schema": 7}', "record schema 7"),
])
def test_bad_records_are_one_line_errors_and_write_nothing(tmp_path, content, fragment):
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "result.json").write_text(content)
    results = tmp_path / "results"
    result = invoke("record", str(run), "--results-dir", str(results))
    assert result.exit_code == 2 and fragment in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not results.exists()


def test_record_of_an_unknown_recipe_is_refused(tmp_path):
    run = write_run(tmp_path / "run", record("my_private_recipe", "cifar_resnet20_v1_a", 9.0))
    result = invoke("record", str(run), "--results-dir", str(tmp_path / "results"))
    assert result.exit_code == 2 and "not shipped" in result.stderr


def test_record_never_overwrites_a_different_record(results, tmp_path):
    rec = record("he2015_cifar10_resnet20", "cifar_resnet20_v1_a", 8.6, seed=0)
    again = record_run(write_run(tmp_path / "same", rec), results)  # identical: a no-op
    before = again.read_bytes()
    other = record("he2015_cifar10_resnet20", "cifar_resnet20_v1_a", 1.0, seed=0,
                   run_id=rec.run_id)  # the same run with other numbers at the same iteration
    with pytest.raises(BenchError, match="is already recorded as .*not recorded twice"):
        record_run(write_run(tmp_path / "other", other), results)
    assert again.read_bytes() == before


@pytest.mark.parametrize("edit, fragment", [
    (('source = "fixture: He et al. 2015 Table 6"\ngmacs = 0.041', 'gmacs = 0.041'),
     "missing 'source'"),
    (('network = "cifar_resnet56_v1_a"', 'network = "cifar_resnet56_v1_a"\ncolour = "x"'),
     "unknown key 'colour'"),
    (('network = "cifar_resnet56_v1_a"\nrecipe = "he2015_cifar10_resnet56"',
      'network = "cifar_resnet20_v1_a"\nrecipe = "he2015_cifar10_resnet20"'), "duplicate key"),
    (('network = "cifar_resnet110_v1_a"', 'network = "cifar_resnet111_v1_a"'), "not registered"),
])
def test_bad_published_entries_are_one_line_errors(tmp_path, edit, fragment):
    results = tmp_path / "results"
    write_published(results, PUBLISHED.replace(*edit, 1))
    readme = results / "README.md"
    readme.write_text("kept")
    result = invoke("table", "--results-dir", str(results))
    assert result.exit_code == 2 and fragment in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert readme.read_text() == "kept"
