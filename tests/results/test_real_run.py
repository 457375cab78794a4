"""The record a real run writes (bench.engine.record) passes the results layer's checks, and the
same checks catch an edit of it: the writer and the reader share one RunRecord. Short digits
runs with --epochs, --set, --max-steps and --batch-size are their own labelled rows next to the
repository's three recorded seeds, which keep their row; one run resumed or copied is one
record."""
from __future__ import annotations

import json
import shutil

import pytest

from bench.engine.run import resume_run, start_run
from bench.engine.runplan import RunOptions
from bench.recipes import load_recipe
from bench.results import results_dir
from bench.results.published import load_published
from bench.results.records import check_run_dir, load_records, record_run
from bench.results.rows import MODIFIED, build_rows
from bench.runrecord import RUN_ID
from tests.cli import assert_one_line_error, invoke

OPTIONS = dict(progress=False, loader_workers=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Short digits runs, by what they change from the shipped recipe."""
    out = tmp_path_factory.mktemp("runs")
    recipe = load_recipe("digits_resnet")
    options = dict(out=out, **OPTIONS)
    return {
        "--epochs 1": start_run(recipe, RunOptions(epochs=1, **options)),
        "--max-steps 3": start_run(recipe, RunOptions(max_steps=3, **options)),
        "--epochs 1, optim.lr=0.1": start_run(load_recipe("digits_resnet", ["optim.lr=0.1"]),
                                              RunOptions(epochs=1, **options)),
        "--batch-size 64, --max-steps 2": start_run(recipe, RunOptions(batch_size=64,
                                                                       max_steps=2, **options)),
    }


@pytest.fixture
def repository_results(tmp_path):
    """A copy of the repository's results/ (published numbers, three recorded digits seeds)."""
    return shutil.copytree(results_dir(), tmp_path / "results")


def _rows(results):
    rows = build_rows(load_published(results / "published.toml"), load_records(results))
    return {r.recipe: r for r in rows if r.recipe.startswith("digits_resnet")}


def test_a_complete_run_is_consistent_with_itself_and_its_files(runs):
    run = runs["--epochs 1"]
    record = check_run_dir(run)
    assert record.complete and record.epochs_done == 1 == record.history[-1]["epoch"]
    assert record.top1_err == record.history[-1]["top1_err"]
    log = (run / "log.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in log]
    assert events[-1] == "end"  # logged after result.json: the log is checked as a prefix
    assert {"recipe.json", "run.json", "log.jsonl", "metrics.json"} <= set(record.files)
    assert any(name.endswith("/net.params") for name in record.files)
    assert RUN_ID.fullmatch(record.run_id)
    assert record.run_id == json.loads((run / "run.json").read_text())["run_id"]


@pytest.mark.parametrize("changed", ["--epochs 1", "--max-steps 3", "--epochs 1, optim.lr=0.1",
                                     "--batch-size 64, --max-steps 2"])
def test_a_modified_run_is_its_own_row_and_the_shipped_row_is_unchanged(runs, changed,
                                                                        repository_results):
    record = check_run_dir(runs[changed])
    assert record.modified == changed.split(", ")
    before = _rows(repository_results)
    shipped = before["digits_resnet"]
    assert shipped.n == 3 and shipped.status == "within"
    result = invoke("record", str(runs[changed]), "--results-dir", str(repository_results))
    assert result.exit_code == 0, result.stderr
    label = f"digits_resnet [{changed}]"
    assert f"as its own row {label!r}" in result.stdout
    after = _rows(repository_results)
    assert after["digits_resnet"] == shipped and set(after) == set(before) | {label}
    row = after[label]
    assert row.status == MODIFIED and row.published is None
    assert (row.n, row.incomplete) == ((1, 0) if record.complete else (0, 1))
    gate = invoke("check", "digits_resnet", "--results-dir", str(repository_results))
    assert gate.exit_code == 0 and "3 checked: 0 within" not in gate.stdout
    assert "ok cifar_resnet20_v1_a / digits_resnet / full" in gate.stdout
    if record.complete:
        assert f"skipped cifar_resnet20_v1_a / {label} / full" in gate.stdout
    check = invoke("check", str(runs[changed]))
    if record.outcome == "chance":  # (one epoch of digits learns nothing yet): failed anyway
        assert check.exit_code == 1 and "ended at chance level" in check.stdout
    else:
        assert_one_line_error(check, "not judged", f"a modified digits_resnet ({changed})")


def test_a_stopped_run_resumed_or_copied_is_one_record(tmp_path, repository_results):
    """--epochs 1 --max-steps 3, recorded; a copy of it; the run resumed to the end of its
    epoch and recorded again (its record is replaced); then the old copy is refused and a copy
    of the finished run is already recorded."""
    recipe = load_recipe("digits_resnet")
    committed = len(load_records(repository_results))  # the repository's own records
    run = start_run(recipe, RunOptions(epochs=1, max_steps=3, out=tmp_path / "runs", **OPTIONS))
    record_run(run, repository_results)
    assert "digits_resnet [--epochs 1, --max-steps 3]" in _rows(repository_results)
    before_resume = shutil.copytree(run, tmp_path / "copy-at-3")
    resume_run(run, RunOptions(**OPTIONS))
    result = invoke("record", str(run), "--results-dir", str(repository_results))
    assert result.exit_code == 0, result.stderr
    assert "replaced" in result.stdout and "from iteration 3 to 11" in result.stdout
    rows = _rows(repository_results)
    assert "digits_resnet [--epochs 1, --max-steps 3]" not in rows
    assert rows["digits_resnet [--epochs 1]"].n == 1 and rows["digits_resnet"].n == 3
    assert_one_line_error(invoke("record", str(before_resume), "--results-dir",
                                 str(repository_results)),
                          "ends at iteration 3, the recorded one at 11")
    after = shutil.copytree(run, tmp_path / "copy-at-11")
    again = invoke("record", str(after), "--results-dir", str(repository_results))
    assert again.exit_code == 0 and "already recorded" in again.stdout
    assert len(load_records(repository_results)) == committed + 1


def test_two_runs_with_one_seed_are_two_records(runs, tmp_path, repository_results):
    again = start_run(load_recipe("digits_resnet"),
                      RunOptions(max_steps=3, out=tmp_path / "runs", **OPTIONS))
    for run in (runs["--max-steps 3"], again):
        record_run(run, repository_results)
    first, second = (check_run_dir(run) for run in (runs["--max-steps 3"], again))
    assert first.seed == second.seed and first.run_id != second.run_id
    assert _rows(repository_results)["digits_resnet [--max-steps 3]"].incomplete == 2


def test_a_recorded_run_refuses_an_edit_of_its_record(runs, tmp_path):
    results = tmp_path / "results"
    path = record_run(runs["--epochs 1"], results)
    (record,) = load_records(results)
    assert record.complete and record.iterations == 11 and record.run_dir is None
    assert record.recipe_hash != record.shipped_recipe_hash  # (--epochs changes the recipe)
    data = json.loads(path.read_text())
    data["top1_err"] = 0.0
    path.write_text(json.dumps(data))
    assert_one_line_error(invoke("table", "--results-dir", str(results)), path.name,
                          "'top1_err'")
