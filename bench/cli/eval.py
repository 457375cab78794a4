"""``bench eval``: top-1/top-5 error of saved weights under an evaluation protocol."""
from __future__ import annotations

import json
from pathlib import Path

import click

from bench.cli.options import loader_workers
from bench.data.spec import DATASETS, MAX_SIDE, PROTOCOLS


@click.command("eval", short_help="Evaluate a network's weights on a data set under its protocol.")
@click.argument("network")
@click.option("--params", type=click.Path(path_type=Path), required=True,
              help="Weights: a file this suite saved, or a GluonCV .params file.")
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
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--record", "record_recipe", default=None, metavar="RECIPE",
              help="Record the result in results/runs/ as a re-evaluation of RECIPE's "
                   "published weights (protocol '<protocol> (published weights)').")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None,
              envvar="BENCH_RESULTS", help="With --record; default: the checkout's results/.")
def eval_command(network, params, data_dir, dataset, protocol, input_size, resize, batch_size,
                 gpus, loader_workers, fmt, record_recipe, results_dir) -> None:
    """Evaluate NETWORK with the weights in --params on a data set's validation split."""
    from bench.engine.devices import parse_gpus
    from bench.engine.evaluate import EvalRequest, evaluate_params
    from bench.files import check_names, check_readable, check_writable_dir
    from bench.models import resolve_name
    protocol = protocol or ("center" if dataset == "imagenet" else "full")
    network = resolve_name(network)
    check_readable(params, "--params", "file")
    if data_dir:
        check_names(data_dir, "--data-dir")
    if record_recipe:
        _check_recipe(record_recipe, network, dataset)
        from bench.results import results_dir as resolve
        check_writable_dir(resolve(results_dir), "--results-dir")
    result = evaluate_params(EvalRequest(
        network=network, params=params, dataset=dataset, protocol=protocol,
        data_dir=data_dir, gpus=tuple(parse_gpus(gpus)), batch_size=batch_size,
        input_size=input_size, resize=resize, loader_workers=loader_workers))
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{result['network']} on {dataset} ({result['protocol']}, "
                   f"{result['num_samples']} images): top-1 error {result['top1_err']:.2f} %, "
                   f"top-5 error {result['top5_err']:.2f} %")
    if record_recipe:
        from bench.results import results_dir as resolve
        from bench.results.reeval import reeval_record
        from bench.results.records import store_record
        path = store_record(reeval_record(result, record_recipe, params), resolve(results_dir),
                            str(params))
        click.echo(f"recorded {path}", err=True)


def _check_recipe(name: str, network: str, dataset: str) -> None:
    """Before the (long) evaluation: the recipe must exist and be about these weights."""
    from bench.errors import BenchError
    from bench.models import resolve_name
    from bench.recipes import load_recipe
    recipe = load_recipe(name)
    if (resolve_name(recipe.network), recipe.data.dataset) != (network, dataset):
        raise BenchError(f"--record {name}: that recipe trains {recipe.network} on "
                         f"{recipe.data.dataset}, not {network} on {dataset}")
