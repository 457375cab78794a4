"""The repository's own results/: published numbers valid and complete, records real, table current."""
from __future__ import annotations

import re

import pytest

from bench.recipes import list_recipes, load_recipe
from bench.results import results_dir
from bench.results.published import load_published
from bench.results.records import load_records
from bench.results.rows import recipe_label
from bench.results.table import stale_files

RESULTS = results_dir()
PUBLISHED = load_published(RESULTS / "published.toml")  # validates schema, names, duplicates


def test_every_shipped_recipe_has_its_published_entry():
    by_recipe = {p.recipe: p for p in PUBLISHED}
    assert set(list_recipes()) <= set(by_recipe)


SHIPPED = set(list_recipes())
OWN = [p for p in PUBLISHED if p.recipe in SHIPPED]
OTHERS = [p for p in PUBLISHED if p.recipe not in SHIPPED]


def test_rows_without_a_shipped_recipe_name_a_described_recipe_code():
    import tomllib
    codes = tomllib.loads((RESULTS / "published.toml").read_text())["recipe_codes"]
    assert OTHERS, "the published rows of peers (torchvision, timm, mmpretrain...) are listed"
    for entry in OTHERS:
        assert entry.recipe.startswith(entry.recipe_code + " / ")
        # "GCV-C (fp32)" and "GCV-A+lastgamma" are variants described under their base code
        assert re.split(r" \(|\+", entry.recipe_code)[0] in codes


@pytest.mark.parametrize("entry", OWN, ids=lambda p: f"{p.recipe}-{p.protocol}")
def test_entry_agrees_with_its_recipe(entry):
    from bench.data import protocol_label
    from bench.results.reeval import WEIGHTS_TOLERANCE, weights_protocol
    recipe = load_recipe(entry.recipe)
    protocol = protocol_label(recipe.data)
    ref = recipe.reference
    assert (entry.top1_err, entry.top5_err, entry.verified, entry.source) == (
        ref.top1_err, ref.top5_err, ref.verified, ref.source)
    assert entry.dataset == recipe.data.dataset
    if entry.protocol == weights_protocol(protocol):  # `bench eval --record`
        assert entry.recipe.startswith("gluoncv_") and entry.tolerance == WEIGHTS_TOLERANCE
    else:
        assert (entry.protocol, entry.tolerance) == (protocol, ref.tolerance)


@pytest.mark.parametrize("recipe", ["digits_resnet", "he2015_cifar10_resnet20"])
def test_stored_counts_match_the_profiler(recipe):
    from bench.models import get_model
    from bench.models import profile
    entry = next(p for p in PUBLISHED if p.recipe == recipe)
    r = load_recipe(recipe)
    args = {"classes": 10, **r.network_args}
    size = r.data.input_size
    counted = profile(get_model(r.network, **args), (1, args.get("in_channels", 3), size, size))
    assert entry.params_m == pytest.approx(counted.learnable_params / 1e6, abs=1e-3)
    assert entry.gmacs == pytest.approx(counted.macs / 1e9, abs=1e-4)


def test_records_are_real_runs_with_provenance():
    for record in load_records(RESULTS):
        assert record.recipe in list_recipes()
        assert record.git["commit"] and record.hardware["cpu"] and record.versions
        # a run of a recipe, or `bench eval --record` (published weights, or a precision row);
        # records made before provenance spelled `python -m bench` as bench name __main__.py
        command = re.sub(r"^\S*bench/__main__\.py ", "bench ", record.command)
        assert command.startswith("bench run recipe" if record.kind == "training"
                                  else "bench eval"), record.command


def test_committed_table_is_current():
    """As `bench table --check` sees it: with the recorded experiments' section and pages."""
    from bench.experiments.recorded import stale_pages, summary_section
    stale = stale_files(RESULTS, summary_section(RESULTS)) + stale_pages(RESULTS)
    assert stale == [], "run `bench table` and commit results/"


def test_committed_csv_parses_with_one_value_per_header_name():
    from tests.results.test_table_formats import parse_csv
    rows = parse_csv((RESULTS / "results.csv").read_text(encoding="utf-8"))
    # A run of a modified recipe is its own row, keyed by its label ("digits_resnet [...]").
    keys = {(r.network, recipe_label(r.recipe, r.changed()), r.dataset, r.protocol)
            for r in load_records(RESULTS)}
    assert len(rows) == len(PUBLISHED) + len(keys - {p.key for p in PUBLISHED})


def test_rows_no_shipped_recipe_trains_are_references():
    """Peer rows are found from the data (their recipe is not in recipes/), not listed."""
    from tests.results.test_table_formats import parse_csv
    rows = parse_csv((RESULTS / "results.csv").read_text(encoding="utf-8"))
    peers = [r for r in rows if r["recipe"] not in SHIPPED and r["status"] != "modified recipe"]
    assert len(peers) == len(OTHERS) > 100
    assert {r["status"] for r in peers} == {"reference (no recipe here)"}
    assert all(r["runnable_here"] == "false" for r in peers)
    readme = (RESULTS / "README.md").read_text(encoding="utf-8")
    for dataset, title in (("imagenet", "ImageNet-1k"), ("cifar10", "CIFAR-10")):
        runnable = sum(p.dataset == dataset and p.recipe in SHIPPED for p in PUBLISHED)
        total = sum(p.dataset == dataset for p in PUBLISHED)
        section = readme.split(f"## {title}\n", 1)[1]
        assert section.lstrip().startswith(f"{total} rows, {runnable} runnable here")
