"""Running the ``bench`` command in-process for tests."""
from __future__ import annotations

from click.testing import CliRunner, Result

from bench.cli import cli


def runner() -> CliRunner:
    """A runner that keeps stderr apart (click < 8.2 mixes it into stdout unless told not to)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def invoke(*args: str, catch_exceptions: bool = True) -> Result:
    return runner().invoke(cli, list(args), catch_exceptions=catch_exceptions)
