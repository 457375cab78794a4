"""The training loop: one recipe, one run directory, resumable at any step.

A run directory ``<out>/<recipe>/<UTC time>/`` holds ``recipe.json`` (the resolved recipe the run
trains, after ``--set``/``--epochs``/``--seed``), ``run.json`` (plan, what was rescaled, command,
versions, hardware), ``log.jsonl``, ``checkpoints/`` and, at the end, ``metrics.json``.

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
from typing import Any

import numpy as np

from bench._mxnet import require_mxnet
from bench.errors import BenchError
from bench.engine import build, devices, targets
from bench.engine.checkpoint import (atomic_write_text, latest_checkpoint, load_checkpoint,
                                     save_checkpoint)
from bench.engine.jsonlog import JsonLog, Progress
from bench.recipes import Plan, Recipe, plan_for, recipe_from_dict, recipe_hash, recipe_to_dict


class RunStopped(BenchError):
    """Training stopped early on purpose (a signal); carries the exit status."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RunOptions:
    """What the command line adds to a recipe."""

    gpus: tuple[int, ...] = ()
    cpu_devices: int = 1  # >1 runs the multi-device path on several CPU contexts (tests)
    data_dir: str | None = None
    epochs: int | None = None  # shortens/lengthens the schedule proportionally
    max_steps: int | None = None  # stop (with a checkpoint) after this many steps in total
    seed: int | None = None
    batch_size: int | None = None  # global batch; default keeps the recipe's per-device batch
    kvstore: str | None = None
    out: Path = Path("runs")
    workers: int = 2
    progress: bool = True


@dataclass
class Setup:
    """Everything decided before the first step; what ``--dry-run`` prints."""

    recipe: Recipe
    plan: Plan
    ctxs: list
    dtype: str
    kvstore: str | None
    iters_per_epoch: int
    epochs: int
    total_iters: int
    changes: list[str] = field(default_factory=list)


def apply_options(recipe: Recipe, options: RunOptions) -> tuple[Recipe, list[str]]:
    """The recipe as this run trains it (``--seed``, ``--epochs``), with what changed."""
    changes = []
    if options.seed is not None and options.seed != recipe.train.seed:
        recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train,
                                                                       seed=options.seed))
    if options.epochs is not None:
        s = recipe.schedule
        old = s.epochs
        ratio = options.epochs / old
        milestones = s.milestones
        if s.unit == "epoch":
            milestones = tuple(m * ratio for m in milestones)
        elif s.iterations:
            milestones = tuple(round(m * ratio) for m in milestones)
        schedule = dataclasses.replace(
            s, epochs=options.epochs, iterations=round(s.iterations * ratio) if s.iterations else 0,
            milestones=milestones, warmup_epochs=s.warmup_epochs * ratio)
        recipe = dataclasses.replace(recipe, schedule=schedule)
        changes.append(f"--epochs {options.epochs}: schedule of {old} epochs scaled by "
                       f"{ratio:g} (milestones and warm-up included)")
    return recipe, changes


def prepare(recipe: Recipe, options: RunOptions, train_samples: int | None = None) -> Setup:
    """Devices, batch, LR and schedule length for this machine (no data read unless needed)."""
    devices.check_gpus(list(options.gpus))
    ctxs = devices.contexts(list(options.gpus), options.cpu_devices)
    recipe, changes = apply_options(recipe, options)
    plan = plan_for(recipe, len(ctxs), options.batch_size)
    changes += list(plan.changes)
    dtype, dtype_changes = build.effective_dtype(recipe, bool(options.gpus))
    changes += dtype_changes
    requested = options.kvstore or recipe.train.kvstore
    if requested.startswith("dist") or requested == "horovod":
        # Multi-machine runs need the data sharded per worker and the LR scaled to the world
        # size; the engine does neither yet, and silently training every worker on all the
        # data would be wrong.
        raise BenchError(f"kvstore {requested!r}: multi-machine training is not supported by "
                         "the engine yet; use --kvstore device (one machine, any number of "
                         "GPUs)")
    kvstore = devices.choose_kvstore(requested, len(ctxs), on_gpu=bool(options.gpus))
    if train_samples is None:
        train_samples = _known_train_size(recipe)
    iters_per_epoch = max(1, train_samples // plan.global_batch) if train_samples else 0
    if plan.iterations:
        total = plan.iterations
        epochs = math.ceil(total / iters_per_epoch) if iters_per_epoch else recipe.schedule.epochs
    else:
        epochs = recipe.schedule.epochs
        total = epochs * iters_per_epoch
    return Setup(recipe, plan, ctxs, dtype, kvstore, iters_per_epoch, epochs, total, changes)


def _known_train_size(recipe: Recipe) -> int | None:
    """Training-set sizes for ``--dry-run`` without reading the data."""
    return {"imagenet": 1281167, "cifar10": 50000, "cifar100": 50000, "digits": 1437,
            "synthetic": recipe.data.synthetic_size}.get(recipe.data.dataset)


def describe(setup: Setup) -> list[str]:
    """Human lines: the plan, what was rescaled and the schedule's milestones."""
    p, r = setup.plan, setup.recipe
    lines = [f"recipe {r.name}: network {r.network}, data {r.data.dataset} "
             f"(protocol {r.data.protocol})",
             f"devices: {', '.join(str(c) for c in setup.ctxs)}; "
             f"kvstore {setup.kvstore or 'none (one device)'}; "
             f"dtype {setup.dtype}",
             f"batch {p.global_batch} ({p.devices} x {p.per_device_batch}); lr {p.lr:g} "
             f"(recipe: {r.optim.lr:g} at batch {r.optim.batch_size}); "
             f"{r.optim.optimizer} momentum {r.optim.momentum:g}, wd {r.optim.weight_decay:g}"
             + (" (not on bias/BN)" if r.optim.no_bias_decay else ""),
             f"{setup.epochs} epochs x {setup.iters_per_epoch} iterations = "
             f"{setup.total_iters} iterations"]
    if setup.iters_per_epoch:
        schedule, gate = build.build_lr(r, p, setup.iters_per_epoch, setup.epochs)
        lines += [f"schedule: {line}" for line in schedule.describe(setup.iters_per_epoch)]
        if gate:
            lines.append(f"schedule: lr {p.warmup_lr:g} until the training error of a logging "
                         f"window is below {r.schedule.warmup_until_error:.0%} (He 2015)")
    lines += [f"changed: {c}" for c in setup.changes]
    return lines


def start_run(recipe: Recipe, options: RunOptions) -> Path:
    """Train ``recipe`` in a new run directory; returns the directory."""
    from bench.provenance import provenance
    run_dir = _new_run_dir(options.out, recipe.name)
    setup, data = _setup_with_data(recipe, options)
    atomic_write_text(run_dir / "recipe.json", json.dumps(recipe_to_dict(setup.recipe), indent=2))
    run_info = {"plan": dataclasses.asdict(setup.plan), "changes": setup.changes,
                "options": _options_dict(options), "dtype": setup.dtype,
                "kvstore": setup.kvstore, **provenance()}
    atomic_write_text(run_dir / "run.json", json.dumps(run_info, indent=2, default=str))
    return _train(run_dir, setup, data, options, checkpoint=None)


def resume_run(run_dir: Path, options: RunOptions) -> Path:
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
        x = _to_nd(mx, batch, setup.dtype)
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
                mx.random.seed(_step_seed(seed, it))
                loss_sum, wrong = _step(mx, net, trainer, loss_fn, x, y, setup, classes, dense,
                                        recipe, mixup_on, seed, it)
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
    metrics = _metrics(recipe, setup, state, evaluation, stop_reason)
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


def _step(mx, net, trainer, loss_fn, x, y, setup: Setup, classes: int, dense: bool,
          recipe: Recipe, mixup_on: bool, seed: int, it: int):
    """Targets for this step (label smoothing, mixup keyed by (seed, it)), then one step."""
    labels = np.asarray(y.asnumpy() if hasattr(y, "asnumpy") else y)
    data = _to_nd(mx, x, setup.dtype)
    soft = None
    if dense:
        soft = targets.one_hot(labels, classes, recipe.train.label_smoothing)
        if mixup_on:
            lam = targets.mixup_lambda(recipe.train.mixup_alpha, targets.step_rng(seed, it))
            data = lam * data + (1 - lam) * mx.nd.flip(data, axis=0)
            soft = targets.mix_targets(soft, lam)
    return train_step(net, trainer, loss_fn, data, labels, setup.ctxs, setup.plan.global_batch,
                      setup.dtype, soft)


def train_step(net, trainer, loss_fn, data, labels: np.ndarray, ctxs: list, global_batch: int,
               dtype: str = "float32", soft_targets: np.ndarray | None = None):
    """One optimizer step over ``ctxs``: split the batch, forward, backward, update.

    Returns the summed loss and the number of training errors (against the hard labels) as
    NDArrays on the CPU, so the caller can synchronise only once per logging window."""
    mx = require_mxnet()
    from mxnet import autograd
    label_dtype = "float16" if dtype == "float16" and soft_targets is not None else "float32"
    target = mx.nd.array(soft_targets if soft_targets is not None else labels, dtype=label_dtype)
    xs, ys = devices.split_batch(data, target, ctxs)
    truth = devices.split_batch(mx.nd.array(labels), None, ctxs)[0]
    with autograd.record():
        outs = [net(xi) for xi in xs]
        losses = [loss_fn(o, yi) for o, yi in zip(outs, ys)]
    if dtype == "amp":
        from mxnet.contrib import amp
        with amp.scale_loss(losses, trainer) as scaled:
            autograd.backward(scaled)
    else:
        autograd.backward(losses)
    trainer.step(global_batch)
    cpu = mx.cpu()
    loss_sum = sum(l.astype("float32").sum().as_in_context(cpu) for l in losses)
    wrong = sum((o.argmax(axis=1) != t.as_in_context(o.context).astype(o.dtype))
                .astype("float32").sum().as_in_context(cpu) for o, t in zip(outs, truth))
    return loss_sum, wrong


def _warm_up_trainer(net, trainer, setup: Setup, channels: int, spec) -> None:
    """Gluon creates optimizer states lazily; build them so saved ones can be loaded."""
    mx = require_mxnet()
    size = spec.input_size
    x = mx.nd.zeros((1, channels, size, size), ctx=setup.ctxs[0],
                    dtype="float16" if setup.dtype == "float16" else "float32")
    for ctx in setup.ctxs:
        net(x.as_in_context(ctx))


def _step_seed(seed: int, iteration: int) -> int:
    return (seed * 1_000_003 + iteration) % (2 ** 31 - 1)


def _to_nd(mx, x, dtype: str):
    if not isinstance(x, mx.nd.NDArray):
        x = mx.nd.array(np.asarray(x), dtype="float32")
    return x.astype("float16") if dtype == "float16" else x


RESULT_SCHEMA = 1


def write_result(run_dir: Path, recipe: Recipe, metrics: dict[str, Any], r_hash: str) -> Path:
    """``result.json``: the run's record for the results layer (versioned schema): its numbers,
    the recipe's reference, when it first got within tolerance, and full provenance."""
    from bench.provenance import provenance
    info = json.loads((run_dir / "run.json").read_text())
    ref = recipe.reference
    reached = None
    if ref.top1_err is not None:
        for entry in metrics["history"]:
            if not entry.get("partial") and entry["top1_err"] <= ref.top1_err + ref.tolerance:
                reached = {"epoch": entry["epoch"], "train_time_s": entry["train_time_s"]}
                break
    now = provenance()
    result = {"schema": RESULT_SCHEMA, "run_dir": str(run_dir), "recipe_hash": r_hash,
              **{k: v for k, v in metrics.items() if k != "history"},
              "wall_time_s": time.time() - _started(run_dir),
              "reference": {"top1_err": ref.top1_err, "top5_err": ref.top5_err,
                            "tolerance": ref.tolerance, "source": ref.source},
              "reached_reference": reached, "history": metrics["history"],
              "command": info.get("command"), "started": info.get("date"),
              "date": now["date"], "git": info.get("git"), "versions": info.get("versions"),
              "hardware": info.get("hardware"), "changes": info.get("changes", [])}
    path = run_dir / "result.json"
    atomic_write_text(path, json.dumps(result, indent=2))
    return path


def _started(run_dir: Path) -> float:
    return (run_dir / "recipe.json").stat().st_mtime


def _metrics(recipe: Recipe, setup: Setup, state: dict, evaluation, stop_reason) -> dict[str, Any]:
    last = state["history"][-1] if state["history"] else {}
    return {"recipe": recipe.name, "network": recipe.network, "dataset": recipe.data.dataset,
            "protocol": recipe.data.protocol, "top1_err": last.get("top1_err"),
            "top5_err": last.get("top5_err"), "num_eval_samples": last.get("num_samples"),
            "epochs_done": state["epoch"], "epochs": setup.epochs,
            "iterations": state["iteration"], "total_iterations": setup.total_iters,
            "train_time_s": state["train_time"],
            "train_images_per_s": state["images"] / state["train_time"] if state["train_time"] else None,
            "seed": recipe.train.seed, "global_batch": setup.plan.global_batch,
            "lr": setup.plan.lr, "dtype": setup.dtype, "complete": stop_reason is None,
            "history": state["history"]}
