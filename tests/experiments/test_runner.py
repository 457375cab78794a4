"""The experiment runner end to end on a one-epoch test experiment (tests/experiments/data/
tiny.toml): every (network, seed) measured, an interrupted experiment continues without
retraining what it finished, the page and figures written, `bench record` / `bench table
--check` / `bench check` on the recorded result (a contradicted claim fails the gate)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.errors import BenchError
from bench.experiments import load_experiment
from bench.experiments.runner import Options, measurement_path, run_experiment

DATA = Path(__file__).parent / "data"
NETS = ("cifar_resnet20_v1_a", "cifar_plain20_v1")


@pytest.fixture(scope="module")
def tiny():
    return load_experiment(str(DATA / "tiny.toml"))


@pytest.fixture(scope="module")
def finished(tiny, tmp_path_factory):
    """One complete run of the tiny experiment (module-wide: trained once)."""
    out = tmp_path_factory.mktemp("exp")
    lines: list[str] = []
    exp_dir = run_experiment(tiny, Options(out=out, progress=False), lines.append)
    return out, exp_dir, lines


def _training_runs(out: Path) -> list[Path]:
    return sorted(p.parent for p in (out / "nets").glob("*/*/*/*/run.json"))


def test_every_pair_is_measured_with_every_analysis(finished):
    out, exp_dir, _ = finished
    for network in NETS:
        m = json.loads(measurement_path(exp_dir, network, 1).read_text())
        assert m["network"] == network and m["seed"] == 1
        assert [e["epoch"] for e in m["epochs"]] == [1]
        assert 0 <= m["final"]["clean_train_err"] <= 100
        assert m["final"]["test_err"] == m["epochs"][-1]["test_err"]
        assert len(m["responses"]["std"]) == 19  # stem + 2 per unit, 9 units
        assert m["model"]["units"] == 9
        removable = 9 if network.startswith("cifar_resnet") else 7  # plain: 2 change shape
        assert len(m["lesion"]["single"]) == removable
        assert [k["k"] for k in m["lesion"]["k"]] == [1, 2]
        assert all(len(k["errs"]) == 2 for k in m["lesion"]["k"])
        assert m["training"]["git"] is not None and m["training"]["recipe"]["network"] == network
    assert len(_training_runs(out)) == 2


def test_a_rerun_of_a_finished_experiment_trains_and_measures_nothing(tiny, finished):
    out, exp_dir, _ = finished
    before = {p: p.stat().st_mtime_ns for p in (exp_dir / "measurements").glob("*/*.json")}
    lines: list[str] = []
    run_experiment(tiny, Options(out=out, progress=False), lines.append)
    assert any("2 of 2 (network, seed) already measured" in line for line in lines)
    assert not any("training" in line for line in lines)
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_an_interrupted_experiment_continues_without_retraining(tiny, finished, tmp_path,
                                                                monkeypatch):
    """The first network finished, the process died measuring the second: the rerun measures
    the second only, and reuses its training run instead of training again."""
    out = tmp_path / "out"
    shutil.copytree(finished[0] / "nets", out / "nets")  # the training cache only
    import bench.experiments.measure as measure_module
    real = measure_module.measure

    def dies_on_second(experiment, network, seed, run_dir, report=lambda line: None):
        if network == NETS[1]:
            raise KeyboardInterrupt  # a kill in the middle of the second network
        return real(experiment, network, seed, run_dir, report)

    monkeypatch.setattr(measure_module, "measure", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny, Options(out=out, progress=False), lambda line: None)
    exp_dir = out / tiny.name
    assert measurement_path(exp_dir, NETS[0], 1).is_file()
    assert not measurement_path(exp_dir, NETS[1], 1).is_file()
    first = measurement_path(exp_dir, NETS[0], 1).stat().st_mtime_ns
    monkeypatch.setattr(measure_module, "measure", real)
    lines: list[str] = []
    run_experiment(tiny, Options(out=out, progress=False), lines.append)
    assert measurement_path(exp_dir, NETS[1], 1).is_file()
    assert measurement_path(exp_dir, NETS[0], 1).stat().st_mtime_ns == first
    assert not any(line.startswith(NETS[0]) for line in lines)  # not touched again
    assert any(line.startswith(f"{NETS[1]} seed 1: trained already") for line in lines)
    assert len(_training_runs(out)) == 2  # nothing trained twice


def test_an_unfinished_training_run_is_resumed_not_restarted(tiny, tmp_path):
    """A training run stopped at a checkpoint (here by the engine's --max-steps, as a kill
    would leave it) is continued in its own run directory by the engine's resume."""
    from bench.engine.run import start_run
    from bench.engine.runplan import RunOptions
    from bench.experiments.runner import cache_dir, train, training_recipe
    out = tmp_path / "out"
    root = cache_dir(tiny, NETS[0], 1, out)
    stopped = start_run(training_recipe(tiny, NETS[0], 1),
                        RunOptions(out=root, max_steps=2, progress=False))
    assert not json.loads((stopped / "metrics.json").read_text())["complete"]
    lines: list[str] = []
    got = train(tiny, NETS[0], 1, Options(out=out, progress=False), lines.append)
    assert got == stopped and any("resuming" in line for line in lines)
    metrics = json.loads((got / "metrics.json").read_text())
    assert metrics["complete"] and metrics["iterations"] > 2
    assert _training_runs(out) == [stopped]


def test_another_configuration_in_the_same_folder_is_refused(tiny, finished):
    import dataclasses
    out = finished[0]
    other = dataclasses.replace(tiny, overrides=(*tiny.overrides, ("optim.momentum", 0.8)))
    with pytest.raises(BenchError, match="with other overrides; use another --out"):
        run_experiment(other, Options(out=out, progress=False), lambda line: None)


def test_the_page_judges_every_claim_and_draws_every_figure(tiny, finished):
    from bench.experiments.page import write_page
    _, exp_dir, _ = finished
    write_page(exp_dir, tiny)
    page = (exp_dir / "README.md").read_text()
    for claim, verdict in (("depth_is_all_units", "shown"), ("impossible", "contradicted"),
                           ("cannot_tell", "unresolved")):
        assert f"| {claim} " in page
        row = next(line for line in page.splitlines() if line.startswith(f"| {claim} "))
        assert f"**{verdict}**" in row
    assert "test data: one epoch cannot tell" in page
    for figure in ("fig_training.png", "fig_responses.png", "fig_lesion.png"):
        assert (exp_dir / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({figure})" in page


def _recordable(finished, tmp_path: Path, experiment_text: str) -> tuple[Path, Path]:
    """A copy of the finished run whose measurements say a clean commit (TEST DATA: the
    test's checkout may have uncommitted changes, a recording never may), a results folder
    and an experiments folder holding ``experiment_text`` as tiny.toml."""
    exp_dir = tmp_path / "run" / "tiny"
    shutil.copytree(finished[1], exp_dir)
    for path in (exp_dir / "measurements").glob("*/*.json"):
        m = json.loads(path.read_text())
        m["training"]["git"] = {"commit": "0" * 40, "dirty": False}
        path.write_text(json.dumps(m))
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(Path(__file__).parents[2] / "results" / "published.toml", results)
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "tiny.toml").write_text(experiment_text)
    return exp_dir, results


def test_record_table_and_check_gate_the_claims(finished, tmp_path, monkeypatch):
    text = (DATA / "tiny.toml").read_text()
    exp_dir, results = _recordable(finished, tmp_path, text)
    monkeypatch.setenv("BENCH_EXPERIMENTS", str(tmp_path / "experiments"))
    runner = CliRunner()
    got = runner.invoke(cli, ["record", str(exp_dir), "--results-dir", str(results)])
    assert got.exit_code == 0, got.output
    recorded = results / "experiments" / "tiny"
    assert (recorded / "README.md").is_file() and (recorded / "fig_lesion.png").is_file()
    got = runner.invoke(cli, ["table", "--results-dir", str(results)])
    assert got.exit_code == 0, got.output
    assert "(experiments/tiny/README.md)" in (results / "README.md").read_text()
    assert runner.invoke(cli, ["table", "--check", "--results-dir", str(results)]).exit_code == 0
    # The contradicted claim fails the gate; the unresolved one is listed with its reason.
    got = runner.invoke(cli, ["check", "tiny", "--results-dir", str(results)])
    assert got.exit_code == 1, got.output
    assert "FAILED tiny / impossible: contradicted" in got.output
    assert "unresolved tiny / cannot_tell" in got.output and "one epoch cannot tell" in got.output
    assert "ok tiny / depth_is_all_units: shown" in got.output
    got = runner.invoke(cli, ["check", "tiny", "-f", "json", "--results-dir", str(results)])
    claims = {c["name"]: c for c in json.loads(got.output)}
    assert got.exit_code == 1 and claims["tiny / impossible"]["failed"] is True
    assert claims["tiny / cannot_tell"]["status"] == "unresolved"
    got = runner.invoke(cli, ["check", "tiny", "-f", "junit", "--results-dir", str(results)])
    assert got.exit_code == 1 and 'failures="1"' in got.output
    assert '<failure message="contradicted">' in got.output
    # Without the contradicted claim the same measurements pass.
    start = text.index('[[claims]]\nid = "impossible"')
    end = text.index("[[claims]]", start + 1)
    (tmp_path / "experiments" / "tiny.toml").write_text(text[:start] + text[end:])
    got = runner.invoke(cli, ["check", "tiny", "--results-dir", str(results)])
    assert got.exit_code == 0, got.output
    # The page now differs from the experiment file: stale until regenerated.
    got = runner.invoke(cli, ["table", "--check", "--results-dir", str(results)])
    assert got.exit_code == 1 and "experiments/tiny/README.md" in got.output


def test_record_refuses_quick_runs_and_uncommitted_code(finished, tmp_path, monkeypatch):
    exp_dir, results = _recordable(finished, tmp_path, (DATA / "tiny.toml").read_text())
    monkeypatch.setenv("BENCH_EXPERIMENTS", str(tmp_path / "experiments"))
    from bench.experiments.recorded import record_experiment
    path = next((exp_dir / "measurements").glob("*/*.json"))
    m = json.loads(path.read_text())
    m["training"]["git"]["dirty"] = True
    path.write_text(json.dumps(m))
    with pytest.raises(BenchError, match="uncommitted changes; results come from a clean clone"):
        record_experiment(exp_dir, results)
    config = json.loads((exp_dir / "experiment.json").read_text())
    (exp_dir / "experiment.json").write_text(json.dumps({**config, "quick": True}))
    with pytest.raises(BenchError, match="is a --quick run"):
        record_experiment(exp_dir, results)
