"""``bench record``, ``bench table``, ``bench check`` and ``bench plot``: the results layer."""
from __future__ import annotations

import sys
from pathlib import Path

import click

_RESULTS = click.option("--results-dir", type=click.Path(path_type=Path), default=None,
                        envvar="BENCH_RESULTS", help="Default: the checkout's results/.")


@click.command("record")
@click.argument("run_dir", type=click.Path(path_type=Path))
@_RESULTS
def record(run_dir: Path, results_dir: Path | None) -> None:
    """Copy RUN_DIR's result.json into results/runs/ (then run `bench table`)."""
    from bench.results import results_dir as resolve
    from bench.results.records import record_run
    click.echo(f"recorded {record_run(run_dir, resolve(results_dir))}")


@click.command("table")
@click.option("-f", "--format", "fmt", type=click.Choice(["markdown", "csv"]), default=None,
              help="Print the table in this format instead of writing the files.")
@click.option("--check", is_flag=True,
              help="Exit 1 if results/README.md or results.csv is stale (for CI).")
@click.option("--row", "row_pattern", default=None, metavar="PATTERN",
              help="Also print the rows whose recipe matches PATTERN.")
@_RESULTS
def table(fmt: str | None, check: bool, row_pattern: str | None,
          results_dir: Path | None) -> None:
    """Regenerate results/README.md and results/results.csv from results/runs/*.json and
    results/published.toml."""
    from bench.results import results_dir as resolve
    from bench.results import table as t
    results = resolve(results_dir)
    if check:
        stale = t.stale_files(results)
        if stale:
            click.echo(f"stale: {', '.join(str(p) for p in stale)}; run `bench table` and "
                       "commit the result", err=True)
            sys.exit(1)
        click.echo("results table is current")
        return
    if fmt:
        text = t.generate(results)[results / ("README.md" if fmt == "markdown" else "results.csv")]
        click.echo(text, nl=False)
        return
    written = t.write_table(results)
    click.echo("wrote " + ", ".join(str(p) for p in written) if written
               else "results table already current")
    if row_pattern:
        _echo_rows(results, row_pattern)


def _echo_rows(results: Path, pattern: str) -> None:
    import fnmatch
    from tabulate import tabulate
    from bench.results.published import load_published
    from bench.results.records import load_records
    from bench.results.table import HEADERS, _cells, build_rows
    rows = [r for r in build_rows(load_published(results / "published.toml"),
                                  load_records(results)) if fnmatch.fnmatchcase(r.recipe, pattern)]
    click.echo(tabulate([_cells(r) for r in rows], headers=HEADERS, tablefmt="github",
                        disable_numparse=True))


@click.command("check")
@click.argument("target", required=False, default="*", metavar="[PATTERN | RUN_DIR]")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "junit"]),
              default="text", show_default=True)
@_RESULTS
def check(target: str, fmt: str, results_dir: Path | None) -> None:
    """The regression gate: exit 1 when a recorded result (or the fresh run RUN_DIR) lies
    outside its published tolerance; unchecked published numbers only warn."""
    from bench.results import results_dir as resolve
    from bench.results import gate as g
    verdicts = g.gate(target, resolve(results_dir))
    render = {"text": g.render_text, "json": g.render_json, "junit": g.render_junit}[fmt]
    click.echo(render(verdicts))
    if any(v.failed for v in verdicts):
        sys.exit(1)


@click.group("plot")
def plot() -> None:
    """Figures as PNG files."""


_SIZE = click.option("--size", default="800x600", show_default=True, metavar="WxH",
                     help="Image size in pixels.")


@plot.command("curves")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("curves.png"),
              show_default=True)
@_SIZE
def curves(run_dirs: tuple[Path, ...], out: Path, size: str) -> None:
    """Training and validation error per epoch of one or more runs, on one figure."""
    from bench.results.plots import parse_size, plot_curves
    click.echo(f"wrote {plot_curves(list(run_dirs), out, parse_size(size))}")


@plot.command("tradeoff")
@click.option("--dataset", type=click.Choice(["imagenet", "cifar10", "cifar100", "digits"]),
              default="imagenet", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("tradeoff.png"),
              show_default=True)
@_SIZE
@_RESULTS
def tradeoff(dataset: str, out: Path, size: str, results_dir: Path | None) -> None:
    """Top-1 error against GMACs: published numbers and ours."""
    from bench.results import results_dir as resolve
    from bench.results.plots import parse_size, plot_tradeoff
    click.echo(f"wrote {plot_tradeoff(resolve(results_dir), out, parse_size(size), dataset)}")
