"""What `bench run recipe NAME` trains when NAME is a network rather than a recipe.

A network may have several recipes (``resnet50_v1d``: GluonCV's with and without mixup, Bag of
Tricks' ablation rows, PaddleClas's). Its **default recipe** is the one behind GluonCV's default
pretrained weights for it (what ``get_model(name, pretrained=True)`` downloads) where GluonCV has
them, else the paper's; the recipe file says so in ``default_for_network``. A network with one
recipe needs no marker. A recipe name always wins over a network name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, did_you_mean
from bench.recipes.loader import list_recipes, load_recipe, recipes_dir
from bench.recipes.schema import Recipe


@dataclass(frozen=True)
class Resolution:
    """A recipe name as asked for, or the default recipe of a network."""

    recipe: str
    network: str | None = None  # the network's canonical name when NAME was a network
    asked: str = ""
    reason: str = ""  # why this recipe is the network's default
    top1_err: float | None = None
    others: tuple[str, ...] = ()  # the network's other recipes

    def line(self) -> str:
        """``resnet50_v1d -> recipe X (why, 20.85 % top-1 error); also: Y, Z``."""
        why = [self.reason] if self.reason else []
        if self.top1_err is not None:
            why.append(f"{self.top1_err:g} % top-1 error")
        text = f"{self.asked} -> recipe {self.recipe}"
        text += f" ({', '.join(why)})" if why else ""
        if self.others:
            text += f"; also: {', '.join(self.others)}"
        return text


def recipes_by_network(directory: Path | None = None) -> dict[str, list[Recipe]]:
    """Every shipped recipe grouped by its network's canonical name, in name order (reading
    all of them takes about 0.1 s, so nothing is cached)."""
    from bench.models import resolve_name
    directory = directory or recipes_dir()
    groups: dict[str, list[Recipe]] = {}
    for name in list_recipes("*", directory):
        recipe = load_recipe(name, directory=directory)
        groups.setdefault(resolve_name(recipe.network), []).append(recipe)
    return groups


def default_recipe(network: str, directory: Path | None = None,
                   groups: dict[str, list[Recipe]] | None = None) -> tuple[Recipe, str]:
    """The default recipe of ``network`` (a canonical name or alias) and why it is the one
    (``groups``: :func:`recipes_by_network`'s, when the caller has them already)."""
    from bench.models import resolve_name
    canonical = resolve_name(network)
    groups = recipes_by_network(directory) if groups is None else groups
    recipes = groups.get(canonical, [])
    if not recipes:
        raise BenchError(f"network {canonical!r} has no recipe in recipes/ yet; `bench recipes` "
                         "lists the recipes, `bench models` the networks")
    if len(recipes) == 1:
        only = recipes[0]
        return only, only.default_for_network or "its only recipe"
    marked = [r for r in recipes if r.default_for_network]
    if len(marked) != 1:
        names = ", ".join(r.name for r in (marked or recipes))
        raise BenchError(f"network {canonical!r} has {len(recipes)} recipes and {len(marked)} "
                         f"marked default_for_network ({names}): mark exactly one; run one by "
                         "its recipe name meanwhile")
    return marked[0], marked[0].default_for_network


def resolve(name: str, directory: Path | None = None) -> Resolution:
    """``name`` as a recipe, else as a network (or alias) with at least one recipe; else a
    one-line error naming close recipes and networks."""
    if name.endswith(".toml") or name in list_recipes("*", directory):
        return Resolution(recipe=name, asked=name)
    from bench.models import ALIASES, list_models, resolve_name
    try:
        canonical = resolve_name(name)
    except BenchError:
        choices = [*list_recipes("*", directory), *list_models(), *ALIASES]
        raise BenchError(f"unknown recipe or network {name!r}{did_you_mean(name, choices)}; "
                         "`bench recipes` lists the recipes, `bench models` the networks") from None
    groups = recipes_by_network(directory)
    recipe, reason = default_recipe(canonical, groups=groups)
    others = tuple(r.name for r in groups[canonical] if r.name != recipe.name)
    return Resolution(recipe=recipe.name, network=canonical, asked=name, reason=reason,
                      top1_err=recipe.reference.top1_err, others=others)
