"""Copy GluonCV weights into our networks by structure.

Both nets run one forward pass on a small input while forward hooks record, in execution
order, every layer that owns parameters (convolutions, BN, dense). Our units execute their
layers in GluonCV's order, so the two lists pair up one to one; each pair must have the same
layer type and parameter shapes, and the first pair that does not is reported. No per-model
name table is involved, which is why a new registry row needs no import code.
"""
from __future__ import annotations

from pathlib import Path

from bench._mxnet import require_mxnet
from bench.errors import BenchError
from bench.models.registry import ModelSpec, _REGISTRY, get_model

mx = require_mxnet()


def gluoncv_counterpart(name: str) -> ModelSpec:
    """Our registry row that reproduces GluonCV's ``name`` exactly."""
    for spec in _REGISTRY.values():
        if spec.gluoncv == name:
            return spec
    known = sorted(s.gluoncv for s in _REGISTRY.values() if s.gluoncv)
    from bench.errors import did_you_mean
    raise BenchError(f"no registered network reproduces GluonCV's {name!r}"
                     f"{did_you_mean(name, known)}")


def build_gluoncv(name: str, classes: int | None = None):
    """GluonCV's network ``name`` with random weights (never downloads anything)."""
    from gluoncv.model_zoo import get_model as gcv_get_model
    kwargs = {"pretrained": False}  # resnext101e_64x4d raises KeyError without it
    if classes is not None:
        kwargs["classes"] = classes
    return gcv_get_model(name, **kwargs)


def from_gluoncv(name_or_net, params_file: str | Path | None = None, *, ours=None,
                 ctx=None):
    """Our equivalent of a GluonCV network, carrying its weights.

    ``name_or_net`` is a GluonCV model name (the net is built with random weights, or loaded
    from ``params_file``, a GluonCV ``.params`` file) or an already built GluonCV net, in
    which case ``ours`` (the target net) must be given. Returns ``ours`` with the weights.
    """
    ctx = ctx or mx.cpu()
    if isinstance(name_or_net, str):
        spec = gluoncv_counterpart(name_or_net)
        theirs = build_gluoncv(name_or_net, classes=_classes_in(params_file))
        if ours is None:
            ours = get_model(spec.name, classes=_classes_in(params_file) or spec.classes)
        input_size = spec.input_size
    else:
        theirs = name_or_net
        if ours is None:
            raise BenchError("from_gluoncv(net) needs `ours=`: the network to copy into")
        input_size = 224
    if params_file is not None:
        _load_gluoncv_params(theirs, Path(params_file), ctx)
    elif not _initialized(theirs):
        theirs.initialize(ctx=ctx)
    if not _initialized(ours):
        ours.initialize(ctx=ctx)
    copy_by_structure(theirs, ours, input_size, ctx)
    return ours


def copy_by_structure(src, dst, input_size: int = 224, ctx=None) -> int:
    """Copy every parameter of ``src`` into ``dst``, pairing layers by execution order.
    Returns the number of layers copied."""
    ctx = ctx or mx.cpu()
    x = mx.nd.random.uniform(shape=(1, 3, min(input_size, 64), min(input_size, 64)), ctx=ctx)
    src_layers, dst_layers = _trace(src, x), _trace(dst, x)
    if len(src_layers) != len(dst_layers):
        raise BenchError(f"cannot copy weights: the source runs {len(src_layers)} parameterised "
                         f"layers, the target {len(dst_layers)}")
    for i, (a, b) in enumerate(zip(src_layers, dst_layers)):
        pa, pb = list(a._reg_params.values()), list(b._reg_params.values())
        if type(a) is not type(b) or [p.shape for p in pa] != [p.shape for p in pb]:
            raise BenchError(
                f"cannot copy weights: layer {i} differs: {type(a).__name__} {a.name} "
                f"{[p.shape for p in pa]} vs {type(b).__name__} {b.name} {[p.shape for p in pb]}")
        for p, q in zip(pa, pb):
            q.set_data(p.data(ctx))
    return len(src_layers)


def _trace(net, x) -> list:
    order, handles = [], []
    for block in _leaves(net):
        handles.append(block.register_forward_hook(lambda blk, *_: order.append(blk)))
    try:
        with mx.autograd.predict_mode():
            net(x)
    finally:
        for h in handles:
            h.detach()
    return order


def _leaves(block):
    if block._reg_params:
        yield block
    for child in block._children.values():
        yield from _leaves(child)


def _initialized(net) -> bool:
    try:
        for p in net.collect_params().values():
            p.data()
    except (RuntimeError, mx.MXNetError):
        return False
    return True


def _classes_in(params_file) -> int | None:
    """The class count stored in a .params file (the last dense layer's bias length)."""
    if params_file is None:
        return None
    arrays = _read_params(Path(params_file))
    dense_bias = [k for k in arrays if k.endswith("bias") and arrays[k].ndim == 1
                  and ("dense" in k or "fc" in k or "output" in k)]
    return int(arrays[dense_bias[-1]].shape[0]) if dense_bias else None


def _read_params(path: Path) -> dict:
    if not path.is_file():
        raise BenchError(f"params file not found: {path}")
    try:
        return mx.nd.load(str(path))
    except mx.MXNetError:
        raise BenchError(f"{path} is not a readable MXNet .params file (corrupt or truncated?)")


def _load_gluoncv_params(net, path: Path, ctx) -> None:
    _read_params(path)
    try:
        net.load_parameters(str(path), ctx=ctx)
    except (AssertionError, mx.MXNetError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(f"{path} does not fit GluonCV's network: {first}") from None
