"""Describe the model zoo: one row per registered network, or one network layer by layer.

Plain functions behind ``bench models``; counts follow :mod:`bench.models.counting` (total
parameters as GluonCV's ``collect_params()`` holds them, multiply-adds of convolutions and
dense layers per image at the network's own input size).
"""
from __future__ import annotations

import contextlib
import functools
import io
import re

from tabulate import tabulate

from bench import terminal
from bench.terminal import FORMATS

from bench.errors import BenchError, check_choice, did_you_mean
from bench.models import ALIASES, get_model, get_spec, list_models, resolve_name


# Row key -> table header; the keys are the JSON / CSV field names, in this order.
COLUMNS = {
    "name": "name",
    "aliases": "aliases",
    "family": "family",
    "dataset": "dataset",
    "depth": "depth",
    "params_m": "params (M)",
    "gmacs": "GMACs",
    "input": "input",
    "gluoncv": "gluoncv",
    "source": "source",
}
_NUMERIC = {"depth", "params_m", "gmacs"}
# What the default table shows in a 100-column terminal (aliases and sources shortened);
# --wide shows every column in full.
NARROW = ("name", "params_m", "gmacs", "input", "aliases", "source")
TABLE_NOTE = ("params (M): total parameters, BN running mean/var included, as GluonCV's "
              "collect_params() counts them; GMACs: convolution + dense multiply-adds for one "
              "image at the input size.")


def _profile(name: str, input_size: int):
    from bench.models import profile  # imports mxnet
    from bench._mxnet import require_mxnet

    mx = require_mxnet()
    net = get_model(name)
    try:
        # MXNet prints the argument shapes to stdout when shape inference fails.
        with contextlib.redirect_stdout(io.StringIO()):
            return net, profile(net, (1, 3, input_size, input_size))
    except mx.base.MXNetError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        # "MXNetError: Error in operator X: [19:48:56] ../src/f.cc:192: Check failed: ..."
        first = re.sub(r"^MXNetError: |\[[\d:]+\] \S+:\d+: (Check failed: )?", "",
                       first.strip())
        raise BenchError(f"{resolve_name(name)} cannot take a {input_size}x{input_size} "
                         f"input: {first}") from None


@functools.lru_cache(maxsize=None)
def _counts(name: str) -> tuple[int, float]:
    """(total parameters, GMACs) of a registered net at its own input size; cached."""
    _, prof = _profile(name, get_spec(name).input_size)
    return prof.total_params, prof.gmacs


def describe(pattern: str = "*") -> list[dict]:
    """One row per registered network whose name or alias matches the shell-style
    ``pattern``, in :func:`bench.models.list_models` order."""
    names = list_models(pattern)
    if not names:
        raise BenchError(f"no model matches {pattern!r}"
                         f"{did_you_mean(pattern, [*list_models(), *ALIASES])}")
    rows = []
    for name in names:
        spec = get_spec(name)
        total, gmacs = _counts(name)
        rows.append({
            "name": spec.name,
            "aliases": ",".join(spec.aliases),
            "family": spec.family,
            "dataset": spec.dataset,
            "depth": spec.depth,
            "params_m": round(total / 1e6, 2),
            "gmacs": round(gmacs, 3),
            "input": f"{spec.input_size}x{spec.input_size}",
            "gluoncv": spec.gluoncv or "",
            "source": spec.source,
        })
    return rows


def render(rows: list[dict], fmt: str = "table", wide: bool = False) -> str:
    """``rows`` from :func:`describe` as a GitHub-style table (plus a note on the units) that
    fits a 100-column terminal (``wide``: every column, nothing shortened), a JSON list of
    objects, or CSV with a header row. No trailing newline."""
    check_choice("format", fmt, FORMATS)
    if fmt != "table":
        return terminal.render_data(rows, fmt, COLUMNS)
    keys = list(COLUMNS) if wide else list(NARROW)
    cells = [{key: _cell(key, row[key]) for key in keys} for row in rows]
    note = TABLE_NOTE if wide else f"{TABLE_NOTE} --wide: every column, in full."
    return terminal.render(cells, {k: COLUMNS[k] for k in keys},
                           width=None if wide else terminal.WIDTH,
                           shrink=("aliases", "source"), right=tuple(_NUMERIC), note=note)


def _cell(key: str, value) -> str:
    if key == "params_m":
        return f"{value:.2f}"
    if key == "gmacs":
        return f"{value:.3f}"
    return str(value)


def layer_summary(name: str, input_size: int | None = None) -> str:
    """Every operator of the network's forward graph (output shape per image, parameters,
    multiply-adds) followed by the totals, the source and the constructor flags."""
    spec = get_spec(name)
    size = input_size or spec.input_size
    net, prof = _profile(spec.name, size)
    prefix = net.prefix
    cells = []
    for row in prof.layers:
        short = row.name[len(prefix):] if row.name.startswith(prefix) else row.name
        short = short[:-4] if short.endswith("_fwd") else short
        shape = "x".join(map(str, row.output_shape[1:]))
        cells.append([short, row.op, shape, f"{row.params:,}", f"{row.macs:,}"])
    table = tabulate(cells, headers=["layer", "op", "output (per image)", "params", "MACs"],
                     tablefmt="github", disable_numparse=True,
                     colalign=["left", "left", "right", "right", "right"])
    flags = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                      for k, v in {"classes": spec.classes, **spec.flags}.items())
    totals = [
        ("model", spec.name + (f" (aliases: {', '.join(spec.aliases)})" if spec.aliases
                               else "")),
        ("input", f"3x{size}x{size}" + ("" if size == spec.input_size
                                          else f" (registered size {spec.input_size})")),
        ("layers", f"{len(prof.layers)} operators, "
                   f"{sum(r.op == 'Convolution' for r in prof.layers)} convolutions"),
        ("learnable params", f"{prof.learnable_params:,}"),
        ("total params", f"{prof.total_params:,} ({prof.total_params / 1e6:.2f} M, BN running "
                         "stats included)"),
        ("GMACs", f"{prof.gmacs:.3f} (convolution + dense multiply-adds, one image)"),
        ("activation memory", f"{prof.activation_bytes / 2**20:.1f} MiB (every operator "
                              "output, one image, fp32)"),
        ("source", spec.source),
        ("flags", flags),
    ]
    width = max(len(k) for k, _ in totals)
    block = "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in totals)
    return f"{table}\n\n{block}"
