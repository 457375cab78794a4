"""The table's formats from one column list: a CSV that parses, JSON, the 100-column terminal
view of `bench table --row`, and peer rows labelled as references."""
from __future__ import annotations

import csv
import io
import json

import pytest

from bench.results.records import record_run
from bench.results.table import COLUMNS, PEER, generate
from tests.cli import assert_one_line_error, invoke
from tests.results.fixtures import record, write_published, write_run

PEER_RECIPE = "TV / ResNet-56 (a peer's recipe)"


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    write_published(root)
    runs = [record("he2015_cifar10_resnet20", "cifar_resnet20_v1_a", 8.6, seed=0),
            record("he2015_cifar10_resnet20", "cifar_resnet20_v1_a", 9.0, seed=1,
                   complete=False)]
    for i, rec in enumerate(runs):
        record_run(write_run(tmp_path / f"run{i}", rec), root)
    return root


def parse_csv(text: str) -> list[dict[str, str]]:
    """Every row has one value per header name: no value without a name (a None key), no name
    without a value (a None value)."""
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    assert len(set(reader.fieldnames)) == len(reader.fieldnames)
    for i, row in enumerate(rows, 2):
        assert None not in row, f"line {i}: more values than the header names"
        assert None not in row.values(), f"line {i}: fewer values than the header names"
    return rows


def test_the_csv_has_one_name_per_value(results):
    rows = parse_csv(generate(results)[results / "results.csv"])
    by_recipe = {r["recipe"]: r for r in rows}
    r20 = by_recipe["he2015_cifar10_resnet20"]
    # the column that once had no header name: the seed-0 run reached 8.75 + 0.5 at epoch 3
    assert r20["time_to_reference_s"] == "9.0" and r20["n"] == "1" and r20["incomplete"] == "1"
    assert r20["ours_top1_err"] == "8.6000" and r20["runnable_here"] == "true"
    peer = by_recipe[PEER_RECIPE]
    assert peer["status"] == PEER and peer["runnable_here"] == "false"


def test_json_has_the_csv_fields_with_typed_values(results):
    out = invoke("table", "--format", "json", "--results-dir", str(results))
    rows = json.loads(out.stdout)
    csv_rows = parse_csv(invoke("table", "--format", "csv", "--results-dir", str(results)).stdout)
    assert [list(r) for r in rows] == [list(r) for r in csv_rows]
    r20 = next(r for r in rows if r["recipe"] == "he2015_cifar10_resnet20")
    assert r20["ours_top1_err"] == pytest.approx(8.6) and r20["verified"] is True


def test_a_peer_row_is_a_reference_not_a_row_to_run(results):
    readme = generate(results)[results / "README.md"]
    line = next(line for line in readme.splitlines() if PEER_RECIPE in line)
    assert "reference (no recipe here)" in line and "not run yet" not in line
    assert "5 rows, 4 runnable here" in readme


def test_terminal_rows_fit_100_columns_and_wide_or_csv_give_the_full_text(results):
    source = "fixture: He et al. 2015 Table 6"
    for pattern in ("*", "he2015_*", PEER_RECIPE):
        out = invoke("table", "--row", pattern, "--results-dir", str(results))
        assert out.exit_code == 0, out.stderr
        table = out.stdout.splitlines()[1:]  # after "wrote ..." / "already current"
        assert table and max(len(line) for line in table) <= 100, table
    assert "he2015_cifar10_resnet20" in out.stdout or PEER_RECIPE[:10] in out.stdout
    wide = invoke("table", "--row", "he2015_cifar10_resnet20", "--wide", "--results-dir",
                  str(results))
    assert source in wide.stdout and "8.60 ± 0.00 (n=1)" in wide.stdout
    rows = parse_csv(invoke("table", "--row", "he2015_*", "--format", "csv", "--results-dir",
                            str(results)).stdout)
    assert {r["source"] for r in rows} == {source}


def test_a_long_cell_is_shortened_with_an_ellipsis(tmp_path):
    from bench.results.table import render_terminal
    from bench.results.published import load_published
    from bench.results.rows import build_rows
    root = tmp_path / "results"
    write_published(root)
    rows = build_rows(load_published(root / "published.toml"), [])
    text = render_terminal(rows, width=70)
    assert max(len(line) for line in text.splitlines()) <= 70 and "..." in text
    assert "fixture: He et al. 2015 Table 6" in render_terminal(rows, wide=True)


def test_row_matching_nothing_is_an_error(results):
    assert_one_line_error(invoke("table", "--row", "nope*", "--results-dir", str(results)),
                          "--row 'nope*' matches no row")


def test_the_column_list_names_each_field_once():
    names = [f.name for c in COLUMNS for f in c.fields]
    assert len(names) == len(set(names))
    assert {"time_to_reference_s", "train_time_s", "status", "source"} <= set(names)
