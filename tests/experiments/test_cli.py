"""`bench experiments` and `bench experiment`: the listing, and one-line errors for bad input
(nothing is trained in these tests)."""
from __future__ import annotations

from click.testing import CliRunner

from bench.cli import cli


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_experiments_lists_each_with_its_claims():
    got = _run("experiments")
    assert got.exit_code == 0, got.output
    for name in ("he2015_degradation", "he2015_responses", "veit2016_lesion",
                 "huang2016_stochastic_depth", "he2016_preact"):
        assert f"{name}: " in got.output
    assert "  - plain_degrades: " in got.output and "(He et al. 2015" in got.output


def _one_line_error(got, *parts: str) -> None:
    assert got.exit_code == 2, got.output
    lines = got.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), got.output
    for part in parts:
        assert part in lines[0], lines[0]


def test_unknown_experiment_suggests_the_closest():
    _one_line_error(_run("experiment", "he2015_degradaton"), "did you mean",
                    "he2015_degradation")
    _one_line_error(_run("experiments", "nothing*"), "no experiment matches")


def test_bad_seed_and_override_are_one_line(tmp_path):
    out = str(tmp_path / "out")
    _one_line_error(_run("experiment", "he2016_preact", "--seed", "7", "--out", out),
                    "--seed 7", "runs seeds 1, 2, 3")
    _one_line_error(_run("experiment", "he2016_preact", "--set", "optim.lrr=0.1", "--out", out),
                    "optim.lrr")
    _one_line_error(_run("experiment", "he2016_preact", "--set", "network=cifar_plain20_v1",
                         "--out", out), "sets each run's network itself")
    assert not (tmp_path / "out").exists()
