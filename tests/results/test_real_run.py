"""The record a real run writes (bench.engine.record) passes the results layer's checks, and the
same checks catch an edit of it: the writer and the reader share one RunRecord."""
from __future__ import annotations

import json

import pytest

from bench.engine.trainer import RunOptions, start_run
from bench.recipes import load_recipe
from bench.results.records import check_run_dir, load_records, record_run
from tests.cli import assert_one_line_error, invoke


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short digits runs: one epoch (a complete run of a modified recipe, --epochs 1) and
    three steps of the shipped recipe (incomplete: stopped by --max-steps)."""
    out = tmp_path_factory.mktemp("runs")
    recipe = load_recipe("digits_resnet")
    options = dict(out=out, progress=False, loader_workers=0)
    one_epoch = start_run(recipe, RunOptions(epochs=1, **options))
    three_steps = start_run(recipe, RunOptions(max_steps=3, **options))
    return one_epoch, three_steps


def test_a_complete_run_is_consistent_with_itself_and_its_files(runs):
    record = check_run_dir(runs[0])
    assert record.complete and record.epochs_done == 1 == record.history[-1]["epoch"]
    assert record.top1_err == record.history[-1]["top1_err"]
    log = (runs[0] / "log.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in log]
    assert events[-1] == "end"  # logged after result.json: the log is checked as a prefix
    assert {"recipe.json", "run.json", "log.jsonl", "metrics.json"} <= set(record.files)
    assert any(name.endswith("/net.params") for name in record.files)


def test_a_modified_recipe_is_checked_but_not_recorded(runs, tmp_path):
    record = check_run_dir(runs[0])
    assert record.recipe_hash != record.shipped_recipe_hash
    result = invoke("record", str(runs[0]), "--results-dir", str(tmp_path / "results"))
    assert_one_line_error(result, "trained a modified digits_resnet", "--epochs 1")


def test_a_shipped_recipe_run_is_recorded_and_an_edit_of_it_refused(runs, tmp_path):
    results = tmp_path / "results"
    path = record_run(runs[1], results)
    (record,) = load_records(results)
    assert not record.complete and record.iterations == 3 and record.run_dir is None
    assert record.recipe_hash == record.shipped_recipe_hash
    data = json.loads(path.read_text())
    data["top1_err"] = 0.0
    path.write_text(json.dumps(data))
    assert_one_line_error(invoke("table", "--results-dir", str(results)), path.name,
                          "'top1_err'")
