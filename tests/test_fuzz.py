"""Bad input across every command: one line, a non-zero exit, and nothing changed on disk.

Each case is a command line from the table below (``{sb}`` is a sandbox of broken files built
once per module, ``{rec}`` a record shipped in results/runs/). A case passes when the command
exits non-zero without a traceback, prints at most :data:`MAX_LINES` lines, ends with one
``error: ...`` line, and leaves every file of the sandbox, the checkout's results/ and recipes/
byte-identical (and creates none). Cases run in-process (click's CliRunner), so the whole table
takes seconds.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.cli import invoke

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 3
LONG = "x" * 300  # a path component longer than NAME_MAX (255 bytes)
DIGITS400 = "1" * 400

# --- the table ------------------------------------------------------------------------------

# `--set` values that no run can train with; each is tried with `recipes show`, `run recipe
# --dry-run` and a real `run recipe`, which must refuse them alike, before printing anything.
BAD_SETS = [
    "optim.lr=nan", "optim.lr=inf", "optim.lr=-inf", "optim.lr=-0.1", "optim.lr=0",
    f"optim.lr={DIGITS400}", "optim.lr=1e400", "optim.lr=0.1\nx=1", "optim.lr=0.1\n",
    "optim.lr=[0.1]", "optim.lr=true", "optim.batch_size=0", f"optim.batch_size={DIGITS400}",
    "optim.batch_size=99999", "optim.momentum=2", "optim.weight_decay=nan", "optim.optimizer=adam",
    "data.min_area=0", "data.min_area=1.5", "data.jitter=nan", "data.jitter=-1",
    "data.lighting=inf", "data.protocol=10crop", "data.dataset=mnist", "data.input_size=0",
    "data.eval_size=-1", "network_args.classes=-1", "network_args.classes=0",
    "network_args.classes=ten", "network_args.in_channels=0",
    "network_args.stage_channels=[64, 32, 16]", "network_args.survival_prob_last=0", "train.seed=-1",
    "train.seed=4294967296", "train.seed=1.5", "train.log_interval=0", "train.keep_checkpoints=0",
    "train.mixup_alpha=-1", "train.label_smoothing=nan", "schedule.final_lr=-1",
    "schedule.warmup_epochs=-1", "schedule.warmup_epochs=100", "schedule.milestones=[100]",
    "schedule.epochs=0", f"schedule.epochs={DIGITS400}", "schedule.power=nan",
    "schedule.warmup_start_lr=inf", "reference.top1_err=-5", "reference.top1_err=101",
    "reference.top5_err=nan", "reference.tolerance=-1", "bogus.key=1", "optim=1", "network=nope",
    "=1", "optim.lr", "optim.lr_rate=0.1",
]

RUN = ["run", "recipe", "digits_resnet", "--out", "{sb}/runs", "--max-steps", "1",
       "--no-progress", "--loader-workers", "0"]
EVAL = ["eval", "cifar_resnet20_v1", "--params", "{sb}/net1000.params", "--dataset", "imagenet",
        "--loader-workers", "0"]
CIFAR = ["run", "recipe", "he2015_cifar10_resnet20", "--out", "{sb}/runs", "--max-steps", "1"]
RESUME = ["run", "recipe", "--no-progress", "--loader-workers", "0", "--resume"]

CASES: list[tuple[list[str], dict[str, str]]] = [
    *[(["recipes", "show", "digits_resnet", "--set", s], {}) for s in BAD_SETS],
    *[(["run", "recipe", "digits_resnet", "--dry-run", "--set", s], {}) for s in BAD_SETS],
    *[([*RUN, "--set", s], {}) for s in BAD_SETS],
    # bench itself
    (["--bogus"], {}), (["nosuch"], {}), (["run", "nosuch"], {}),
    # bench models
    *[(["models", *a], {}) for a in (
        ["--format", "bogus"], ["zzz_nomatch*"], ["-f", "json", "zzz*"], ["show"],
        ["show", "nope"], ["show", LONG], ["show", "resnet18_v1", "--input-size", "0"],
        ["show", "resnet18_v1", "--input-size", "abc"])],
    # bench speed: refusals before any timing
    *[(["speed", *a], {}) for a in (
        ["nope"], [LONG], ["resnet18_v1", "--gpus", "²"], ["resnet18_v1", "--gpus", "0"],
        ["resnet18_v1", "--gpus", "-1"], ["resnet18_v1", "--dtype", "float16"],
        ["resnet18_v1", "--compare", "timm"], ["resnet18_v1", "--batch-size", "0"],
        ["resnet18_v1", "--input-size", "100000"])],
    # bench recipes
    *[(["recipes", *a], {}) for a in (
        ["zzz_nomatch*"], ["--format", "bogus"], ["show"], ["show", "nope"], ["show", LONG],
        ["show", LONG + ".toml"], ["show", "{sb}/latin1.toml"], ["show", "{sb}/dir.toml"],
        ["show", "{sb}/broken.toml"], ["show", "{sb}/empty.toml"], ["show", "{sb}/missing.toml"],
        ["show", "{sb}/base_list.toml"], ["show", "{sb}/nan.toml"],
        ["show", "{sb}/bad_schedule.toml"], ["show", "{sb}/huge_batch.toml"])],
    # bench run recipe
    *[(a, {}) for a in (
        ["run", "recipe"], ["run", "recipe", "nope"], ["run", "recipe", LONG],
        ["run", "recipe", "{sb}/latin1.toml", "--dry-run"],
        ["run", "recipe", "{sb}/bad_schedule.toml", "--dry-run"],
        ["run", "recipe", "{sb}/huge_batch.toml", "--dry-run"],
        [*RUN, "--seed", "-1"], [*RUN, "--seed", "4294967296"], [*RUN, "--seed", "abc"],
        [*RUN, "--seed", "-1", "--dry-run"], [*RUN, "--seed", "4294967296", "--dry-run"],
        [*RUN, "--gpus", "²"], [*RUN, "--gpus", "٣"], [*RUN, "--gpus", "0,0"],
        [*RUN, "--gpus", "0"], [*RUN, "--gpus", "-1"], [*RUN, "--batch-size", "99999"],
        [*RUN, "--batch-size", "99999", "--dry-run"], [*RUN, "--batch-size", "0"],
        [*RUN, "--epochs", "0"], [*RUN, "--max-steps", "0"], [*RUN, "--kvstore", "bogus"],
        [*RUN, "--cpu-devices", "0"], [*RUN, "--loader-workers", "-1"],
        [*RUN, "--out", "{sb}/a_file"], [*RUN, "--out", "{sb}/a_file/sub"],
        [*RUN, "--out", LONG], [*RUN, "--out", "{sb}/runs/" + LONG],
        [*CIFAR, "--data-dir", "{sb}/a_file"], [*CIFAR, "--data-dir", "{sb}/empty"],
        [*CIFAR, "--data-dir", "{sb}/" + LONG], [*CIFAR, "--data-dir", "{sb}/cifar_short"])],
    *[([*RESUME, f"{{sb}}/{d}"], {}) for d in (
        "missing", "a_file", "empty", LONG, "run_list", "run_recipe_list", "run_info_list",
        "run_no_plan", "run_plan_list", "run_batch_text", "run_batch_zero", "run_options_list",
        "run_recipe_missing", "run_recipe_types", "run_recipe_nan", "run_recipe_binary",
        "run_recipe_dir", "run_json_broken", "run_no_ckpt", "run_ckpt_params",
        "run_ckpt_states", "run_ckpt_rng", "run_ckpt_extra", "run_ckpt_state_types")],
    ([*RESUME, "{sb}/run_no_ckpt", "--set", "optim.lr=1"], {}),
    # a stray parameter-server role in the environment
    (RUN, {"DMLC_ROLE": "worker"}),
    (["run", "recipe", "digits_resnet", "--dry-run"], {"DMLC_ROLE": "worker"}),
    (RUN, {"DMLC_ROLE": "bogus"}),
    # bench launch: refusals only
    *[(["launch", *a], {}) for a in (
        [], ["-n", "0", "--", "run", "recipe", "digits_resnet"],
        ["-s", "0", "--", "run", "recipe", "digits_resnet"],
        ["--port", "0", "--", "run", "recipe", "digits_resnet"],
        ["--port", "70000", "--", "run", "recipe", "digits_resnet"])],
    # bench eval
    *[(a, {}) for a in (
        ["eval", "nope", "--params", "x.params"], ["eval", "resnet18_v1"],
        [*EVAL[:3], "{sb}/missing.params", *EVAL[4:], "--data-dir", "{sb}/img_ok"],
        [*EVAL[:3], "{sb}/empty", *EVAL[4:], "--data-dir", "{sb}/img_ok"],
        [*EVAL[:3], "{sb}/a_file", *EVAL[4:], "--data-dir", "{sb}/img_ok"],
        [*EVAL[:3], "{sb}/zero.params", *EVAL[4:], "--data-dir", "{sb}/img_ok"],
        [*EVAL[:5], "digits", "--protocol", "10crop"], [*EVAL[:5], "cifar10"],
        [*EVAL[:5], "cifar10", "--data-dir", "{sb}/a_file"], [*EVAL, "--data-dir", LONG],
        [*EVAL, "--gpus", "²"], [*EVAL, "--batch-size", "0"], [*EVAL, "--input-size", "0"],
        [*EVAL, "--input-size", "100000", "--data-dir", "{sb}/img_ok"],
        [*EVAL, "--record", "nope"], [*EVAL, "--record", "digits_resnet"],
        [*EVAL, "--data-dir", "{sb}/img_bad"], [*EVAL, "--data-dir", "{sb}/img_zero"],
        [*EVAL, "--data-dir", "{sb}/img_rec"],
        [*EVAL, "--data-dir", "{sb}/img_rec", "--protocol", "10crop"],
        [*EVAL, "--data-dir", "{sb}/img_dir_as_image"])],
    # bench record, table, check
    *[(["record", *a], {}) for a in (
        [], ["{sb}/missing"], ["{sb}/a_file"], ["{sb}/empty"], ["{sb}/run_list"],
        ["{sb}/run_no_ckpt"], [LONG], ["{sb}/run_result_list"], ["{sb}/run_result_types"],
        ["{sb}/run_no_ckpt", "--results-dir", "{sb}/a_file"])],
    *[(["table", *a], {}) for a in (
        ["--results-dir", "{sb}/missing"], ["--results-dir", "{sb}/a_file"],
        ["--results-dir", "{sb}/" + LONG], ["--results-dir", "{sb}/results_seed_text"],
        ["--results-dir", "{sb}/results_hardware_list"], ["--results-dir", "{sb}/results_list"],
        ["--results-dir", "{sb}/results_runs_file"], ["--format", "bogus"],
        ["--row", "zzz_nomatch*", "--format", "csv"],
        ["--row", "zzz_nomatch*", "--results-dir", "{sb}/results_empty"],
        ["--check", "--results-dir", "{sb}/results_seed_text"],
        ["--format", "json", "--results-dir", "{sb}/results_history_text"])],
    *[(["check", *a], {}) for a in (
        ["zzz_nomatch"], ["{sb}/a_file"], ["{sb}/empty"], ["{sb}/run_list"], [LONG],
        ["--format", "bogus"], ["--results-dir", "{sb}/results_seed_text"],
        ["--results-dir", "{sb}/results_hardware_list"])],
    # bench plot
    *[(["plot", "curves", *a], {}) for a in (
        ["{sb}/missing"], ["{sb}/empty"], ["{sb}/a_file"], ["{sb}/rec_seed_text.json"],
        ["{sb}/rec_history_text.json"], ["{sb}/run_log_broken"], ["{sb}/run_log_types"],
        ["{sb}/run_log_no_epoch"], ["{rec}", "--out", "{sb}/x.txt"],
        ["{rec}", "--out", "{sb}/a_file/x.png"], ["{rec}", "--out", "{sb}/dir.png"],
        ["{rec}", "--out", "{sb}/" + LONG + ".png"], ["{rec}", "--size", "100000x100000"],
        ["{rec}", "--size", "0x600"], ["{rec}", "--size", "axb"], ["{rec}", "--size", "8x6x3"],
        ["{rec}", "--size", f"{DIGITS400}x600"])],
    *[(["plot", *a], {}) for a in (
        ["bogus"], ["tradeoff", "--out", "{sb}/x.txt"],
        ["tradeoff", "--size", "100000x100000", "--out", "{sb}/t.png"],
        ["tradeoff", "--out", "{sb}/t.png", "--results-dir", "{sb}/results_seed_text"],
        ["tradeoff", "--out", "{sb}/t.png", "--results-dir", "{sb}/a_file"],
        ["tradeoff", "--out", "{sb}/t.png", "--results-dir", "{sb}/empty"])],
]


def _case_id(case: tuple[list[str], dict[str, str]]) -> str:
    args, env = case
    text = " ".join(args).replace("\n", "\\n").replace(LONG, "LONG").replace(DIGITS400, "1x400")
    return (" ".join(f"{k}={v}" for k, v in env.items()) + " " + text).strip()[:120]


# --- the sandbox ----------------------------------------------------------------------------

def _write_json(path: Path, data, raw: bytes | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw if raw is not None else json.dumps(data).encode())


def _digits_net_files(folder: Path) -> tuple[Path, Path, str]:
    """A digits network's parameters and trainer states as a checkpoint holds them."""
    import mxnet as mx

    from bench.engine import build
    from bench.recipes import load_recipe, recipe_hash
    recipe = load_recipe("digits_resnet")
    net = build.build_net(recipe, 10, 1, [mx.cpu()], "float32")
    net(mx.nd.zeros((1, 1, 8, 8)))
    trainer = build.build_trainer(recipe, net, 0.1, None, "float32")
    folder.mkdir(parents=True)
    net.save_parameters(str(folder / "net.params"))
    trainer.save_states(str(folder / "trainer.states"))
    return folder / "net.params", folder / "trainer.states", recipe_hash(recipe)


def _checkpoint(run_dir: Path, good: Path, *, params: bytes | None = None,
                states: bytes | None = None, **state) -> None:
    """A checkpoint whose files match their recorded sha256 whatever their content."""
    from bench.engine.checkpoint import rng_state
    ckpt = run_dir / "checkpoints" / "ckpt-0001-00000011"
    ckpt.mkdir(parents=True)
    (ckpt / "net.params").write_bytes(params if params is not None
                                      else (good / "net.params").read_bytes())
    (ckpt / "trainer.states").write_bytes(states if states is not None
                                          else (good / "trainer.states").read_bytes())
    files = {f: hashlib.sha256((ckpt / f).read_bytes()).hexdigest()
             for f in ("net.params", "trainer.states")}
    content = {"format": 1, "epoch": 1, "iteration": 11, "batch_in_epoch": 0,
               "recipe_hash": state.pop("recipe_hash"), "time": 0.0, "files": files,
               "rng": rng_state(), "extra": {"history": []}, **state}
    _write_json(ckpt / "state.json", content)


def _records(sb: Path) -> None:
    """Results folders and records whose digests match but whose fields have wrong types."""
    from bench.results.records import record_name
    from bench.runrecord import RunRecord, digests
    shipped = sorted((ROOT / "results" / "runs").glob("*.json"))[0]
    good = json.loads(shipped.read_text())

    def edited(**fields) -> dict:
        data = {k: v for k, v in good.items() if k != "digest"}
        data.update(fields)
        data["digest"] = digests({k: v for k, v in data.items() if k != "run_dir"})
        return data

    history_text = [{**e, "top1_err": str(e["top1_err"])} for e in good["history"]]
    variants = {"seed_text": edited(seed="zero"), "hardware_list": edited(hardware=[1]),
                "history_text": edited(history=history_text,
                                       top1_err=history_text[-1]["top1_err"])}
    for name, data in variants.items():
        _write_json(sb / f"rec_{name}.json", data)
        folder = sb / f"results_{name}"
        (folder / "runs").mkdir(parents=True)
        shutil.copy(ROOT / "results" / "published.toml", folder / "published.toml")
        try:
            file_name = record_name(RunRecord(**{k: v for k, v in data.items()
                                                 if k != "digest"}))
        except Exception:  # noqa: BLE001 - a name the record cannot give is still a name
            file_name = shipped.name
        _write_json(folder / "runs" / file_name, data)
    for name, runs in (("results_list", None), ("results_runs_file", "file"),
                       ("results_empty", "empty")):
        folder = sb / name
        folder.mkdir()
        shutil.copy(ROOT / "results" / "published.toml", folder / "published.toml")
        if runs is None:
            _write_json(folder / "runs" / shipped.name, [])
        elif runs == "file":
            (folder / "runs").write_text("not a folder\n")
        else:
            (folder / "runs").mkdir()


def _images(sb: Path) -> None:
    import cv2
    import mxnet as mx
    import numpy as np
    rng = np.random.default_rng(0)
    ok = cv2.imencode(".jpg", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))[1].tobytes()
    for name, extra in (("img_ok", {}), ("img_bad", {"bad.jpg": b"\xff\xd8\xff\xe0 not a jpeg"}),
                        ("img_zero", {"zero.jpg": b""})):
        folder = sb / name / "val" / "a_class"
        folder.mkdir(parents=True)
        (folder / "00.jpg").write_bytes(ok)
        for file_name, data in extra.items():
            (folder / file_name).write_bytes(data)
    (sb / "img_dir_as_image" / "val" / "a_class" / "folder.jpg").mkdir(parents=True)
    (sb / "img_dir_as_image" / "val" / "a_class" / "00.jpg").write_bytes(ok)
    (sb / "img_rec").mkdir()
    rec = mx.recordio.MXIndexedRecordIO(str(sb / "img_rec" / "val.idx"),
                                        str(sb / "img_rec" / "val.rec"), "w")
    for i, image in enumerate((ok, b"\xff\xd8\xff\xe0 not a jpeg", ok)):
        rec.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, 0.0, i, 0), image))
    rec.close()


def _params_1000(path: Path) -> None:
    import mxnet as mx

    from bench.models import get_model
    net = get_model("cifar_resnet20_v1", classes=1000)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(path))


def build_sandbox(sb: Path) -> None:
    """Every broken file and folder the table refers to."""
    from bench.recipes import load_recipe, recipe_to_dict
    (sb / "a_file").write_text("not a folder, not JSON, not a record\n")
    (sb / "empty").mkdir()
    (sb / "dir.toml").mkdir()
    (sb / "dir.png").mkdir()
    (sb / "runs").mkdir()
    (sb / "zero.params").write_bytes(b"")
    (sb / "cifar_short").mkdir()
    (sb / "cifar_short" / "data_batch_1.bin").write_bytes(b"\0" * 100)
    digits = (ROOT / "recipes" / "digits_resnet.toml").read_text()
    (sb / "latin1.toml").write_bytes(digits.replace("scikit", "caf\xe9").encode("latin-1"))
    (sb / "broken.toml").write_text("network = \n")
    (sb / "empty.toml").write_text("")
    (sb / "base_list.toml").write_text('base = ["digits_resnet"]\n')
    (sb / "nan.toml").write_text(digits.replace("lr = 0.2", "lr = nan"))
    (sb / "bad_schedule.toml").write_text(digits.replace("warmup_epochs = 2",
                                                         "warmup_epochs = 2\nmilestones = [5]"))
    (sb / "huge_batch.toml").write_text(digits.replace("batch_size = 128", "batch_size = 4096"))
    recipe = recipe_to_dict(load_recipe("digits_resnet"))
    info = {"plan": {"global_batch": 128}, "options": {"data_dir": None, "kvstore": None}}
    for name, (rec, run) in {
            "run_list": ([], []), "run_recipe_list": ([1], info),
            "run_info_list": (recipe, ["plan"]),
            "run_no_plan": (recipe, {"options": {}}), "run_plan_list": (recipe, {"plan": [128]}),
            "run_batch_text": (recipe, {"plan": {"global_batch": "128"}}),
            "run_batch_zero": (recipe, {"plan": {"global_batch": 0}}),
            "run_options_list": (recipe, {**info, "options": [1]}),
            "run_recipe_missing": ({"name": "digits_resnet"}, info),
            "run_recipe_types": ({**recipe, "optim": {**recipe["optim"], "lr": "fast"}}, info),
            "run_recipe_nan": ({**recipe, "optim": {**recipe["optim"], "lr": float("nan")}}, info),
            "run_no_ckpt": (recipe, info)}.items():
        _write_json(sb / name / "recipe.json", rec)
        _write_json(sb / name / "run.json", run)
        (sb / name / "log.jsonl").write_text("")
    _write_json(sb / "run_recipe_binary" / "recipe.json", None, raw=b"\xff\xfe{")
    _write_json(sb / "run_recipe_binary" / "run.json", info)
    (sb / "run_recipe_dir" / "recipe.json").mkdir(parents=True)
    _write_json(sb / "run_recipe_dir" / "run.json", info)
    _write_json(sb / "run_json_broken" / "recipe.json", None, raw=b'{"name": ')
    _write_json(sb / "run_json_broken" / "run.json", info)
    good = sb / "good_ckpt_files"
    _, _, digest = _digits_net_files(good)
    for name, kwargs in {"run_ckpt_params": {"params": b"\x12\x01 not parameters"},
                         "run_ckpt_states": {"states": b"\x80\x04 not a pickle"},
                         "run_ckpt_rng": {"rng": {"python": [3]}},
                         "run_ckpt_extra": {"extra": ["history"]},
                         "run_ckpt_state_types": {"epoch": "one", "iteration": [11]}}.items():
        _write_json(sb / name / "recipe.json", recipe)
        _write_json(sb / name / "run.json", info)
        (sb / name / "log.jsonl").write_text("")
        _checkpoint(sb / name, good, recipe_hash=digest, **kwargs)
    _write_json(sb / "run_result_list" / "result.json", [])
    _write_json(sb / "run_result_types" / "result.json", {"schema": "two", "kind": 5})
    for name, lines in {"run_log_broken": ['{"event": "start"}', "{not json", '{"event": 1}'],
                        "run_log_types": ['{"event": "window", "train_error": "high"}',
                                          '{"event": "epoch", "epoch": "one", "top1_err": []}'],
                        "run_log_no_epoch": ['{"event": "epoch"}']}.items():
        (sb / name).mkdir()
        (sb / name / "log.jsonl").write_text("\n".join(lines) + "\n")
    _records(sb)
    _images(sb)
    _params_1000(sb / "net1000.params")


# --- the test -------------------------------------------------------------------------------

_HASHES: dict[tuple, str] = {}


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (and the folders, so a new empty one shows). A
    file whose size, mtime and ctime are unchanged is not read again (any write changes its
    ctime), which keeps the table fast."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            out[dirpath] = "dir"
            for name in filenames:
                path = os.path.join(dirpath, name)
                st = os.stat(path)
                key = (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                if key not in _HASHES:
                    with open(path, "rb") as f:
                        _HASHES[key] = hashlib.sha256(f.read()).hexdigest()
                out[path] = _HASHES[key]
    return out


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    sb = tmp_path_factory.mktemp("fuzz")
    build_sandbox(sb)
    return sb


def test_the_table_is_large_and_has_no_duplicates():
    keys = [(tuple(a), tuple(sorted(e.items()))) for a, e in CASES]
    assert len(keys) >= 100 and len(set(keys)) == len(keys)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, sandbox, monkeypatch):
    args, env = case
    for name in ("BENCH_DATA", "BENCH_RESULTS", "BENCH_RECIPES", "DMLC_ROLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(sandbox)
    record = sorted((ROOT / "results" / "runs").glob("*.json"))[0]
    argv = [a.replace("{sb}", str(sandbox)).replace("{rec}", str(record)) for a in args]
    watched = (sandbox, ROOT / "results", ROOT / "recipes")
    before = snapshot(*watched)
    result = invoke(*argv)
    after = snapshot(*watched)
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code != 0, output[-MAX_LINES:]
    assert 1 <= len(output) <= MAX_LINES, output[:MAX_LINES + 2]
    assert output[-1].startswith("error: "), output
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, changed[:4]


# --- a full disk ----------------------------------------------------------------------------

def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _one_error_line(result) -> str:
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.exit_code == 2 and "Traceback" not in result.stderr, output
    assert output and output[-1].startswith("error: "), output
    return output[-1]


def test_a_full_disk_while_writing_the_table_changes_nothing(tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    (results / "README.md").write_text("stale\n")  # so `bench table` has to write it
    before = snapshot(results)
    monkeypatch.setattr("bench.files.os.fsync", _disk_full)
    line = _one_error_line(invoke("table", "--results-dir", str(results)))
    assert line.startswith(f"error: cannot write {results / 'README.md'}: the disk is full (")
    assert " free on it)" in line
    assert snapshot(results) == before  # the stale file as it was, no temporary file


def test_a_full_disk_while_saving_a_plot_keeps_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "curves.png"
    out.write_bytes(b"the old figure")
    record = sorted((ROOT / "results" / "runs").glob("*.json"))[0]
    monkeypatch.setattr("bench.files.os.fsync", _disk_full)
    line = _one_error_line(invoke("plot", "curves", str(record), "--out", str(out)))
    assert line.startswith(f"error: cannot write {out}: the disk is full")
    assert out.read_bytes() == b"the old figure" and len(list(tmp_path.iterdir())) == 1


def test_a_full_disk_while_checkpointing_is_one_line_naming_the_checkpoint(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr("bench.engine.checkpoint._sha256_and_fsync", _disk_full)
    result = invoke("run", "recipe", "digits_resnet", "--max-steps", "2", "--no-progress",
                    "--loader-workers", "0", "--out", str(tmp_path))
    line = _one_error_line(result)
    run_dir = next((tmp_path / "digits_resnet").iterdir())
    assert line.startswith(f"error: cannot write {run_dir}/checkpoints/ckpt-0000-00000002: "
                           "the disk is full (")
    assert not list((run_dir / "checkpoints").iterdir())  # the half-written one was removed


def test_a_run_directory_of_the_shape_a_run_writes_passes_the_resume_check(sandbox):
    from bench.engine.runplan import check_resumable
    from bench.recipes import load_recipe
    recipe, info = check_resumable(sandbox / "run_no_ckpt")
    assert recipe == load_recipe("digits_resnet") and info["plan"]["global_batch"] == 128
