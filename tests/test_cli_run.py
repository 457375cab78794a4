"""`bench run recipe`, `bench recipes` and `bench eval` through click: one-line errors, exit codes."""
from __future__ import annotations

import json

import pytest

from bench.recipes import list_recipes
from tests.cli import assert_one_line_error, invoke


def _invoke(*args: str):
    return invoke(*args)


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_dry_runs(name):
    result = _invoke("run", "recipe", name, "--dry-run")
    assert result.exit_code == 0, result.stderr
    resolved = json.loads(result.stdout[:result.stdout.rindex("}") + 1])
    assert resolved["name"] == name
    assert "schedule:" in result.stdout and "lr " in result.stdout


def test_dry_run_keeps_the_global_batch_of_a_two_gpu_recipe_on_one_device():
    # He 2015 CIFAR: 2 GPUs x 64 is one batch of 128 at lr 0.1 for 64k iterations; ResNet-20's
    # estimate (0.3 GiB at 128 images) fits in the RAM of any machine that runs this suite.
    result = _invoke("run", "recipe", "he2015_cifar10_resnet20", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "batch 128 (1 x 128); lr 0.1 (recipe: 0.1 at batch 128)" in result.stdout
    assert "= 64000 iterations" in result.stdout and "linear scaling" not in result.stdout
    assert ("changed: recipe is for 2 device(s) x 64 images; running its global batch 128 as "
            "1 device(s) x 128: an estimated") in result.stdout


def test_dry_run_rescales_the_lr_when_the_global_batch_does_not_fit(monkeypatch):
    from bench.engine import memory
    monkeypatch.setattr(memory, "machine_ram", lambda: 256 * 2 ** 20)  # 0.25 GiB
    result = _invoke("run", "recipe", "he2015_cifar10_resnet20", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "more than 90% of this machine's RAM (256 MiB)" in result.stdout
    assert "changed: global batch 128 -> 64: lr 0.1 -> 0.05 (linear scaling rule)" in result.stdout
    assert "iteration budget 64000 -> 128000" in result.stdout


def test_dry_run_of_resnet200_shows_the_appendix_schedule():
    # He et al. 2016, Appendix: lr 0.1 (no warm-up), /10 at 30 and 60 epochs, batch 256.
    result = _invoke("run", "recipe", "he2016_imagenet_resnet200", "--dry-run",
                     "--batch-size", "256")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "batch 256 (1 x 256); lr 0.1 (recipe: 0.1 at batch 256)" in out
    assert "90 epochs x 5004 iterations" in out and "schedule: warm-up" not in out
    assert "x0.1 at epoch 30 (iteration 150120): lr 0.01" in out
    assert "x0.1 at epoch 60 (iteration 300240): lr 0.001" in out


@pytest.mark.parametrize("args, fragments", [
    (["run", "recipe", "digits_resnt"], ["unknown recipe or network 'digits_resnt'",
                                          "digits_resnet"]),
    (["run", "recipe", "digits_resnet", "--set", "optim.lr_rate=0.1"], ["did you mean: lr"]),
    (["run", "recipe", "digits_resnet", "--set", "optim.lr=fast"], ["optim.lr must be float"]),
    (["run", "recipe", "digits_resnet", "--set", "bogus"], ["expected key=value"]),
    (["run", "recipe", "digits_resnet", "--gpus", "0"], ["CPU wheel", "cu112"]),
    (["run", "recipe", "digits_resnet", "--gpus", "zero"], ["--gpus"]),
    (["run", "recipe", "he2015_cifar10_resnet20", "--max-steps", "1"], ["--data-dir"]),
    (["run", "recipe"], ["give a recipe or network name"]),
    (["run", "recipe", "digits_resnet", "--workers", "0"], ["--loader-workers 0", "bench launch"]),
    (["eval", "resnet50_v1d", "--params", "x.params", "--workers", "4"],
     ["--loader-workers 4"]),
    (["run", "recipe", "digits_resnet", "--kvstore", "dist_sync"], ["bench launch"]),
    (["run", "recipe", "digits_resnet", "--kvstore", "dist_sync", "--cpu-devices", "2"],
     ["--cpu-devices"]),
    (["run", "recipe", "digits_resnet", "--kvstore", "nccl", "--cpu-devices", "2"], ["nccl"]),
    (["run", "recipe", "digits_resnet", "--kvstore", "devise"], ["did you mean: device"]),
    (["recipes", "show", "nope_recipe"], ["unknown recipe"]),
    (["eval", "resnet50_v1x", "--params", "x.params"], ["unknown model"]),
])
def test_bad_input_is_one_line_and_nonzero(args, fragments, monkeypatch, tmp_path):
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(_invoke(*args), *fragments)
    assert not (tmp_path / "runs").exists()  # nothing written for a run that cannot start


def test_missing_cifar_directory_names_the_expected_files(tmp_path):
    result = _invoke("run", "recipe", "he2015_cifar10_resnet20", "--data-dir",
                     str(tmp_path / "nowhere"), "--out", str(tmp_path / "runs"))
    assert_one_line_error(result, "nowhere")


def test_recipes_lists_and_shows():
    listed = _invoke("recipes", "digits*")
    assert listed.exit_code == 0 and "digits_resnet" in listed.stdout
    as_json = json.loads(_invoke("recipes", "--format", "json").stdout)
    assert {row["recipe"] for row in as_json} == set(list_recipes())
    shown = json.loads(_invoke("recipes", "show", "digits_resnet", "--set", "optim.lr=0.2").stdout)
    assert shown["optim"]["lr"] == 0.2 and len(shown["hash"]) == 16


def test_resume_from_a_corrupt_checkpoint_is_refused(tmp_path):
    # Its only checkpoint: nothing valid to fall back to (tests/engine/test_resume_integrity.py
    # has the fallback). The refusal writes nothing, not even to the log.
    runs = tmp_path / "runs"
    first = _invoke("run", "recipe", "digits_resnet", "--max-steps", "2", "--no-progress",
                    "--loader-workers", "0", "--out", str(runs))
    assert first.exit_code == 0, first.stderr
    run_dir = next((runs / "digits_resnet").iterdir())
    params = sorted(run_dir.rglob("*.params"))
    assert params
    damaged = bytearray(params[0].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    params[0].write_bytes(bytes(damaged))
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    result = _invoke("run", "recipe", "--resume", str(run_dir), "--no-progress",
                     "--loader-workers", "0")
    assert_one_line_error(result, "none of its 1 checkpoint(s) is valid", "corrupt")
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_resume_of_a_directory_that_is_not_a_run(tmp_path):
    assert_one_line_error(_invoke("run", "recipe", "--resume", str(tmp_path)), "not a run directory")


def test_a_diverging_run_stops_with_one_line_and_keeps_nothing_bad(tmp_path):
    runs = tmp_path / "runs"
    result = _invoke("run", "recipe", "digits_resnet", "--set", "optim.lr=1e12", "--no-progress",
                     "--loader-workers", "0", "--out", str(runs))
    assert result.exit_code == 3  # bench.engine.health.EXIT_DIVERGED
    error = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
    assert len(error) == 1 and "training loss became nan" in error[0]
    assert "last good checkpoint: none" in error[0]
    run_dir = next((runs / "digits_resnet").iterdir())
    assert not list(run_dir.glob("checkpoints/ckpt-*"))


def test_a_run_prints_what_it_rescaled(tmp_path):
    result = _invoke("run", "recipe", "digits_resnet", "--batch-size", "64", "--max-steps", "1",
                     "--no-progress", "--loader-workers", "0", "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "changed: --batch-size 64: 1 device(s) x 64 images" in result.stderr
    assert "changed: global batch 128 -> 64: lr 0.2 -> 0.1 (linear scaling rule)" in result.stderr


def test_fp16_recipe_on_cpu_falls_back_to_fp32_and_says_so():
    result = _invoke("run", "recipe", "bot_resnet50_efficient", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "changed: train.dtype float16 needs a GPU" in result.stdout
    assert "dtype float32" in result.stdout


# --- one validator for `recipes show`, `--dry-run` and the run (issue 10) ---------------------

@pytest.mark.parametrize("sets, fragment", [
    (["schedule.milestones=[100]"], "only apply to kind 'step'"),
    (["schedule.warmup_epochs=40"], "is not shorter than the whole schedule"),
    (["optim.batch_size=2000"], "the digits training set has 1437 samples"),
    (["data.protocol=10crop"], "protocol '10crop' is for ImageNet"),
    (["data.min_area=0"], "data.min_area = 0.0 must be in (0, 1]"),
    (["optim.lr=nan"], "optim.lr = nan is not a finite number"),
    (["train.seed=-1"], "train.seed = -1 must be in [0, 2^32)"),
    (["reference.top1_err=-5"], "reference.top1_err = -5.0 must be between 0.0 and 100.0"),
    (["network_args.classes=-1"], "network_args.classes = -1 must be at least 1"),
])
def test_show_dry_run_and_run_refuse_alike_before_printing(sets, fragment, tmp_path):
    flags = [a for s in sets for a in ("--set", s)]
    show = _invoke("recipes", "show", "digits_resnet", *flags)
    dry = _invoke("run", "recipe", "digits_resnet", "--dry-run", *flags)
    real = _invoke("run", "recipe", "digits_resnet", "--out", str(tmp_path / "runs"),
                   "--max-steps", "1", "--no-progress", "--loader-workers", "0", *flags)
    for result in (show, dry, real):
        assert_one_line_error(result, fragment, quiet=True)
    assert show.stderr == dry.stderr == real.stderr
    assert not (tmp_path / "runs").exists()


def test_a_network_name_is_resolved_only_after_the_checks(tmp_path):
    # `bench run recipe NETWORK` names the recipe it picked, but not for a refused run.
    result = _invoke("run", "recipe", "cifar_resnet20_v1_a", "--dry-run", "--set", "optim.lr=-1")
    assert_one_line_error(result, "optim.lr = -1.0 must be positive", quiet=True)
    shown = _invoke("run", "recipe", "cifar_resnet20_v1_a", "--dry-run")
    assert shown.exit_code == 0 and shown.stdout.startswith("cifar_resnet20_v1_a -> recipe ")


@pytest.mark.parametrize("seed, ok", [(0, True), (2 ** 32 - 1, True), (-1, False),
                                      (2 ** 32, False)])
def test_seeds_are_from_0_to_2_to_the_32_minus_1(seed, ok, tmp_path):
    result = _invoke("run", "recipe", "digits_resnet", "--dry-run", "--seed", str(seed))
    if ok:
        assert result.exit_code == 0 and f'"seed": {seed}' in result.stdout
    else:
        assert_one_line_error(result, f"--seed {seed}: a seed is an integer from 0 to 4294967295",
                              quiet=True)
