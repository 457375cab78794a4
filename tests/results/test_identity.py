"""One record per training run: a run is its `run_id` (kept in run.json across resumes and
copies), so recording it again is a no-op, a later state of it (trained further) replaces its
record, anything else of it is refused; two runs with one seed are two records; an edited
identity is refused."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from bench.errors import BenchError
from bench.results.published import load_published
from bench.results.records import load_records, record_name, record_run, store_record
from bench.results.rows import build_rows
from bench.runrecord import RUN_ID, digests, new_run_id
from tests.cli import assert_one_line_error, invoke
from tests.results.fixtures import record, write_published, write_run

R20 = ("he2015_cifar10_resnet20", "cifar_resnet20_v1_a")
RUN_ID_0 = "20261120T101010Z-0a1b2c3d"


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    write_published(root)
    return root


def _row(results, recipe=R20[0]):
    rows = build_rows(load_published(results / "published.toml"), load_records(results))
    return next(r for r in rows if r.recipe == recipe)


def test_run_ids_are_utc_start_times_with_random_bits():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all(RUN_ID.fullmatch(i) for i in ids)


def test_recording_one_run_twice_or_from_a_copy_keeps_one_record(results, tmp_path):
    run = write_run(tmp_path / "run", record(*R20, 8.6, run_id=RUN_ID_0))
    first = invoke("record", str(run), "--results-dir", str(results))
    assert first.exit_code == 0 and first.stdout.startswith("recorded "), first.stderr
    copy = shutil.copytree(run, tmp_path / "elsewhere" / "copy")
    for again in (run, copy):
        result = invoke("record", str(again), "--results-dir", str(results))
        assert result.exit_code == 0 and "already recorded" in result.stdout, result.stderr
    (stored,) = load_records(results)
    assert stored.run_id == RUN_ID_0 and RUN_ID_0 in record_name(stored)
    assert _row(results).n == 1


def test_the_same_run_rewritten_at_the_same_iteration_is_refused(results, tmp_path):
    """(e.g. a resume of a finished run that wrote result.json again with a new date)"""
    rec = record(*R20, 8.6, run_id=RUN_ID_0)
    path = record_run(write_run(tmp_path / "run", rec), results)
    before = path.read_bytes()
    later = dataclasses.replace(rec, date="2026-12-24T00:00:00+00:00")
    result = invoke("record", str(write_run(tmp_path / "again", later)), "--results-dir",
                    str(results))
    assert_one_line_error(result, f"run {RUN_ID_0} is already recorded as {path.name}",
                          "ends at iteration 30, the recorded one at 30", "not recorded twice")
    assert path.read_bytes() == before and len(load_records(results)) == 1


def test_a_resumed_run_replaces_its_record_and_an_older_copy_is_refused(results, tmp_path):
    stopped = record(*R20, 30.0, run_id=RUN_ID_0, complete=False, epochs=2)
    finished = record(*R20, 8.6, run_id=RUN_ID_0, epochs=3)  # the same run, resumed
    assert stopped.iterations < finished.iterations
    old = write_run(tmp_path / "copy-before-resume", stopped)
    record_run(old, results)
    assert (_row(results).n, _row(results).incomplete) == (0, 1)
    result = invoke("record", str(write_run(tmp_path / "run", finished)), "--results-dir",
                    str(results))
    assert result.exit_code == 0, result.stderr
    assert "replaced" in result.stdout and "from iteration 20 to 30" in result.stdout
    (stored,) = load_records(results)
    assert stored.complete and stored.iterations == 30
    assert (_row(results).n, _row(results).incomplete) == (1, 0)
    result = invoke("record", str(old), "--results-dir", str(results))
    assert_one_line_error(result, "ends at iteration 20, the recorded one at 30")
    assert load_records(results) == [stored]


def test_two_runs_with_one_seed_are_two_records(results, tmp_path):
    for i, run_id in enumerate((RUN_ID_0, "20261120T101010Z-ffffffff")):
        record_run(write_run(tmp_path / f"run{i}", record(*R20, 8.6 + i, run_id=run_id)),
                   results)
    assert [r.seed for r in load_records(results)] == [0, 0]
    assert _row(results).n == 2


def test_two_stored_records_of_one_run_are_refused(results, tmp_path):
    rec = record(*R20, 8.6, run_id=RUN_ID_0)
    record_run(write_run(tmp_path / "run", rec), results)
    twin = dataclasses.replace(rec, seed=5)  # another name, the same run
    twin.dump(results / "runs" / record_name(twin))
    assert_one_line_error(invoke("table", "--results-dir", str(results)),
                          f"a second record of run {RUN_ID_0}", "one record per training run")


def _edit_stored(path, key, value, redigest):
    data = json.loads(path.read_text())
    data[key] = value
    if redigest:
        data["digest"] = digests({k: v for k, v in data.items() if k not in ("digest", "run_dir")})
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("key, value, redigest, words", [
    ("run_id", "20261120T101010Z-99999999", False, ("'run_id'", "digest does not match")),
    ("run_id", "20261120T101010Z-99999999", True, ("its content names it",)),  # (the name)
    ("run_id", "yesterday", True, ("'run_id'", "not a training run's identity")),
    ("run_id", None, True, ("its content names it",)),  # posing as an older record
    ("modified", ["--epochs 1"], False, ("'modified'", "digest does not match")),
    ("modified", "none", True, ("'modified'", "not list or null")),  # the type check
    ("modified", ["", 3], True, ("'modified'", "not a list of what changed")),
])
def test_an_edited_identity_field_of_a_record_is_refused(results, tmp_path, key, value,
                                                         redigest, words):
    path = record_run(write_run(tmp_path / "run", record(*R20, 8.6, run_id=RUN_ID_0)), results)
    _edit_stored(path, key, value, redigest)
    for command in (["table"], ["check"]):
        assert_one_line_error(invoke(*command, "--results-dir", str(results)), path.name,
                              *words)


def test_a_run_directory_whose_identity_was_edited_is_refused(results, tmp_path):
    run = write_run(tmp_path / "run", record(*R20, 8.6, run_id=RUN_ID_0))
    _edit_stored(run / "result.json", "run_id", "20261120T101010Z-99999999", redigest=True)
    assert_one_line_error(invoke("record", str(run), "--results-dir", str(results)),
                          "field 'run_id' is '20261120T101010Z-99999999' but run.json says "
                          f"'{RUN_ID_0}'")
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "run_id": "20261120T101010Z-99999999"}))
    assert_one_line_error(invoke("check", str(run)), "run.json", "field 'files'")
    assert not (results / "runs").exists()


def test_the_same_weights_evaluated_twice_are_one_record(results, tmp_path):
    from bench.results.reeval import reeval_record
    params = tmp_path / "w.params"
    params.write_bytes(b"weights")
    result = {"network": "cifar_resnet20_v1", "dataset": "cifar10", "protocol": "full",
              "top1_err": 8.0, "top5_err": 0.3, "num_samples": 10000, "input_size": 32,
              "resize": None}
    first = reeval_record(result, "gluoncv_cifar_resnet20_v1", params)
    store_record(first, results, "bench eval")
    later = dataclasses.replace(first, date="2026-12-24T00:00:00+00:00")
    with pytest.raises(BenchError, match="already recorded .* the same weights were evaluated"):
        store_record(later, results, "bench eval")
    assert len(load_records(results)) == 1


def test_an_older_record_without_a_run_id_is_one_run_by_its_run_json(results, tmp_path):
    """(the repository's records predate run_id: their run.json checksum identifies them)"""
    legacy = dataclasses.replace(record(*R20, 8.6), run_id=None, modified=None)
    run = write_run(tmp_path / "run", legacy)
    data = json.loads((run / "result.json").read_text())
    for key in ("run_id", "modified"):  # as an older engine wrote it: no such keys at all
        del data[key], data["digest"][key]
    (run / "result.json").write_text(json.dumps(data))
    record_run(run, results)
    record_run(shutil.copytree(run, tmp_path / "copy"), results)
    (stored,) = load_records(results)
    assert stored.run_id is None and stored.identity().startswith("run with run.json sha256")
    assert _row(results).n == 1


def test_values_are_compared_as_values_not_as_json_spellings():
    """--epochs 164 on He 2015's 164-epoch recipe rounds its iteration milestones to ints
    (32000 for 32000.0): nothing trains differently, so nothing is listed."""
    from bench.engine.runplan import RunOptions, apply_options
    from bench.recipes import load_recipe
    from bench.runrecord import recipe_changes
    shipped = load_recipe(R20[0])
    same, _ = apply_options(shipped, RunOptions(epochs=164))
    assert same.schedule.milestones == shipped.schedule.milestones
    assert recipe_changes(same, shipped) == []
    shorter, _ = apply_options(shipped, RunOptions(epochs=82))
    assert recipe_changes(shorter, shipped) == [
        "schedule.epochs=82", "schedule.iterations=32000",
        "schedule.milestones=[16000, 24000]"]
