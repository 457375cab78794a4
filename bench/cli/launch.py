"""``bench launch``: run a bench command as the workers of a parameter-server job on this
machine (kvstore dist_sync / dist_device_sync)."""
from __future__ import annotations

import sys

import click


@click.command("launch", short_help="Run a bench command as the workers of one multi-process job.",
               context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-n", "--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes (each trains on its own --gpus or CPU).")
@click.option("-s", "--servers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parameter-server processes.")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=None,
              help="The scheduler's port on 127.0.0.1 [default: a free one].")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def launch(workers: int, servers: int, port: int | None, args: tuple[str, ...]) -> None:
    """Run `bench ARGS` as WORKERS workers of one job, e.g.

        bench launch -n 2 -- run recipe digits_resnet --kvstore dist_sync

    The scheduler, the servers and the workers talk over 127.0.0.1 (a busy --port is refused
    before anything starts). The job ends as soon as one worker fails, or the scheduler or a
    server ends while workers run: one line names it (role, index, pid, exit status or
    signal) and the others are terminated, then killed. SIGINT and SIGTERM go to every
    worker, which checkpoint together (send it twice to kill a job that does not react). The
    processes die with the launcher, even when it is killed with SIGKILL. The exit status is
    the first failing process's (0 when all workers succeed). For several machines, start the
    same command under any launcher that sets MXNet's DMLC_* variables.
    """
    from bench.engine.launch import launch as run_job
    sys.exit(run_job(list(args), workers, servers, port))
