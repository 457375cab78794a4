"""``bench record``, ``bench table``, ``bench check`` and ``bench plot``: the results layer."""
from __future__ import annotations

import sys
from pathlib import Path

import click

_RESULTS = click.option("--results-dir", type=click.Path(path_type=Path), default=None,
                        envvar="BENCH_RESULTS", help="Default: the checkout's results/.")


def _results(results_dir: Path | None, write: bool = False) -> Path:
    """The results folder (``--results-dir``, BENCH_RESULTS or the checkout's), checked before
    use: a folder (that can be written, for ``write``) whose ``runs/`` is a folder too."""
    from bench.errors import BenchError
    from bench.files import check_readable, check_writable_dir
    from bench.results import results_dir as resolve
    what = "results folder (--results-dir or BENCH_RESULTS)"
    results = check_writable_dir(resolve(results_dir), what) if write else \
        check_readable(resolve(results_dir), what, "dir")
    runs = results / "runs"
    if runs.exists() and not runs.is_dir():
        raise BenchError(f"{runs} is a file; a results folder keeps its records in a runs/ "
                         "folder")
    return results


@click.command("record",
               short_help="Add finished runs to results/runs/ after checking their files.")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="RUN_DIR...")
@_RESULTS
def record(run_dirs: tuple[Path, ...], results_dir: Path | None) -> None:
    """Check each RUN_DIR against its files and copy its result.json into results/runs/
    (then run `bench table`); an experiment's folder (`bench experiment NAME`'s OUT/NAME)
    goes to results/experiments/NAME/ with its page and figures. One record per training run: recording a run again is a no-op,
    or replaces its record if it trained further since (resumed); anything else is refused.
    A run of a modified recipe (--epochs, --set, --max-steps, another batch) is recorded as
    its own row, labelled with what changed."""
    from bench.experiments.recorded import is_experiment_dir, record_experiment
    from bench.files import check_readable
    from bench.results.records import record_run
    results = _results(results_dir, write=True)
    for run_dir in run_dirs:
        check_readable(run_dir, "RUN_DIR", "dir")
    for run_dir in run_dirs:
        if is_experiment_dir(run_dir):
            record_experiment(run_dir, results, report=click.echo)
        else:
            record_run(run_dir, results, report=click.echo)


@click.command("table", short_help="Regenerate the results table (results/README.md and .csv).")
@click.option("-f", "--format", "fmt", type=click.Choice(["markdown", "csv", "json"]),
              default=None, help="Print the table (or the --row rows) in this format, in full, "
                                 "instead of writing the files.")
@click.option("--check", is_flag=True,
              help="Exit 1 if results/README.md or results.csv is stale (for CI).")
@click.option("--row", "row_pattern", default=None, metavar="PATTERN",
              help="Also print the rows whose recipe or network matches PATTERN, a recipe's "
                   "modified rows included (shortened to 100 columns; see --wide).")
@click.option("--wide", is_flag=True, help="With --row: every column, in full.")
@_RESULTS
def table(fmt: str | None, check: bool, row_pattern: str | None, wide: bool,
          results_dir: Path | None) -> None:
    """Regenerate results/README.md and results/results.csv from results/runs/*.json and
    results/published.toml (every record is checked first), and each recorded experiment's page,
    claims and figures in results/experiments/."""
    from bench.experiments.recorded import (readme_update, stale_pages, summary_section,
                                            write_pages)
    from bench.results import table as t
    results = _results(results_dir)
    extra = summary_section(results)
    readme = readme_update(results)
    if check:
        stale = t.stale_files(results, extra) + stale_pages(results)
        if readme and readme[0].read_text(encoding="utf-8") != readme[1]:
            stale.append(readme[0])
        if stale:
            click.echo(f"stale: {', '.join(str(p) for p in stale)}; run `bench table` and "
                       "commit the result", err=True)
            sys.exit(1)
        click.echo("results table is current")
        return
    if fmt and not row_pattern:
        rows, records = t.current_rows(results)
        click.echo({"markdown": lambda: t.render_markdown(rows, records, extra),
                    "csv": lambda: t.render_csv(rows), "json": lambda: t.render_json(rows)}[fmt](),
                   nl=False)
        return
    rows = _matching_rows(results, row_pattern) if row_pattern else []  # before any write
    if not fmt:
        written = t.write_table(results, extra) + write_pages(results)
        if readme and readme[0].read_text(encoding="utf-8") != readme[1]:
            from bench.files import atomic_write_text
            atomic_write_text(readme[0], readme[1])
            written.append(readme[0])
        click.echo("wrote " + ", ".join(str(p) for p in written) if written
                   else "results table already current")
    if row_pattern:
        _echo_rows(rows, fmt, wide)


def _matching_rows(results: Path, pattern: str) -> list:
    from bench.errors import BenchError
    from bench.results import table as t
    from bench.results.rows import matches
    rows = [r for r in t.current_rows(results)[0] if matches(r, pattern)]
    if not rows:
        raise BenchError(f"--row {pattern!r} matches no row's recipe or network "
                         "(`bench table --format csv` lists them)")
    return rows


def _echo_rows(rows: list, fmt: str | None, wide: bool) -> None:
    from bench.results import table as t
    if fmt == "markdown":
        wide = True
    render = {"csv": t.render_csv, "json": t.render_json}.get(fmt)
    click.echo(render(rows) if render else t.render_terminal(rows, wide=wide), nl=not render)


@click.command("check", short_help="The regression gate: fail when a result drifts from its "
                                  "published number.")
@click.argument("targets", nargs=-1, metavar="[PATTERN | RUN_DIR]...")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "junit"]),
              default="text", show_default=True)
@_RESULTS
def check(targets: tuple[str, ...], fmt: str, results_dir: Path | None) -> None:
    """The regression gate: exit 1 when a recorded result (or the fresh run RUN_DIR) lies
    outside its published tolerance, or a recorded experiment's claim is contradicted (PATTERN
    may name experiments, `bench experiments`); unchecked published numbers and claims not
    shown only warn. Without an
    argument: every recorded row. A target that matches nothing is an error (exit 2). Rows of
    modified recipes are listed as skipped, never judged; a RUN_DIR of a modified recipe
    (--epochs, --set, --max-steps, another batch) exits 2 with one line saying what changed."""
    import json
    from bench.experiments.gate import split_targets, summary
    from bench.results import gate as g
    results = _results(results_dir)
    claims, rest, rows_too = split_targets(targets, results)
    verdicts = g.gate(rest, results) if rows_too else []
    if fmt == "text":
        click.echo("\n".join(([g.render_text(verdicts)] if rows_too else [])
                              + [c.line() for c in claims] + ([summary(claims)] if claims else [])))
    elif fmt == "json":
        click.echo(json.dumps(json.loads(g.render_json(verdicts)) + [c.as_dict() for c in claims],
                              indent=2))
    else:
        click.echo(g.render_junit(verdicts, extra=[(c.name, c.failed, c.result.verdict, c.line())
                                                   for c in claims]))
    if any(v.failed for v in verdicts) or any(c.failed for c in claims):
        sys.exit(1)


@click.group("plot", short_help="Figures as PNG: error curves, the accuracy/compute trade-off.")
def plot() -> None:
    """Figures as PNG files."""


def _size(default: str):
    return click.option("--size", default=default, show_default=True, metavar="WxH",
                        help="Image size in pixels.")


@plot.command("curves", short_help="Validation (and training) error per epoch of runs or records.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="RUN_DIR | RECORD.json...")
@click.option("--out", type=click.Path(path_type=Path), default=Path("curves.png"),
              show_default=True)
@_size("800x600")
def curves(runs: tuple[Path, ...], out: Path, size: str) -> None:
    """Validation (and, from a run directory's log, training) error per epoch of run
    directories or recorded results (results/runs/*.json), on one figure."""
    from bench.results.plots import parse_size, plot_curves
    click.echo(f"wrote {plot_curves(list(runs), out, parse_size(size))}")


@plot.command("tradeoff", short_help="Top-1 error against compute, published and ours.")
@click.option("--dataset", type=click.Choice(["imagenet", "cifar10", "cifar100", "digits"]),
              default="imagenet", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("tradeoff.png"),
              show_default=True)
@_size("1200x800")
@_RESULTS
def tradeoff(dataset: str, out: Path, size: str, results_dir: Path | None) -> None:
    """Top-1 error against the GMACs of the evaluation (at the protocol's crop size, all crops):
    published numbers and ours, coloured by network family, marked by protocol."""
    from bench.results.plots import parse_size, plot_tradeoff
    click.echo(f"wrote {plot_tradeoff(_results(results_dir), out, parse_size(size), dataset)}")
