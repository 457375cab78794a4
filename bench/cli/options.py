"""Options shared by several commands, so each flag has one spelling and one meaning."""
from __future__ import annotations

import functools

import click

from bench.errors import BenchError
from bench.inference import CALIB_MODES, GRANULARITIES, Calibration


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


def int8_calibration(source: str):
    """``--calib-batches N --calib-mode M --granularity G``, passed to the command as one
    ``calibration`` (:class:`bench.inference.Calibration`); ``source`` says in the help where
    the calibration batches come from."""
    def decorate(func):
        @functools.wraps(func)
        def command(*args, calib_batches: int, calib_mode: str, granularity: str, **kwargs):
            return func(*args, calibration=Calibration(mode=calib_mode, batches=calib_batches,
                                                       granularity=granularity), **kwargs)
        command = click.option("--granularity", type=click.Choice(GRANULARITIES),
                               default="tensor-wise", show_default=True,
                               help="int8: one weight scale per tensor or per output "
                                    "channel.")(command)
        command = click.option("--calib-mode", type=click.Choice(CALIB_MODES), default="naive",
                               show_default=True,
                               help="int8: calibration of the layer ranges.")(command)
        return click.option("--calib-batches", type=click.IntRange(min=1), default=10,
                            show_default=True, metavar="N",
                            help=f"int8: calibration batches, {source}.")(command)
    return decorate
