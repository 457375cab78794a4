"""Every shipped recipe file: it loads, names a registered network, cites a published number,
fits the hardware at hand, inherits at most one level, and trains differently from every other
recipe unless it is listed below as the same recipe published twice."""
from __future__ import annotations

import itertools
import json
import re

import pytest

from bench.data.spec import EMBEDDED_SIDES
from bench.models import resolve_name
from bench.models.registry import get_spec
from bench.recipes import list_recipes, load_recipe, plan_for, recipe_hash
from bench.recipes.loader import read_toml, recipe_path

NAMES = list_recipes()

# Pairs of recipes that train identically on purpose: one recipe, two publications.
SAME_TRAINING: set[frozenset[str]] = set(
    # Bag of Tricks Table 6's "+ label smoothing" and "+ mixup" rows are GluonCV's
    # resnet50_v1d(-mixup).sh recipes, except that the paper initialises with Xavier
    # (xavier_uniform) and train_imagenet.py with MSRAPrelu (msra_prelu), so the recipes differ
    # in train.init and no pair is listed.
)


def test_recipes_are_shipped():
    assert len(NAMES) > 50


@pytest.mark.parametrize("name", NAMES)
def test_recipe_loads_and_cites_a_published_number(name):
    assert re.fullmatch(r"[a-z0-9_]+", name), "recipe file names are lowercase snake_case"
    recipe = load_recipe(name)
    assert resolve_name(recipe.network)
    assert recipe.description.strip()
    ref = recipe.reference
    assert ref.source.strip()
    assert ref.top1_err is not None or ref.top5_err is not None
    for err in (ref.top1_err, ref.top5_err):
        assert err is None or 0 < err < 100
    assert ref.tolerance > 0
    assert ref.recipe_code.strip()


@pytest.mark.parametrize("name", NAMES)
def test_recipe_plans_on_one_device(name):
    recipe = load_recipe(name)
    plan = plan_for(recipe, 1)
    assert plan.devices == 1 and plan.global_batch > 0 and plan.lr > 0
    assert plan.per_device_batch == recipe.optim.batch_size // recipe.train.devices


@pytest.mark.parametrize("name", NAMES)
def test_base_exists_and_has_no_base(name):
    raw = read_toml(recipe_path(name))
    base = raw.get("base")
    if not base:
        return
    base_raw = read_toml(recipe_path(base))
    assert not base_raw.get("base"), f"{name}: its base {base} has a base itself"
    assert load_recipe(name).base == base


@pytest.mark.parametrize("name", NAMES)
def test_reference_is_the_files_own(name):
    """Tables merge key by key and TOML has no null, so a child that omits top5_err would
    silently inherit its base's: every file states its whole [reference] itself."""
    own = read_toml(recipe_path(name)).get("reference", {})
    for key in ("source", "tolerance", "verified", "recipe_code"):
        assert key in own, f"{name}: [reference] must state {key} itself, not inherit it"
    ref = load_recipe(name).reference
    assert ref.top1_err == own.get("top1_err")
    assert ref.top5_err == own.get("top5_err")
    assert ref.note == own.get("note", "")


@pytest.mark.parametrize("name", NAMES)
def test_input_size_matches_the_network_or_the_embedded_images(name):
    """ImageNet and CIFAR recipes train at their network's size; a recipe on an embedded set
    (digits, mnist5k) at the size of its images, whatever the network was built for."""
    recipe = load_recipe(name)
    expected = EMBEDDED_SIDES.get(recipe.data.dataset, get_spec(recipe.network).input_size)
    assert recipe.data.input_size == expected


def test_no_two_recipes_train_identically_unless_listed():
    by_hash: dict[str, list[str]] = {}
    for name in NAMES:
        by_hash.setdefault(recipe_hash(load_recipe(name)), []).append(name)
    clashes = {frozenset(pair) for group in by_hash.values() if len(group) > 1
               for pair in itertools.combinations(group, 2)}
    assert clashes == SAME_TRAINING, (
        f"unlisted identical recipes: {sorted(map(sorted, clashes - SAME_TRAINING))}; "
        f"listed but no longer identical: {sorted(map(sorted, SAME_TRAINING - clashes))}")


@pytest.mark.parametrize("name", NAMES)
def test_the_hash_of_a_run_survives_its_recipe_json(name):
    """A run saves its resolved recipe as recipe.json; reading that back must give the hash the
    run trained under, or a resume, `bench check` and `bench record` refuse the run (an int
    milestone from --epochs rescaling once came back as a float and changed the hash)."""
    from bench.engine.runplan import RunOptions, apply_options
    from bench.recipes import recipe_from_dict, recipe_to_dict
    for epochs in (None, 2):
        recipe, _ = apply_options(load_recipe(name), RunOptions(epochs=epochs, seed=3))
        back = recipe_from_dict(json.loads(json.dumps(recipe_to_dict(recipe))))
        assert recipe_hash(back) == recipe_hash(recipe), (name, epochs)
