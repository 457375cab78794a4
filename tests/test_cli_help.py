"""`bench --help` and every group's help: each command's summary is a whole sentence (none is cut
off mid-sentence by click's 45-character default) and the help fits a 100-column terminal."""
from __future__ import annotations

import click
import pytest

from bench.cli import cli
from tests.cli import runner


def _groups(group: click.Group, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group) and not command.hidden:
            yield from _groups(command, (*path, name))


GROUPS = list(_groups(cli))


def test_every_command_has_a_whole_sentence_summary():
    checked = 0
    for _, group in GROUPS:
        for name, command in group.commands.items():
            if command.hidden:
                continue
            assert command.short_help, f"{name}: no short_help"
            assert command.short_help.endswith("."), f"{name}: {command.short_help!r}"
            assert len(command.short_help) <= 90, name
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize("path", [p for p, _ in GROUPS], ids=lambda p: " ".join(p) or "bench")
def test_help_lists_whole_summaries_within_100_columns(path):
    result = runner().invoke(cli, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 100
    commands = lines[lines.index("Commands:") + 1:]
    assert commands and not any(line.rstrip().endswith("...") for line in commands), commands
