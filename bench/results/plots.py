"""Figures: error curves of runs (as He et al. 2015's Figs. 1, 4 and 6) and the accuracy /
compute trade-off of published and reproduced rows. PNGs via matplotlib's Agg backend."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import BenchError


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _figure(size: tuple[int, int], dpi: int = 100):
    plt = _pyplot()
    return plt, plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)


def curves_of(run_dir: Path) -> dict[str, Any]:
    """Per-epoch validation error (from result.json or log.jsonl) and training error (the
    logging windows of each epoch, averaged) of one run."""
    from bench.files import read_log
    log_path = Path(run_dir) / "log.jsonl"
    if not log_path.is_file():
        raise BenchError(f"{run_dir} has no log.jsonl: not a run directory")
    events = read_log(log_path)
    val, train, window_errors = [], [], []
    for e in events:
        if e.get("event") == "window":
            window_errors.append(e["train_error"])
        elif e.get("event") == "epoch":
            val.append((e["epoch"], e["top1_err"]))
            if window_errors:
                train.append((e["epoch"], 100.0 * sum(window_errors) / len(window_errors)))
            window_errors = []
    name = next((e.get("recipe") for e in events if e.get("event") == "start"), Path(run_dir).name)
    return {"name": f"{name} ({Path(run_dir).name})", "val": val, "train": train}


def plot_curves(run_dirs: list[Path], out: Path, size: tuple[int, int]) -> Path:
    data = [curves_of(d) for d in run_dirs]
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
    return _save(plt, fig, out)


def plot_tradeoff(results: Path, out: Path, size: tuple[int, int], dataset: str) -> Path:
    """Top-1 error against GMACs: published (hollow) and ours (filled, with its spread)."""
    from bench.results.published import load_published
    from bench.results.records import load_records
    from bench.results.table import build_rows
    rows = [r for r in build_rows(load_published(results / "published.toml"),
                                  load_records(results))
            if r.dataset == dataset and r.published and r.published.gmacs is not None]
    if not rows:
        raise BenchError(f"no published {dataset} numbers with GMACs to plot")
    plt, fig = _figure(size)
    ax = fig.add_subplot(1, 1, 1)
    pub = [(r.published.gmacs, r.published.top1_err) for r in rows
           if r.published.top1_err is not None]
    if pub:
        ax.scatter(*zip(*pub), facecolors="none", edgecolors="C0", label="published")
    ours = [r for r in rows if r.top1]
    if ours:
        ax.errorbar([r.published.gmacs for r in ours], [r.top1[0] for r in ours],
                    yerr=[r.top1[1] for r in ours], fmt="o", color="C3", label="ours (mean ± std)")
    ax.set_xlabel("GMACs per image")
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(dataset)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(plt, fig, out)


def _save(plt, fig, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=fig.dpi)
    plt.close(fig)
    return out


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w > 0 and h > 0:
            return w, h
    except ValueError:
        pass
    raise BenchError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 800x600")
