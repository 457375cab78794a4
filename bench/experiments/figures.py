"""Figures of the small-scale reproductions, drawn as the papers draw them: training curves
(He et al. 2015, Fig. 6), layer response std (Fig. 7), lesion studies (Veit et al. 2016,
Figs. 3 and 5) and seconds per epoch (stochastic against constant depth).

Input is a list of *measurements* (one dict per network and seed, as the runner writes
them); several seeds of a network are drawn as their median with a light min..max band, so
one figure shows both the result and how much it depends on the seed.
"""
from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any, Callable

from bench.errors import BenchError, did_you_mean
from bench.results.plots import _figure, _save, check_out

Measurement = dict[str, Any]

# --- labels ---------------------------------------------------------------------------------

_NAME = re.compile(r"(?:cifar_)?(?P<kind>plain|resnet)(?P<depth>\d+)_v(?P<version>[12])"
                   r"(?P<tags>(?:_[a-z]+)*)")
_TAGS = {"a": None, "c": "option C", "sd": "stoch. depth"}  # option A: the CIFAR default


def label(network: str) -> str:
    """The papers' short name of a registry network: ``cifar_plain56_v1`` -> ``plain-56``,
    ``cifar_resnet56_v1_a`` -> ``ResNet-56``, ``cifar_resnet110_v1_sd`` -> ``ResNet-110
    (stoch. depth)``, ``cifar_resnet56_v2_a`` -> ``ResNet-56 (pre-act)``; a name of another
    pattern is its own label."""
    match = _NAME.fullmatch(network)
    tags = match["tags"].split("_")[1:] if match else []
    if not match or any(t not in _TAGS for t in tags):
        return network
    if match["kind"] == "plain":
        return f"plain-{match['depth']}" if match["version"] == "1" and not tags else network
    notes = ["pre-act"] if match["version"] == "2" else []
    if match["version"] == "1" and not tags:
        notes.append("option B")  # projection shortcuts where the shape changes
    notes += [_TAGS[t] for t in tags if _TAGS[t]]
    name = f"ResNet-{match['depth']}"
    return f"{name} ({', '.join(notes)})" if notes else name


# --- selecting and summarising --------------------------------------------------------------

def _by_network(measurements: list[Measurement], networks: list[str], key: str,
                has: Callable[[Measurement], bool]) -> dict[str, list[Measurement]]:
    """The measurements of each asked network that ``has`` the data under ``key`` (ordered by
    seed), networks without any left out; a one-line error when none has it or a network was
    never measured."""
    if not networks:
        raise BenchError("no networks to plot: name at least one")
    measurements = [m for m in measurements if isinstance(m, dict)
                    and isinstance(m.get("network"), str)]
    measured = sorted({m["network"] for m in measurements})
    for network in networks:
        if network not in measured:
            raise BenchError(f"no measurement of network {network!r}"
                             f"{did_you_mean(network, measured)}; measured: "
                             f"{', '.join(measured) or 'none'}")
    chosen = {n: sorted((m for m in measurements if m.get("network") == n and has(m)),
                        key=lambda m: m.get("seed", 0)) for n in dict.fromkeys(networks)}
    chosen = {n: ms for n, ms in chosen.items() if ms}
    if not chosen:
        raise BenchError(f"none of the measurements of {', '.join(dict.fromkeys(networks))} has "
                         f"{key!r} data: measure them again with it recorded")
    return chosen


def _spread(values: list[float]) -> tuple[float, float, float]:
    """Median, min and max: the line and the band of several seeds."""
    return statistics.median(values), min(values), max(values)


def _colours(networks) -> dict[str, str]:
    """One colour per network, the same in every panel of a figure."""
    return {n: f"C{i % 10}" for i, n in enumerate(dict.fromkeys(networks))}


def _missing_note(ax, asked: list[str], drawn) -> None:
    """Say on the figure which asked networks had nothing to draw, rather than drop them
    silently."""
    missing = [label(n) for n in dict.fromkeys(asked) if n not in drawn]
    if missing:
        ax.text(0.01, 0.01, f"no data: {', '.join(missing)}", transform=ax.transAxes,
                fontsize="x-small", color="0.4", va="bottom")


def _per_epoch(runs: list[Measurement], key: str) -> tuple[list[int], list[tuple]]:
    """Epochs and the (median, min, max) of ``key`` over the seeds that reached each epoch."""
    values: dict[int, list[float]] = {}
    for m in runs:
        for e in m["epochs"]:
            values.setdefault(e["epoch"], []).append(e[key])
    epochs = sorted(values)
    return epochs, [_spread(values[e]) for e in epochs]


def _band(ax, x, spread: list[tuple], colour: str, alpha: float, **line) -> None:
    ax.plot(x, [s[0] for s in spread], color=colour, **line)
    if any(s[1] != s[2] for s in spread):
        ax.fill_between(x, [s[1] for s in spread], [s[2] for s in spread], color=colour,
                        alpha=alpha, linewidth=0)


# --- figures --------------------------------------------------------------------------------

def plot_training_curves(measurements: list[Measurement], out: Path, *,
                         panels: dict[str, list[str]]) -> Path:
    """He 2015 Fig. 6: per panel (e.g. plain / ResNet) training error (running, in train mode:
    thin dashed) and test error (bold) against epochs, one colour per network."""
    check_out(out)
    asked = [n for nets in panels.values() for n in nets]
    runs = _by_network(measurements, asked, "epochs",
                       lambda m: bool(m.get("epochs")))
    colour = _colours(asked)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    plt, fig = _figure((max(1, len(panels)) * 560, 460))
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (title, networks) in zip(axes, panels.items()):
        handles = []
        for network in dict.fromkeys(networks):
            if network not in runs:
                continue
            for key, width, style, alpha in (("train_err", 1.0, "--", 0.08),
                                             ("test_err", 2.2, "-", 0.18)):
                epochs, spread = _per_epoch(runs[network], key)
                _band(ax, epochs, spread, colour[network], alpha, linewidth=width,
                      linestyle=style)
            seeds = len(runs[network])
            handles.append(Line2D([], [], color=colour[network], linewidth=2.2,
                                  label=f"{label(network)} ({seeds} seed{'s' * (seeds > 1)})"))
        handles += [Line2D([], [], color="0.3", linewidth=1.0, linestyle="--",
                           label="training error (running)"),
                    Line2D([], [], color="0.3", linewidth=2.2, label="test error")]
        _missing_note(ax, networks, runs)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("error (%)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(handles=handles, fontsize="small")
    fig.tight_layout()
    return _save(plt, fig, out)


def plot_responses(measurements: list[Measurement], out: Path, *, networks: list[str]) -> Path:
    """He 2015 Fig. 7: std of each 3x3 layer's response (after BN, before the nonlinearity)
    in depth order (top) and sorted in descending order (bottom); residual functions closer
    to zero than plain layers show as lower curves."""
    check_out(out)
    runs = _by_network(measurements, networks, "responses.std",
                       lambda m: bool((m.get("responses") or {}).get("std")))
    colour = _colours(networks)
    from matplotlib.ticker import MaxNLocator
    plt, fig = _figure((800, 700))
    top, bottom = fig.subplots(2, 1)
    for network, ms in runs.items():
        lengths = {len(m["responses"]["std"]) for m in ms}
        if len(lengths) > 1:
            raise BenchError(f"the seeds of {network} measured different numbers of layers "
                             f"({', '.join(map(str, sorted(lengths)))}): measure them again")
        median = [statistics.median(layer) for layer in zip(*(m["responses"]["std"] for m in ms))]
        layers = range(1, len(median) + 1)
        name = f"{label(network)} ({len(ms)} seed{'s' * (len(ms) > 1)}, median)"
        top.plot(layers, median, color=colour[network], marker=".", linewidth=1.2, label=name)
        bottom.plot(layers, sorted(median, reverse=True), color=colour[network], marker=".",
                    linewidth=1.2, label=name)
    top.set_title("layer responses in depth order")
    top.set_xlabel("layer index (original order, 3x3 layers)")
    bottom.set_title("layer responses sorted by magnitude")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("std of response (after BN)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _missing_note(top, networks, runs)
    fig.tight_layout()
    return _save(plt, fig, out)


def plot_lesion(measurements: list[Measurement], out: Path, *, networks: list[str]) -> Path:
    """Veit 2016 Figs. 3 and 5: test error after deleting each single residual unit (left;
    downsampling units marked red, each network's error without deletion dotted) and after
    deleting k random units (right: mean over sets and seeds, band min..max)."""
    check_out(out)
    runs = _by_network(measurements, networks, "lesion", lambda m: bool(m.get("lesion")))
    colour = _colours(networks)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    plt, fig = _figure((1100, 460))
    single, several = fig.subplots(1, 2)
    handles = []
    for network, ms in runs.items():
        lesions = [m["lesion"] for m in ms]
        c = colour[network]
        base = statistics.median(les["base_err"] for les in lesions)
        single.axhline(base, color=c, linestyle=":", linewidth=1.2)
        units: dict[int, list[float]] = {}
        downsampling = set()
        for les in lesions:
            for unit in les.get("single", []):
                units.setdefault(unit["index"] + 1, []).append(unit["err"])
                if unit.get("downsampling"):
                    downsampling.add(unit["index"] + 1)
        x = sorted(units)
        if x:
            spread = [_spread(units[i]) for i in x]
            _band(single, x, spread, c, 0.15, marker="o", markersize=4, linewidth=1.2)
            down = [i for i in x if i in downsampling]
            single.plot(down, [statistics.median(units[i]) for i in down], linestyle="",
                        marker="o", markersize=8, markerfacecolor="none",
                        markeredgecolor="red", markeredgewidth=1.6)
        errs: dict[int, list[float]] = {0: [les["base_err"] for les in lesions]}
        for les in lesions:
            for entry in les.get("k", []):
                errs.setdefault(entry["k"], []).extend(entry["errs"])
        ks = sorted(k for k in errs if errs[k])
        several.plot(ks, [statistics.fmean(errs[k]) for k in ks], color=c, marker="o",
                     markersize=4, linewidth=1.5)
        several.fill_between(ks, [min(errs[k]) for k in ks], [max(errs[k]) for k in ks],
                             color=c, alpha=0.15, linewidth=0)
        handles.append(Line2D([], [], color=c, marker="o", markersize=4,
                              label=f"{label(network)} ({len(ms)} seed{'s' * (len(ms) > 1)})"))
    marks = [Line2D([], [], linestyle="", marker="o", markersize=8, markerfacecolor="none",
                    markeredgecolor="red", markeredgewidth=1.6, label="downsampling unit"),
             Line2D([], [], color="0.3", linestyle=":", label="no unit deleted")]
    single.set_title("deleting a single unit")
    single.set_xlabel("index of the deleted unit (1 = first)")
    single.legend(handles=handles + marks, fontsize="small")
    several.set_title("deleting k random units (mean, band: min..max)")
    several.set_xlabel("number of deleted units k")
    several.xaxis.set_major_locator(MaxNLocator(integer=True))
    single.xaxis.set_major_locator(MaxNLocator(integer=True))
    several.legend(handles=handles, fontsize="small")
    for ax in (single, several):
        ax.set_ylabel("test error (%)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    _missing_note(single, networks, runs)
    fig.tight_layout()
    return _save(plt, fig, out)


def plot_epoch_times(measurements: list[Measurement], out: Path, *, networks: list[str]) -> Path:
    """Seconds per training epoch of each network: median over seeds, error bars min..max;
    stochastic depth should be faster than the same network at constant depth by about its
    expected depth over its number of units."""
    check_out(out)
    runs = _by_network(measurements, networks, "final.epoch_time_s",
                       lambda m: isinstance((m.get("final") or {}).get("epoch_time_s"),
                                            (int, float)))
    colour = _colours(networks)
    names = list(runs)
    spread = [_spread([m["final"]["epoch_time_s"] for m in runs[n]]) for n in names]
    plt, fig = _figure((max(600, 140 * len(names) + 200), 460))
    ax = fig.add_subplot(1, 1, 1)
    x = range(len(names))
    bars = ax.bar(x, [s[0] for s in spread], color=[colour[n] for n in names],
                  yerr=[[s[0] - s[1] for s in spread], [s[2] - s[0] for s in spread]],
                  capsize=4)
    for bar, network, s in zip(bars, names, spread):
        model = runs[network][0].get("model") or {}
        text = f"{s[0]:.2f} s"
        units, expected = model.get("units"), model.get("expected_depth")
        if isinstance(units, int) and isinstance(expected, (int, float)) and expected < units:
            text += f"\nexpected {expected:g} of {units} units"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, s[2]), xytext=(0, 4),
                    textcoords="offset points", ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(list(x))
    ax.set_xticklabels([f"{label(n)}\n({len(runs[n])} seed{'s' * (len(runs[n]) > 1)})"
                        for n in names], fontsize="small")
    ax.set_ylabel("training time per epoch (s)")
    ax.set_xlabel("network")
    ax.set_title("seconds per epoch: stochastic against constant depth")
    ax.set_ylim(0, max(s[2] for s in spread) * 1.25 or 1)
    ax.grid(alpha=0.3, axis="y")
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=colour[n], label=label(n)) for n in names],
              title="median over seeds, error bars min..max", title_fontsize="x-small",
              fontsize="small", loc="upper left")
    _missing_note(ax, networks, runs)
    fig.tight_layout()
    return _save(plt, fig, out)
