"""The training loop: one recipe, one run directory, resumable at any step.

A run directory ``<out>/<recipe>/<UTC time>/`` holds ``recipe.json`` (the resolved recipe the run
trains, after ``--set``/``--epochs``/``--seed``), ``run.json`` (plan, what was rescaled, command,
versions, hardware), ``log.jsonl``, ``checkpoints/`` and, at the end, ``metrics.json`` and
``result.json`` (:mod:`.record`).

Determinism across a resume: the data order and augmentation are functions of (seed, epoch,
batch), MXNet's generator is reseeded from (seed, iteration) before every step (MXNet has no way
to save its RNG state), mixup draws from a generator keyed the same way, and checkpoints carry the
optimizer state. So N steps straight and N/2 + resume + N/2 give the same parameters on CPU.
"""
from __future__ import annotations

import dataclasses
import json
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench._mxnet import require_mxnet
from bench.errors import BenchError
from bench.engine import build, devices
from bench.engine.checkpoint import (atomic_write_text, latest_checkpoint, load_checkpoint,
                                     save_checkpoint)
from bench.engine.jsonlog import JsonLog, Progress
from bench.engine.record import metrics_summary, write_result
from bench.engine.runplan import RunOptions, Setup, describe, prepare
from bench.engine.step import recipe_step, step_seed, to_nd, train_step
from bench.recipes import Recipe, recipe_from_dict, recipe_hash, recipe_to_dict

__all__ = ["RunOptions", "RunStopped", "Setup", "describe", "prepare", "resume_run",
           "start_run", "train_step"]


class RunStopped(BenchError):
    """Training stopped early on purpose (a signal); carries the exit status."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def start_run(recipe: Recipe, options: RunOptions,
              report: Callable[[str], None] | None = None) -> Path:
    """Train ``recipe`` in a new run directory; returns the directory. ``report`` receives the
    plan's lines (devices, batch, rescaled LR, schedule) before the first step."""
    from bench.provenance import provenance
    setup, data = _setup_with_data(recipe, options)  # bad data fails before any file is made
    run_dir = _new_run_dir(options.out, recipe.name)
    for line in describe(setup) if report else ():
        report(line)
    if report:
        report(f"run directory: {run_dir}")
    atomic_write_text(run_dir / "recipe.json", json.dumps(recipe_to_dict(setup.recipe), indent=2))
    run_info = {"plan": dataclasses.asdict(setup.plan), "changes": setup.changes,
                "options": _options_dict(options), "dtype": setup.dtype,
                "kvstore": setup.kvstore, **provenance()}
    atomic_write_text(run_dir / "run.json", json.dumps(run_info, indent=2, default=str))
    return _train(run_dir, setup, data, options, checkpoint=None)


def resume_run(run_dir: Path, options: RunOptions,
               report: Callable[[str], None] | None = None) -> Path:
    """Continue a run from its latest checkpoint with its own recipe and global batch."""
    run_dir = Path(run_dir)
    try:
        recipe = recipe_from_dict(json.loads((run_dir / "recipe.json").read_text()),
                                  str(run_dir / "recipe.json"))
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot resume {run_dir}: not a run directory ({exc})") from None
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise BenchError(f"cannot resume {run_dir}: it has no checkpoint yet; start it again")
    stored = info.get("options", {})
    options = dataclasses.replace(
        options, batch_size=info["plan"]["global_batch"], epochs=None, seed=None,
        data_dir=options.data_dir or stored.get("data_dir"))
    setup, data = _setup_with_data(recipe, options)
    if report:
        report(f"resuming {run_dir} from {ckpt.name}")
    return _train(run_dir, setup, data, options, checkpoint=ckpt)


def _options_dict(options: RunOptions) -> dict[str, Any]:
    d = dataclasses.asdict(options)
    d["out"] = str(options.out)
    return d


def _new_run_dir(out: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    base = Path(out) / name
    for n in range(100):
        run_dir = base / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise BenchError(f"cannot create a run directory under {base}")


def _setup_with_data(recipe: Recipe, options: RunOptions):
    from bench.data import DataSpec, build_eval, build_train, in_channels, num_classes
    setup = prepare(recipe, options)
    r = setup.recipe
    spec = DataSpec(dataset=r.data.dataset, train_augment=r.data.train_augment,
                    input_size=r.data.input_size, resize=r.data.resize,
                    protocol=r.data.protocol, data_format=r.data.data_format,
                    num_classes=int(r.network_args.get("classes", 0)),
                    synthetic_size=r.data.synthetic_size, jitter=r.data.jitter,
                    lighting=r.data.lighting, min_area=r.data.min_area)
    train = build_train(spec, options.data_dir, setup.plan.global_batch, r.train.seed,
                        options.workers)
    evaluation = build_eval(spec, options.data_dir, setup.plan.global_batch, options.workers)
    setup = prepare(recipe, options, train_samples=train.num_samples)
    if train.batches_per_epoch == 0:
        raise BenchError(f"the training set has {train.num_samples} samples, fewer than one "
                         f"batch of {setup.plan.global_batch}: lower --batch-size")
    return setup, (spec, train, evaluation, num_classes(spec), in_channels(spec))


class _StopFlag:
    """SIGTERM/SIGINT set a flag; the loop checkpoints at the next step boundary."""

    def __init__(self):
        self.signum: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _train(run_dir: Path, setup: Setup, data, options: RunOptions, checkpoint: Path | None) -> Path:
    mx = require_mxnet()
    spec, train, evaluation, classes, channels = data
    recipe, plan = setup.recipe, setup.plan
    r_hash = recipe_hash(recipe)
    seed = recipe.train.seed
    mx.random.seed(seed)
    np.random.seed(seed)
    if setup.dtype == "amp":
        from mxnet.contrib import amp
        amp.init()
    net = build.build_net(recipe, classes, channels, setup.ctxs, setup.dtype)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = build.build_trainer(recipe, net, plan.lr, setup.kvstore, setup.dtype)
    loss_fn, dense = build.build_loss(recipe)
    schedule, gate = build.build_lr(recipe, plan, setup.iters_per_epoch, setup.epochs)
    with JsonLog(run_dir / "log.jsonl") as log:
        return _train_logged(run_dir, setup, options, checkpoint, log, net, trainer, loss_fn,
                             dense, schedule, gate, r_hash, seed, data)


def _train_logged(run_dir, setup, options, checkpoint, log, net, trainer, loss_fn, dense,
                  schedule, gate, r_hash, seed, data) -> Path:
    mx = require_mxnet()
    spec, train, evaluation, classes, channels = data
    recipe, plan = setup.recipe, setup.plan
    state = {"epoch": 0, "iteration": 0, "batch_in_epoch": 0, "history": [], "train_time": 0.0,
             "images": 0}
    if checkpoint is not None:
        _warm_up_trainer(net, trainer, setup, channels, spec)
        saved = load_checkpoint(checkpoint, net=net, trainer=trainer, recipe_hash=r_hash)
        extra = saved.get("extra", {})
        state.update(epoch=saved["epoch"], iteration=saved["iteration"],
                     batch_in_epoch=saved["batch_in_epoch"],
                     history=extra.get("history", []), train_time=extra.get("train_time", 0.0),
                     images=extra.get("images", 0))
        if gate is not None and "gate" in extra:
            gate.load_state_dict(extra["gate"])
        log.write("resume", checkpoint=str(checkpoint), iteration=state["iteration"])
    else:
        log.write("start", recipe=recipe.name, network=recipe.network, plan=dataclasses.asdict(plan),
                  changes=setup.changes, total_iters=setup.total_iters, seed=seed)

    def save(epoch: int, batch_in_epoch: int) -> Path:
        if batch_in_epoch >= setup.iters_per_epoch:
            epoch, batch_in_epoch = epoch + 1, 0
        state["epoch"] = epoch
        extra = {"history": state["history"], "train_time": state["train_time"],
                 "images": state["images"], "seed": seed}
        if gate is not None:
            extra["gate"] = gate.state_dict()
        path = save_checkpoint(run_dir, net=net, trainer=trainer, epoch=epoch,
                               iteration=state["iteration"], batch_in_epoch=batch_in_epoch,
                               recipe_hash=r_hash, extra=extra,
                               keep=recipe.train.keep_checkpoints)
        log.write("checkpoint", path=str(path), epoch=epoch, iteration=state["iteration"])
        return path

    def predict(batch) -> np.ndarray:
        x = to_nd(batch, setup.dtype)
        parts = devices.split_batch(x, None, setup.ctxs)[0] if len(setup.ctxs) > 1 else \
            [x.as_in_context(setup.ctxs[0])]
        return np.concatenate([net(p).astype("float32").softmax().asnumpy() for p in parts])

    window = _Window()
    stop_reason = None
    epoch, next_batch, lr = state["epoch"], state["batch_in_epoch"], plan.lr
    with _StopFlag() as stop:
        while epoch < setup.epochs and state["iteration"] < setup.total_iters:
            start_batch = next_batch
            mixup_on = (recipe.train.mixup_alpha > 0
                        and epoch < setup.epochs - recipe.train.mixup_off_epochs)
            bar = Progress(setup.iters_per_epoch, f"epoch {epoch + 1}/{setup.epochs}",
                           enabled=options.progress, min_interval=10.0)
            bar.update(start_batch)
            tic = time.time()
            for x, y in train.epoch(epoch, start_batch):
                it = state["iteration"]
                if options.max_steps is not None and it >= options.max_steps:
                    stop_reason = "max_steps"
                    break
                lr = gate.lr(schedule, it) if gate is not None else schedule(it)
                trainer.set_learning_rate(lr)
                mx.random.seed(step_seed(seed, it))
                loss_sum, wrong = recipe_step(net, trainer, loss_fn, x, y, setup, classes, dense,
                                               mixup_on, seed, it)
                state["iteration"] = it + 1
                next_batch += 1
                window.add(loss_sum, wrong, len(y))
                bar.update(1, lr=f"{lr:.4g}")
                if state["iteration"] % recipe.train.log_interval == 0:
                    _close_window(window, log, state["iteration"], lr, gate, run_dir)
                if stop.signum is not None:
                    stop_reason = f"signal {signal.Signals(stop.signum).name}"
                    break
                if state["iteration"] >= setup.total_iters:
                    break
            bar.close()
            mx.nd.waitall()
            elapsed = time.time() - tic
            state["train_time"] += elapsed
            state["images"] += (next_batch - start_batch) * plan.global_batch
            if window.count:
                _close_window(window, log, state["iteration"], lr, gate, run_dir)
            if stop_reason:
                break
            done = epoch + 1 >= setup.epochs or state["iteration"] >= setup.total_iters
            if done or (epoch + 1) % recipe.train.eval_every == 0:
                _evaluate_epoch(evaluation, predict, state, log, epoch, elapsed)
            epoch, next_batch = epoch + 1, 0
            state["epoch"] = epoch
            if done or epoch % recipe.train.checkpoint_every == 0:
                save(epoch, 0)
    if stop_reason:
        save(epoch, next_batch)
        log.write("stop", reason=stop_reason, iteration=state["iteration"])
        if stop_reason == "max_steps":  # a smoke run still exercises evaluation
            _evaluate_epoch(evaluation, predict, state, log, epoch, 0.0, partial=True)
    metrics = metrics_summary(recipe, setup, state, stop_reason)
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    write_result(run_dir, recipe, metrics, r_hash)
    if stop_reason and stop_reason != "max_steps":
        raise RunStopped(f"stopped by {stop_reason} at iteration {state['iteration']}; "
                         "checkpoint saved; resume with: "
                         f"bench run recipe {recipe.name} --resume {run_dir}",
                         128 + (stop.signum or signal.SIGTERM))
    log.write("end", **{k: v for k, v in metrics.items() if k != "history"})
    return run_dir


@dataclass
class _Window:
    loss: Any = 0.0
    wrong: Any = 0.0
    count: int = 0
    tic: float = field(default_factory=time.time)

    def add(self, loss_sum, wrong, n: int) -> None:
        self.loss = self.loss + loss_sum
        self.wrong = self.wrong + wrong
        self.count += n

    def reset(self) -> None:
        self.loss, self.wrong, self.count, self.tic = 0.0, 0.0, 0, time.time()


def _close_window(window: _Window, log: JsonLog, iteration: int, lr: float, gate, run_dir) -> None:
    loss = float(window.loss.asscalar() if hasattr(window.loss, "asscalar") else window.loss)
    wrong = float(window.wrong.asscalar() if hasattr(window.wrong, "asscalar") else window.wrong)
    n = max(window.count, 1)
    if not math.isfinite(loss):
        last = latest_checkpoint(run_dir)
        log.write("stop", reason="non-finite loss", iteration=iteration, loss=loss)
        raise BenchError(f"training loss became {loss} by iteration {iteration} (lr {lr:g}); "
                         "nothing was saved after it; last good checkpoint: "
                         f"{last or 'none'}; lower the LR (--set optim.lr=...) and start again")
    train_error = wrong / n
    seconds = max(time.time() - window.tic, 1e-9)
    log.write("window", iteration=iteration, loss=loss / n, lr=lr, train_error=train_error,
              images_per_s=window.count / seconds)
    if gate is not None and not gate.done and gate.update(train_error):
        log.write("warmup_done", iteration=iteration, train_error=train_error)
    window.reset()


def _evaluate_epoch(evaluation, predict, state, log, epoch, elapsed, partial=False) -> None:
    """Evaluate and log; ``partial`` marks a mid-epoch evaluation (a --max-steps stop)."""
    from bench.data import evaluate
    result = evaluate(predict, evaluation)
    entry = {"epoch": epoch + 1 if not partial else epoch, "iteration": state["iteration"],
             "top1_err": result["top1_err"], "top5_err": result["top5_err"],
             "num_samples": result["num_samples"], "epoch_time_s": elapsed,
             "train_time_s": state["train_time"], "partial": partial}
    state["history"].append(entry)
    log.write("eval" if partial else "epoch", **entry)


def _warm_up_trainer(net, trainer, setup: Setup, channels: int, spec) -> None:
    """Gluon creates optimizer states lazily; build them so saved ones can be loaded."""
    mx = require_mxnet()
    size = spec.input_size
    x = mx.nd.zeros((1, channels, size, size), ctx=setup.ctxs[0],
                    dtype="float16" if setup.dtype == "float16" else "float32")
    for ctx in setup.ctxs:
        net(x.as_in_context(ctx))
