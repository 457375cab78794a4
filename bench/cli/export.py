"""``bench export``: a network to ONNX or MXNet's symbol format, with an output check."""
from __future__ import annotations

import json
from pathlib import Path

import click

from bench.data.spec import MAX_SIDE
from bench.export import FORMATS, TOLERANCE
from bench.precision import PRECISIONS


@click.command("export", short_help="Export a network to ONNX or MXNet's symbol format.")
@click.argument("network")
@click.option("--params", type=click.Path(path_type=Path), default=None,
              help="Weights: a file this suite saved, or a GluonCV .params file "
                   "[default: freshly initialised, untrained: for speed work].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="onnx: one .onnx file (needs the onnx extra); symbol: PREFIX-symbol.json "
                   "and PREFIX-0000.params.")
@click.option("--dtype", type=click.Choice(PRECISIONS), default="float32", show_default=True,
              help="Only float32 is exportable so far.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The .onnx file, or the symbol format's PREFIX.")
@click.option("--input-size", type=click.IntRange(1, MAX_SIDE), default=None, metavar="N",
              help="NxN input [default: the net's own, 224 ImageNet, 32 CIFAR].")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="N", help="Batch size of the check (an ONNX export takes any batch size).")
@click.option("-f", "--output-format", "output", type=click.Choice(["text", "json"]),
              default="text", show_default=True, help="How the result is printed.")
def export_command(network: str, params: Path | None, fmt: str, dtype: str, out: Path,
                   input_size: int | None, batch_size: int, output: str) -> None:
    """Export NETWORK to --out and check it.

    The written model is run (ONNX Runtime's CPU provider for onnx, SymbolBlock.imports for
    symbol) on a random batch next to MXNet's network; a relative mismatch above
    1e-4 fails and writes nothing. Files are written to a temporary name first.
    """
    from bench.export import export
    from bench.files import check_names, check_readable
    check_names(out, "--out")
    if params is not None:
        check_readable(params, "--params", "file")
    result = export(network, fmt=fmt, out=out, params=params, dtype=dtype,
                    input_size=input_size, batch_size=batch_size)
    if output == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    weights = (f"weights from {result.weights}" if result.weights != "fresh" else
               "freshly initialised weights (untrained: for speed work, not predictions)")
    click.echo(f"{result.network}, {weights}, {result.dtype}, input "
               f"{'x'.join(map(str, result.input_shape))}")
    for name in result.files:
        click.echo(f"wrote {name}")
    if result.fixed_gammas:
        click.echo(f"set gamma = 1 in the export for {len(result.fixed_gammas)} fix_gamma "
                   f"BatchNorm(s) ({', '.join(result.fixed_gammas)}), as MXNet computes them")
    click.echo(f"check: {result.checked_with} vs MXNet on a random batch, max relative "
               f"difference {result.max_rel_diff:.2e} (limit {TOLERANCE:g})")
