"""The recipe loader: strict keys and types, one level of inheritance, overrides, rescaling."""
from __future__ import annotations

import textwrap

import pytest

from bench.errors import BenchError
from bench.recipes import load_recipe, plan_for, recipe_from_dict, recipe_hash, recipe_to_dict

BASE = """
description = "a base"
network = "cifar_resnet20_v1_a"
[data]
dataset = "cifar10"
train_augment = "cifar"
input_size = 32
protocol = "full"
[optim]
lr = 0.1
batch_size = 128
[schedule]
kind = "step"
epochs = 10
milestones = [5, 8]
[train]
devices = 2
[reference]
source = "a test fixture, not a publication"
top1_err = 8.75
"""


@pytest.fixture
def recipes(tmp_path):
    def write(name: str, text: str):
        (tmp_path / f"{name}.toml").write_text(textwrap.dedent(text))
        return tmp_path
    write("base", BASE)
    return write


def _load(recipes, name, overrides=()):
    return load_recipe(name, overrides, directory=recipes("unused", "description = 'x'"))


def test_a_recipe_loads_into_typed_sections(recipes):
    r = _load(recipes, "base")
    assert r.schedule.milestones == (5.0, 8.0)
    assert r.optim.lr == 0.1 and isinstance(r.optim.lr, float)
    assert r.reference.top1_err == 8.75


def test_child_overrides_its_base_key_by_key(recipes):
    recipes("child", 'base = "base"\ndescription = "c"\n[optim]\nlr = 0.2\n')
    r = _load(recipes, "child")
    assert r.optim.lr == 0.2 and r.optim.batch_size == 128 and r.base == "base"


def test_inheritance_is_one_level(recipes):
    recipes("child", 'base = "base"\ndescription = "c"\n')
    recipes("grandchild", 'base = "child"\ndescription = "g"\n')
    with pytest.raises(BenchError, match="one level"):
        _load(recipes, "grandchild")


@pytest.mark.parametrize("text, message", [
    ("[optim]\nlrr = 0.1\n", "unknown key 'optim.lrr' (did you mean: lr?)"),
    ("netwrk = 'x'\n", "unknown key 'netwrk' (did you mean: network"),
    ("[optim]\nlr = 'fast'\n", "optim.lr must be float"),
    ("[schedule]\nepochs = 1.5\n", "schedule.epochs must be int"),
    ("[schedule]\nkind = 'steps'\n", "schedule.kind = 'steps' is not one of"),
    ("[optim]\nmomentum = 1.5\n", "optim.momentum = 1.5 must be between"),
    ("[schedule]\nmilestones = [8, 5]\n", "milestones must be increasing"),
    ("network = 'resnet50_v1x'\n", "unknown model 'resnet50_v1x'"),
    ("[network_args]\nzero_init = true\n", "unknown model option 'zero_init'"),
    # Numbers in files are finite and bounded:
    ("[optim]\nlr = nan\n", "optim.lr = nan is not a finite number"),
    ("[data]\njitter = -inf\n", "data.jitter = -inf is not a finite number"),
    ("[schedule]\nmilestones = [5, inf]\n", "schedule.milestones[1] = inf is not a finite"),
    (f"[optim]\nbatch_size = {'9' * 400}\n", "(400 characters) is too large"),
    (f"[optim]\nlr = {'9' * 400}\n", "optim.lr = 9999999999999999...99999999 (400 characters)"),
    ("[network_args]\nclasses = 'ten'\n", "network_args.classes must be int, got 'ten'"),
    ("[network_args]\nclasses = true\n", "network_args.classes must be int, got True"),
])
def test_bad_values_are_one_line_errors_naming_the_key(recipes, text, message):
    recipes("bad", 'base = "base"\ndescription = "c"\n' + text)
    with pytest.raises(BenchError) as err:
        _load(recipes, "bad")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_reference_source_is_rejected(recipes):
    recipes("nosource", BASE.replace('source = "a test fixture, not a publication"', ''))
    with pytest.raises(BenchError, match="reference.source is required"):
        _load(recipes, "nosource")


def test_unknown_recipe_suggests_close_names(recipes):
    with pytest.raises(BenchError, match=r"unknown recipe 'bsae' \(did you mean: base"):
        _load(recipes, "bsae")


def test_overrides_are_typed_and_checked(recipes):
    r = _load(recipes, "base", ["optim.lr=0.05", "train.mixup_alpha=0.2",
                                "network_args.zero_init_last_bn=true"])
    assert r.optim.lr == 0.05 and r.train.mixup_alpha == 0.2
    assert r.network_args == {"zero_init_last_bn": True}
    with pytest.raises(BenchError, match="did you mean: lr"):
        _load(recipes, "base", ["optim.lrate=1"])
    with pytest.raises(BenchError, match="expected key=value"):
        _load(recipes, "base", ["optim.lr"])
    with pytest.raises(BenchError, match="optim.batch_size must be int"):
        _load(recipes, "base", ["optim.batch_size=many"])


def test_json_round_trip_keeps_the_hash(recipes):
    r = _load(recipes, "base")
    again = recipe_from_dict(recipe_to_dict(r))
    assert again == r and recipe_hash(again) == recipe_hash(r)
    assert recipe_hash(_load(recipes, "base", ["optim.lr=0.2"])) != recipe_hash(r)
    # Writing a default out, or a schema that gains an option with a default, keeps the hash.
    assert recipe_hash(_load(recipes, "base", ["data.eval_size=0"])) == recipe_hash(r)


def test_plan_with_unknown_memory_keeps_per_device_batch_and_scales_lr_linearly(recipes):
    # No memory facts (a GPU MXNet cannot query): 64 per device is what is known to fit.
    r = _load(recipes, "base")
    plan = plan_for(r, devices=1)
    assert (plan.per_device_batch, plan.global_batch, plan.lr) == (64, 64, pytest.approx(0.05))
    assert any("linear scaling" in c for c in plan.changes)
    same = plan_for(r, devices=2)
    assert same.lr == 0.1 and same.changes == ()
    explicit = plan_for(r, devices=1, global_batch=128)
    assert explicit.lr == 0.1 and explicit.per_device_batch == 128


def test_iteration_budgets_stretch_with_a_smaller_batch(recipes):
    recipes("iters", 'base = "base"\ndescription = "c"\n[schedule]\niterations = 64000\n'
                     'milestones = [32000, 48000]\nunit = "iteration"\n')
    plan = plan_for(_load(recipes, "iters"), devices=1)
    assert plan.iterations == 128000 and plan.milestones == (64000, 96000)


def test_bad_global_batch_is_rejected(recipes):
    with pytest.raises(BenchError, match="multiple of the 2 device"):
        plan_for(_load(recipes, "base"), devices=2, global_batch=65)


def test_a_childs_reference_replaces_the_bases_whole(recipes):
    recipes("child", 'base = "base"\ndescription = "c"\n[reference]\nsource = "other"\n'
                     'top5_err = 2.0\n')
    r = _load(recipes, "child")
    assert r.reference.top1_err is None and r.reference.top5_err == 2.0


# --- every number finite and in range (issue 10) ----------------------------------------------

# (key, a value the schema refuses, the nearest value it accepts): each range is the one its
# meaning gives (a probability, a count, a percentage, a seed of MXNet's and NumPy's generators).
RANGES = [
    ("optim.lr", "0", "1e-9"), ("optim.lr", "nan", "0.1"), ("optim.lr", "inf", "1e9"),
    ("optim.momentum", "1.01", "1.0"), ("optim.weight_decay", "-1e-9", "0"),
    ("optim.batch_size", "0", "1"), ("data.min_area", "0", "1e-9"), ("data.min_area", "1.01", "1"),
    ("data.jitter", "1.01", "1"), ("data.jitter", "-0.1", "0"), ("data.lighting", "-0.1", "0"),
    ("data.lighting", "inf", "1e6"), ("data.input_size", "4097", "4096"),
    ("data.eval_size", "-1", "0"), ("data.eval_resize", "4097", "4096"),
    ("data.synthetic_size", "0", "1"), ("schedule.epochs", "0", "1"),
    ("schedule.iterations", "-1", "0"), ("schedule.factor", "0", "1"),
    ("schedule.power", "0", "0.5"), ("schedule.final_lr", "-1e-9", "0"),
    ("schedule.warmup_epochs", "-1", "0"), ("schedule.warmup_start_lr", "-1", "0"),
    ("schedule.warmup_lr", "nan", "0"), ("schedule.milestones", "[-1]", "[0]"),
    ("train.label_smoothing", "1", "0.99"), ("train.mixup_alpha", "-1", "0"),
    ("train.mixup_off_epochs", "-1", "0"), ("train.seed", "-1", "0"),
    ("train.seed", "4294967296", "4294967295"), ("train.devices", "0", "1"),
    ("reference.top1_err", "-0.01", "0"), ("reference.top1_err", "100.01", "100"),
    ("reference.top5_err", "nan", "100"), ("reference.tolerance", "-1", "0"),
    ("network_args.classes", "0", "1"), ("network_args.in_channels", "-1", "1"),
    ("network_args.block_dropout", "1.5", "0.5"), ("network_args.zero_init_last_bn", "1", "true"),
]


@pytest.mark.parametrize("key, bad, good", RANGES, ids=[f"{k}={b}" for k, b, _ in RANGES])
def test_every_number_is_checked_at_the_edge_of_its_range(recipes, key, bad, good):
    with pytest.raises(BenchError) as err:
        _load(recipes, "base", [f"{key}={bad}"])
    message = str(err.value)
    assert key in message and "\n" not in message and "with --set" in message
    _load(recipes, "base", [f"{key}={good}"])  # the other side of the edge loads


@pytest.mark.parametrize("item", ["optim.lr=0.1\nx=1", "optim.lr=0.1\n", "optim.lr=0.1\r",
                                  "optim.lr\n=0.1"])
def test_a_set_value_is_one_line(recipes, item):
    # TOML would read "0.1\nx=1" as two assignments and the second would be dropped.
    with pytest.raises(BenchError, match="a value is one line"):
        _load(recipes, "base", [item])


def test_a_set_value_is_one_toml_value():
    from bench.recipes import parse_override
    assert parse_override("optim.lr = 0.05") == ("optim.lr", 0.05)
    assert parse_override("schedule.milestones=[1, 2]") == ("schedule.milestones", [1, 2])
    assert parse_override("train.init=he_fan_in") == ("train.init", "he_fan_in")  # a bare word
    assert parse_override("description=a = b") == ("description", "a = b")


def test_recipe_files_that_are_not_utf8_toml_are_one_line(tmp_path):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('description = "café"\n'.encode("latin-1"))
    with pytest.raises(BenchError, match=r"not UTF-8 text \(byte 18 is 0xe9\)"):
        load_recipe(str(latin1))
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(BenchError, match="is a folder"):
        load_recipe(str(tmp_path / "folder.toml"))
    with pytest.raises(BenchError, match="no recipe file"):
        load_recipe(str(tmp_path / "missing.toml"))
    with pytest.raises(BenchError, match="at most 255"):
        load_recipe("x" * 300 + ".toml")
    with pytest.raises(BenchError, match="unknown recipe xxxx"):
        load_recipe("x" * 300)


@pytest.mark.parametrize("data, message", [
    ([], "not a recipe: a JSON object was expected, not list"),
    ("recipe", "not a recipe: a JSON object was expected, not str"),
    ({"name": 5}, "name must be str"),
    ({"name": "x"}, "missing required key 'network'"),
])
def test_a_recipe_json_of_the_wrong_shape_is_one_line(data, message):
    with pytest.raises(BenchError) as err:
        recipe_from_dict(data, "run/recipe.json")
    assert message in str(err.value) and str(err.value).startswith("run/recipe.json")
