"""Every experiment in experiments/ loads, and runs end to end in its --quick configuration
(one short epoch per network: the pipeline, not the claims). The quick runs share one output
folder, so a network two experiments train is trained once, as in a real session."""
from __future__ import annotations

import json

import pytest

from bench.experiments import list_experiments, load_experiment
from bench.experiments.page import write_page
from bench.experiments.runner import Options, measurement_path, run_experiment

SHIPPED = list_experiments()


def test_the_five_papers_experiments_are_shipped():
    assert set(SHIPPED) >= {"he2015_degradation", "he2015_responses", "veit2016_lesion",
                            "huang2016_stochastic_depth", "he2016_preact"}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("quick")


@pytest.mark.parametrize("name", SHIPPED)
def test_quick_run(name, out):
    experiment = load_experiment(name)
    assert experiment.seeds and len(experiment.seeds) >= 3  # the full runs are recorded so
    quick = experiment.quick_version()
    exp_dir = run_experiment(quick, Options(out=out, progress=False), lambda line: None)
    assert exp_dir.name == f"{name}-quick"
    for network in quick.networks:
        for seed in quick.seeds:
            m = json.loads(measurement_path(exp_dir, network, seed).read_text())
            assert m["epochs"] and m["final"]["clean_train_err"] is not None
            for analysis in ("responses", "lesion", "model"):
                assert (analysis in m) == (analysis in quick.analyses
                                           or analysis == "model" and "lesion" in quick.analyses)
    write_page(exp_dir, quick)
    page = (exp_dir / "README.md").read_text()
    assert "(quick run: not a result)" in page
    for claim in quick.claims:
        assert f"| {claim.id} " in page
