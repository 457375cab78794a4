"""``bench speed``: images/s of one network, optionally against GluonCV's same network."""
from __future__ import annotations

import json

import click

from bench.data.spec import MAX_SIDE
from bench.cli.options import int8_calibration
from bench.precision import PRECISIONS
from bench.speed import COMPARE, MODES


@click.command("speed", short_help="Measure a network's images/s, ours next to GluonCV's.")
@click.argument("model")
@click.option("--mode", type=click.Choice(MODES), default="infer", show_default=True,
              help="infer: forward in predict mode; train: forward, softmax CE, backward and "
                   "an SGD step.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=None, metavar="N",
              help="Images per step [default: CPU 32 for CIFAR nets, 16 for ImageNet nets; "
                   "GPU 128 / 64 per GPU].")
@click.option("--dtype", type=click.Choice(PRECISIONS), default="float32", show_default=True,
              help="float16 needs --gpus; bfloat16 (AMP) and int8 (quantized) are CPU "
                   "conversions of our fp32 net (int8 inference only).")
@click.option("--fuse", is_flag=True,
              help="float32 with oneDNN graph fusion (conv+BN+ReLU+sum), CPU inference.")
@int8_calibration("synthetic")
@click.option("--compare", type=click.Choice(COMPARE), default=None,
              help="Also time, interleaved: gluoncv = GluonCV's network of the same name; "
                   "float32 = our own fp32 net unfused (the ratio is the precision's "
                   "speed-up); onnxruntime = our fp32 net exported to ONNX in ONNX Runtime's "
                   "CPU provider with as many threads (inference, needs the onnx extra); with "
                   "--dtype int8 ONNX Runtime runs its own static int8 quantization of it, "
                   "calibrated on the same batches with the same --calib-mode, --granularity "
                   "and fp32 layers; --dtype bfloat16 is refused (its CPU provider has no bf16 "
                   "convolution).")
@click.option("--gpus", default=None, metavar="IDS",
              help="Comma-separated GPU numbers, e.g. 0,1 (the batch is split over them); "
                   "default: CPU.")
@click.option("--input-size", type=click.IntRange(1, MAX_SIDE), default=None, metavar="N",
              help="NxN input instead of the net's own (224 ImageNet, 32 CIFAR).")
@click.option("--iterations", type=click.IntRange(min=1), default=None, metavar="N",
              help="Steps per timed round [default: as many as take about 3 s].")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              metavar="N", help="Timed rounds; the median is reported.")
@click.option("--warmup", type=click.IntRange(min=1), default=3, show_default=True,
              metavar="N", help="Untimed steps before the first round.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def speed(model: str, mode: str, batch_size: int | None, dtype: str, fuse: bool,
          calibration, compare: str | None,
          gpus: str | None, input_size: int | None, iterations: int | None, rounds: int,
          warmup: int, fmt: str) -> None:
    """Measure the throughput (images/s) of MODEL on synthetic input.

    The network is hybridized (static_alloc, static_shape); after the warm-up steps, each
    round times --iterations steps with mx.nd.waitall() inside the timed region, and the
    median over the rounds is reported. With --compare gluoncv, GluonCV's network of the same
    name (same weights, same input) is timed in alternating rounds in the same process;
    with --compare float32, our own fp32 net is, so that the ratio is the speed-up of --dtype
    (or of --fuse). int8 is calibrated on synthetic batches (speed does not depend on the
    values; `bench eval` measures the accuracy). With --compare onnxruntime --dtype int8, ONNX
    Runtime quantizes our exported fp32 net itself (QDQ, uint8 activations, int8 weights) and
    its outputs are checked against our fp32 net's on a random batch (reported, not judged:
    int8 differs).

    One line per round goes to stderr; the result goes to stdout.
    """
    from bench.speed import benchmark

    calibration = calibration if dtype == "int8" else None
    result = benchmark(model, mode=mode, batch_size=batch_size, dtype=dtype, compare=compare,
                       fuse=fuse, calibration=calibration,
                       gpus=gpus, input_size=input_size, warmup=warmup, rounds=rounds,
                       iterations=iterations,
                       progress=lambda message: click.echo(message, err=True))
    click.echo(json.dumps(result, indent=2) if fmt == "json" else render_text(result))


def render_text(result: dict) -> str:
    """A short human-readable table of :func:`bench.speed.benchmark`'s result."""
    rows = [("ours", result["ours"])]
    if result["theirs"]:
        rows.append((result["compare"], result["theirs"]))
    name_width = max(len(r["name"]) for _, r in rows)
    label_width = max(8, *(len(label) for label, _ in rows))
    lines = [
        f"{result['model']}  {result['mode']}  batch {result['batch_size']}  "
        f"{result['dtype']}  {result['input_size']}x{result['input_size']}  "
        f"on {result['device']} ({result['cpu']}, OMP_NUM_THREADS={result['omp_num_threads']}, "
        f"AMX {result.get('amx', 'off')})",
        f"precision {_precision(result)}; CPU flags: {' '.join(result['cpu_flags']) or 'none'}",
        f"{result['rounds']} rounds x {result['iterations']} iterations, "
        f"mxnet {result['mxnet']}",
        "",
        f"{'':{label_width}}  {'network':<{name_width}}  {'img/s':>8}  rounds (img/s)",
    ]
    for label, r in rows:
        lines.append(f"{label:{label_width}}  {r['name']:<{name_width}}  {r['images_per_sec']:8.1f}  "
                     + " ".join(f"{v:.1f}" for v in r["rounds"]))
    ort = result.get("onnxruntime_run")
    if ort:
        lines.append(_ort_line(ort))
    if result["ratio"] is not None:
        ours = (result["dtype"] + (" fused" if result["fused"] else "")
                if result["compare"] == "float32" else "ours")
        lines.append(f"\nratio {ours} / {result['compare']}: {result['ratio']:.3f} "
                     f"(per round: {', '.join(f'{v:.3f}' for v in result['round_ratios'])})")
    return "\n".join(lines)


def _precision(result: dict) -> str:
    """``int8 (naive, 10 synthetic calibration batches, tensor-wise)``, ``float32 fused``..."""
    text = result["dtype"] + (" fused" if result.get("fused") else "")
    calib = result.get("calibration")
    if calib:
        text += (f" ({calib['mode']}, {calib['batches']} {calib.get('data', '')} calibration "
                 f"batches, {calib['granularity']}, fp32: {', '.join(calib['excluded']) or '-'})")
    return text


def _ort_line(ort: dict) -> str:
    """What ONNX Runtime ran and how its outputs compare with our fp32 net's."""
    check = ort["check"]
    text = f"onnxruntime: {ort['dtype']}, opset {ort['opset']}"
    if ort["dtype"] == "int8":
        text += (f", {ort['format']} {ort['activation_type']}/{ort['weight_type']}, "
                 f"{ort['calibration_method']} on {ort['calibration_batches']} batches, "
                 f"{'per-channel' if ort['per_channel'] else 'per-tensor'}, fp32: "
                 f"{', '.join(ort['excluded']) or '-'}")
    text += (f"; vs our fp32 on a random batch: rel. diff {check['max_rel_diff']:.2e}, "
             f"top-1 agreement {check['top1_agreement']:.2f}")
    if "ours_max_rel_diff" in check:
        text += (f" (ours {ort['dtype']}: {check['ours_max_rel_diff']:.2e}, "
                 f"{check['ours_top1_agreement']:.2f})")
    return text
