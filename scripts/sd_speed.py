#!/usr/bin/env python3
"""Time training steps of stochastic-depth CIFAR nets against their constant-depth twins.

Huang et al. 2016 (arXiv:1603.09382, Sec. 3) expect a net with linear decay to p_L = 0.5 to
train about 25 % faster than the same net without stochastic depth, because a dropped unit's
branch is not computed. Each step is a real one (bench.speed's train mode: forward, backward,
SGD update), both nets hybridized as the engine does; rounds alternate between the nets so
that drift in a shared machine's speed hits both alike.

    python scripts/sd_speed.py                      # 56 and 110, 16x16 inputs, batch 64
    python scripts/sd_speed.py --depths 20 --rounds 5 --iterations 10
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a plain checkout

from bench._mxnet import require_mxnet  # noqa: E402
from bench.models import get_model  # noqa: E402
from bench.speed import measure  # noqa: E402


def ms_per_step(name: str, *, batch_size: int, input_size: int, iterations: int,
                seed: int) -> float:
    """Milliseconds per training step of a freshly initialized ``name`` (after warm-up)."""
    mx = require_mxnet()
    mx.random.seed(seed)  # the same drop pattern for every run of a stochastic-depth net
    result = measure(get_model(name), mode="train", batch_size=batch_size,
                     input_size=input_size, classes=10, warmup=2, iterations=iterations)
    return 1000 * result.seconds / result.iterations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[56, 110],
                        help="CIFAR depths: cifar_resnet<d>_v1_a vs cifar_resnet<d>_v1_sd")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per pair")
    parser.add_argument("--iterations", type=int, default=8, help="timed steps per round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"training steps, batch {args.batch_size}, {args.input_size}x{args.input_size}, "
          f"median of {args.rounds} rounds of {args.iterations} steps")
    for depth in args.depths:
        names = [f"cifar_resnet{depth}_v1_a", f"cifar_resnet{depth}_v1_sd"]
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                times[name].append(ms_per_step(name, batch_size=args.batch_size,
                                               input_size=args.input_size,
                                               iterations=args.iterations, seed=args.seed + r))
        const, sd = (statistics.median(times[name]) for name in names)
        print(f"{names[0]:>22}: {const:7.1f} ms/step   {names[1]}: {sd:7.1f} ms/step   "
              f"sd / constant = {sd / const:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
