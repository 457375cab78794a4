"""The experiment loader: the test-data file loads; every kind of mistake is one line naming
the file and the key or claim, with a did-you-mean where a name was mistyped."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.experiments import (LesionParams, Ref, ResponseParams, experiments_dir,
                               list_experiments, load_experiment)
from bench.recipes import load_recipe, parse_override

DATA = Path(__file__).parent / "data"
VALID = (DATA / "degradation.toml").read_text()
NETS = ("cifar_resnet20_v1_a", "cifar_resnet56_v1_a", "cifar_resnet110_v1_sd")


@pytest.fixture(scope="module")
def experiment():
    return load_experiment(str(DATA / "degradation.toml"))


def _write(tmp_path: Path, text: str, name: str = "exp") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(BenchError) as info:
        load_experiment(str(path))
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


def _replace(old: str, new: str, text: str = VALID) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_test_data_file_loads_typed(experiment):
    e = experiment
    assert e.name == "degradation" and e.recipe == "digits_resnet"
    assert e.networks == NETS and e.seeds == (1, 2, 3)
    assert e.analyses == ("training", "responses", "lesion")
    assert e.overrides == (("data.dataset", "digits"), ("schedule.epochs", 30),
                           ("optim.no_bias_decay", True))
    assert e.lesion == LesionParams(samples=20, max_k=8)
    assert e.responses == ResponseParams(images=256)
    assert [c.id for c in e.claims] == ["deeper_no_worse", "lesion_smooth"]
    assert e.claims[0].unresolved is None and e.claims[1].unresolved.startswith("test data")
    assert e.claims[1].predicate.references() == [
        Ref("lesion.k_max_step", NETS[2]), Ref("lesion.k_err", NETS[2], 2)]
    assert e.max_steps is None and not e.is_quick


def test_quick_version_merges_quick_over_full(experiment):
    q = experiment.quick_version()
    assert q.seeds == (1,) and q.max_steps == 4 and q.is_quick
    assert q.overrides == (("data.dataset", "digits"), ("schedule.epochs", 1),
                           ("optim.no_bias_decay", True))
    assert q.lesion == LesionParams(samples=2, max_k=8)  # max_k kept from [lesion]
    assert q.responses == ResponseParams(images=256)
    assert q.claims == experiment.claims and q.networks == experiment.networks
    assert experiment.seeds == (1, 2, 3)  # the full one is unchanged


def test_recipe_overrides_read_back_by_the_recipe_loader(experiment):
    items = experiment.recipe_overrides("cifar_resnet56_v1_a", seed=7)
    assert items[-2:] == ['network="cifar_resnet56_v1_a"', "train.seed=7"]
    assert [parse_override(i) for i in items] == [
        ("data.dataset", "digits"), ("schedule.epochs", 30), ("optim.no_bias_decay", True),
        ("network", "cifar_resnet56_v1_a"), ("train.seed", 7)]
    recipe = load_recipe(experiment.recipe, items)
    assert (recipe.network, recipe.schedule.epochs, recipe.train.seed) == (
        "cifar_resnet56_v1_a", 30, 7)
    assert recipe.optim.no_bias_decay is True


def test_quick_seeds_default_to_the_first_seed(tmp_path):
    text = _replace("[quick]\nseeds = [1]\n", "[quick]\n", _replace("seeds = [1, 2, 3]",
                                                                     "seeds = [5, 2]"))
    assert load_experiment(str(_write(tmp_path, text))).quick.seeds == (5,)


def test_an_alias_is_stored_as_its_registry_name(tmp_path):
    text = _replace('["cifar_resnet20_v1_a", ', '["ResNet-20 (CIFAR)", ')
    assert load_experiment(str(_write(tmp_path, text))).networks == NETS


def test_set_as_nested_tables_gives_the_same_keys(tmp_path):
    text = _replace('"data.dataset" = "digits"\n"schedule.epochs" = 30\n'
                    '"optim.no_bias_decay" = true',
                    'data.dataset = "digits"\n[set.schedule]\nepochs = 30')
    assert load_experiment(str(_write(tmp_path, text))).overrides == (
        ("data.dataset", "digits"), ("schedule.epochs", 30))


def test_by_name_from_a_directory_with_did_you_mean(tmp_path):
    _write(tmp_path, VALID, "degradation")
    assert load_experiment("degradation", tmp_path).name == "degradation"
    assert list_experiments(directory=tmp_path) == ["degradation"]
    with pytest.raises(BenchError, match=r"unknown experiment 'degradaton' \(did you mean: "
                                         r"degradation\?\)"):
        load_experiment("degradaton", tmp_path)
    with pytest.raises(BenchError, match="no experiment file"):
        load_experiment(str(tmp_path / "missing" / "x.toml"))


def test_experiments_dir_is_the_checkout_folder_with_its_readme():
    assert experiments_dir() == Path(__file__).resolve().parents[2] / "experiments"
    assert (experiments_dir() / "README.md").is_file()


@pytest.mark.parametrize("old, new, pattern", [
    # unknown keys: top level, [lesion], [quick], a claim
    ('notes = ["test data only"]', 'note = ["x"]', r"unknown key 'note' \(did you mean: notes"),
    ("samples = 20", "sample = 20", r"unknown key 'lesion.sample' \(did you mean: samples"),
    ("max_steps = 4", "max_step = 4", r"unknown key 'quick.max_step' \(did you mean: max_steps"),
    ("[quick.lesion]\nsamples = 2", "[quick.lesion]\nsampels = 2",
     r"unknown key 'quick.lesion.sampels' \(did you mean: samples"),
    ('paper = "ResNet-56', 'papr = "ResNet-56', r"unknown key 'claims\[0\].papr' \(did you mean: "
                                                  r"paper"),
    # networks
    ('"cifar_resnet56_v1_a", "cifar_resnet110', '"cifar_resnet65_v1_a", "cifar_resnet110',
     r"networks\[1\]: unknown model 'cifar_resnet65_v1_a' \(did you mean: .*cifar_resnet56_v1_a"),
    ('"cifar_resnet56_v1_a", "cifar_resnet110', '"cifar_resnet20_v1_a", "cifar_resnet110',
     "networks lists cifar_resnet20_v1_a twice"),
    ("networks = [", "networks = [] #", "networks must be a non-empty list"),
    ('"cifar_resnet56_v1_a", "cifar_resnet110', '"cifar_fractalnet20", "cifar_resnet110',
     r"networks: cifar_fractalnet20: lesion analysis deletes residual units .* fractalnet has "
     r"none: .*eval_columns=deepest\); use a resnet, wide resnet, resnext or res2net network"),
    # recipe, analyses, seeds
    ('recipe = "digits_resnet"', 'recipe = "digits_resnt"',
     r"recipe: unknown recipe 'digits_resnt' \(did you mean: digits_resnet"),
    ('"responses", "lesion"]', '"response", "lesion"]',
     r"unknown analysis 'response' \(did you mean: responses"),
    ('analyses = ["training", "responses", "lesion"]', 'analyses = ["training", "responses"]',
     r"\[lesion\] is given but 'lesion' is not in analyses"),
    ("seeds = [1, 2, 3]", "seeds = [1, 2, 1]", "seeds lists seed 1 twice"),
    ("seeds = [1, 2, 3]", "seeds = [1, -2]", r"seeds\[1\] = -2 must be in \[0, 4294967296\)"),
    ("seeds = [1, 2, 3]", "seeds = [4294967296]", r"seeds\[0\] = 4294967296 must be in"),
    ("seeds = [1, 2, 3]", "seeds = [1.5]", r"seeds\[0\] must be a whole number"),
    ("seeds = [1, 2, 3]", "seeds = [true]", r"seeds\[0\] must be a whole number"),
    ("seeds = [1, 2, 3]", "seeds = []", "seeds must be a non-empty list"),
    ("[quick]\nseeds = [1]", "[quick]\nseeds = [1, 1]", "quick.seeds lists seed 1 twice"),
    ("samples = 20", "samples = 0", "lesion.samples = 0 must be at least 1"),
    ("max_steps = 4", "max_steps = 0", "quick.max_steps = 0 must be at least 1"),
    ('description = "Test data', 'descr = "Test data', r"unknown key 'descr'"),
    # claims
    ('id = "lesion_smooth"', 'id = "deeper_no_worse"',
     "claim id 'deeper_no_worse' is used twice"),
    ('id = "lesion_smooth"', 'id = "lesion smooth"', "claim id 'lesion smooth': use letters"),
    ('predicate = \'final.clean_train_err["cifar_resnet56_v1_a"] <=',
     'predicate = \'final.clean_train_error["cifar_resnet56_v1_a"] <=',
     r"claim 'deeper_no_worse': predicate column 1: unknown quantity 'final.clean_train_error' "
     r"\(did you mean: final.clean_train_err"),
    ('final.clean_train_err["cifar_resnet20_v1_a"] + 1\'',
     'final.clean_train_err["cifar_resnet32_v1_a"] + 1\'',
     r"claim 'deeper_no_worse': predicate names network 'cifar_resnet32_v1_a', which is not in "
     r"networks \(did you mean: .*cifar_resnet20_v1_a"),
    ('final.clean_train_err["cifar_resnet20_v1_a"] + 1\'',
     'final.clean_train_err["ResNet-20 (CIFAR)"] + 1\'',
     "write its registry name 'cifar_resnet20_v1_a'"),
    ('final.clean_train_err["cifar_resnet20_v1_a"] + 1\'',
     'final.clean_train_err["cifar_resnet20_v1_a"] + 1 + model.units["cifar_resnet20_v1_a"]\'',
     "model.units is measured by the 'model' analysis; add it to analyses"),
    ('["cifar_resnet110_v1_sd"][2] < 50', '["cifar_resnet110_v1_sd"][9] < 50',
     "asks for k = 9, but \\[lesion\\] max_k = 8"),
    ('["cifar_resnet110_v1_sd"][2] < 50', '["cifar_resnet110_v1_sd"][0] < 50',
     "k = 0 deleted units; that is lesion.base_err"),
    ('["cifar_resnet110_v1_sd"][2] < 50', '["cifar_resnet110_v1_sd"] < 50',
     "lesion.k_err needs an index"),
    ('source = "He et al. 2015, arXiv:1512.03385, Fig. 6 (middle)"\n', "",
     r"claims\[0\] has no 'source'"),
    ('unresolved = "test data: a reason the small scale cannot resolve it"', 'unresolved = " "',
     "claim 'lesion_smooth': unresolved must be a non-empty string"),
    # [set] keys and values, judged by the recipe loader
    ('"schedule.epochs" = 30', '"schedule.epoch" = 30',
     r"\[set\] with recipe 'digits_resnet' for cifar_resnet20_v1_a: schedule.epoch: unknown key "
     r"\(did you mean: epochs"),
    ('"data.dataset" = "digits"', '"data.dataset" = "digitz"',
     r"\[set\] .*data.dataset = 'digitz' is not one of"),
    ('"schedule.epochs" = 1', '"schedule.epochs" = 0',
     r"\[quick.set\] .*schedule.epochs = 0 must be positive"),
    ('"schedule.epochs" = 1', '"train.seed" = 3', r"\[quick.set\] may not set train.seed"),
    ('"schedule.epochs" = 30', 'network = "cifar_resnet20_v1_a"', r"\[set\] may not set network"),
    ('"schedule.epochs" = 30', '"schedule.epochs" = 1979-05-27',
     r"\[set\] schedule.epochs = .*: a recipe value is a string"),
])
def test_each_mistake_is_one_line(tmp_path, old, new, pattern):
    assert re.search(pattern, _error(tmp_path, _replace(old, new))), pattern


def test_a_missing_quick_table_says_what_it_is(tmp_path):
    text = VALID[:VALID.index("[quick]")] + VALID[VALID.index("[[claims]]"):]
    assert "missing required key 'quick'" in _error(tmp_path, text)


def test_bad_toml_is_one_line(tmp_path):
    assert "not valid TOML" in _error(tmp_path, VALID + "\n= broken\n")


def test_quick_without_a_step_limit_runs_its_schedule(tmp_path):
    text = (DATA / "degradation.toml").read_text().replace("max_steps = 4\n", "")
    path = tmp_path / "e.toml"
    path.write_text(text)
    q = load_experiment(str(path)).quick_version()
    assert q.is_quick and q.max_steps is None
