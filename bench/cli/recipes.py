"""``bench recipes``: list the shipped recipes, or show one fully resolved."""
from __future__ import annotations

import json

import click

from bench.terminal import FORMATS


class _PatternOrShow(click.Group):
    """``bench recipes show NAME`` is the subcommand; any other first word is a PATTERN."""

    def resolve_command(self, ctx, args):
        if args and args[0] in self.commands:
            return args[0], self.commands[args[0]], args[1:]
        return "list", _list, args


@click.group("recipes", cls=_PatternOrShow, invoke_without_command=True,
             short_help="List the recipes (all, or one network's), or show one resolved.",
             subcommand_metavar="[PATTERN] | show NAME")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True)
@click.option("--wide", is_flag=True, help="Every column in full (the default table fits 100 "
                                           "columns).")
@click.pass_context
def recipes(ctx: click.Context, fmt: str, wide: bool) -> None:
    """List the recipes whose name or network matches PATTERN (shell-style, e.g. 'bot_*'), or
    the recipes of network PATTERN (e.g. resnet50_v1d, or an alias such as ResNet50_vd), with
    the published error and its source; the network's default recipe is starred.

    `bench recipes show NAME` prints one recipe fully resolved (base merged, --set applied)."""
    if ctx.invoked_subcommand is None:
        _echo("*", fmt, wide)


@recipes.command("list", hidden=True)
@click.argument("pattern", required=False, default="*")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default=None)
@click.option("--wide", is_flag=True)
@click.pass_context
def _list(ctx: click.Context, pattern: str, fmt: str | None, wide: bool) -> None:
    _echo(pattern, fmt or ctx.parent.params["fmt"], wide or ctx.parent.params["wide"])


def _echo(pattern: str, fmt: str, wide: bool = False) -> None:
    from bench.recipes.catalog import recipe_rows, render_rows
    click.echo(render_rows(recipe_rows(pattern), fmt, wide))


@recipes.command("show", short_help="One recipe fully resolved, as JSON.")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Apply an override before printing.")
def show(name: str, overrides: tuple[str, ...]) -> None:
    """Print recipe NAME with its base merged and overrides applied, as JSON (a network name
    shows its default recipe). It is validated as a run would validate it (data pipeline,
    batch against the training set, LR schedule), on the recipe's own hardware."""
    from bench.engine.runplan import check_recipe
    from bench.recipes import load_recipe, recipe_hash, recipe_to_dict
    from bench.recipes.resolve import resolve
    resolution = resolve(name)
    loaded = load_recipe(resolution.recipe, overrides)
    check_recipe(loaded)  # before anything is printed
    if resolution.network:
        click.echo(resolution.line(), err=True)
    data = recipe_to_dict(loaded)
    data["hash"] = recipe_hash(loaded)
    click.echo(json.dumps(data, indent=2))
