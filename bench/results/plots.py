"""Figures: error curves of runs (as He et al. 2015's Figs. 1, 4 and 6) and the accuracy /
compute trade-off of published and reproduced rows. PNGs via matplotlib's Agg backend."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.files import check_output_file, check_readable

MAX_PIXELS = 10000  # per side of a figure: our bound (a 10000 x 10000 RGBA canvas is 400 MB)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _figure(size: tuple[int, int], dpi: int = 100):
    plt = _pyplot()
    return plt, plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)


# --- curves ---------------------------------------------------------------------------------

def curves_of(run: Path) -> dict[str, Any]:
    """Per-epoch validation error and training error of a run directory (from its log: the
    logging windows of each epoch, averaged), or the validation error of a recorded result
    (``results/runs/*.json``: its history; a record keeps no training error)."""
    run = check_readable(run, "plot input")
    if run.is_file():
        from bench.runrecord import RunRecord
        record = RunRecord.load(run)
        val = [(e["epoch"], e["top1_err"]) for e in record.history if not e["partial"]]
        seed = "weights" if record.seed is None else f"seed {record.seed}"
        return {"name": f"{record.recipe} ({seed}, recorded)", "val": val, "train": []}
    from bench.files import read_log
    log_path = run / "log.jsonl"
    if not log_path.is_file():
        raise BenchError(f"{run} has no log.jsonl: give a run directory or a recorded result "
                         "(results/runs/*.json)")
    events = [e for e in read_log(log_path) if isinstance(e, dict)]
    val = []
    for e in events:
        if e.get("event") == "window":
            _number(e, "train_error", log_path)
            _number(e, "iteration", log_path)
        elif e.get("event") == "epoch":
            val.append((_number(e, "epoch", log_path), _number(e, "top1_err", log_path)))
            _number(e, "iteration", log_path)
    from bench.engine.jsonlog import train_error_by_epoch
    train = sorted(train_error_by_epoch(events).items())
    name = next((e.get("recipe") for e in events if e.get("event") == "start"), run.name)
    return {"name": f"{name} ({run.name})", "val": val, "train": train}


def _number(event: dict, key: str, log: Path) -> float:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BenchError(f"{log}: a line of event {event.get('event')!r} has {key} = "
                         f"{value!r:.30}, not a finite number: is this a run's log?")
    return value


def check_out(out: Path) -> Path:
    """``--out``: a .png file name in a folder that can be written (checked before any work)."""
    return check_output_file(out, "--out", (".png",))


def plot_curves(runs: list[Path], out: Path, size: tuple[int, int]) -> Path:
    check_out(out)
    data = [curves_of(d) for d in runs]
    if not any(d["val"] for d in data):
        raise BenchError("none of the runs has a finished epoch to plot")
    plt, fig = _figure(size)
    ax = fig.add_subplot(1, 1, 1)
    for i, d in enumerate(data):
        color = f"C{i % 10}"
        if d["train"]:
            ax.plot(*zip(*d["train"]), color=color, linestyle="--", linewidth=1,
                    label=f"{d['name']} train")
        if d["val"]:
            ax.plot(*zip(*d["val"]), color=color, linewidth=2, label=f"{d['name']} val top-1")
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(plt, fig, out)


# --- trade-off ------------------------------------------------------------------------------

MARKERS = "osD^vPX*<>hp"


def family(network: str) -> str:
    """A network's family: its name without depth and width (``resnet50_v1d`` -> ``resnet
    v1d``, ``resnext101_32x4d`` -> ``resnext``, ``cifar_wrn28_10`` -> ``cifar wrn``)."""
    name = re.sub(r"(?<=[a-z])\d+(?:_\d+)?(?:x\d+d)?", "", network, count=1)
    return re.sub(r"_+", " ", name).strip()


def protocol_group(protocol: str) -> str:
    """The protocol a point is marked by: re-evaluations of published weights share their
    protocol's marker, and the spelled-out pipelines of other code bases (``other: ...``)
    share one."""
    from bench.results.published import WEIGHTS_SUFFIX, split_precision
    label = split_precision(protocol)[0].removesuffix(WEIGHTS_SUFFIX)
    return "other pipelines (see results/README.md)" if label.startswith("other:") else label


def tradeoff_points(rows) -> tuple[list[dict[str, Any]], int]:
    """The points of the trade-off figure (x: GMACs per evaluated image under the row's
    protocol, all crops counted) and how many rows were left out (no compute for their
    protocol or network)."""
    from bench.results.published import WEIGHTS_SUFFIX, eval_gmacs, split_precision
    points, left_out = [], 0
    for r in rows:
        x = eval_gmacs(r.published) if r.published else None
        if x is None:
            left_out += 1
            continue
        # a re-evaluation or a converted (int8, bf16) net: its published number is the fp32 row's
        weights = (r.protocol.endswith(WEIGHTS_SUFFIX)
                   or split_precision(r.protocol)[1] is not None)
        points.append({"x": x, "family": family(r.network), "protocol": protocol_group(r.protocol),
                       "published": None if weights else r.published.top1_err,
                       "ours": r.top1, "n": r.n, "label": f"{r.network} / {r.recipe}",
                       "weights": weights})
    return points, left_out


def plot_tradeoff(results: Path, out: Path, size: tuple[int, int], dataset: str) -> Path:
    """Top-1 error against the compute of the evaluation: published numbers hollow, ours
    filled (mean ± std over seeds) and tied to the published number of the same row; colour
    is the network family, the marker the evaluation protocol."""
    from bench.results.table import current_rows
    check_out(out)
    rows = [r for r in current_rows(results)[0] if r.dataset == dataset and r.published]
    points, left_out = tradeoff_points(rows)
    if not points:
        raise BenchError(f"no published {dataset} numbers with GMACs to plot")
    families = sorted({p["family"] for p in points})
    protocols = sorted({p["protocol"] for p in points}, key=lambda s: (s.startswith("other"), s))
    colour = {f: f"C{i % 10}" for i, f in enumerate(families)}
    marker = {p: MARKERS[i % len(MARKERS)] for i, p in enumerate(protocols)}
    plt, fig = _figure(size)
    ax = fig.add_subplot(1, 1, 1)
    for p in points:
        if p["published"] is not None:
            ax.scatter(p["x"], p["published"], s=36, marker=marker[p["protocol"]],
                       facecolors="none", edgecolors=colour[p["family"]], linewidths=1.2)
    for p in points:
        if p["ours"] is None:
            continue
        mean, std = p["ours"]
        if p["published"] is not None:
            ax.plot([p["x"], p["x"]], [p["published"], mean], color="0.4", linewidth=0.8,
                    linestyle=":")
        ax.errorbar(p["x"], mean, yerr=std, fmt=marker[p["protocol"]], markersize=8,
                    color=colour[p["family"]], markeredgecolor="black", ecolor="black",
                    capsize=3, zorder=3)
        ax.annotate(f"ours: {p['label']} (n={p['n']})", (p["x"], mean), fontsize="x-small",
                    xytext=(8, -12), textcoords="offset points", zorder=4,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85,
                          "edgecolor": "0.6"})
    xs = [p["x"] for p in points]
    if max(xs) / min(xs) > 20:
        from matplotlib.ticker import FuncFormatter, LogLocator
        ax.set_xscale("log")  # plain tick labels: no mathtext
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("GMACs per evaluated image (at the protocol's crop size, all crops)")
    ax.set_ylabel("top-1 error (%)")
    title = f"{dataset}: published (hollow) and ours (filled, mean ± std over seeds)"
    if left_out:
        title += f"\n{left_out} rows left out: no compute for their protocol (multi-scale)"
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    from matplotlib.lines import Line2D
    fam = [Line2D([], [], marker="o", linestyle="", color=colour[f], label=f) for f in families]
    pro = [Line2D([], [], marker=marker[p], linestyle="", color="0.3", markerfacecolor="none",
                  label=p) for p in protocols]
    first = ax.legend(handles=fam, title="network family", fontsize="x-small",
                      title_fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.add_artist(first)
    ax.legend(handles=pro, title="evaluation protocol", fontsize="x-small",
              title_fontsize="small", loc="lower left", bbox_to_anchor=(1.01, 0.0))
    fig.tight_layout()
    return _save(plt, fig, out)


def _save(plt, fig, out: Path) -> Path:
    """Render to memory, then write atomically: a full disk leaves the old file (if any)."""
    import io
    from bench.files import atomic_write_bytes
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=fig.dpi)
    finally:
        plt.close(fig)
    atomic_write_bytes(Path(out), buffer.getvalue())
    return Path(out)


def parse_size(text: str) -> tuple[int, int]:
    """``"800x600"`` -> ``(800, 600)``; each side 1 to :data:`MAX_PIXELS`."""
    parts = text.strip().lower().split("x")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise BenchError(f"--size {text[:40]!r}: expected WIDTHxHEIGHT in pixels, e.g. 800x600")
    if not all(0 < len(p) <= 5 and 0 < int(p) <= MAX_PIXELS for p in parts):
        raise BenchError(f"--size {text[:40]!r}: each side must be 1 to {MAX_PIXELS} pixels, "
                         "e.g. 800x600")
    return int(parts[0]), int(parts[1])
