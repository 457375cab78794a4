#!/usr/bin/env python3
"""Time the networks of our `bench speed` matrix in PyTorch and print one table next to ours.

Run it with a Python that has torch (and timm / torchvision); it is not part of `make test`
(torch's wheels are about 5.5 GB):

    TORCH_PYTHON scripts/torch_peer.py --models resnet50_v1d cifar_resnet20_v1 -b 16 64 \\
        --threads 2 --rounds 3 [--mode infer|train|both] [--json OUT]

Our figures come from `bench speed MODEL -f json` run through --bench-python (default: the
.venv of the repository this script sits in, with PYTHONPATH=repo and OMP_NUM_THREADS=threads)
for float32, bfloat16 and (inference) int8, or from saved JSON files (--ours FILE...).
PyTorch is timed in fp32, fp32 channels-last, and bf16 autocast with channels-last
(``torch.autocast("cpu", dtype=torch.bfloat16)``), with ``torch.set_num_threads(threads)``:
warm-up steps, then --rounds timed rounds of --iterations steps (default: about --seconds
each), median and min-max of the rounds, as `bench speed` does. A training step is forward,
cross-entropy, backward and an SGD step (momentum 0.9, wd 1e-4, lr 1e-3), as ours. torch runs
eager: no torch.compile (it needs a C++ compiler and minutes per net) and no TorchScript
freezing (deprecated), so its weights are reordered for oneDNN on every call.

The peers (NAME_MAP): timm ``resnet50d`` for resnet50_v1d, torchvision's and timm's ``resnet50``
for resnet50_v1b. No peer library ships He 2015's CIFAR ResNet-20, so
:func:`cifar_resnet_v1` below defines it in torch the way GluonCV's ``cifar_resnet20_v1``
builds it (and so our net): 3x3 stem conv + BN without ReLU, three stages of basic blocks,
1x1-conv + BN projection where the shape changes. Every torch net's parameter count is checked
against ours (`--bench-python`) and the table says whether they are equal.

Everything but the timing (the name map, the result records, the table) imports without torch,
so tests/test_torch_peer.py checks it in `make test`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.precision / bench.provenance: no MXNet needed

from bench.precision import cpu_flags, present  # noqa: E402
from bench.provenance import cpu_model  # noqa: E402

INSTALL_HINT = "install torch, e.g. pip install torch timm torchvision"
MODES = ("infer", "train")
# Our precisions as `bench speed --dtype` names them; int8 is inference only.
OUR_DTYPES = {"infer": ("float32", "bfloat16", "int8"), "train": ("float32", "bfloat16")}
# PyTorch's: (label, channels_last, autocast dtype name or None).
TORCH_PRECISIONS = (("float32", False, None), ("float32 channels_last", True, None),
                    ("bfloat16 autocast channels_last", True, "bfloat16"))
REFERENCE = "float32"  # every ratio is to the first peer's fp32 figure


@dataclass(frozen=True)
class Peer:
    """A PyTorch network of the same architecture: ``library`` builds ``constructor``."""

    library: str  # "timm", "torchvision" or "local" (defined in this script)
    constructor: str

    @property
    def label(self) -> str:
        return f"{self.library} {self.constructor}"


# Our registry name -> its PyTorch peers (the first is the one every ratio refers to), and the
# input size and classes our net has (bench models NAME).
NAME_MAP: dict[str, tuple[tuple[Peer, ...], int, int]] = {
    "resnet50_v1d": ((Peer("timm", "resnet50d"),), 224, 1000),
    "resnet50_v1b": ((Peer("torchvision", "resnet50"), Peer("timm", "resnet50")), 224, 1000),
    "cifar_resnet20_v1": ((Peer("local", "cifar_resnet20_v1"),), 32, 10),
}


@dataclass
class Figure:
    """One timed configuration: the median images/s of its rounds and every round."""

    network: str
    batch: int
    mode: str
    framework: str  # "mxnet (ours)" or "torch"
    implementation: str  # "bench resnet50_v1d", "timm resnet50d", ...
    precision: str
    images_per_sec: float
    rounds: list[float] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.network, self.batch, self.mode)


def figure_from_ours(result: dict) -> Figure:
    """Our `bench speed -f json` result as a :class:`Figure` (its own net, not --compare's)."""
    precision = result["dtype"] + (" fused" if result.get("fused") else "")
    return Figure(result["model"], int(result["batch_size"]), result["mode"], "mxnet (ours)",
                  f"bench {result['ours']['name']}", precision,
                  float(result["ours"]["images_per_sec"]),
                  [float(v) for v in result["ours"]["rounds"]])


def table_rows(figures: list[Figure]) -> list[list[object]]:
    """One row per figure, grouped by (network, batch, mode), ours first, with the ratio to the
    first torch fp32 figure of the same group (None where there is none)."""
    groups: dict[tuple, list[Figure]] = {}
    for fig in figures:
        groups.setdefault(fig.key, []).append(fig)
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], MODES.index(k[2]) if k[2] in MODES
                                              else len(MODES))):
        group = groups[key]
        ref = next((f for f in group if f.framework == "torch" and f.precision == REFERENCE),
                   None)
        group.sort(key=lambda f: (f.framework != "mxnet (ours)", ))  # stable: ours first
        for fig in group:
            spread = (f"{min(fig.rounds):.1f}-{max(fig.rounds):.1f}" if fig.rounds else "")
            ratio = fig.images_per_sec / ref.images_per_sec if ref else None
            rows.append([fig.network, fig.batch, fig.mode, fig.framework, fig.implementation,
                         fig.precision, round(fig.images_per_sec, 1), spread,
                         None if ratio is None else f"{ratio:.2f}x"])
    return rows


HEADERS = ["network", "batch", "mode", "framework", "implementation", "precision", "img/s",
           "rounds min-max", "/ torch fp32"]


def render_table(rows: list[list[object]]) -> str:
    """A markdown table (tabulate's "github" format if tabulate is importable, else the same
    layout by hand)."""
    try:
        from tabulate import tabulate
    except ImportError:
        tabulate = None
    if tabulate is not None:
        return tabulate(rows, headers=HEADERS, tablefmt="github", missingval="-",
                        disable_numparse=True)
    cells = [HEADERS] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADERS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def record(figures: list[Figure], *, threads: int, versions: dict, params: dict,
           load_before: list, load_after: list) -> dict:
    """Every figure with what it was measured on (the --json file)."""
    return {
        "figures": [asdict(f) for f in figures],
        "cpu": cpu_model(),
        "cpu_flags": present(cpu_flags()),
        "cores": len(os.sched_getaffinity(0)),
        "threads": threads,
        "versions": versions,
        "params": params,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def params_line(params: dict) -> str:
    """``cifar_resnet20_v1 (local cifar_resnet20_v1): 272,474 = ours``, one per peer."""
    parts = []
    for name, entry in params.items():
        for peer, count in entry["torch"].items():
            ours = entry.get("ours")
            verdict = ("ours not counted" if ours is None else "= ours" if count == ours
                       else f"!= ours {ours:,}")
            parts.append(f"{name} ({peer}): {count:,} learnable {verdict}")
    return "parameters: " + "; ".join(parts)


# --- the torch side (imported only when timing) ----------------------------------------------

def cifar_resnet_v1(depth: int = 20, classes: int = 10):
    """He 2015's CIFAR ResNet (6n+2) as GluonCV's ``cifar_resnet<d>_v1`` builds it: 3x3 conv
    (16) + BN, no ReLU after the stem BN; stages of 16/32/64 channels with n basic blocks
    (conv-BN-ReLU-conv-BN, add, ReLU), stride 2 at the first block of stages 2 and 3, a 1x1
    conv + BN projection where the channels change; global average pooling and a linear
    classifier. Written for this comparison (no peer library ships it)."""
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                             nn.BatchNorm2d(cout)) if cin != cout else None)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(self.body(x) + identity)

    n = (depth - 2) // 6
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(n):
            layers.append(Block(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def build_peer(peer: Peer, classes: int):
    if peer.library == "timm":
        import timm
        return timm.create_model(peer.constructor, pretrained=False, num_classes=classes)
    if peer.library == "torchvision":
        import torchvision
        return getattr(torchvision.models, peer.constructor)(weights=None, num_classes=classes)
    if peer.constructor == "cifar_resnet20_v1":
        return cifar_resnet_v1(20, classes)
    raise ValueError(f"no local definition of {peer.constructor}")


def count_params(net) -> tuple[int, int]:
    """(learnable, learnable + BN running statistics), as bench counts them."""
    learnable = sum(p.numel() for p in net.parameters())
    stats = sum(b.numel() for k, b in net.named_buffers() if not k.endswith("num_batches_tracked"))
    return learnable, learnable + stats


def time_torch(peer: Peer, *, network: str, batch: int, mode: str, size: int, classes: int,
               precision: tuple[str, bool, str | None], warmup: int, rounds: int,
               iterations: int | None, seconds: float, say) -> Figure:
    """Median images/s of ``rounds`` rounds of one torch configuration."""
    import contextlib

    import torch
    label, channels_last, autocast = precision
    torch.manual_seed(0)
    net = build_peer(peer, classes)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.randn(batch, 3, size, size).to(memory_format=fmt)
    y = torch.randint(0, classes, (batch,))

    def cast():
        return (torch.autocast("cpu", dtype=getattr(torch, autocast)) if autocast
                else contextlib.nullcontext())

    if mode == "infer":
        net.eval()

        def step():
            with torch.inference_mode(), cast():
                net(x)
    else:
        net.train()
        loss_fn = torch.nn.CrossEntropyLoss()
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            with cast():
                loss = loss_fn(net(x).float(), y)
            loss.backward()
            opt.step()

    for _ in range(max(1, warmup)):
        step()
    if iterations is None:
        start = time.perf_counter()
        step()
        iterations = max(1, round(seconds / (time.perf_counter() - start)))
    rates = []
    for r in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            step()
        rates.append(iterations * batch / (time.perf_counter() - start))
        say(f"{network} b{batch} {mode} torch {peer.label} {label}: round {r + 1}/{rounds} "
            f"{rates[-1]:.1f} img/s")
    return Figure(network, batch, mode, "torch", peer.label, label, statistics.median(rates),
                  [round(v, 3) for v in rates])


# --- ours, through bench's own Python --------------------------------------------------------

def default_bench_python() -> str:
    return str(ROOT / ".venv" / "bin" / "python")


def _bench_env(threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    return env


def run_ours(python: str, *, network: str, batch: int, mode: str, dtype: str, threads: int,
             warmup: int, rounds: int, iterations: int | None) -> dict:
    """`bench speed NETWORK -f json` in bench's Python; its JSON result."""
    cmd = [python, "-m", "bench", "speed", network, "-b", str(batch), "--mode", mode,
           "--dtype", dtype, "--rounds", str(rounds), "--warmup", str(warmup), "-f", "json"]
    if iterations is not None:
        cmd += ["--iterations", str(iterations)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_bench_env(threads),
                          cwd=ROOT)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"error: {' '.join(cmd[1:])} failed: {last}")
    return json.loads(done.stdout)


def count_ours(python: str, networks: list[str]) -> dict[str, int]:
    """Our learnable parameter counts (bench.models.counting: shape inference, no forward)."""
    code = ("import json, sys\nfrom bench.models import get_model, get_spec\n"
            "from bench.models.counting import profile\nout = {}\n"
            "for n in sys.argv[1:]:\n    s = get_spec(n)\n"
            "    out[n] = profile(get_model(n), (1, 3, s.input_size, s.input_size))"
            ".learnable_params\nprint(json.dumps(out))\n")
    done = subprocess.run([python, "-c", code, *networks], capture_output=True, text=True,
                          env=_bench_env(1), cwd=ROOT)
    if done.returncode != 0:
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_ours(paths: list[Path]) -> list[dict]:
    """Saved `bench speed -f json` results: one per file, or a list of them."""
    results = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        results.extend(data if isinstance(data, list) else [data])
    return results


def _versions() -> dict:
    from importlib import metadata
    out = {"python": sys.version.split()[0]}
    for name in ("torch", "timm", "torchvision"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def configurations(models: list[str] | None, batches: list[int] | None, mode: str | None,
                   ours: list[dict] | None = None) -> list[tuple[str, int, str]]:
    """The (network, batch, mode) triples to time in torch: the product of the options (their
    defaults: every mapped network, batch 16, inference), or with saved results of ours, the
    triples they hold (of the mapped networks), narrowed by whichever options are given."""
    modes = None if mode is None else (MODES if mode == "both" else (mode,))
    if ours is None:
        return [(n, b, m) for n in models or NAME_MAP for b in batches or [16]
                for m in modes or ("infer",)]
    found = sorted({(r["model"], int(r["batch_size"]), r["mode"]) for r in ours})
    return [(n, b, m) for n, b, m in found if n in NAME_MAP and (models is None or n in models)
            and (batches is None or b in batches) and (modes is None or m in modes)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None, choices=list(NAME_MAP),
                        metavar="NAME", help=f"our names [default: all of {', '.join(NAME_MAP)}; "
                        "with --ours, those in the files]")
    parser.add_argument("-b", "--batch-sizes", nargs="+", type=int, default=None, metavar="N",
                        help="[default: 16; with --ours, those in the files]")
    parser.add_argument("--mode", choices=(*MODES, "both"), default=None,
                        help="[default: infer; with --ours, those in the files]")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=None,
                        help="steps per round, both frameworks [default: about --seconds]")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--bench-python", default=default_bench_python(),
                        help="the Python that runs `bench speed` [default: %(default)s]")
    parser.add_argument("--ours", nargs="+", type=Path, default=None, metavar="FILE",
                        help="saved `bench speed -f json` results instead of running ours")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="write every figure with the machine and versions")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print(f"error: torch is not importable by {sys.executable}: {INSTALL_HINT}",
              file=sys.stderr)
        return 2
    if args.ours is None and not Path(args.bench_python).exists():
        print(f"error: no Python for `bench speed` at {args.bench_python}: pass --bench-python "
              "(the Python that has bench's requirements, e.g. a `make install` .venv) or "
              "--ours FILE...", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_before = [round(v, 2) for v in os.getloadavg()]
    figures: list[Figure] = []
    saved = None if args.ours is None else load_ours(args.ours)
    for result in saved or []:
        if str(result.get("omp_num_threads")) != str(args.threads):
            say(f"warning: {result['model']} b{result['batch_size']} {result['dtype']} (ours) "
                f"ran with OMP_NUM_THREADS={result.get('omp_num_threads')}, torch with "
                f"{args.threads} threads")
        figures.append(figure_from_ours(result))
    plan = configurations(args.models, args.batch_sizes, args.mode, saved)
    networks = list(dict.fromkeys(n for n, _, _ in plan))
    ours_counts = (count_ours(args.bench_python, networks)
                   if Path(args.bench_python).exists() else {})
    params = {n: {"ours": ours_counts.get(n),
                  "torch": {p.label: count_params(build_peer(p, NAME_MAP[n][2]))[0]
                            for p in NAME_MAP[n][0]}} for n in networks}
    for network, batch, mode in plan:
        peers, size, classes = NAME_MAP[network]
        for peer in peers:
            for precision in TORCH_PRECISIONS:
                figures.append(time_torch(
                    peer, network=network, batch=batch, mode=mode, size=size, classes=classes,
                    precision=precision, warmup=args.warmup, rounds=args.rounds,
                    iterations=args.iterations, seconds=args.seconds, say=say))
        if saved is None:
            for dtype in OUR_DTYPES[mode]:
                say(f"{network} b{batch} {mode} ours {dtype} ...")
                figures.append(figure_from_ours(run_ours(
                    args.bench_python, network=network, batch=batch, mode=mode, dtype=dtype,
                    threads=args.threads, warmup=args.warmup, rounds=args.rounds,
                    iterations=args.iterations)))
    versions = _versions()
    rec = record(figures, threads=args.threads, versions=versions, params=params,
                 load_before=load_before, load_after=[round(v, 2) for v in os.getloadavg()])
    print(f"{rec['cpu']} ({' '.join(rec['cpu_flags'])}), torch.set_num_threads({args.threads}), "
          f"{args.rounds} rounds; torch {versions['torch']}, timm {versions['timm']}, "
          f"torchvision {versions['torchvision']}; load {load_before[0]} -> "
          f"{rec['load_average_after'][0]}; {rec['date']}")
    print(params_line(params))
    print()
    print(render_table(table_rows(figures)))
    if args.json is not None:
        args.json.write_text(json.dumps(rec, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
