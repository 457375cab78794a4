"""Options shared by several commands, so each flag has one spelling and one meaning."""
from __future__ import annotations

import click

from bench.errors import BenchError


def loader_workers(func):
    """``--loader-workers N``: data-loading threads. ``--workers`` means processes of a job
    (``bench launch``), so its old use here is refused with a pointer rather than accepted."""
    func = click.option("--loader-workers", type=click.IntRange(min=0), default=2,
                        show_default=True, help="Data-loading threads.")(func)
    return click.option("--workers", "_old_workers", default=None, hidden=True,
                        expose_value=False, callback=_refuse_workers)(func)


def _refuse_workers(ctx: click.Context, param: click.Parameter, value) -> None:
    if value is not None:
        raise BenchError("--workers is the number of processes of `bench launch`; the "
                         "data-loading threads are --loader-workers (e.g. --loader-workers "
                         f"{value})")
