"""A harness that cannot be fooled: edited records and run directories are refused with one line
naming the file and the field, a gate that matches nothing fails, a modified recipe's run stays
out of the shipped recipe's row."""
from __future__ import annotations

import json

import pytest

from bench.results.records import record_run
from bench.runrecord import digests
from tests.cli import assert_one_line_error, invoke
from tests.results.fixtures import modified_recipe, record, write_published, write_run

R20 = ("he2015_cifar10_resnet20", "cifar_resnet20_v1_a")


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    write_published(root)
    record_run(write_run(tmp_path / "run0", record(*R20, 8.6, seed=0)), root)
    record_run(write_run(tmp_path / "run1", record(*R20, 9.0, seed=1)), root)
    return root


def _edit(path, change, redigest: bool = False) -> None:
    """Change a record's JSON; ``redigest``: also write a digest that matches the change (as
    someone who read this suite's code could), so only the recomputation can catch it."""
    data = json.loads(path.read_text())
    change(data)
    if redigest:
        data["digest"] = digests({k: v for k, v in data.items() if k not in ("digest", "run_dir")})
    path.write_text(json.dumps(data, indent=2))


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


def _last_history(key, value):
    return lambda d: d["history"][-1].__setitem__(key, value)


@pytest.mark.parametrize("change, redigest, field, words", [
    (_set("top1_err", 1.0), False, "top1_err", "digest does not match"),
    (_set("top1_err", 1.0), True, "top1_err", "the last evaluation in its history gives 8.6"),
    (_set("top5_err", 0.1), True, "top5_err", "gives 0.3"),
    (_set("num_eval_samples", 10000), True, "num_eval_samples", "gives 100"),
    (_set("epochs_done", 300), True, "epochs_done", "gives 3"),
    (_set("train_time_s", 1.0), True, "train_time_s", "gives 9.0"),
    (_set("complete", False), True, "complete", "gives True"),
    (_set("reached_reference", None), True, "reached_reference", "gives {'epoch': 3"),
    (_set("train_images_per_s", 1e6), True, "train_images_per_s", "global_batch"),
    (_last_history("top1_err", 1.0), False, "history", "digest does not match"),
    (_set("seed", 7), False, "seed", "digest does not match"),
    (lambda d: d.pop("hardware"), False, "hardware", "lacks field"),
    (_set("colour", "red"), False, "colour", "not part of a run record"),
])
def test_an_edited_record_is_refused_naming_the_file_and_the_field(results, change, redigest,
                                                                   field, words):
    path = sorted((results / "runs").glob("*seed0*.json"))[0]
    assert invoke("table", "--results-dir", str(results)).exit_code == 0
    _edit(path, change, redigest)
    for command in (["table"], ["check"], ["table", "--check"]):
        result = invoke(*command, "--results-dir", str(results))
        assert_one_line_error(result, path.name, repr(field), words)


def test_the_stored_records_pass_unedited(results):
    assert invoke("check", "--results-dir", str(results)).exit_code == 0


def test_a_copied_or_renamed_record_is_refused(results):
    path = sorted((results / "runs").glob("*seed0*.json"))[0]
    path.rename(path.with_name("he2015_cifar10_resnet20--copy.json"))
    result = invoke("table", "--results-dir", str(results))
    assert_one_line_error(result, "he2015_cifar10_resnet20--copy.json", "its content names it")


def test_a_schema_1_record_is_refused_with_a_pointer(results):
    path = sorted((results / "runs").glob("*seed0*.json"))[0]
    _edit(path, _set("schema", 1))
    assert_one_line_error(invoke("check", "--results-dir", str(results)), path.name,
                          "record schema 1", "rerun the recipe and `bench record`")


# --- a run directory ------------------------------------------------------------------------

@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "fresh", record(*R20, 8.9))


def test_an_intact_run_directory_passes_check_and_record(run_dir, tmp_path):
    with open(run_dir / "log.jsonl", "a") as f:  # a log may grow after the record (append-only)
        f.write('{"event": "note"}\n')
    assert invoke("check", str(run_dir)).exit_code == 0
    result = invoke("record", str(run_dir), "--results-dir", str(tmp_path / "results"))
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("name, change", [
    ("metrics.json", lambda t: t.replace('"top1_err": 8.9', '"top1_err": 8.1')),
    ("run.json", lambda t: t.replace("bench run", "bench RUN")),
    ("recipe.json", lambda t: t.replace('"lr": 0.1', '"lr": 0.2')),
    ("log.jsonl", lambda t: t.replace('"top1_err": 8.9', '"top1_err": 8.1', 1)),
    ("checkpoints/ckpt-0003-00000030/net.params", lambda t: t + "x"),
    ("checkpoints/ckpt-0003-00000030/state.json", lambda t: "S" + t[1:]),
])
def test_a_changed_file_of_the_run_is_refused(run_dir, tmp_path, name, change):
    path = run_dir / name
    text = path.read_text()
    assert change(text) != text
    path.write_text(change(text))
    for command in (["check", str(run_dir)],
                    ["record", str(run_dir), "--results-dir", str(tmp_path / "results")]):
        assert_one_line_error(invoke(*command), str(path), "field 'files'")
    assert not (tmp_path / "results").exists()


def test_a_missing_file_of_the_run_is_refused(run_dir):
    path = run_dir / "checkpoints" / "ckpt-0003-00000030" / "trainer.states"
    path.unlink()
    assert_one_line_error(invoke("check", str(run_dir)), str(path), "missing", "field 'files'")


def test_a_result_json_edited_together_with_metrics_json_is_refused(run_dir):
    """The digest of a consistent edit is still the old one."""
    for name in ("result.json", "metrics.json"):
        path = run_dir / name
        path.write_text(path.read_text().replace('"complete": true', '"complete": false'))
    assert_one_line_error(invoke("check", str(run_dir)), "result.json", "'complete'")


@pytest.mark.parametrize("change, words", [
    (dict(trained=modified_recipe(R20[0], 0, optim__lr=0.05)), "optim.lr=0.05"),
    (dict(trained=modified_recipe(R20[0], 0, reference__tolerance=50.0)),
     "reference.tolerance=50"),  # (not hashed, but what the run is judged against)
    (dict(global_batch=64), "global batch 64"),
])
def test_a_modified_run_whose_record_does_not_say_so_is_refused(tmp_path, change, words):
    """The results layer compares recipe.json and the batch with the shipped recipe itself: a
    record that lists nothing in 'modified' (an older engine, or an edit with a matching
    digest) cannot put a run of a changed recipe into the shipped row."""
    rec = record(*R20, 8.9, modified=[], **change)
    run = write_run(tmp_path / "modified", rec, change.get("trained"))
    for command in (["check", str(run)],
                    ["record", str(run), "--results-dir", str(tmp_path / "results")]):
        assert_one_line_error(invoke(*command), "field 'modified' lists nothing", words)
    assert not (tmp_path / "results").exists()


# --- the gate must check something ----------------------------------------------------------

@pytest.mark.parametrize("target", ["nothing_matches*", "runs/demo/digits_resnet/*",
                                    "he2015_cifar10_resnet110"])  # (published, never run)
def test_a_gate_that_matches_nothing_fails(results, target):
    result = invoke("check", target, "--results-dir", str(results))
    assert_one_line_error(result, "nothing to check", repr(target))


def test_a_gate_without_records_fails_and_with_records_checks_them_all(tmp_path, results):
    empty = tmp_path / "empty"
    write_published(empty)
    assert_one_line_error(invoke("check", "--results-dir", str(empty)), "no complete run")
    everything = invoke("check", "--results-dir", str(results))
    assert everything.exit_code == 0 and "1 checked: 1 within" in everything.stdout


def test_check_takes_several_run_directories(tmp_path):
    good = write_run(tmp_path / "a", record(*R20, 8.9, seed=0))
    bad = write_run(tmp_path / "b", record(*R20, 12.0, seed=1))
    result = invoke("check", str(good), str(bad))
    assert result.exit_code == 1 and "2 checked: 1 within, 1 outside" in result.stdout


def test_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("check", str(tmp_path / "empty")), "no run record at")
