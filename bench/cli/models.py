"""``bench models``: list the model zoo, or show one network layer by layer."""
from __future__ import annotations

import click

from bench.zoo_table import FORMATS

_FORMAT_HELP = "Output format (table is GitHub markdown)."
_WIDE_HELP = "Every column in full (the default table fits 100 columns)."


class _PatternOrCommand(click.Group):
    """A group whose first positional token is a subcommand only if it names one exactly
    (``show``, or the hidden ``list`` that click's usage hints name); anything else is the
    PATTERN of the hidden ``list``."""

    def resolve_command(self, ctx, args):
        cmd = self.get_command(ctx, args[0])
        if cmd is not None:
            return args[0], cmd, args[1:]
        if any(a in ("-h", "--help") for a in args[1:]):
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit()
        return "list", _list, args


@click.group("models", cls=_PatternOrCommand, invoke_without_command=True,
             short_help="List the model zoo, or show one network layer by layer.",
             subcommand_metavar="[PATTERN] | show NAME [--input-size N]")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help=_FORMAT_HELP)
@click.option("--wide", is_flag=True, help=_WIDE_HELP)
@click.pass_context
def models(ctx: click.Context, fmt: str, wide: bool) -> None:
    """List the registered networks matching PATTERN (shell-style, e.g. 'resnet50*'; aliases
    match too; default: all), with parameters and multiply-adds at each net's own input size.

    `bench models show NAME` prints one network layer by layer.

    params (M) counts every parameter GluonCV's collect_params() holds, BN running
    mean/variance included; GMACs are convolution and dense multiply-adds for one image.
    """
    if ctx.invoked_subcommand is None:
        _echo_list("*", fmt, wide)


@models.command("list", hidden=True)
@click.argument("pattern", required=False, default="*")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default=None,
              help=_FORMAT_HELP)
@click.option("--wide", is_flag=True, help=_WIDE_HELP)
@click.pass_context
def _list(ctx: click.Context, pattern: str, fmt: str | None, wide: bool) -> None:
    """List the networks matching PATTERN."""
    _echo_list(pattern, fmt or ctx.parent.params["fmt"], wide or ctx.parent.params["wide"])


def _echo_list(pattern: str, fmt: str, wide: bool = False) -> None:
    from bench.zoo_table import describe, render
    click.echo(render(describe(pattern), fmt, wide))


@models.command("show", short_help="One network layer by layer, with its totals.")
@click.argument("name")
@click.option("--input-size", type=click.IntRange(min=1), default=None, metavar="N",
              help="Profile at an NxN input instead of the net's own (224 ImageNet, 32 CIFAR).")
def show(name: str, input_size: int | None) -> None:
    """Print one network layer by layer.

    NAME is a registered name or an alias. Each operator of the forward graph is listed with
    its output shape, parameters and multiply-adds, followed by the totals, activation memory,
    source and constructor flags."""
    from bench.zoo_table import layer_summary
    click.echo(layer_summary(name, input_size))
