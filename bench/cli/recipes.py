"""``bench recipes``: list the shipped recipes, or show one fully resolved."""
from __future__ import annotations

import json

import click

FORMATS = ("table", "json")


class _PatternOrShow(click.Group):
    """``bench recipes show NAME`` is the subcommand; any other first word is a PATTERN."""

    def resolve_command(self, ctx, args):
        if args and args[0] in self.commands:
            return args[0], self.commands[args[0]], args[1:]
        return "list", _list, args


@click.group("recipes", cls=_PatternOrShow, invoke_without_command=True,
             subcommand_metavar="[PATTERN] | show NAME")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True)
@click.pass_context
def recipes(ctx: click.Context, fmt: str) -> None:
    """List recipes matching PATTERN (shell-style, e.g. 'bot_*'), with network, data set,
    protocol, the published error and its source. `bench recipes show NAME` prints one recipe
    fully resolved (base merged, --set applied)."""
    if ctx.invoked_subcommand is None:
        _echo("*", fmt)


@recipes.command("list", hidden=True)
@click.argument("pattern", required=False, default="*")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default=None)
@click.pass_context
def _list(ctx: click.Context, pattern: str, fmt: str | None) -> None:
    _echo(pattern, fmt or ctx.parent.params["fmt"])


def _echo(pattern: str, fmt: str) -> None:
    from bench.recipes.catalog import recipe_rows, render_rows
    click.echo(render_rows(recipe_rows(pattern), fmt))


@recipes.command("show")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Apply an override before printing.")
def show(name: str, overrides: tuple[str, ...]) -> None:
    """Print recipe NAME with its base merged and overrides applied, as JSON."""
    from bench.recipes import load_recipe, recipe_hash, recipe_to_dict
    loaded = load_recipe(name, overrides)
    data = recipe_to_dict(loaded)
    data["hash"] = recipe_hash(loaded)
    click.echo(json.dumps(data, indent=2))
