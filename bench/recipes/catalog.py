"""One row per shipped recipe, for `bench recipes`."""
from __future__ import annotations

import fnmatch
import re
from typing import Any

from bench import terminal
from bench.data.spec import protocol_label
from bench.errors import BenchError, did_you_mean
from bench.recipes.loader import list_recipes
from bench.recipes.resolve import default_recipe, recipes_by_network

# Row key -> table header, in column order; the keys are the JSON / CSV field names.
COLUMNS = {"recipe": "recipe", "network": "network", "default": "default",
           "dataset": "dataset", "protocol": "protocol", "epochs": "epochs", "batch": "batch",
           "lr": "lr", "top1_err": "top-1 err", "top5_err": "top-5 err", "source": "source",
           "verified": "checked"}
# What fits a 100-column terminal; the default recipe is starred instead of its own column.
NARROW = ("recipe", "network", "top1_err", "source")
NOTE = ("* the network's default recipe: what `bench run recipe NETWORK` trains (GluonCV's "
        "default weights where GluonCV has them, else the paper's). Errors in %. --wide or "
        "--format json/csv: every column, sources in full.")


def recipe_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """Recipes whose name or network matches the shell-style ``pattern``, or, when
    ``pattern`` names a network (or an alias of one), that network's recipes."""
    from bench.models import resolve_name
    groups = recipes_by_network()
    try:
        asked = resolve_name(pattern)
    except BenchError:
        asked = None
    rows = []
    for network, recipes in groups.items():
        default = default_recipe(network, groups=groups)[0].name
        for r in recipes:
            if not (network == asked or fnmatch.fnmatchcase(r.name, pattern)
                    or fnmatch.fnmatchcase(network, pattern)):
                continue
            rows.append({"recipe": r.name, "network": network, "default": r.name == default,
                         "dataset": r.data.dataset, "protocol": protocol_label(r.data),
                         "epochs": r.schedule.epochs, "batch": r.optim.batch_size,
                         "lr": r.optim.lr, "top1_err": r.reference.top1_err,
                         "top5_err": r.reference.top5_err, "source": r.reference.source,
                         "verified": r.reference.verified})
    if not rows:
        from bench.models import list_models
        hint = did_you_mean(pattern, [*list_recipes(), *list_models()])
        raise BenchError(f"no recipe or network matches {pattern!r}{hint}; `bench recipes` "
                         "lists every recipe")
    order = {name: i for i, name in enumerate(list_recipes())}
    if asked is None:
        rows.sort(key=lambda row: order[row["recipe"]])
    else:  # one network: its default first
        rows.sort(key=lambda row: (not row["default"], order[row["recipe"]]))
    return rows


def render_rows(rows: list[dict[str, Any]], fmt: str, wide: bool = False) -> str:
    if fmt != "table":
        return terminal.render_data(rows, fmt, COLUMNS)
    keys = list(COLUMNS) if wide else list(NARROW)
    cells = []
    for row in rows:
        cell = {k: _cell(k, row[k]) for k in keys}
        if not wide:
            cell["recipe"] += " *" if row["default"] else ""
            # The arXiv number is the first thing to go in a narrow column.
            cell["source"] = re.sub(r" \(arXiv:[^)]*\)", "", cell["source"])
        cells.append(cell)
    return terminal.render(cells, {k: COLUMNS[k] for k in keys},
                           width=None if wide else terminal.WIDTH, shrink=("source",),
                           right=("epochs", "batch", "lr", "top1_err", "top5_err"), note=NOTE)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key == "default":
        return "yes" if value else ""
    if key == "verified":
        return "yes" if value else "no"
    if key in ("top1_err", "top5_err"):
        return f"{value:.2f}"
    return f"{value:g}" if isinstance(value, float) else str(value)
