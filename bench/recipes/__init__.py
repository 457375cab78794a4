"""Recipes: declarative TOML files in ``recipes/`` parsed into typed, validated objects
(:mod:`.schema`, :mod:`.loader`), and fitted to the hardware at hand (:mod:`.scaling`)."""
from bench.recipes.loader import (list_recipes, load_recipe, parse_override, recipe_from_dict,
                                  recipe_hash, recipe_path, recipe_to_dict, recipes_dir)
from bench.recipes.scaling import (BatchChoice, DeviceMemory, Plan, choose_batch, fit_to_check,
                                   plan_for)
from bench.recipes.schema import Recipe

__all__ = ["BatchChoice", "DeviceMemory", "Plan", "Recipe", "choose_batch", "fit_to_check",
           "list_recipes", "load_recipe", "parse_override", "plan_for", "recipe_from_dict",
           "recipe_hash", "recipe_path", "recipe_to_dict", "recipes_dir"]
