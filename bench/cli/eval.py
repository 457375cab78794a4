"""``bench eval``: top-1/top-5 error of saved weights under an evaluation protocol, and with
``--dtype int8|bfloat16`` (or ``--fuse``) the accuracy cost of running them converted."""
from __future__ import annotations

import json
from pathlib import Path

import click

from bench.cli.options import int8_calibration, loader_workers
from bench.data.spec import DATASETS, MAX_SIDE, PROTOCOLS
from bench.inference import CPU_PRECISIONS


@click.command("eval", short_help="Evaluate a network's weights on a data set under its protocol.")
@click.argument("network")
@click.option("--params", type=click.Path(path_type=Path), required=True,
              help="Weights: a file this suite saved, a GluonCV .params file, or a run (or "
                   "checkpoint) directory of this suite (its newest valid checkpoint).")
@click.option("--data-dir", type=click.Path(), default=None, envvar="BENCH_DATA",
              help="Data set root (or set BENCH_DATA).")
@click.option("--dataset", type=click.Choice([d for d in DATASETS if d != "synthetic"]),
              default="imagenet", show_default=True)
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
              help="Default: center for ImageNet, full image otherwise.")
@click.option("--input-size", type=click.IntRange(1, MAX_SIDE), default=None)
@click.option("--resize", type=click.IntRange(1, MAX_SIDE), default=None,
              help="Shorter side before cropping (default input-size / 0.875).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--gpus", default="", metavar="0,1")
@loader_workers
@click.option("--dtype", type=click.Choice(CPU_PRECISIONS), default="float32", show_default=True,
              help="Also evaluate the net converted to this precision (CPU, oneDNN), on the "
                   "same batches: both results, the change and the agreement of predictions.")
@click.option("--fuse", is_flag=True, help="float32: oneDNN graph fusion (optimize_for).")
@int8_calibration("from the training split")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--record", "record_recipe", default=None, metavar="RECIPE",
              help="Record the result in results/runs/ as a re-evaluation of RECIPE's "
                   "published weights (protocol '<protocol> (published weights)'); with "
                   "--dtype int8|bfloat16 or --fuse, the converted net's result as its own "
                   "row, e.g. 'full (int8 naive, 10 calib batches)', judged against RECIPE's "
                   "fp32 reference.")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None,
              envvar="BENCH_RESULTS", help="With --record; default: the checkout's results/.")
def eval_command(network, params, data_dir, dataset, protocol, input_size, resize, batch_size,
                 gpus, loader_workers, dtype, fuse, calibration, fmt, record_recipe,
                 results_dir) -> None:
    """Evaluate NETWORK with the weights in --params on a data set's validation split.

    With --dtype int8 or bfloat16 (or --fuse), the fp32 net and the converted one are scored
    on the same batches in one process. int8 is calibrated on the training split (unaugmented,
    evaluation transform) where the data set has one, never on the images scored; ImageNet
    without a train split here falls back to the first validation batches and says so."""
    from bench.engine.checkpoint import weights_file
    from bench.engine.devices import parse_gpus
    from bench.engine.evaluate import EvalRequest, evaluate_params
    from bench.files import check_names, check_readable, check_writable_dir
    from bench.models import resolve_name
    protocol = protocol or ("center" if dataset == "imagenet" else "full")
    network = resolve_name(network)
    check_readable(params, "--params", "any")
    params = weights_file(params, network, "--params")
    converting = dtype != "float32" or fuse
    calibration = calibration if dtype == "int8" else None
    if data_dir:
        check_names(data_dir, "--data-dir")
    if record_recipe:
        _check_recipe(record_recipe, network, dataset)
        from bench.results import results_dir as resolve
        check_writable_dir(resolve(results_dir), "--results-dir")
    result = evaluate_params(EvalRequest(
        network=network, params=params, dataset=dataset, protocol=protocol,
        data_dir=data_dir, gpus=tuple(parse_gpus(gpus)), batch_size=batch_size,
        input_size=input_size, resize=resize, loader_workers=loader_workers, dtype=dtype,
        fuse=fuse, calibration=calibration))
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_text(result))
    if record_recipe:
        from bench.results import results_dir as resolve
        from bench.results.reeval import precision_record, reeval_record
        from bench.results.records import store_record
        make = precision_record if converting else reeval_record
        path = store_record(make(result, record_recipe, params), resolve(results_dir),
                            str(params))
        click.echo(f"recorded {path}", err=True)


def _text(result: dict) -> str:
    """The report: the fp32 line, and for a converted net its line, the change and agreement."""
    line = (f"{result['network']} on {result['dataset']} ({result['protocol']}, "
            f"{result['num_samples']} images): top-1 error {result['top1_err']:.2f} %, "
            f"top-5 error {result['top5_err']:.2f} %")
    converted = result.get("converted")
    if converted is None:
        return line
    from bench.results.published import precision_label
    label = precision_label(converted["dtype"], converted["fused"], converted["calibration"])
    change = result["change"]
    lines = [line.replace(": top-1", ": float32 top-1", 1),
             f"{label}: top-1 error {converted['top1_err']:.2f} % ({change['top1_err']:+.2f} "
             f"points), top-5 error {converted['top5_err']:.2f} % ({change['top5_err']:+.2f} "
             f"points); top-1 agreement with float32 {100 * result['agreement']:.2f} %"]
    calib = converted["calibration"]
    if calib:
        lines.append(f"calibration: {calib['mode']}, {calib['batches']} batches "
                     f"({calib['examples']} images) from the {calib['split']} split "
                     f"({calib['note']}), {calib['granularity']}, fp32 layers: "
                     f"{', '.join(calib['excluded']) or 'none'}")
    lines.append(f"CPU: {result['cpu']} (flags: {' '.join(result['cpu_flags']) or 'none'})")
    return "\n".join(lines)


def _check_recipe(name: str, network: str, dataset: str) -> None:
    """Before the (long) evaluation: the recipe must exist and be about these weights."""
    from bench.errors import BenchError
    from bench.models import resolve_name
    from bench.recipes import load_recipe
    recipe = load_recipe(name)
    if (resolve_name(recipe.network), recipe.data.dataset) != (network, dataset):
        raise BenchError(f"--record {name}: that recipe trains {recipe.network} on "
                         f"{recipe.data.dataset}, not {network} on {dataset}")
