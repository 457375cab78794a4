"""One row per shipped recipe, for `bench recipes`."""
from __future__ import annotations

import json
from typing import Any

from tabulate import tabulate

from bench.data.spec import protocol_label
from bench.errors import BenchError
from bench.recipes.loader import list_recipes, load_recipe


def recipe_rows(pattern: str = "*") -> list[dict[str, Any]]:
    names = list_recipes(pattern)
    if not names:
        raise BenchError(f"no recipe matches {pattern!r}; `bench recipes` lists them all")
    rows = []
    for name in names:
        r = load_recipe(name)
        rows.append({"recipe": name, "network": r.network, "dataset": r.data.dataset,
                     "protocol": protocol_label(r.data), "epochs": r.schedule.epochs,
                     "batch": r.optim.batch_size, "lr": r.optim.lr,
                     "top1_err": r.reference.top1_err, "top5_err": r.reference.top5_err,
                     "source": r.reference.source, "verified": r.reference.verified})
    return rows


def render_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    return tabulate(rows, headers="keys", tablefmt="github", missingval="")
