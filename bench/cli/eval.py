"""``bench eval``: top-1/top-5 error of saved weights under an evaluation protocol."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("eval")
@click.argument("network")
@click.option("--params", type=click.Path(path_type=Path), required=True,
              help="Weights: a file this suite saved, or a GluonCV .params file.")
@click.option("--data-dir", type=click.Path(), default=None, envvar="BENCH_DATA",
              help="Data set root (or set BENCH_DATA).")
@click.option("--dataset", type=click.Choice(["imagenet", "cifar10", "cifar100", "digits"]),
              default="imagenet", show_default=True)
@click.option("--protocol", type=click.Choice(["center", "10crop", "full"]), default=None,
              help="Default: center for ImageNet, full image otherwise.")
@click.option("--input-size", type=click.IntRange(min=1), default=None)
@click.option("--resize", type=click.IntRange(min=1), default=None,
              help="Shorter side before cropping (default input-size / 0.875).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--gpus", default="", metavar="0,1")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def eval_command(network, params, data_dir, dataset, protocol, input_size, resize, batch_size,
                 gpus, workers, fmt) -> None:
    """Evaluate NETWORK with the weights in --params on a data set's validation split."""
    from bench.engine.devices import parse_gpus
    from bench.engine.evaluate import EvalRequest, evaluate_params
    from bench.models import resolve_name
    protocol = protocol or ("center" if dataset == "imagenet" else "full")
    result = evaluate_params(EvalRequest(
        network=resolve_name(network), params=params, dataset=dataset, protocol=protocol,
        data_dir=data_dir, gpus=tuple(parse_gpus(gpus)), batch_size=batch_size,
        input_size=input_size, resize=resize, workers=workers))
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{result['network']} on {dataset} ({protocol}, {result['num_samples']} "
                   f"images): top-1 error {result['top1_err']:.2f} %, top-5 error "
                   f"{result['top5_err']:.2f} %")
