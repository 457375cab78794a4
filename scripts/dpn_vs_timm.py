#!/usr/bin/env python3
"""Check bench's DPNs against timm's: a random timm DPN's weights copied into ours, same logits.

Two steps, because timm needs PyTorch and bench needs MXNet (usually separate environments):

    TIMM_PYTHON scripts/dpn_vs_timm.py dump dpn68 dpn92 --out /tmp/dpn   # torch + timm
    python scripts/dpn_vs_timm.py compare dpn68 dpn92 --out /tmp/dpn      # bench's environment

``dump`` builds timm's net (random weights, BN statistics randomized so that BN is not the
identity), runs a 64x64 batch and saves the state dict in order, the input and two outputs:
timm's as built and with its head activation replaced by ``nn.ELU`` (what timm built before
c0d7388a; bench/models/dpn.py). ``compare`` copies the tensors in order into ours (each
parameter's kind and size checked) and prints the largest logit difference for
``head_act="relu"`` against timm as built and ``head_act="elu"`` against the ELU head.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a plain checkout

KINDS = {("weight", "weight"), ("gamma", "weight"), ("beta", "bias"), ("bias", "bias"),
         ("mean", "running_mean"), ("var", "running_var")}


def dump(names: list[str], out: Path) -> None:
    import timm
    import torch
    torch.manual_seed(0)
    for name in names:
        net = timm.create_model(name, pretrained=False).eval()
        with torch.no_grad():
            for mod in net.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.normal_(0, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.uniform_(0.5, 1.0)
                    mod.bias.normal_(0, 0.1)
            state = [(k, v.numpy()) for k, v in net.state_dict().items()
                     if not k.endswith("num_batches_tracked")]
            x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
            y = net(x).numpy()
            net.features.conv5_bn_ac.bn.act = torch.nn.ELU()
            y_elu = net(x).numpy()
        np.savez(out / f"{name}.npz", x=x.numpy(), y=y, y_elu=y_elu,
                 names=np.array([k for k, _ in state]),
                 **{f"p{i}": v for i, (_, v) in enumerate(state)})
        print(f"{name}: {len(state)} tensors, timm {timm.__version__}")


def compare(names: list[str], out: Path) -> None:
    from bench._mxnet import require_mxnet
    from bench.models import get_model
    mx = require_mxnet()
    for name in names:
        saved = np.load(out / f"{name}.npz")
        theirs = list(saved["names"])
        x = mx.nd.array(saved["x"])
        for act, key in (("relu", "y"), ("elu", "y_elu")):
            net = get_model(name, head_act=act)
            net.initialize()
            ours = list(net.collect_params().values())
            if len(ours) != len(theirs):
                raise SystemExit(f"{name}: {len(ours)} tensors here, {len(theirs)} in timm")
            for i, (param, tname) in enumerate(zip(ours, theirs)):
                value = saved[f"p{i}"]
                kind = (param.name.rsplit("_", 1)[-1], tname.rsplit(".", 1)[-1])
                if kind not in KINDS or value.size != np.prod(param.shape):
                    raise SystemExit(f"{name}: {param.name} {param.shape} vs {tname} "
                                     f"{value.shape}")
                param.set_data(mx.nd.array(value.reshape(param.shape)))
            diff = np.abs(net(x).asnumpy() - saved[key]).max()
            print(f"{name} head_act={act}: max |ours - timm| = {diff:.3g} "
                  f"(max |logit| {np.abs(saved[key]).max():.3g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("dump", "compare"))
    parser.add_argument("names", nargs="+", help="timm = bench names: dpn68 dpn68b dpn92 ...")
    parser.add_argument("--out", type=Path, default=Path("/tmp/dpn_vs_timm"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (dump if args.step == "dump" else compare)(args.names, args.out)


if __name__ == "__main__":
    main()
