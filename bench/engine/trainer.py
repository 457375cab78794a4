"""The training loop: one recipe, one run directory (made by :mod:`.run`), resumable at any step.

Determinism across a resume: the data order and augmentation are functions of (seed, epoch,
batch), MXNet's generator is reseeded from (seed, iteration) before every step (MXNet has no way
to save its RNG state), mixup draws from a generator keyed the same way, checkpoints carry the
optimizer state, and a momentum reset (``schedule.reset_momentum``) happens right before the step
at a milestone iteration, resumed or not. So N steps straight and N/2 + resume + N/2 give the same
parameters on CPU.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench._mxnet import require_mxnet
from bench.errors import BenchError
from bench.engine import build, devices, health
from bench.engine.checkpoint import (BadCheckpoint, list_checkpoints,
                                     load_checkpoint, save_checkpoint, set_aside,
                                     verify_checkpoint)
from bench.engine.cluster import Cluster
from bench.engine.jsonlog import JsonLog, NullLog, Progress
from bench.engine.momentum import reset_momentum
from bench.engine.record import metrics_summary, write_result
from bench.engine.resume import (EXTRA_TYPES, ResumePoint, check_max_steps, position,
                                 skipped_line)
from bench.engine.runplan import RunOptions, Setup
from bench.engine.step import recipe_step, step_seed, to_nd
from bench.files import atomic_write_text
from bench.recipes import recipe_hash

__all__ = ["RunStopped", "train"]


class RunStopped(BenchError):
    """Training stopped early on purpose (a signal); carries the exit status."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


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


def train(run_dir: Path | None, setup: Setup, data, options: RunOptions,
           resume: ResumePoint | None = None, report: Callable[[str], None] | None = None,
           cluster: Cluster | None = None) -> Path | None:
    """Run the loop (:mod:`.run` starts and resumes runs); ``run_dir`` None (a worker other than
    rank 0) writes no file. A resume's
    checkpoint is loaded before the log is opened, so a resume that cannot load one refuses
    with nothing written."""
    cluster = cluster or Cluster()
    training = _Training(run_dir, setup, data, options, NullLog(), report, cluster)
    checkpoint = training.load(resume) if resume is not None else None
    with JsonLog(run_dir / "log.jsonl") if run_dir is not None else NullLog() as log:
        training.log = log
        return training.run(checkpoint)


@dataclass
class _Window:
    """Sums over one logging window, kept as NDArrays so the loop synchronises once per window."""

    loss: Any = 0.0
    wrong: Any = 0.0
    count: int = 0
    tic: float = field(default_factory=time.time)
    first_loss: Any = 0.0  # the loss sum of the run's first step, while it is not known yet
    first_count: int = 0

    def add(self, loss_sum, wrong, n: int, first: bool = False) -> None:
        self.loss = self.loss + loss_sum
        self.wrong = self.wrong + wrong
        self.count += n
        if first and not self.first_count:
            self.first_loss, self.first_count = loss_sum, n

    def reset(self) -> None:
        self.loss, self.wrong, self.count, self.tic = 0.0, 0.0, 0, time.time()
        self.first_loss, self.first_count = 0.0, 0


class _Training:
    """One run's loop and the objects it needs; ``state`` is what a checkpoint restores."""

    def __init__(self, run_dir: Path | None, setup: Setup, data, options: RunOptions, log,
                 report: Callable[[str], None] | None, cluster: Cluster):
        mx = require_mxnet()
        self.run_dir, self.setup, self.options, self.log = run_dir, setup, options, log
        self.cluster = cluster
        self.report = report or (lambda line: None)
        self.spec, self.train_data, self.eval_data, self.classes, self.channels = data
        self.recipe, self.plan = setup.recipe, setup.plan
        self.recipe_hash = recipe_hash(self.recipe)
        self.seed = self.recipe.train.seed
        mx.random.seed(self.seed)
        np.random.seed(self.seed)
        random.seed(self.seed)  # nothing here draws from it; a user hook or library might
        if setup.dtype == "amp":
            from mxnet.contrib import amp
            amp.init()
        self.net = build.build_net(self.recipe, self.classes, self.channels, setup.ctxs,
                                   setup.dtype)
        self.net.hybridize(static_alloc=True, static_shape=True)
        # What the steps and evaluations run: the net itself, or its bf16 graph on the same
        # fp32 parameters (checkpoints, health checks and the trainer keep using self.net).
        self.forward = self.net
        if setup.dtype == "bfloat16":
            size = self.spec.input_size
            self.forward = build.low_precision_forward(
                self.net, setup.dtype, mx.nd.zeros((1, self.channels, size, size),
                                                   ctx=setup.ctxs[0]))
        self.trainer = build.build_trainer(self.recipe, self.net, self.plan.lr, setup.kvstore,
                                           setup.dtype, cluster)
        self.loss_fn, self.dense = build.build_loss(self.recipe)
        self.distiller = None
        if self.recipe.distill.enabled:
            from bench.engine.distill import build_distiller, resolve_weights, teacher_record
            if setup.teacher is None:  # train() called without start_run / resume_run
                setup.teacher = teacher_record(resolve_weights(self.recipe))
            self.distiller = build_distiller(self.recipe, setup.teacher, self.loss_fn,
                                             self.classes, self.channels, setup.ctxs,
                                             setup.dtype)
        self.schedule, self.gate = build.build_lr(self.recipe, self.plan, setup.iters_per_epoch,
                                                  setup.epochs)
        self.state = {"epoch": 0, "iteration": 0, "batch_in_epoch": 0, "history": [],
                      "train_time": 0.0, "images": 0}
        self.window = _Window()
        self.lr = self.plan.lr
        self.loaded: Path | None = None  # the checkpoint load() restored, and those it skipped
        self.skipped: list[tuple[Path, str]] = []
        # health.loss_scale of the run (kept in checkpoints: a resume stops where a straight
        # run would); None until the first window closes.
        self.loss_scale: float | None = None

    def run(self, checkpoint: Path | None) -> Path:
        if checkpoint is not None:
            self.restore(checkpoint)
        else:
            self.log.write("start", recipe=self.recipe.name, network=self.recipe.network,
                           plan=dataclasses.asdict(self.plan), changes=self.setup.changes,
                           total_iters=self.setup.total_iters, seed=self.seed)
        with _StopFlag() as stop:
            stop_reason, epoch, next_batch = self.loop(stop)
        if stop_reason:
            self.save(epoch, next_batch)
            self.log.write("stop", reason=stop_reason, iteration=self.state["iteration"])
            if stop_reason == "max_steps":  # a smoke run still exercises evaluation
                self.evaluate(epoch, 0.0, partial=True)
        metrics = metrics_summary(self.recipe, self.setup, self.state, stop_reason, self.classes)
        if self.run_dir is not None:
            atomic_write_text(self.run_dir / "metrics.json", json.dumps(metrics, indent=2))
            write_result(self.run_dir, self.recipe, metrics, self.recipe_hash)
        if stop_reason and stop_reason != "max_steps":
            where = (f"bench run recipe {self.recipe.name} --resume {self.run_dir}"
                     if self.run_dir is not None else "the command rank 0 printed")
            raise RunStopped(f"stopped by {stop_reason} at iteration {self.state['iteration']}; "
                             f"checkpoint saved; resume with: {where}",
                             128 + (stop.signum or signal.SIGTERM))
        self.log.write("end", **{k: v for k, v in metrics.items() if k != "history"})
        return self.run_dir

    def loop(self, stop: "_StopFlag") -> tuple[str | None, int, int]:
        """Train until the schedule ends, ``--max-steps`` or a signal; returns why it stopped
        early (``None`` at the end) and the position to checkpoint."""
        mx = require_mxnet()
        setup, recipe, state = self.setup, self.recipe, self.state
        epoch, next_batch = state["epoch"], state["batch_in_epoch"]
        while epoch < setup.epochs and state["iteration"] < setup.total_iters:
            start_batch, stop_reason = next_batch, None
            mixup_on = (recipe.train.mixup_alpha > 0
                        and epoch < setup.epochs - recipe.train.mixup_off_epochs)
            bar = Progress(setup.iters_per_epoch, f"epoch {epoch + 1}/{setup.epochs}",
                           enabled=self.options.progress and self.cluster.is_root,
                           min_interval=10.0)
            bar.update(start_batch)
            tic = time.time()
            for x, y in self.train_data.epoch(epoch, start_batch):
                it = state["iteration"]
                if self.options.max_steps is not None and it >= self.options.max_steps:
                    stop_reason = "max_steps"
                    break
                self.lr = self.gate.lr(self.schedule, it) if self.gate else self.schedule(it)
                self.trainer.set_learning_rate(self.lr)
                if self.schedule.resets_momentum(it):  # before this step, also after a resume
                    self.log.write("momentum_reset", iteration=it,
                                   buffers=reset_momentum(self.trainer))
                mx.random.seed(step_seed(self.seed, it))
                loss_sum, wrong = recipe_step(self.forward, self.trainer, self.loss_fn, x, y, setup,
                                              self.classes, self.dense, mixup_on, self.seed, it,
                                              self.distiller)
                state["iteration"] = it + 1
                next_batch += 1
                self.window.add(loss_sum, wrong, len(y), first=self.loss_scale is None)
                bar.update(1, lr=f"{self.lr:.4g}")
                if state["iteration"] % recipe.train.log_interval == 0:
                    self.close_window()
                stop_reason = self.agreed_stop(stop)
                if stop_reason:
                    break
                if state["iteration"] >= setup.total_iters:
                    break
            bar.close()
            mx.nd.waitall()
            elapsed = time.time() - tic
            state["train_time"] += elapsed
            state["images"] += (next_batch - start_batch) * self.plan.global_batch
            if self.window.count:
                self.close_window()
            if stop_reason:
                return stop_reason, epoch, next_batch
            done = epoch + 1 >= setup.epochs or state["iteration"] >= setup.total_iters
            if done or (epoch + 1) % recipe.train.eval_every == 0:
                self.evaluate(epoch, elapsed)
            epoch, next_batch = epoch + 1, 0
            state["epoch"] = epoch
            if done or epoch % recipe.train.checkpoint_every == 0:
                self.save(epoch, 0)
        return None, epoch, next_batch

    def agreed_stop(self, stop: "_StopFlag") -> str | None:
        """Why to stop after this step, if at all. Every worker of a job stops at the same step
        (a worker that stopped alone would leave the others blocked in the next exchange), so
        a signal on any worker stops all of them."""
        mine = stop.signum is not None
        if self.cluster.size > 1:
            if self.cluster.allreduce([float(mine)])[0] > 0 and not mine:
                return "signal on another worker"
        return f"signal {signal.Signals(stop.signum).name}" if mine else None

    def load(self, point: ResumePoint) -> Path:
        """Load the resume's checkpoint into the network and trainer (writing nothing). One that
        does not load after all (another network) is skipped for the next older valid one;
        none: one line. --max-steps is checked again against the one loaded."""
        _warm_up_trainer(self.net, self.trainer, self.setup, self.channels, self.spec)
        self.skipped = list(point.skipped)
        found = list_checkpoints(point.run_dir)
        older = found[:found.index(point.checkpoint)] if point.checkpoint in found else []
        for path in [point.checkpoint, *reversed(older)]:
            try:
                if path != point.checkpoint:
                    verify_checkpoint(path, self.recipe_hash, EXTRA_TYPES)
                saved = load_checkpoint(path, net=self.net, trainer=self.trainer,
                                        recipe_hash=self.recipe_hash)
                self._restore_state(path, saved)
            except BadCheckpoint as exc:
                self.skipped.append((path, exc.why))
                continue
            check_max_steps(dataclasses.replace(point, checkpoint=path, state=saved),
                            self.options.max_steps)
            self.loaded = path
            return path
        reasons = "; ".join(f"{p.name} {why}" for p, why in self.skipped)
        raise BenchError(f"cannot resume {point.run_dir}: no checkpoint loads ({reasons}); "
                         "start it again")

    def _restore_state(self, path: Path, saved: dict) -> None:
        extra = saved.get("extra", {})
        try:
            self.state.update(epoch=saved["epoch"], iteration=saved["iteration"],
                              batch_in_epoch=saved["batch_in_epoch"],
                              history=list(extra.get("history", [])),
                              train_time=float(extra.get("train_time", 0.0)),
                              images=int(extra.get("images", 0)))
            if self.gate is not None and "gate" in extra:
                self.gate.load_state_dict(extra["gate"])
            self.loss_scale = extra.get("loss_scale")
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise BadCheckpoint(path, f"is corrupt (state.json field extra: "
                                      f"{type(exc).__name__})") from None

    def restore(self, checkpoint: Path) -> None:
        """Start the resume's record: the checkpoints :meth:`load` skipped are set aside (one
        line each), then the 'resume' event."""
        if self.loaded != checkpoint:  # run() without load(): no fallback
            _warm_up_trainer(self.net, self.trainer, self.setup, self.channels, self.spec)
            self._restore_state(checkpoint, load_checkpoint(
                checkpoint, net=self.net, trainer=self.trainer, recipe_hash=self.recipe_hash))
            self.loaded, self.skipped = checkpoint, []
        skipped = []
        for path, why in self.skipped:
            moved = set_aside(path) if self.run_dir is not None and path.is_dir() else None
            self.report(skipped_line(path, why, moved))
            skipped.append({"checkpoint": path.name, "reason": why,
                            "set_aside_as": moved.name if moved else None})
        state = self.state
        self.report(f"resuming {self.run_dir} from {checkpoint.name}: "
                    f"{position(state, self.setup)}")
        self.log.write("resume", checkpoint=str(checkpoint), iteration=state["iteration"],
                       skipped=skipped)

    def save(self, epoch: int, batch_in_epoch: int) -> Path | None:
        if batch_in_epoch >= self.setup.iters_per_epoch:
            epoch, batch_in_epoch = epoch + 1, 0
        state = self.state
        state["epoch"] = epoch
        # Never a checkpoint of non-finite weights (every worker checks: they stop together).
        self.stop_if_unhealthy(self.count_unhealthy())
        if self.run_dir is None:  # not rank 0: the workers' weights are rank 0's
            return None
        extra = {"history": state["history"], "train_time": state["train_time"],
                 "images": state["images"], "seed": self.seed}
        if self.gate is not None:
            extra["gate"] = self.gate.state_dict()
        if self.loss_scale is not None:
            extra["loss_scale"] = self.loss_scale
        path = save_checkpoint(self.run_dir, net=self.net, trainer=self.trainer, epoch=epoch,
                               iteration=state["iteration"], batch_in_epoch=batch_in_epoch,
                               recipe_hash=self.recipe_hash, extra=extra,
                               keep=self.recipe.train.keep_checkpoints)
        self.log.write("checkpoint", path=str(path), epoch=epoch, iteration=state["iteration"])
        return path

    def predict(self, batch) -> np.ndarray:
        x = to_nd(batch, self.setup.dtype)
        ctxs = self.setup.ctxs
        parts = devices.split_batch(x, None, ctxs)[0] if len(ctxs) > 1 else [x.as_in_context(ctxs[0])]
        return np.concatenate([self.forward(p).astype("float32").softmax().asnumpy() for p in parts])

    def evaluate(self, epoch: int, elapsed: float, partial: bool = False) -> None:
        """Evaluate and log; ``partial`` marks a mid-epoch evaluation (a --max-steps stop).
        Rank 0 only: BN statistics differ between workers, and it is rank 0's that are saved."""
        if not self.cluster.is_root:
            return
        from bench.data import evaluate
        result = evaluate(self.predict, self.eval_data)
        entry = {"epoch": epoch + 1 if not partial else epoch,
                 "iteration": self.state["iteration"], "top1_err": result["top1_err"],
                 "top5_err": result["top5_err"], "num_samples": result["num_samples"],
                 "epoch_time_s": elapsed, "train_time_s": self.state["train_time"],
                 "partial": partial}
        self.state["history"].append(entry)
        self.log.write("eval" if partial else "epoch", **entry)
        self.report(f"{'after' if partial else 'epoch'} {entry['epoch']}: top-1 error "
                    f"{entry['top1_err']:.2f} %, top-5 error {entry['top5_err']:.2f} % "
                    f"({entry['num_samples']} images)")

    def count_unhealthy(self) -> int:
        """:func:`health.count_unhealthy` of this worker's parameters (every device)."""
        return health.count_unhealthy(self.net.collect_params())

    def stop_if_unhealthy(self, unhealthy: float, summed: bool = False) -> None:
        """Raise :class:`health.Diverged` when any worker's parameters hold a non-finite value
        (``summed``: ``unhealthy`` is already the job's sum)."""
        if self.cluster.size > 1 and not summed:
            unhealthy = self.cluster.allreduce([unhealthy])[0]
        if unhealthy:
            raise self.diverged(health.describe_nonfinite(
                health.nonfinite_params(self.net.collect_params())), "non-finite parameters")

    def diverged(self, what: str, reason: str, **fields) -> health.Diverged:
        """Log the stop and make the one-line error; the last good checkpoint is read back."""
        iteration = self.state["iteration"]
        last = health.last_good_checkpoint(self.run_dir)
        self.log.write("stop", reason=reason, iteration=iteration, lr=self.lr, detail=what,
                       last_good_checkpoint=str(last) if last else None, **fields)
        named = last or ("none" if self.run_dir is not None else "the one rank 0 names")
        return health.Diverged(
            f"training diverged by iteration {iteration} (lr {self.lr:g}): {what}; nothing was "
            f"saved after it; last good checkpoint: {named}; lower the LR (--set optim.lr=...) "
            "and start again")

    def close_window(self) -> None:
        """Log the window's loss, LR, speed and training error; stop when training diverged
        (see :mod:`.health`): one synchronisation for the loss, one for the parameters."""
        window, iteration = self.window, self.state["iteration"]
        scalar = lambda v: float(v.asscalar() if hasattr(v, "asscalar") else v)
        loss, wrong, count = scalar(window.loss), scalar(window.wrong), window.count
        first, first_count = scalar(window.first_loss), window.first_count
        unhealthy = self.count_unhealthy()
        if self.cluster.size > 1:  # the job's window: same switch and same stop on every worker
            loss, wrong, count, first, first_count, unhealthy = self.cluster.allreduce(
                [loss, wrong, count, first, first_count, unhealthy])
        n = max(count, 1)
        if self.loss_scale is None and first_count:
            self.loss_scale = health.loss_scale(first / first_count, self.classes)
            factor = self.recipe.train.divergence_factor
            self.log.write("loss_bound", iteration=iteration, first_step_loss=first / first_count,
                           scale=self.loss_scale, bound=factor * self.loss_scale if factor else None)
        if not math.isfinite(loss):
            raise self.diverged(f"training loss became {loss}", "non-finite loss", loss=loss)
        self.stop_if_unhealthy(unhealthy, summed=True)
        factor = self.recipe.train.divergence_factor
        if health.loss_bound_exceeded(loss / n, self.loss_scale, factor):
            raise self.diverged(
                f"the window's mean loss {loss / n:.4g} exceeds {factor:g} x {self.loss_scale:.4g} "
                "(the first step's loss; train.divergence_factor, 0 turns this bound off)",
                "loss bound", loss=loss / n, bound=factor * self.loss_scale)
        train_error = wrong / n
        seconds = max(time.time() - window.tic, 1e-9)
        self.log.write("window", iteration=iteration, loss=loss / n, lr=self.lr,
                       train_error=train_error, images_per_s=count / seconds)
        if self.gate is not None and not self.gate.done and self.gate.update(train_error):
            self.log.write("warmup_done", iteration=iteration, train_error=train_error)
        window.reset()


def _warm_up_trainer(net, trainer, setup: Setup, channels: int, spec) -> None:
    """Gluon creates optimizer states lazily; build them so saved ones can be loaded."""
    mx = require_mxnet()
    size = spec.input_size
    x = mx.nd.zeros((1, channels, size, size), ctx=setup.ctxs[0],
                    dtype="float16" if setup.dtype == "float16" else "float32")
    for ctx in setup.ctxs:
        net(x.as_in_context(ctx))
