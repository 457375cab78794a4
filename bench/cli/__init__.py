"""The ``bench`` command: thin click commands over plain functions in ``bench``.

Each subcommand lives in its own module and is added to the group here. A :class:`BenchError`
from anywhere below becomes one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import os
import sys

import click

from bench._mxnet import check_dmlc_role
from bench.errors import BenchError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resnet-bench")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """resnet-bench: reproduce the ResNet family's published results with MXNet Gluon."""
    # Before anything can import MXNet (a stray DMLC_ROLE would make this process a
    # parameter server there); `launch` drops inherited DMLC_* variables instead.
    if ctx.invoked_subcommand != "launch":
        check_dmlc_role(os.environ)


def _register() -> None:
    from bench.cli.eval import eval_command
    from bench.cli.launch import launch
    from bench.cli.models import models
    from bench.cli.recipes import recipes
    from bench.cli.results import check, plot, record, table
    from bench.cli.run import run
    from bench.cli.speed import speed
    for command in (check, eval_command, launch, models, plot, recipes, record, run, speed,
                    table):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="bench")
