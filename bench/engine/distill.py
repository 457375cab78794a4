"""Knowledge distillation from a fixed teacher (recipe table ``[distill]``).

The loss per sample is ``hard_weight * CE(student, target) + (1 - hard_weight) * T^2 *
D(p_teacher, p_student)`` with ``p = softmax(logits / T)``; D is KL(teacher || student)
(Hinton et al. 2015; GluonCV train_imagenet.py ``--teacher --temperature --hard-weight``) or the
Jensen-Shannon divergence (PaddleClas SSLD). ``target`` is the hard label or the soft target of
label smoothing / mixup, as without distillation. GluonCV's DistillationSoftmaxCrossEntropyLoss
uses the soft cross-entropy instead of the KL term; the two differ by ``(1 - hard_weight) * T^2 *
H(p_teacher)``, which has no gradient with respect to the student.

The teacher is loaded once, on the student's devices, and runs in predict mode (BN running
statistics, no dropout, nothing recorded) on the same (augmented, mixed) batch as the student. It
is not in the trainer, so never updated, and not in the checkpoints: run.json records its file
and sha256, and a resume refuses a changed or missing file.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bench._mxnet import require_mxnet
from bench.errors import BenchError, summary
from bench.files import sha256_file
from bench.recipes import Recipe


def resolve_weights(recipe: Recipe) -> Recipe:
    """The recipe with ``distill.weights`` made absolute (relative paths are taken relative to
    the current directory), refusing a missing one in one line."""
    d = recipe.distill
    if not d.enabled:
        return recipe
    if not d.weights:
        raise BenchError(f"recipe {recipe.name} distils from {d.teacher} but names no teacher "
                         "weights: add --set distill.weights=PATH (a .params file, or a run "
                         "directory of this suite whose newest checkpoint is the teacher)")
    path = Path(d.weights).expanduser().absolute()
    if not path.exists():
        raise BenchError(f"distill.weights {d.weights}: no such file or directory (relative "
                         f"paths are taken from the current directory, {Path.cwd()})")
    return dataclasses.replace(recipe, distill=dataclasses.replace(d, weights=str(path)))


def teacher_file(weights: str, teacher: str) -> Path:
    """The .params file of ``weights``: the file itself, a checkpoint directory's net.params,
    or a run directory's newest valid checkpoint (whose recipe must train ``teacher``)."""
    from bench.engine.checkpoint import weights_file
    return weights_file(weights, teacher, "distill.weights", "the teacher ")


def teacher_record(recipe: Recipe) -> dict[str, Any] | None:
    """What run.json keeps of the teacher (None without distillation)."""
    d = recipe.distill
    if not d.enabled:
        return None
    path = teacher_file(d.weights, d.teacher).absolute()
    return {"network": d.teacher, "teacher_args": d.teacher_args, "weights": d.weights,
            "file": str(path), "sha256": sha256_file(path)}


def check_resume_teacher(run_dir: Path, recipe: Recipe, info: dict[str, Any]
                         ) -> dict[str, Any] | None:
    """The run's teacher record, its file still there and unchanged; else one line."""
    if not recipe.distill.enabled:
        return None
    record = info.get("teacher")
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str)
                                               for k in ("file", "sha256")):
        raise BenchError(f"cannot resume {run_dir}: run.json lacks the teacher record "
                         "(file and sha256) a distillation run writes")
    path = Path(record["file"])
    if not path.is_file():
        raise BenchError(f"cannot resume {run_dir}: its teacher weights {path} are missing "
                         f"(sha256 {record['sha256'][:16]}...): put that file back")
    now = sha256_file(path)
    if now != record["sha256"]:
        raise BenchError(f"cannot resume {run_dir}: its teacher weights {path} changed since "
                         f"the run started (sha256 {now[:16]}..., was "
                         f"{record['sha256'][:16]}...): restore the original file")
    return record


def soft_term(student, teacher, temperature: float, kind: str = "kl"):
    """Per-sample D(softmax(teacher / T), softmax(student / T)), not yet scaled by T^2."""
    mx = require_mxnet()
    nd = mx.nd
    log_ps = nd.log_softmax(student / temperature, axis=-1)
    log_pt = nd.log_softmax(teacher / temperature, axis=-1)
    pt = nd.exp(log_pt)
    if kind == "kl":
        return nd.sum(pt * (log_pt - log_ps), axis=-1)
    ps = nd.exp(log_ps)
    log_m = nd.log(0.5 * (pt + ps))
    return 0.5 * (nd.sum(pt * (log_pt - log_m), axis=-1) + nd.sum(ps * (log_ps - log_m), axis=-1))


class Distiller:
    """The teacher and the combined loss; ``loss(out, target, teacher_out)`` replaces
    ``loss_fn(out, target)`` in :func:`bench.engine.step.train_step`."""

    def __init__(self, teacher, hard_loss, temperature: float, hard_weight: float, kind: str):
        self.teacher, self.hard_loss = teacher, hard_loss
        self.temperature, self.hard_weight, self.kind = temperature, hard_weight, kind

    def predict(self, x):
        from mxnet import autograd
        with autograd.predict_mode():
            return self.teacher(x)

    def loss(self, out, target, teacher_out):
        hard = self.hard_loss(out, target)
        s, t = out, teacher_out
        if s.dtype != "float32":  # the soft term in fp32 (T^2 = 400 scales it)
            s, t, hard = s.astype("float32"), t.astype("float32"), hard.astype("float32")
        soft = soft_term(s, t, self.temperature, self.kind)
        t2 = self.temperature ** 2
        return self.hard_weight * hard + (1.0 - self.hard_weight) * t2 * soft


def build_distiller(recipe: Recipe, record: dict[str, Any], hard_loss, classes: int,
                    in_channels: int, ctxs: list, dtype: str) -> Distiller:
    """Load the teacher of ``record`` (run.json's) on ``ctxs``, hybridized, in ``dtype``."""
    mx = require_mxnet()
    from bench.engine.build import network_for_data
    d = recipe.distill
    teacher = network_for_data(d.teacher, d.teacher_args, classes, in_channels)
    try:
        teacher.load_parameters(record["file"], ctx=ctxs)
    except Exception as exc:  # MXNet's or Gluon's: a file of another network
        raise BenchError(f"distill.weights {record['file']} does not load into teacher "
                         f"{d.teacher} ({classes} classes): {summary(exc)[:200]}") from None
    if dtype == "float16":
        teacher.cast("float16")
    teacher.hybridize(static_alloc=True, static_shape=True)
    if dtype == "bfloat16":
        # The teacher in bf16 too: its forward costs as much as the student's (or more, a
        # bigger net), so an fp32 teacher would forfeit much of the speed-up, while its logits
        # reach the soft term cast to fp32 (bf16's 8-bit mantissa moves a logit by < 0.4 %).
        from bench.engine.build import low_precision_forward
        size = recipe.data.input_size
        teacher = low_precision_forward(teacher, dtype, mx.nd.zeros(
            (1, in_channels, size, size), ctx=ctxs[0]))
    return Distiller(teacher, hard_loss, d.temperature, d.hard_weight, d.loss)
