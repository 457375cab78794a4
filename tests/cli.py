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


def assert_one_line_error(result: Result, *needles: str, quiet: bool = False) -> None:
    """A non-zero exit whose error is one line, the last on stderr, with no traceback.
    ``quiet``: nothing else was printed at all (no plan or progress lines before it)."""
    assert result.exit_code != 0, (result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    if quiet:
        assert result.stdout == "" and len(lines) == 1, (result.stdout, result.stderr)
    for needle in needles:
        assert needle in errors[0], errors[0]
