"""Throughput benchmark: images per second of a hybridized network on synthetic data.

Every timed run is ``iterations`` steps followed by ``mx.nd.waitall()``, all inside the timed
region, so MXNet's asynchronous engine cannot hide unfinished work. Warm-up steps (the first
builds the cached graph) are never timed. A step is, per ``mode``:

``infer``
    a forward pass in predict mode;
``train``
    forward + softmax cross-entropy under ``autograd.record()``, backward, and a
    ``gluon.Trainer`` SGD step (momentum, weight decay), i.e. a real training step.

With ``compare="gluoncv"`` GluonCV's network of the same name is timed in the same process,
with the same weights and input, in interleaved rounds (ours, theirs, theirs, ours, ...: the
one that goes first alternates), so that drift in the machine's speed hits both alike. The
report gives the median of the rounds for each and the ratio ours / theirs.

Precisions (``dtype``, from :mod:`bench.precision`): float16 is a cast on the GPU; bfloat16,
int8 and fp32 with oneDNN fusion (``fuse``) are CPU conversions by :mod:`bench.inference` of
our fp32 net. int8 is calibrated here on synthetic batches (the speed of its kernels does not
depend on the values; accuracy is ``bench eval``'s business). With ``compare="float32"`` the
other network is our own fp32 net, unfused, with the same weights, so the ratio is the
speed-up the precision (or the fusion) brings, measured in one process. With
``compare="onnxruntime"`` the other is our fp32 net exported to ONNX in ONNX Runtime's CPU
provider (:class:`bench.export.OrtRunner`); with int8, ONNX Runtime's own static quantization
of it, calibrated on the same synthetic batches with the same layers kept fp32, so the ratio
compares two int8 implementations of one network.

Default batch sizes: on CPU 32 for CIFAR-size nets and 16 for ImageNet-size nets (large
enough for MXNet's CPU kernels to reach their throughput, small enough that a round takes
seconds, not minutes); on GPUs 128 (CIFAR) and 64 (ImageNet) per GPU, the batch being split
over the GPUs with ``gluon.utils.split_and_load``.
"""
from __future__ import annotations

import datetime
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from bench._mxnet import require_mxnet
from bench.errors import BenchError, check_choice, did_you_mean
from bench.precision import PRECISIONS, cpu_flags, present, require
from bench.provenance import cpu_model

MODES = ("infer", "train")
COMPARE = ("gluoncv", "float32", "onnxruntime")
# Precisions run as a converted CPU graph (bench.inference) rather than a cast Gluon net.
CONVERTED = ("bfloat16", "int8")
HYBRIDIZE = {"static_alloc": True, "static_shape": True}


@dataclass
class SpeedResult:
    """One timed run: ``iterations`` steps of ``batch_size`` images in ``seconds``."""

    iterations: int
    batch_size: int
    seconds: float

    @property
    def images_per_sec(self) -> float:
        return self.iterations * self.batch_size / self.seconds


@dataclass
class _Runner:
    """A network ready to be stepped: hybridized, with its input, labels, loss and trainer."""

    net: object
    mode: str
    contexts: list
    data: list
    labels: list
    batch_size: int
    trainer: object = None
    loss: object = None
    label: str = "ours"
    results: list[SpeedResult] = field(default_factory=list)

    def step(self) -> None:
        mx = require_mxnet()
        if self.mode == "infer":
            with mx.autograd.predict_mode():
                for x in self.data:
                    self.net(x)
            return
        with mx.autograd.record():
            losses = [self.loss(self.net(x).astype("float32", copy=False), y)
                      for x, y in zip(self.data, self.labels)]
        mx.autograd.backward(losses)
        self.trainer.step(self.batch_size)

    def run(self, iterations: int) -> SpeedResult:
        """Time ``iterations`` steps; ``waitall`` is inside the timed region."""
        mx = require_mxnet()
        mx.nd.waitall()  # nothing queued from before may be billed to this run
        start = time.perf_counter()
        for _ in range(iterations):
            self.step()
        mx.nd.waitall()
        return SpeedResult(iterations, self.batch_size, time.perf_counter() - start)

    def warm_up(self, iterations: int) -> None:
        """Untimed steps; the first builds the cached graph and allocates its memory."""
        mx = require_mxnet()
        for _ in range(iterations):
            self.step()
            mx.nd.waitall()


def _prepare(net, *, mode: str, batch_size: int, input_size: int, classes: int, dtype: str,
             contexts: Sequence, initialized: bool = False, converted: bool = False,
             x=None) -> _Runner:
    """``converted``: ``net`` comes from :func:`bench.inference.convert`, already hybridized
    for its fp32 input ``x``."""
    mx = require_mxnet()
    if not initialized:
        net.initialize(mx.init.Xavier(magnitude=2), ctx=list(contexts))
    if not converted:
        if dtype != "float32":
            net.cast(dtype)
        net.hybridize(**HYBRIDIZE)
    shape = (batch_size, 3, input_size, input_size)
    if x is None:
        x = mx.nd.random.normal(shape=shape, ctx=contexts[0])
    x = x.astype("float32" if converted else dtype, copy=False)
    y = mx.nd.random.randint(0, classes, shape=(batch_size,), ctx=contexts[0]).astype("float32")
    if len(contexts) > 1:
        data = mx.gluon.utils.split_and_load(x, contexts)
        labels = mx.gluon.utils.split_and_load(y, contexts)
    else:
        data, labels = [x], [y]
    runner = _Runner(net, mode, list(contexts), data, labels, batch_size)
    if mode == "train":
        runner.loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        # A small learning rate keeps the weights finite for however many steps are timed.
        runner.trainer = mx.gluon.Trainer(
            net.collect_params(), "sgd",
            {"learning_rate": 1e-3, "momentum": 0.9, "wd": 1e-4,
             "multi_precision": dtype == "float16"},
            kvstore="device" if len(contexts) > 1 else None)
    return runner


def measure(net, *, mode: str = "infer", batch_size: int = 16, input_size: int = 224,
            classes: int = 1000, dtype: str = "float32", ctx=None, warmup: int = 3,
            iterations: int = 10, initialized: bool = False) -> SpeedResult:
    """Hybridize ``net`` (initializing it unless ``initialized``) and time ``iterations``
    steps after ``warmup`` untimed ones. ``ctx`` is a context or a list of them (the batch
    is split over a list)."""
    mx = require_mxnet()
    contexts = _as_list(ctx or mx.cpu())
    runner = _prepare(net, mode=mode, batch_size=batch_size, input_size=input_size,
                      classes=classes, dtype=dtype, contexts=contexts, initialized=initialized)
    runner.warm_up(max(1, warmup))
    return runner.run(iterations)


def default_batch_size(input_size: int, gpus: int = 0) -> int:
    """32 (CIFAR-size) / 16 (ImageNet-size) on CPU; 128 / 64 per GPU."""
    small = input_size <= 64
    if gpus:
        return (128 if small else 64) * gpus
    return 32 if small else 16


def benchmark(model: str, *, mode: str = "infer", batch_size: int | None = None,
              dtype: str = "float32", compare: str | None = None,
              gpus: str | Sequence[int] | None = None, input_size: int | None = None,
              warmup: int = 3, rounds: int = 5, iterations: int | None = None,
              seconds: float = 3.0, fuse: bool = False, calibration=None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Benchmark a registered network; return a JSON-ready dict (see the module docstring).

    ``iterations`` per round defaults to as many as take about ``seconds`` (judged from the
    warm-up of our network); with ``compare`` both networks run the same number.
    ``calibration`` (a :class:`bench.inference.Calibration`) sets int8's calibration.
    """
    from bench.models import get_model, get_spec

    spec = get_spec(model)  # unknown names fail first, with close matches
    _check_request(spec, mode, dtype, compare, fuse, batch_size=batch_size,
                   input_size=input_size, rounds=rounds, iterations=iterations)
    gpu_ids, contexts = _devices(gpus, dtype, fuse)
    mx = require_mxnet()
    size = input_size or spec.input_size
    batch = batch_size or default_batch_size(size, len(gpu_ids))
    if batch < len(contexts):
        raise BenchError(f"batch size {batch} cannot be split over {len(contexts)} GPUs")
    say = progress or (lambda message: None)
    load_before = os.getloadavg()

    fp32 = get_model(spec.name)
    fp32.initialize(mx.init.Xavier(magnitude=2), ctx=contexts)
    x = mx.nd.random.normal(shape=(batch, 3, size, size), ctx=contexts[0])
    # GluonCV's copy is made before any conversion: it copies our Gluon net.
    gluoncv = _gluoncv_twin(spec, fp32, contexts) if compare == "gluoncv" else None
    ours, converted, calib_data, calibration = _our_net(fp32, mode=mode, dtype=dtype, fuse=fuse,
                                                        x=x, calibration=calibration, say=say)
    nets = {"ours": ours}
    if gluoncv is not None:
        nets["theirs"] = gluoncv
    elif compare == "float32":
        # The converted net was made from fp32 (the same weights); float16 (on GPUs) runs
        # against a second instance with the same fp32 weights.
        nets["theirs"] = fp32 if converted is not None else _float32_twin(spec, fp32, contexts)
    # GluonCV's net runs in our precision where that is a cast (float16), else in fp32.
    their_dtype = "float32" if compare == "float32" or converted is not None else dtype
    runners = {}
    for key, net in nets.items():
        own = key == "ours"
        runner = _prepare(net, mode=mode, batch_size=batch, input_size=size,
                          classes=spec.classes, dtype=dtype if own else their_dtype,
                          contexts=contexts, initialized=True,
                          converted=own and (converted is not None or dtype == "bfloat16"),
                          x=x)
        _warm_up(runner, warmup, spec.name, size)
        runners[key] = runner
    ort_settings = None
    if compare == "onnxruntime":
        runners["theirs"], ort_settings = _ort_runner(
            fp32, runners["ours"].data[0], spec.name, converted=converted, dtype=dtype,
            calib_data=calib_data, calibration=calibration, warmup=warmup, say=say)
    if iterations is None:
        per_step = runners["ours"].run(1).seconds
        iterations = max(1, round(seconds / per_step))
    _timed_rounds(runners, rounds, iterations, compare, say)

    settings = (converted.describe() if converted is not None
                else {"dtype": dtype, "fused": False, "calibration": None})
    if settings["calibration"] is not None:
        settings["calibration"]["data"] = "synthetic"
    return _report(spec, runners, mode=mode, batch=batch, settings=settings,
                   contexts=contexts, size=size, warmup=warmup, iterations=iterations,
                   rounds=rounds, compare=compare, load_before=load_before,
                   ort_settings=ort_settings)


def _devices(gpus, dtype: str, fuse: bool) -> tuple[list[int], list]:
    """The GPU numbers and contexts, after the checks `bench run` makes (CPU wheel, missing
    GPUs, compute capabilities the mxnet-cu112 wheel has no kernels for) and the precision's."""
    from bench.engine import devices
    gpu_ids = devices.parse_gpus(",".join(map(str, gpus)) if isinstance(gpus, (list, tuple))
                                 else gpus)
    require(dtype, on_gpu=bool(gpu_ids))
    if fuse and gpu_ids:
        raise BenchError("--fuse is oneDNN's CPU fusion: run without --gpus")
    devices.check_gpus(gpu_ids)
    return gpu_ids, devices.contexts(gpu_ids)


def _gluoncv_twin(spec, fp32, contexts):
    """GluonCV's network of the same name with our weights, so that both compute on the same
    numbers (denormals cost time on CPU)."""
    mx = require_mxnet()
    from bench.models.gluoncv_import import build_gluoncv, copy_by_structure
    theirs = build_gluoncv(spec.gluoncv, classes=spec.classes)
    theirs.initialize(mx.init.Xavier(magnitude=2), ctx=contexts)
    copy_by_structure(fp32, theirs, spec.input_size, contexts[0])
    return theirs


def _float32_twin(spec, fp32, contexts):
    """A second instance of our network holding ``fp32``'s weights."""
    from bench.models import get_model
    twin = get_model(spec.name)
    twin.initialize(ctx=contexts)
    for mine, other in zip(fp32.collect_params().values(), twin.collect_params().values()):
        other.set_data(mine.data(contexts[0]))
    return twin


def _our_net(fp32, *, mode: str, dtype: str, fuse: bool, x, calibration, say):
    """(the net to time, the conversion or None, int8's calibration batches or None, the
    calibration used) for ``dtype`` / ``fuse``."""
    if mode == "train" and dtype == "bfloat16":
        # The engine's bf16 training graph (train.dtype = "bfloat16") on the fp32 parameters:
        # what `bench run` trains, so the ratio is the training speed-up a recipe gets.
        from bench.engine.build import low_precision_forward
        fp32.hybridize(**HYBRIDIZE)
        return low_precision_forward(fp32, "bfloat16", x), None, None, calibration
    if dtype not in CONVERTED and not fuse:
        return fp32, None, None, calibration
    from bench import inference
    if dtype == "int8":
        calibration = calibration or inference.Calibration()
        say(f"calibrating int8 on {calibration.batches} synthetic batches "
            f"({calibration.mode}, {calibration.granularity})")
    calib_data = _synthetic_batches(x, calibration)
    converted = inference.convert(fp32, dtype, x, fuse=fuse, calib_data=calib_data,
                                  calibration=calibration)
    return converted.net, converted, calib_data, calibration


def _ort_runner(fp32, x, name: str, *, converted, dtype: str, calib_data, calibration,
                warmup: int, say):
    """Our fp32 net exported and run in ONNX Runtime on the same input (int8: quantized by
    ONNX Runtime on the same calibration batches, the same layers kept fp32), warmed up; and
    what it ran, with ours on the same check batch when ours is converted."""
    from bench.export import OrtRunner, mxnet_output, rel_diff, top1_agreement
    if dtype == "int8":
        say("quantizing the exported net with onnxruntime.quantization on the same "
            f"{len(calib_data)} calibration batches")
    runner = OrtRunner(fp32, x, name, calib_data=calib_data, calibration=calibration,
                       exclude=converted.excluded if dtype == "int8" else ())
    runner.warm_up(warmup)
    settings = runner.settings
    if converted is not None:
        got = mxnet_output(converted.net, runner.probe)
        settings["check"]["ours_max_rel_diff"] = rel_diff(got, runner.reference)
        settings["check"]["ours_top1_agreement"] = top1_agreement(got, runner.reference)
    return runner, settings


def _timed_rounds(runners: dict, rounds: int, iterations: int, compare: str | None,
                  say) -> None:
    """``rounds`` timed rounds of ``iterations`` steps, the order alternating each round so
    that neither net always runs first (a warm cache, a boosted clock)."""
    order = list(runners)
    for r in range(rounds):
        for key in (order if r % 2 == 0 else order[::-1]):
            runners[key].results.append(runners[key].run(iterations))
        say(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{_label(k, compare)} {runners[k].results[-1].images_per_sec:.1f} img/s"
            for k in order))


def _synthetic_batches(x, calibration):
    """``calibration.batches`` random normal batches shaped like ``x`` (None unless int8)."""
    if calibration is None:
        return None
    mx = require_mxnet()
    return [mx.nd.random.normal(shape=x.shape, ctx=x.context)
            for _ in range(calibration.batches)]


def _check_request(spec, mode: str, dtype: str, compare: str | None, fuse: bool = False,
                   **counts) -> None:
    """One-line errors for what ``benchmark`` cannot do, before anything is built."""
    from bench.models import get_spec, list_models
    check_choice("mode", mode, MODES)
    check_choice("dtype", dtype, PRECISIONS)
    if compare is not None and compare not in COMPARE:
        raise BenchError(f"cannot compare with {compare!r}{did_you_mean(compare, COMPARE)}; "
                         f"choose from {', '.join(COMPARE)}")
    if compare == "onnxruntime":
        from bench.export import check_ort_request
        check_ort_request(mode, dtype)
        if fuse:
            raise BenchError("--compare onnxruntime times our unfused fp32 net against ONNX "
                             "Runtime's: drop --fuse")
    if fuse and dtype != "float32":
        raise BenchError(f"--fuse is the fp32 oneDNN fusion, for --dtype float32 only ({dtype} "
                         "has its own conversion)")
    if mode == "train" and (dtype == "int8" or fuse):
        what = "--fuse" if fuse else dtype
        raise BenchError(f"`bench speed --mode train` does not run {what}: it is an inference "
                         "conversion; use --mode infer")
    if compare == "float32" and dtype == "float32" and not fuse:
        raise BenchError("--compare float32 with --dtype float32 would time the net against "
                         "itself: add --fuse or choose another --dtype")
    if compare == "gluoncv" and not spec.gluoncv:
        names = [n for n in list_models() if get_spec(n).gluoncv]
        raise BenchError(f"{spec.name} has no GluonCV counterpart to compare with; "
                         f"the {len(names)} that do: {_summarize(names)}")
    for key, value in counts.items():
        if value is not None and value < 1:
            raise BenchError(f"{key.replace('_', ' ')} must be at least 1, not {value}")


def _report(spec, runners: dict, *, mode: str, batch: int, settings: dict, contexts: list,
            size: int, warmup: int, iterations: int, rounds: int, compare: str | None,
            load_before, ort_settings: dict | None = None) -> dict:
    """The JSON-ready result: medians, every round, the ratio and the machine's state."""
    mx = require_mxnet()

    def summary(key: str, name: str) -> dict:
        rates = [res.images_per_sec for res in runners[key].results]
        return {"name": name, "images_per_sec": statistics.median(rates),
                "rounds": [round(v, 3) for v in rates]}

    ours = summary("ours", spec.name)
    theirs = None
    if "theirs" in runners:
        name = spec.gluoncv if compare == "gluoncv" else spec.name
        theirs = summary("theirs", getattr(runners["theirs"], "name", name))
    return {
        "model": spec.name,
        "mode": mode,
        "batch_size": batch,
        **settings,  # dtype, fused, calibration (int8: mode, batches, granularity, excluded)
        "device": ",".join(str(c) for c in contexts),
        "input_size": size,
        "warmup": warmup,
        "iterations": iterations,
        "rounds": rounds,
        "hybridize": HYBRIDIZE,
        "ours": ours,
        "compare": compare,
        "theirs": theirs,
        "ratio": ours["images_per_sec"] / theirs["images_per_sec"] if theirs else None,
        "round_ratios": ([round(a.images_per_sec / b.images_per_sec, 4) for a, b in
                          zip(runners["ours"].results, runners["theirs"].results)]
                         if theirs else None),
        "mxnet": mx.__version__,
        "gluoncv": _gluoncv_version() if compare == "gluoncv" else None,
        "onnxruntime": getattr(runners.get("theirs"), "version", None),
        # What ONNX Runtime ran (precision, quantization, opset, threads) and its output check.
        "onnxruntime_run": ort_settings,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu": cpu_model(),
        "cpu_flags": present(cpu_flags()),
        "amx": _amx_state(),
        "cores": len(os.sched_getaffinity(0)),
        # Other processes on the machine skew timings; this says whether there were any.
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _warm_up(runner: _Runner, warmup: int, name: str, size: int) -> None:
    mx = require_mxnet()
    try:
        runner.warm_up(max(1, warmup))
    except mx.base.MXNetError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        first = re.sub(r"^MXNetError: |\[[\d:]+\] \S+:\d+: (Check failed: )?", "",
                       first.strip())
        raise BenchError(f"{name} failed at a {size}x{size} input: {first}") from None


def _as_list(ctx) -> list:
    return list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]


def _label(key: str, compare: str | None) -> str:
    return "ours" if key == "ours" else (compare or "theirs")


def _summarize(names: list[str], shown: int = 6) -> str:
    head = ", ".join(names[:shown])
    return head + (", ... (`bench models` shows a gluoncv column)" if len(names) > shown
                   else "")


def _gluoncv_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("gluoncv")
    except Exception:  # noqa: BLE001 - only informative
        return None


def _amx_state() -> str:
    from bench import _mxnet
    return _mxnet.AMX_STATE
