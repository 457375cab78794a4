"""`bench run recipe NETWORK`: a network name trains its default recipe (GluonCV's default
weights where GluonCV has them, else the paper's), and says so in one line."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from bench.models import resolve_name
from bench.recipes import list_recipes, load_recipe
from bench.recipes.loader import recipes_dir
from bench.recipes.resolve import default_recipe, recipes_by_network, resolve
from tests.cli import assert_one_line_error, invoke

NETWORKS = sorted(recipes_by_network())


def test_the_headline_network_resolves_as_the_issue_describes():
    line = resolve("resnet50_v1d").line()
    assert line.startswith("resnet50_v1d -> recipe gluoncv_resnet50_v1d_mixup (GluonCV's default "
                           "ResNet50_v1d weights, 20.85 % top-1 error); also: ")
    others = line.split("; also: ")[1].split(", ")
    assert "gluoncv_resnet50_v1d" in others and "bot_resnet50_v1d" in others
    assert "gluoncv_resnet50_v1d_mixup" not in others


@pytest.mark.parametrize("network", NETWORKS)
def test_every_network_with_a_recipe_dry_runs_its_default(network):
    result = invoke("run", "recipe", network, "--dry-run")
    assert result.exit_code == 0, result.stderr
    first, rest = result.stdout.split("\n", 1)
    recipe, why = default_recipe(network)
    assert first.startswith(f"{network} -> recipe {recipe.name} ({why}")
    assert json.loads(rest[:rest.rindex("}") + 1])["name"] == recipe.name
    assert resolve_name(recipe.network) == network


@pytest.mark.parametrize("network", NETWORKS)
def test_a_network_with_several_recipes_marks_exactly_one(network):
    recipes = recipes_by_network()[network]
    marked = [r.name for r in recipes if r.default_for_network]
    assert len(marked) == (1 if len(recipes) > 1 else len(marked)), marked
    assert len(marked) <= 1


def test_gluoncv_defaults_name_the_weights_gluoncv_downloads():
    """A recipe that claims GluonCV's default weights cites their hashtag; GluonCV's own model
    store (the file get_model(..., pretrained=True) downloads) must carry that hash."""
    from gluoncv.model_zoo.model_store import _model_sha1
    checked = 0
    for path in sorted(recipes_dir().glob("*.toml")):
        line = next((l for l in path.read_text().splitlines()
                     if l.startswith("default_for_network") and "GluonCV's default" in l), None)
        if line is None:
            continue
        network = resolve_name(load_recipe(path.stem).network)
        hashtag = re.search(r"hashtag ([0-9a-f]{8})", line)
        if hashtag:
            assert _model_sha1[network].startswith(hashtag.group(1)), path.name
            checked += 1
        else:  # the CIFAR weights: GluonCV's model zoo says they were trained with mixup
            assert "mixup" in path.stem and network in _model_sha1, path.name
    assert checked == 8  # the ImageNet defaults; the CIFAR ones have no hashtag in the zoo


def test_an_alias_resolves_like_its_network():
    assert resolve("ResNet50_vd").recipe == resolve("resnet50_v1d").recipe
    assert resolve("ResNet50_vd").line().startswith("ResNet50_vd -> recipe ")


def test_a_recipe_name_wins_over_a_network_name(tmp_path, monkeypatch):
    shutil.copy(recipes_dir() / "digits_resnet.toml", tmp_path / "resnet50_v1d.toml")
    monkeypatch.setenv("BENCH_RECIPES", str(tmp_path))
    assert resolve("resnet50_v1d").recipe == "resnet50_v1d"
    assert resolve("resnet50_v1d").network is None
    result = invoke("run", "recipe", "resnet50_v1d", "--dry-run")
    assert result.exit_code == 0 and " -> recipe " not in result.stdout


def test_a_recipe_name_is_not_announced():
    result = invoke("run", "recipe", "digits_resnet", "--dry-run")
    assert result.exit_code == 0 and " -> recipe " not in result.stdout + result.stderr


def test_the_default_marker_is_not_inherited():
    assert load_recipe("gluoncv_resnet50_v1").default_for_network
    child = load_recipe("gluoncv_resnet50_v1d")
    assert child.base == "gluoncv_resnet50_v1" and not child.default_for_network


def test_two_defaults_or_none_is_an_error(tmp_path, monkeypatch):
    for name in ("gluoncv_resnet50_v1", "gluoncv_resnet50_v1b", "bot_resnet50_efficient",
                 "bot_resnet50_v1b"):
        shutil.copy(recipes_dir() / f"{name}.toml", tmp_path / f"{name}.toml")
    text = (tmp_path / "gluoncv_resnet50_v1b.toml").read_text()
    (tmp_path / "gluoncv_resnet50_v1b.toml").write_text(
        re.sub(r"^default_for_network.*\n", "", text, flags=re.M))
    monkeypatch.setenv("BENCH_RECIPES", str(tmp_path))
    assert_one_line_error(invoke("run", "recipe", "resnet50_v1b", "--dry-run"),
                          "0 marked default_for_network", "bot_resnet50_v1b")


@pytest.mark.parametrize("args, needles", [
    (["run", "recipe", "resnet50_v1x"], ["unknown recipe or network 'resnet50_v1x'",
                                          "did you mean"]),
    (["run", "recipe", "resnet50_v1s", "--dry-run"], ["resnet50_v1s", "has no recipe"]),
    (["recipes", "resnet50_v1x"], ["no recipe or network matches", "did you mean"]),
])
def test_unknown_names_are_one_line(args, needles):
    assert_one_line_error(invoke(*args), *needles)


def test_bench_recipes_network_lists_its_recipes_default_first():
    result = invoke("recipes", "resnet50_v1d", "--format", "json")
    rows = json.loads(result.stdout)
    expected = {n for n in list_recipes() if resolve_name(load_recipe(n).network) == "resnet50_v1d"}
    assert {r["recipe"] for r in rows} == expected and len(expected) >= 5
    assert rows[0]["recipe"] == "gluoncv_resnet50_v1d_mixup" and rows[0]["default"]
    assert not any(r["default"] for r in rows[1:])
    table = invoke("recipes", "ResNet50_vd").stdout
    # (padded to the longest recipe name of the network)
    assert re.search(r"\| gluoncv_resnet50_v1d_mixup \* +\|", table), table


def test_recipes_show_accepts_a_network():
    result = invoke("recipes", "show", "resnet50_v1d")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["name"] == "gluoncv_resnet50_v1d_mixup"
    assert "resnet50_v1d -> recipe gluoncv_resnet50_v1d_mixup" in result.stderr


def test_the_recipe_table_fits_a_100_column_terminal_and_wide_shows_everything():
    lines = invoke("recipes").stdout.splitlines()
    assert len(lines) > 60 and max(len(line) for line in lines) <= 100
    wide = invoke("recipes", "--wide").stdout
    source = load_recipe("he2015_cifar10_resnet20").reference.source
    assert f"| {source} " in wide and "| checked " in wide and "| protocol " in wide
    assert max(len(line) for line in wide.splitlines()) > 100
    csv_text = invoke("recipes", "--format", "csv").stdout
    assert source in csv_text
