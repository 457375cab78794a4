"""The ``bench`` command: thin click commands over plain functions in ``bench``.

Each subcommand lives in its own module and is added to the group here. A :class:`BenchError`
from anywhere below becomes one line on stderr and exit status 2, never a traceback; so do
click's usage errors (a bad option value, a missing argument) and an ``OSError`` that no check
caught earlier (a full disk, a path of the wrong kind), each named with what to do.
"""
from __future__ import annotations

import os
import sys

import click

from bench._mxnet import check_dmlc_role
from bench.errors import BenchError


class _Group(click.Group):
    def make_context(self, info_name, args, parent=None, **extra):
        try:  # `bench --bogus`: the top level's own options
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            _usage(exc, info_name or "bench")

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            _fail(str(exc), getattr(exc, "exit_code", 2))
        except click.UsageError as exc:
            _usage(exc, ctx.command_path)
        except BrokenPipeError:  # `bench ... | head`: the reader has all it wanted
            _quiet_broken_pipe()
        except OSError as exc:
            from bench.files import os_error_text
            _fail(os_error_text(exc), 2)


def _quiet_broken_pipe() -> None:
    """Exit as a pipeline's writer does when its reader has gone (status 128 + SIGPIPE), with
    stdout pointed at /dev/null so that Python's flush at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)


def _usage(exc: click.UsageError, where: str) -> None:
    if type(exc).__name__ == "NoArgsIsHelpError":  # `bench plot`: the help is the answer
        raise exc
    where = exc.ctx.command_path if exc.ctx is not None else where
    _fail(f"{exc.format_message().rstrip('.')}; `{where} -h` for help", exc.exit_code)


def _fail(message: str, code: int) -> None:
    """One line on stderr, whatever the message held (a path with a newline included)."""
    click.echo("error: " + " ".join(message.split()), err=True)
    sys.exit(code)


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
    from bench.cli.experiments import experiment, experiments
    from bench.cli.export import export_command
    from bench.cli.launch import launch
    from bench.cli.models import models
    from bench.cli.recipes import recipes
    from bench.cli.results import check, plot, record, table
    from bench.cli.run import run
    from bench.cli.speed import speed
    for command in (check, eval_command, experiment, experiments, export_command, launch,
                    models, plot, recipes, record, run, speed, table):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="bench")
