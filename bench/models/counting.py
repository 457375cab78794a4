"""Count parameters, multiply-accumulates and activation memory of a Gluon network.

Conventions (so numbers compare with the papers):

* **MACs** are the multiply-adds of convolution and fully connected layers only, per image:
  ``Cout * Cin / groups * kh * kw * Hout * Wout`` for a convolution, ``in * out`` for a dense
  layer. Biases, BN, ReLU, pooling and additions are not counted. He et al. 2015 Table 1's
  "FLOPs" (1.8 / 3.6 / 3.8 / 7.6 / 11.3 x 10^9) are multiply-adds in this sense.
* **learnable parameters** are those with a gradient; **total parameters** add BN running
  means/variances and frozen BN scales (``grad_req='null'``): it is what GluonCV's
  ``collect_params()`` holds and what a ``.params`` file stores.
* **activation memory** is the sum of every operator's output in the forward graph for one
  image, at the given dtype: an upper bound on what training keeps for the backward pass.
* **inference memory** is the largest sum of tensors alive at once when the forward graph runs
  in order, keeping each output only until its last reader has run (the input image included,
  the parameters not): what a predict-mode forward (a distillation teacher) needs for one image.
  MXNet's planner may do better (in-place ReLU, buffer reuse); it keeps no more.

The counts come from the symbolic graph (shape inference only), so a 1000-layer net is
profiled without running it and a GluonCV net works as well as ours.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from bench._mxnet import require_mxnet

mx = require_mxnet()


@dataclass(frozen=True)
class LayerRow:
    name: str
    op: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class Profile:
    input_shape: tuple[int, ...]
    learnable_params: int
    total_params: int
    macs: int
    activation_bytes: int
    inference_bytes: int
    layers: list[LayerRow] = field(repr=False)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def profile(net, input_shape: tuple[int, ...] = (1, 3, 224, 224),
            dtype_bytes: int = 4) -> Profile:
    """Profile ``net`` (any Gluon ``HybridBlock``) at ``input_shape`` (N, C, H, W); counts are
    per image."""
    batch = input_shape[0]
    sym = net(mx.sym.var("data"))
    internals = sym.get_internals()
    arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=input_shape)
    shapes = dict(zip(internals.list_arguments(), arg_shapes))
    shapes.update(zip(internals.list_auxiliary_states(), aux_shapes))
    outputs = dict(zip(internals.list_outputs(), out_shapes))
    frozen = {p.name for p in net.collect_params().values() if p.grad_req == "null"}
    params = {n: s for n, s in shapes.items() if n != "data"}
    aux = set(internals.list_auxiliary_states())
    learnable = sum(math.prod(s) for n, s in params.items() if n not in aux and n not in frozen)
    total = sum(math.prod(s) for s in params.values())
    graph = json.loads(sym.tojson())
    rows = _layer_rows(graph["nodes"], shapes, outputs)
    activations = sum(math.prod(r.output_shape) for r in rows) // batch * dtype_bytes
    live = _peak_live(graph["nodes"], graph["heads"], outputs, math.prod(input_shape))
    return Profile(tuple(input_shape), learnable, total, sum(r.macs for r in rows), activations,
                   -(-live // batch) * dtype_bytes, rows)


def _output_size(node: dict, index: int, outputs: dict) -> int:
    name = node["name"]
    shape = outputs.get(f"{name}_output{index}") or (outputs.get(f"{name}_output")
                                                     if index == 0 else None)
    return 0 if shape is None else math.prod(shape)


def _peak_live(nodes: list[dict], heads: list, outputs: dict, data_size: int) -> int:
    """Elements alive at the fullest moment of an in-order forward (module docstring): each
    output from the step that writes it to the step of its last reader (the net's outputs to the
    end); the outputs of a step are counted together with the inputs it reads."""
    last_read: dict[tuple[int, int], int] = {}
    for step, node in enumerate(nodes):
        for source, index, *_ in node["inputs"]:
            last_read[(source, index)] = step
    for source, index, *_ in heads:
        last_read[(source, index)] = len(nodes)
    count: dict[int, int] = {}
    for source, index in last_read:
        count[source] = max(count.get(source, 1), index + 1)
    live: dict[tuple[int, int], int] = {}
    peak = 0
    for step, node in enumerate(nodes):
        if node["op"] == "null":
            if node["name"] == "data":
                live[(step, 0)] = data_size
            continue
        for index in range(count.get(step, 1)):
            live[(step, index)] = _output_size(node, index, outputs)
        peak = max(peak, sum(live.values()))
        for key in [key for key in live if last_read.get(key, step) <= step]:
            del live[key]
    return peak


def _layer_rows(nodes, shapes, outputs) -> list[LayerRow]:
    rows = []
    for node in nodes:
        if node["op"] == "null":
            continue
        out = outputs.get(f"{node['name']}_output") or outputs.get(f"{node['name']}_output0")
        if out is None:
            continue
        inputs = [nodes[i[0]]["name"] for i in node["inputs"]]
        weights = [shapes[n] for n in inputs if n in shapes and n != "data"]
        n_params = sum(math.prod(s) for s in weights)
        macs = 0
        if node["op"] == "Convolution":
            macs = math.prod(weights[0]) * math.prod(out[2:])
        elif node["op"] == "FullyConnected":
            macs = math.prod(weights[0])
        rows.append(LayerRow(node["name"], node["op"], tuple(out), n_params, macs))
    return rows
