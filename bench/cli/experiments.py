"""``bench experiments`` (list them and their claims) and ``bench experiment NAME`` (run one)."""
from __future__ import annotations

from pathlib import Path

import click

from bench.cli.options import loader_workers


@click.command("experiments", short_help="List the papers' experiments and their claims.")
@click.argument("pattern", required=False, default="*")
def experiments(pattern: str) -> None:
    """List the experiments in experiments/ whose name matches PATTERN, with their networks
    and the claims each judges (claim id, source)."""
    from bench.errors import BenchError
    from bench.experiments.loader import list_experiments, load_experiment
    from bench.experiments.figures import label
    names = list_experiments(pattern)
    if not names:
        raise BenchError(f"no experiment matches {pattern!r}; `bench experiments` lists them")
    for name in names:
        e = load_experiment(name)
        click.echo(f"{name}: {e.description}")
        click.echo(f"  networks: {', '.join(label(n) for n in e.networks)}; seeds "
                   f"{', '.join(map(str, e.seeds))}; analyses {', '.join(e.analyses)}")
        for c in e.claims:
            extra = " [unresolved at this scale]" if c.unresolved else ""
            click.echo(f"  - {c.id}: {c.claim} ({c.source}){extra}")


@click.command("experiment", short_help="Run one of the papers' experiments and judge its claims.")
@click.argument("name")
@click.option("--quick", is_flag=True, help="The experiment's quick configuration (seconds: one "
                                            "seed, a few steps); checks the pipeline, not the "
                                            "claims.")
@click.option("--seeds", type=click.IntRange(min=1), default=None, metavar="N",
              help="Run the first N of the experiment's seeds (more than it lists: the next "
                   "integers after its last).")
@click.option("--seed", "only_seeds", type=int, multiple=True, metavar="K",
              help="Run only seed K of the experiment's (repeatable): e.g. one seed per machine "
                   "or process; `bench record` merges the folders' seeds.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe value for every network (repeatable), e.g. "
                   "--set schedule.epochs=10.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/experiments"),
              show_default=True, help="Training runs go to OUT/nets/, the experiment to "
                                      "OUT/NAME/ (a rerun continues it).")
@loader_workers
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def experiment(name: str, quick: bool, seeds: int | None, only_seeds: tuple[int, ...],
               overrides: tuple[str, ...], out: Path, loader_workers: int,
               no_progress: bool) -> None:
    """Train every network of experiment NAME (`bench experiments`) with each seed, measure
    it, write OUT/NAME/README.md with the claims table and the figures, and print the verdicts.
    Killed, it continues where it stopped when run again. `bench record OUT/NAME` adds a full
    run to results/experiments/."""
    from bench.experiments.loader import load_experiment
    from bench.experiments.page import write_page
    from bench.experiments.runner import Options, run_experiment, with_changes
    from bench.experiments.verdicts import judge
    from bench.experiments.page import load_measurements
    from bench.files import check_writable_dir
    e = load_experiment(name)
    if quick:
        e = e.quick_version()
    e = with_changes(e, seeds, overrides, only_seeds)
    check_writable_dir(out, "--out")
    report = lambda line: click.echo(line, err=True)
    exp_dir = run_experiment(e, Options(out=out, progress=not no_progress,
                                        loader_workers=loader_workers), report)
    write_page(exp_dir, e)
    for r in judge(e, load_measurements(exp_dir)):
        click.echo(f"{r.verdict:>12}  {r.claim.id}: {r.ours()}")
    click.echo(f"page: {exp_dir / 'README.md'}")
