"""``bench run recipe NAME``: train one recipe (or resume a run)."""
from __future__ import annotations

from pathlib import Path

import click

from bench.cli.options import loader_workers


@click.group("run", short_help="Train a recipe, or a network's default recipe.")
def run() -> None:
    """Train networks."""


@run.command("recipe", short_help="Train a recipe, or a network's default recipe.")
@click.argument("name", required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe value, e.g. --set optim.lr=0.05 (repeatable).")
@click.option("--gpus", default="", metavar="0,1", help="GPU ids; default: CPU.")
@click.option("--data-dir", type=click.Path(), default=None, envvar="BENCH_DATA",
              help="Data set root (or set BENCH_DATA).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Train this many epochs; the schedule is scaled to fit.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this many optimizer steps in total (checkpointed; resumable).")
@click.option("--seed", type=int, default=None, help="Seed (default: the recipe's).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Global batch; default: the recipe's when it fits the devices, else its "
                   "per-device batch. The LR follows linearly.")
@click.option("--kvstore", default=None, help="device, local, nccl, dist_sync, horovod ...")
@click.option("--cpu-devices", type=click.IntRange(min=1), default=1, show_default=True,
              help="Without --gpus: split each batch over this many CPU contexts (exercises "
                   "the multi-device path).")
@loader_workers
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Runs go to OUT/<recipe>/<time>/.")
@click.option("--resume", "resume", type=click.Path(path_type=Path), default=None,
              metavar="RUN_DIR", help="Continue an unfinished run from its newest valid "
                                         "checkpoint (NAME, if given, must be its recipe).")
@click.option("--dry-run", is_flag=True,
              help="Print the resolved recipe, the scaled LR and the schedule (with --resume: "
                   "the checkpoint and steps the resume would continue with), then exit; "
                   "writes nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def recipe(name, overrides, gpus, data_dir, epochs, max_steps, seed, batch_size, kvstore,
           cpu_devices, loader_workers, out, resume, dry_run, no_progress) -> None:
    """Train recipe NAME and write a run directory.

    NAME is a recipe (`bench recipes`) or a network (`bench models`): a network trains its
    default recipe, the one behind GluonCV's default weights for it where GluonCV has them, else
    the paper's (`bench recipes NETWORK` lists its others)."""
    from bench.engine.devices import parse_gpus
    from bench.engine.runplan import RunOptions
    from bench.errors import BenchError
    from bench.files import check_names, check_writable_dir
    if data_dir:
        check_names(data_dir, "--data-dir")
    options = RunOptions(gpus=tuple(parse_gpus(gpus)), cpu_devices=cpu_devices,
                         data_dir=data_dir, epochs=epochs, max_steps=max_steps, seed=seed,
                         batch_size=batch_size, kvstore=kvstore, out=out,
                         loader_workers=loader_workers,
                         progress=not no_progress)
    if resume is not None:
        if overrides or epochs or seed is not None or batch_size:
            raise BenchError("--resume continues a run with its own recipe: drop --set, "
                             "--epochs, --seed and --batch-size")
        from bench.engine.runplan import check_resumable
        check_resumable(resume)
        if dry_run:
            from bench.engine.resume import dry_run_resume
            for line in dry_run_resume(resume, options, asked=name):
                click.echo(line)
            return
        from bench.engine.run import resume_run
        _finish(resume_run(resume, options, report=_report, asked=name))
        return
    if not name:
        raise BenchError("give a recipe or network name (`bench recipes` lists them) or "
                         "--resume RUN_DIR")
    from bench.recipes import load_recipe
    from bench.recipes.resolve import resolve
    resolution = resolve(name)
    loaded = load_recipe(resolution.recipe, overrides)
    first = [resolution.line()] if resolution.network else []
    if dry_run:
        _dry_run(loaded, options, first)
        return
    check_writable_dir(out, "--out")
    from bench.engine.run import start_run
    _finish(start_run(loaded, options, report=_after(first)))


def _after(first: list[str]):
    """A report that prints ``first`` before its first line: the run reports only once every
    check has passed, so nothing is printed for a run that is refused."""
    def report(line: str) -> None:
        while first:
            _report(first.pop(0))
        _report(line)
    return report


def _report(line: str) -> None:
    click.echo(line, err=True)


def _dry_run(loaded, options, first: list[str]) -> None:
    import json
    from bench.engine.runplan import describe, prepare
    from bench.recipes import recipe_to_dict
    from bench.engine.distill import resolve_weights, teacher_record
    teacher = None
    if loaded.distill.weights:  # without weights the plan is shown; a run refuses
        loaded = resolve_weights(loaded)
        teacher = teacher_record(loaded)
    setup = prepare(loaded, options)  # every check a run makes, before anything is printed
    setup.teacher = teacher
    for line in first:
        click.echo(line)
    click.echo(json.dumps(recipe_to_dict(setup.recipe), indent=2))
    for line in describe(setup):
        click.echo(line)


def _finish(run_dir: Path | None) -> None:
    import json
    if run_dir is None:  # a worker other than rank 0 of a multi-worker job: rank 0 reports
        return
    metrics = json.loads((run_dir / "metrics.json").read_text())
    top1, top5 = metrics.get("top1_err"), metrics.get("top5_err")
    if metrics.get("outcome") == "chance":
        from bench.engine.health import ChanceLevel
        raise ChanceLevel(f"{metrics['recipe']} ended at chance level: top-1 error {top1:.2f} % "
                          f"after {metrics['iterations']} iterations (its reference is far "
                          f"lower): the network learned nothing; lower the LR (--set "
                          f"optim.lr=...) or check the data; run directory: {run_dir}")
    status = "finished" if metrics["complete"] else "stopped at --max-steps"
    err = "" if top1 is None else f": top-1 error {top1:.2f} %, top-5 error {top5:.2f} %"
    click.echo(f"{status} {metrics['recipe']} ({metrics['iterations']} iterations, "
               f"{metrics['train_time_s']:.1f} s training){err}")
    click.echo(f"run directory: {run_dir}")
