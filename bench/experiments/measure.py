"""One (network, seed) of an experiment, measured from its finished training run directory.

The training run is an ordinary run of the engine (``bench run``'s run directory); everything
here reads it: the per-epoch history and log for the curves and times, the newest checkpoint's
weights for the analyses. The result is the *measurement* dict whose format
:mod:`.quantities` reads (``experiments/README.md`` lists it).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Callable

from bench.errors import BenchError
from bench.experiments.schema import Experiment

EVAL_BATCH = 256
FORMAT = 1  # the measurement format; bump when a field changes meaning


def epoch_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Per epoch: running training error (train mode, augmented batches:
    :func:`bench.engine.jsonlog.train_error_by_epoch`), test error and wall time."""
    from bench.engine.jsonlog import train_error_by_epoch
    from bench.files import read_log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    train = train_error_by_epoch(read_log(run_dir / "log.jsonl"))
    return [{"epoch": e["epoch"], "train_err": train.get(e["epoch"]), "test_err": e["top1_err"],
             "time_s": e["epoch_time_s"]} for e in metrics["history"] if not e.get("partial")]


def partial_row(run_dir: Path) -> dict[str, Any] | None:
    """A --max-steps stop (``--quick``) evaluates once mid-epoch: its test error."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    partial = [e for e in metrics["history"] if e.get("partial")]
    return partial[-1] if partial else None


def measure(experiment: Experiment, network: str, seed: int, run_dir: Path,
            report: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """The measurement of one trained (network, seed): the training quantities, then each
    analysis the experiment lists, on the run's final weights."""
    from bench._mxnet import require_mxnet
    from bench.data.small import build_small_eval
    from bench.engine.build import data_spec
    from bench.engine.checkpoint import PARAMS, latest_checkpoint
    from bench.engine.evaluate import load_weights
    from bench.data.spec import in_channels, num_classes
    from bench.recipes.loader import recipe_from_dict
    from bench.analysis import clean_error
    mx = require_mxnet()
    recipe_dict = json.loads((run_dir / "recipe.json").read_text())
    recipe = recipe_from_dict(recipe_dict, str(run_dir / "recipe.json"))
    spec = data_spec(recipe)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise BenchError(f"{run_dir} has no checkpoint to measure; train it again "
                         f"(delete it and rerun the experiment)")
    ctx = mx.cpu()
    net = load_weights(network, checkpoint / PARAMS, num_classes(spec), in_channels(spec), [ctx])
    net.hybridize(static_alloc=True)
    test = lambda: build_small_eval(spec, None, EVAL_BATCH).batches()
    train = lambda: build_small_eval(spec, None, EVAL_BATCH, split="train").batches()
    epochs = epoch_rows(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    partial = partial_row(run_dir)
    times = [r["time_s"] for r in epochs if r["time_s"]]
    report(f"{network} seed {seed}: clean training error")
    final = {"train_err": epochs[-1]["train_err"] if epochs else None,
             "test_err": metrics["top1_err"],
             "clean_train_err": clean_error(net, train(), ctx),
             "epoch_time_s": statistics.median(times) if times else None}
    info = json.loads((run_dir / "run.json").read_text())
    out: dict[str, Any] = {
        "format": FORMAT, "network": network, "seed": seed, "final": final, "epochs": epochs,
        "training": {"run_id": info["run_id"], "run_dir": run_dir.name,
                     "iterations": metrics["iterations"], "epochs_done": metrics["epochs_done"],
                     "complete": metrics["complete"], "train_time_s": metrics["train_time_s"],
                     "partial_test_err": partial["top1_err"] if partial else None,
                     "recipe": recipe_dict,
                     "command": info.get("command"), "git": info.get("git"),
                     "versions": info.get("versions"), "hardware": info.get("hardware"),
                     "date": info.get("date")}}
    if "model" in experiment.analyses or "lesion" in experiment.analyses:
        out["model"] = model_facts(net)
    if "responses" in experiment.analyses:
        report(f"{network} seed {seed}: layer responses")
        out["responses"] = responses(net, spec, experiment.responses.images, ctx)
    if "lesion" in experiment.analyses:
        # Imperative: a deletion then flips flags instead of rebuilding a graph (the same
        # numbers, and several times faster for hundreds of deletion sets).
        net.hybridize(active=False)
        n = experiment.lesion.images
        subset = lambda: _first(test(), n) if n else test()
        out["lesion"] = lesion(net, subset, experiment, seed, ctx, report, network)
    return out


def _first(batches, n: int):
    """The first ``n`` samples of a batch iterable (the lesion study's test subset)."""
    seen = 0
    for x, y in batches:
        if seen >= n:
            return
        take = min(len(y), n - seen)
        yield x[:take], y[:take]
        seen += take


def model_facts(net) -> dict[str, Any]:
    """Residual units and the expected number a training pass runs through (the sum of the
    units' survival probabilities as built: Huang et al.'s (3L - 1) / 4 for p_L = 0.5 is the
    closed form a claim checks this against)."""
    from bench.analysis import units
    from bench.analysis.graph import blocks as all_blocks
    from bench.models.resnet import ResidualUnit
    blocks = [b for b in all_blocks(net) if isinstance(b, ResidualUnit)]
    return {"units": len(units(net)),
            "expected_depth": float(sum(getattr(b, "_survival", 1.0) for b in blocks))}


def responses(net, spec, images: int, ctx) -> dict[str, Any]:
    """He 2015 Fig. 7 on the first ``images`` test images (the same for every net)."""
    import numpy as np
    from bench.analysis import layer_responses
    from bench.data.small import build_small_eval
    batches = []
    for x, _ in build_small_eval(spec, None, EVAL_BATCH).batches():
        batches.append(x)
        if sum(len(b) for b in batches) >= images:
            break
    x = np.concatenate(batches)[:images]
    return {"images": int(len(x)), "std": [float(v) for v in layer_responses(net, x, ctx)]}


def lesion(net, test, experiment: Experiment, seed: int, ctx, report, network: str
           ) -> dict[str, Any]:
    """Veit et al. 2016: every single deletion (Fig. 3), then ``samples`` random sets of k
    deleted units for k = 1 .. max_k (Fig. 5), drawn from the removable units with a generator
    keyed by (seed, k), so every network of a seed sees the same sets when they have the same
    units."""
    from bench.analysis import clean_error, deletion_sets, lesion_errors, single_deletions, units
    found = units(net)
    removable = [u.index for u in found if u.removable]
    fixed = [u.index for u in found if not u.removable]
    report(f"{network} seed {seed}: lesion, single deletions")
    base = clean_error(net, test(), ctx)
    single = [{"index": u.index, "stage": u.stage, "position": u.position,
               "downsampling": u.downsampling, "err": float(err)}
              for u, err in single_deletions(net, test, ctx)]
    top = experiment.lesion.max_k or len(removable)
    top = min(top, len(removable))
    ks = []
    for k in range(1, top + 1):
        report(f"{network} seed {seed}: lesion, {k} of {top} units deleted")
        sets = deletion_sets(len(found), k, experiment.lesion.samples, seed, exclude=fixed)
        ks.append({"k": k, "errs": [float(e) for e in lesion_errors(net, test, sets, ctx)]})
    return {"base_err": float(base), "single": single, "k": ks,
            "removable": len(removable), "images": experiment.lesion.images or None}
