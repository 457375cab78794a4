#!/usr/bin/env python3
"""Copy timm's random-init Res2Net weights into ours and print the largest output difference.

Usage: TIMM_PYTHON=/path/to/python-with-timm python scripts/compare_timm_res2net.py TIMM_NAME OURS SIZE
(e.g. res2net50d res2net50_v1d_26w_4s 224). timm runs in its own interpreter; nothing here
is imported by the suite or its tests.
"""
import os
import subprocess
import sys

import numpy as np
# Stage 1 (timm venv): build, randomise BN, dump weights + input + output as npz.
TIMM = r'''
import sys, torch, timm, numpy as np
name, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
m = timm.create_model(name, pretrained=False).eval()
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        with torch.no_grad():
            mod.weight.uniform_(0.2, 0.6); mod.bias.normal_(0, 0.1)
            mod.running_mean.normal_(0, 0.1); mod.running_var.uniform_(0.5, 1.5)
x = torch.randn(2, 3, int(sys.argv[3]), int(sys.argv[3]))
with torch.no_grad():
    y = m(x)
d = {k: v.numpy() for k, v in m.state_dict().items() if "num_batches" not in k}
d["__x"] = x.numpy(); d["__y"] = y.numpy()
print(sum(p.numel() for p in m.parameters()))
np.savez(out, **d)
'''
def run_timm(name, size):
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"timm_{name}.npz")
    out = subprocess.run([os.environ.get("TIMM_PYTHON", "python"), "-c", TIMM, name, path, str(size)],
                         check=True, capture_output=True, text=True).stdout
    return dict(np.load(path)), int(out.split()[-1])

def main(timm_name, ours_name, size):
    from bench.models import get_model
    import mxnet as mx
    sd, count = run_timm(timm_name, size)
    net = get_model(ours_name); net.initialize()
    used = set()
    def conv(c, key):
        c.weight.set_data(mx.nd.array(sd[key + ".weight"])); used.add(key + ".weight")
    def bn(b, key):
        for ours, theirs in (("gamma", "weight"), ("beta", "bias"), ("running_mean", "running_mean"),
                             ("running_var", "running_var")):
            getattr(b, ours).set_data(mx.nd.array(sd[f"{key}.{theirs}"])); used.add(f"{key}.{theirs}")
    f = list(net.features._children.values())
    if "conv1.0.weight" in sd:
        conv(f[0], "conv1.0"); bn(f[1], "conv1.1"); conv(f[3], "conv1.3"); bn(f[4], "conv1.4")
        conv(f[6], "conv1.6"); bn(f[7], "bn1"); stages = f[10:14]
    else:
        conv(f[0], "conv1"); bn(f[1], "bn1"); stages = f[4:8]
    for k, stage in enumerate(stages):
        for i, u in enumerate(stage._children.values()):
            p = f"layer{k + 1}.{i}"
            conv(u.body.reduce[0], p + ".conv1"); bn(u.body.reduce[1], p + ".bn1")
            for j, seq in enumerate(u.body.convs._children.values()):
                conv(seq[0], f"{p}.convs.{j}"); bn(seq[1], f"{p}.bns.{j}")
            conv(u.body.expand[0], p + ".conv3"); bn(u.body.expand[1], p + ".bn3")
            if u.shortcut is not None:
                layers = [l for l in u.shortcut._children.values() if not isinstance(l, mx.gluon.nn.AvgPool2D)]
                idx = sorted({int(key.split(".")[3]) for key in sd if key.startswith(p + ".downsample.")})
                conv(layers[0], f"{p}.downsample.{idx[0]}"); bn(layers[1], f"{p}.downsample.{idx[1]}")
    net.output.weight.set_data(mx.nd.array(sd["fc.weight"])); net.output.bias.set_data(mx.nd.array(sd["fc.bias"]))
    used |= {"fc.weight", "fc.bias"}
    left = set(k for k in sd if not k.startswith("__")) - used
    assert not left, left
    y = net(mx.nd.array(sd["__x"])).asnumpy()
    diff = np.abs(y - sd["__y"]).max()
    ymax = np.abs(sd["__y"]).max()
    print(f"{timm_name} -> {ours_name} @{size}: timm params {count}, max |diff| {diff:.3g} (relative to max |y| {ymax:.3g}: {diff / ymax:.2g})")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
