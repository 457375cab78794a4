"""Named networks: one row per name, one alias table, and ``get_model`` / ``list_models``.

GluonCV's names are canonical where GluonCV has the network; names GluonCV lacks follow its
pattern (``resnet200_v1d``, ``cifar_resnet32_v1_a``). A suffix ``_a`` / ``_c`` names He 2015's
shortcut option, ``_sd`` stochastic depth, ``_timm`` timm's layout where a name's usual source
(``resnet200_v1d``: PaddleClas) splits the stages differently, ``cifar_wrn*`` Zagoruyko &
Komodakis's own WRN layout (GluonCV's ``cifar_wideresnet*`` adds an input BN and a stem BN).
Every row names its source; ``gluoncv`` names the GluonCV model that must match it exactly
(same parameter count, same outputs after :func:`bench.models.from_gluoncv`). An alias is
another scheme's name for a network with the same stages and parameter count (or a stated
difference, such as GluonCV's 1x1 biases): tests/models/source_layouts.py holds the sources'
numbers.
"""
from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError, did_you_mean


@dataclass(frozen=True)
class ModelSpec:
    """A registered network: the constructor flags plus what is needed to describe it."""

    name: str
    family: str
    depth: int
    source: str
    flags: dict[str, Any]
    input_size: int = 224
    classes: int = 1000
    gluoncv: str | None = None
    aliases: tuple[str, ...] = field(default=())
    arch: str = "resnet"

    @property
    def dataset(self) -> str:
        return "ImageNet" if self.input_size == 224 else "CIFAR"


_REGISTRY: dict[str, ModelSpec] = {}

# ModelSpec.arch -> the HybridBlock class that builds it ("module:Class", imported on first use
# so that listing the registry needs no MXNet). One family, one module beside resnet.py.
ARCHITECTURES: dict[str, str] = {
    "resnet": "bench.models.resnet:ResNet",
    "dpn": "bench.models.dpn:DPN",
    "res2net": "bench.models.res2net:Res2Net",
    "fractalnet": "bench.models.fractalnet:FractalNet",
    "merge_and_run": "bench.models.merge_and_run:MergeAndRun",
}

IMAGENET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                   152: (3, 8, 36, 3)}
BASIC_CHANNELS = (64, 128, 256, 512)
BOTTLENECK_CHANNELS = (256, 512, 1024, 2048)
HE2015 = "He et al. 2015, arXiv:1512.03385"
HE2016 = "He et al. 2016, arXiv:1603.05027"
BOT = "He et al. 2018 (Bag of Tricks), arXiv:1812.01187"


def _register(name: str, family: str, depth: int, source: str, *, gluoncv: bool = False,
              input_size: int = 224, classes: int = 1000, arch: str = "resnet",
              **flags: Any) -> None:
    if name in _REGISTRY:
        raise RuntimeError(f"model {name!r} registered twice")
    if arch not in ARCHITECTURES:
        raise RuntimeError(f"model {name!r}: unknown arch {arch!r}")
    _REGISTRY[name] = ModelSpec(name, family, depth, source, flags, input_size, classes,
                                gluoncv=name if gluoncv else None, arch=arch)


def _imagenet(name: str, depth: int, source: str, layers: tuple[int, ...] | None = None,
              family: str = "resnet", **flags: Any) -> None:
    layers = layers or IMAGENET_LAYERS[depth]
    block = "basic" if depth < 50 else "bottleneck"
    channels = BASIC_CHANNELS if block == "basic" else BOTTLENECK_CHANNELS
    _register(name, family, depth, source, block=block, layers=layers, stage_channels=channels,
              **flags)


def _cifar(name: str, depth: int, source: str, family: str = "resnet", **flags: Any) -> None:
    flags.setdefault("block", "basic")
    flags.setdefault("stage_channels", (16, 32, 64))
    flags.setdefault("stem_width", 16)
    _register(name, family, depth, source, input_size=32, classes=10, stem="cifar", **flags)


def _build_registry() -> None:
    deep32 = dict(stem="deep", stem_width=32)
    deep64 = dict(stem="deep", stem_width=64)
    for d in (18, 34, 50, 101, 152):
        _imagenet(f"resnet{d}_v1", d, f"{HE2015}; GluonCV resnet{d}_v1", gluoncv=True,
                  bottleneck_bias=d >= 50)
        _imagenet(f"resnet{d}_v1b", d, f"{BOT} ResNet-B; GluonCV resnet{d}_v1b", gluoncv=True,
                  stride_on="3x3")
        _imagenet(f"resnet{d}_v2", d, f"{HE2016}; GluonCV resnet{d}_v2", gluoncv=True,
                  preact=True, input_bn=True, stride_on="3x3")
    for d in (50, 101, 152):
        for suffix, what, flags in (("c", "ResNet-C", deep32), ("d", "ResNet-D", deep32),
                                    ("e", "deep stem 64, ResNet-D", deep64),
                                    ("s", "deep stem 64", deep64)):
            shortcut = "D" if suffix in "de" else "B"
            _imagenet(f"resnet{d}_v1{suffix}", d, f"{BOT} {what}; GluonCV resnet{d}_v1{suffix}",
                      gluoncv=True, stride_on="3x3", shortcut=shortcut, **flags)
    xie = "Xie et al. 2017 (ResNeXt), arXiv:1611.05431"
    for name, d, card, extra in (("resnext50_32x4d", 50, 32, {}),
                                 ("resnext101_32x4d", 101, 32, {}),
                                 ("resnext101_64x4d", 101, 64, {}),
                                 ("resnext101e_64x4d", 101, 64, dict(shortcut="D", **deep64))):
        _imagenet(name, d, f"{xie}; GluonCV {name}", family="resnext", gluoncv=True,
                  stride_on="3x3", cardinality=card, base_width=4, **extra)
    _imagenet("resnet200_v1d", 200, "PaddleClas ResNet200_vd (ppcls/arch/backbone/legendary_models"
              "/resnet.py: depth 200 = [3, 12, 48, 3])", layers=(3, 12, 48, 3),
              stride_on="3x3", shortcut="D", **deep32)
    _imagenet("resnet200_v1d_timm", 200, "timm resnet200d (timm/models/resnet.py: layers "
              "(3, 24, 36, 3), He 2016's ResNet-200 split; deep stem 32, avg-pool shortcut)",
              layers=(3, 24, 36, 3), stride_on="3x3", shortcut="D", **deep32)
    _imagenet("resnet200_v2", 200, f"{HE2016} Table 5 (layers [3, 24, 36, 3] as fb.resnet.torch)",
              layers=(3, 24, 36, 3), preact=True, stride_on="3x3")
    for d, option in ((18, "a"), (34, "a"), (34, "c")):
        _imagenet(f"resnet{d}_v1_{option}", d, f"{HE2015} Table 2/3, option {option.upper()}",
                  shortcut=option.upper())
    for d in (18, 34):
        _imagenet(f"plain{d}_v1", d, f"{HE2015} Table 2, plain net", family="plain",
                  shortcut="none")
    _build_cifar_registry()
    _build_dpn_registry()
    _build_res2net_registry()
    _build_fractalnet_registry()
    _build_merge_and_run_registry()


def _build_cifar_registry() -> None:
    for d in (20, 56, 110):
        n = (d - 2) // 6
        _cifar(f"cifar_resnet{d}_v1", d, f"{HE2015} Sec. 4.2; GluonCV cifar_resnet{d}_v1 "
               "(projection shortcuts, no ReLU after the stem BN)", gluoncv=True,
               layers=(n,) * 3, stem_post="bn")
        _cifar(f"cifar_resnet{d}_v2", d, f"{HE2016}; GluonCV cifar_resnet{d}_v2", gluoncv=True,
               layers=(n,) * 3, preact=True, input_bn=True, preact_shortcut=False)
    for d in (20, 32, 44, 56, 110, 1202):
        n = (d - 2) // 6
        _cifar(f"cifar_resnet{d}_v1_a", d, f"{HE2015} Table 6 (option A shortcuts)",
               layers=(n,) * 3, shortcut="A")
    for d in (8, 14):  # small students (distillation demo); not depths the paper trained
        n = (d - 2) // 6
        _cifar(f"cifar_resnet{d}_v1_a", d, f"{HE2015} Sec. 4.2's 6n+2 option-A net at n = {n} "
               "(a depth the paper did not train)", layers=(n,) * 3, shortcut="A")
    for d in (164, 1001):
        n = (d - 2) // 9
        _cifar(f"cifar_resnet{d}_v2", d, f"{HE2016} Table 2/3 (pre-activation bottleneck)",
               block="bottleneck", layers=(n,) * 3, stage_channels=(64, 128, 256), preact=True,
               stride_on="3x3")
    for d, k in ((16, 10), (28, 10), (40, 8)):
        n = (d - 4) // 6
        _cifar(f"cifar_wideresnet{d}_{k}", d, f"Zagoruyko & Komodakis 2016; GluonCV "
               f"cifar_wideresnet{d}_{k} (input BN, BN after the stem conv)", family="wide",
               gluoncv=True, layers=(n,) * 3, width_factor=k, preact=True, input_bn=True,
               stem_post="bn")
    for d, k in ((16, 8), (28, 10), (40, 4)):
        n = (d - 4) // 6
        _cifar(f"cifar_wrn{d}_{k}", d, "Zagoruyko & Komodakis 2016, arXiv:1605.07146 Table 1/4 "
               "(set block_dropout=0.3 for their dropout runs)", family="wide",
               layers=(n,) * 3, width_factor=k, preact=True)
    for card, width in ((32, 4), (16, 64)):
        name = f"cifar_resnext29_{card}x{width}d"
        _cifar(name, 29, f"Xie et al. 2017 Table 7; GluonCV {name}", family="resnext",
               gluoncv=True, block="bottleneck", layers=(3, 3, 3),
               stage_channels=(256, 512, 1024), stem_width=64, stride_on="3x3",
               cardinality=card, base_width=width)
    for d in (20, 32, 44, 56, 110):
        n = (d - 2) // 6
        _cifar(f"cifar_plain{d}_v1", d, f"{HE2015} Sec. 4.2 / Fig. 6 (plain CIFAR net: the "
               "option-A ResNet without shortcuts)", family="plain", layers=(n,) * 3,
               shortcut="none")
    for d in (20, 56, 110):
        n = (d - 2) // 6
        _cifar(f"cifar_resnet{d}_v2_a", d, f"{HE2016} full pre-activation units on {HE2015} "
               f"Sec. 4.2's option-A net (the pre-activation twin of cifar_resnet{d}_v1_a; not a "
               "net either paper trained)", layers=(n,) * 3, preact=True, shortcut="A")
    huang = "Huang et al. 2016 (stochastic depth), arXiv:1603.09382"
    for d in (20, 56, 110):
        n = (d - 2) // 6
        what = "Sec. 4 (CIFAR-10, p_L = 0.5)" if d == 110 else (
            f"linear decay p_L = 0.5 on the option-A ResNet-{d} (the paper trains 110 and 1202)")
        _cifar(f"cifar_resnet{d}_v1_sd", d, f"{huang} {what}", family="stochastic depth",
               layers=(n,) * 3, shortcut="A", survival_prob_last=0.5)
    _imagenet("resnet152_v1b_sd", 152, f"{huang} Sec. 4 (ImageNet, fb.resnet.torch layout, "
              "p_L = 0.5)", family="stochastic depth", stride_on="3x3", survival_prob_last=0.5)


def _build_dpn_registry() -> None:
    """Dual Path Networks (Chen et al. 2017): bench/models/dpn.py."""
    chen = "Chen et al. 2017 (DPN), arXiv:1707.01629"
    code = "cypw/DPNs@081328f settings/symbol_dpn-{}.py"
    timm = "timm==1.0.31 timm/models/dpn.py {}"
    for name, depth, k_r, groups, stem, layers, incs, extra in (
            ("dpn68", 68, 128, 32, 10, (3, 4, 12, 3), (16, 32, 32, 64), dict(small=True)),
            ("dpn68b", 68, 128, 32, 10, (3, 4, 12, 3), (16, 32, 32, 64),
             dict(small=True, separate_c1x1=True)),
            ("dpn92", 92, 96, 32, 64, (3, 4, 20, 3), (16, 32, 24, 128), {}),
            ("dpn98", 98, 160, 40, 96, (3, 6, 20, 3), (16, 32, 32, 128), {}),
            ("dpn107", 107, 200, 50, 128, (4, 8, 20, 3), (20, 64, 64, 128), {}),
            ("dpn131", 131, 160, 40, 128, (4, 8, 28, 3), (16, 32, 32, 128), {})):
        paper = "DPN-68b" if name == "dpn68b" else f"DPN-{depth}"
        symbol = code.format("68_b" if name == "dpn68b" else depth)
        _register(name, "dpn", depth,
                  f"{chen} ({paper}); {symbol} (k_R {k_r}, G {groups}, k_sec {layers}, "
                  f"inc_sec {incs}, conv1 {stem} channels); {timm.format(name)}",
                  arch="dpn", layers=layers, increments=incs, k_r=k_r, groups=groups,
                  stem_width=stem, **extra)


# ------------------------------------------------------------------------------------------


def _build_res2net_registry() -> None:
    """Res2Net (Gao et al. 2019): bench/models/res2net.py."""
    gao = "Gao et al. 2019 (Res2Net), arXiv:1904.01169"
    timm = "timm==1.0.31 timm/models/res2net.py"
    ppcls = "PaddlePaddle/PaddleClas@d178931 ppcls/arch/backbone/model_zoo/res2net{}.py"
    paddle_units = dict(stage_units="strided", pool_count_pad=False)
    vd = dict(stem="deep", stem_width=32, shortcut="D")

    def row(name: str, depth: int, source: str, **flags: Any) -> None:
        _register(name, "res2net", depth, source, arch="res2net", layers=IMAGENET_LAYERS[depth]
                  if depth != 200 else (3, 12, 48, 3), **flags)

    for depth, w, s in ((50, 26, 4), (50, 48, 2), (50, 14, 8), (50, 26, 6), (50, 26, 8),
                        (101, 26, 4)):
        name = f"res2net{depth}_{w}w_{s}s"
        row(name, depth, f"{gao} Table 1/2; {timm} {name}", base_width=w, scale=s)
    row("res2next50", 50, f"{gao} Res2NeXt-50 (8 groups of width 4, scale 4); {timm} "
        "res2next50", base_width=4, cardinality=8, scale=4)
    authors = "Res2Net/Res2Net-PretrainedModels@219c8c6 res2net_v1b.py"
    for depth, peer in ((50, f"; {timm} res2net50d"), (101, f"; {timm} res2net101d"),
                        (152, "")):
        row(f"res2net{depth}_v1d_26w_4s", depth, f"{gao} with Bag of Tricks' ResNet-D stem and "
            f"shortcut: {authors} res2net{depth}_v1b_26w_4s{peer}", **vd)
    # PaddleClas: same parameters, stage units only where the stride is 2 and a pool that
    # excludes the padding (bench/models/res2net.py docstring); ResNet200_vd's 3/12/48/3 split.
    for name, depth, w, s, flags, file in (
            ("res2net50_26w_4s_paddle", 50, 26, 4, {}, ""),
            ("res2net50_14w_8s_paddle", 50, 14, 8, {}, ""),
            ("res2net50_v1d_26w_4s_paddle", 50, 26, 4, vd, "_vd"),
            ("res2net101_v1d_26w_4s_paddle", 101, 26, 4, vd, "_vd"),
            ("res2net200_v1d_26w_4s", 200, 26, 4, vd, "_vd")):
        key = f"Res2Net{depth}{file}_{w}w_{s}s"
        row(name, depth, f"{ppcls.format(file)} {key}", base_width=w, scale=s, **flags,
            **paddle_units)


# ------------------------------------------------------------------------------------------


def _build_fractalnet_registry() -> None:
    """FractalNet (Larsson et al. 2016): bench/models/fractalnet.py."""
    larsson = "Larsson et al. 2016 (FractalNet), arXiv:1605.07648"
    code = "gustavla/fractalnet@7d07da6 generation/fractalnet.py (COLUMNS = 3)"
    # The paper's CIFAR nets are B = 5 blocks; depth = B x 2^(C-1) convs on the deepest path.
    # Table 1's "20 layers" is C = 3 (5 x 4), the authors' generator's default. Its 38.6M
    # is 12.7 % above the 33.7M the generator's net has: we build the generator's (module
    # docstring; transition="conv1x1" gives 38.9M). Drop-path and dropout (Table 1's "+
    # drop-path + dropout" rows) are training flags: drop_path="mix",
    # dropout=PAPER_DROPOUT; eval_columns="deepest" is its "deepest column alone" row.
    _register("cifar_fractalnet20", "fractalnet", 20,
              f"{larsson} Table 1 'FractalNet (20 layers, 38.6M params)', B = 5, C = 3; {code} "
              "(33.7M: we build the code's net)", input_size=32, classes=10, arch="fractalnet",
              columns=3, block_channels=(64, 128, 256, 512, 512))
    # The paper's 38.6M (within 1 %): khanrc/pt.fractalnet@05eed3f's --doubling, a 1x1 conv
    # unit at the start of every block, with its join-then-pool order. Not the authors' code.
    _register("cifar_fractalnet20_doubling", "fractalnet", 20,
              f"{larsson} Table 1's 38.6M params; khanrc/pt.fractalnet@05eed3f fractal.py "
              "--doubling (a 1x1 conv opens every block; join, then pool): 38.9M",
              input_size=32, classes=10, arch="fractalnet", columns=3,
              block_channels=(64, 128, 256, 512, 512), transition="conv1x1",
              pool_before_join=False)


# ------------------------------------------------------------------------------------------


def _build_merge_and_run_registry() -> None:
    """Merge-and-Run / deep fusion nets (Zhao et al. 2016): bench/models/merge_and_run.py."""
    zhao = "Zhao et al. 2016 (DFN-MR), arXiv:1611.07718; zlmzju/fusenet@659e6bf README results"
    code = "zlmzju/fusenet@659e6bf network/cross.py CrossNet"
    for name, depth, blocks, k, params, note in (
            ("cifar_dfn_mr1", 56, 9, 1, "1.7M", ""),
            ("cifar_dfn_mr2", 32, 5, 4, "14.9M", ""),
            ("cifar_dfn_mr3", 50, 8, 4, "24.8M",
             "; the code's net has 24.15M, 2.6 % fewer: we build the code's")):
        _register(name, "merge-and-run", depth,
                  f"{zhao} table (DFN-MR{name[-1]}: depth {depth}, {params}); {code} "
                  f"--depth={12 * blocks + 2} --widen-factor={k} ({blocks} blocks a stage; "
                  f"the flags are our reading of the table){note}",
                  input_size=32, classes=10, arch="merge_and_run", layers=(blocks,) * 3,
                  stage_channels=(16, 32, 64), width_factor=k)


# Other schemes' names -> ours. One table; each entry's comment is where the name comes from.
ALIASES: dict[str, str] = {
    # timm (timm/models/resnet.py): resnet50 is v1b; c = deep stem; d = deep stem + avg down
    **{f"resnet{d}": f"resnet{d}_v1b" for d in (18, 34, 50, 101, 152)},
    **{f"resnet{d}{s}": f"resnet{d}_v1{s}" for d in (50, 101, 152) for s in ("c", "d")},
    "resnet200d": "resnet200_v1d_timm",
    # torchvision (torchvision/models/resnet.py): stride on the 3x3, as v1b
    **{f"torchvision.resnet{d}": f"resnet{d}_v1b" for d in (18, 34, 50, 101, 152)},
    # mmpretrain (mmpretrain/models/backbones/resnet.py): ResNetV1c / ResNetV1d configs
    **{f"resnetv1c{d}": f"resnet{d}_v1c" for d in (50, 101, 152)},
    **{f"resnetv1d{d}": f"resnet{d}_v1d" for d in (50, 101, 152)},
    # PaddleClas (ppcls/arch/backbone/legendary_models/resnet.py)
    **{f"ResNet{d}": f"resnet{d}_v1b" for d in (18, 34, 50, 101, 152)},
    "ResNet50_vc": "resnet50_v1c",  # ppcls/arch/backbone/model_zoo/resnet_vc.py: 50 only
    **{f"ResNet{d}_vd": f"resnet{d}_v1d" for d in (50, 101, 152, 200)},
    # NVIDIA DeepLearningExamples: "ResNet-50 v1.5" moves the stride to the 3x3
    "resnet50_v1.5": "resnet50_v1b",
    # Bag of Tricks letters (He et al. 2018, Fig. 2)
    "ResNet-50-B": "resnet50_v1b", "ResNet-50-C": "resnet50_v1c", "ResNet-50-D": "resnet50_v1d",
    # He 2015 / He 2016 / Zagoruyko & Komodakis papers' own names
    **{f"ResNet-{d}": f"resnet{d}_v1" for d in (18, 34, 50, 101, 152)},
    "ResNet-34 A": "resnet34_v1_a", "ResNet-34 B": "resnet34_v1", "ResNet-34 C": "resnet34_v1_c",
    "plain-18": "plain18_v1", "plain-34": "plain34_v1",
    **{f"plain-{d} (CIFAR)": f"cifar_plain{d}_v1" for d in (20, 32, 44, 56, 110)},
    **{f"ResNet-{d} (CIFAR)": f"cifar_resnet{d}_v1_a" for d in (20, 32, 44, 56, 110, 1202)},
    "ResNet-164": "cifar_resnet164_v2", "ResNet-1001": "cifar_resnet1001_v2",
    "ResNet-200 (pre-act)": "resnet200_v2",
    "WRN-16-8": "cifar_wrn16_8", "WRN-28-10": "cifar_wrn28_10", "WRN-40-4": "cifar_wrn40_4",
    # --- DPN ---
    # cypw/DPNs@081328f README / Chen et al. 2017 (arXiv:1707.01629) names; timm's are ours
    **{f"DPN-{d}": f"dpn{d}" for d in (68, 92, 98, 107, 131)},
    # --- Res2Net ---
    # timm (timm/models/res2net.py): d = deep stem 32 + avg-pool shortcut
    "res2net50d": "res2net50_v1d_26w_4s", "res2net101d": "res2net101_v1d_26w_4s",
    # PaddleClas (ppcls/arch/backbone/model_zoo/res2net.py, res2net_vd.py): its own stage units
    "Res2Net50_26w_4s": "res2net50_26w_4s_paddle", "Res2Net50_14w_8s": "res2net50_14w_8s_paddle",
    "Res2Net50_vd_26w_4s": "res2net50_v1d_26w_4s_paddle",
    "Res2Net101_vd_26w_4s": "res2net101_v1d_26w_4s_paddle",
    "Res2Net200_vd_26w_4s": "res2net200_v1d_26w_4s",
    # The authors' code (Res2Net/Res2Net-PretrainedModels res2net_v1b.py): their "v1b" is the
    # deep stem + avg-pool shortcut, our v1d (their stride already sits on the 3x3s)
    **{f"res2net{d}_v1b_26w_4s": f"res2net{d}_v1d_26w_4s" for d in (50, 101, 152)},
    # Gao et al. 2019 (arXiv:1904.01169) and the authors' README table names
    "Res2Net-50": "res2net50_26w_4s", "Res2NeXt-50": "res2next50",
    "Res2Net-101": "res2net101_26w_4s",
    **{f"Res2Net-{d}-{w}w-{s}s": f"res2net{d}_{w}w_{s}s" for d, w, s in (
        (50, 48, 2), (50, 26, 4), (50, 14, 8), (50, 26, 6), (50, 26, 8), (101, 26, 4))},
    "Res2Net-v1b-50": "res2net50_v1d_26w_4s", "Res2Net-v1b-101": "res2net101_v1d_26w_4s",
    "Res2Net-v1d-200-SSLD": "res2net200_v1d_26w_4s",
    # --- FractalNet ---
    # Larsson et al. 2016 Table 1 (scripts/reference/other_networks.toml "FractalNet-20 ...")
    "FractalNet-20": "cifar_fractalnet20",
    # --- Merge-and-Run ---
    # zlmzju/fusenet README / Zhao et al. 2016 (arXiv:1611.07718) names
    **{f"DFN-MR{i}": f"cifar_dfn_mr{i}" for i in (1, 2, 3)},
}


def _attach_aliases() -> None:
    by_target: dict[str, list[str]] = {}
    for alias, target in ALIASES.items():
        if target not in _REGISTRY:
            raise RuntimeError(f"alias {alias!r} points at unregistered {target!r}")
        if alias in _REGISTRY:
            raise RuntimeError(f"alias {alias!r} shadows a registered name")
        by_target.setdefault(target, []).append(alias)
    for target, aliases in by_target.items():
        spec = _REGISTRY[target]
        _REGISTRY[target] = ModelSpec(**{**spec.__dict__, "aliases": tuple(aliases)})


_build_registry()
_attach_aliases()


def resolve_name(name: str) -> str:
    """The canonical name for ``name`` or an alias of it; a one-line error with close matches."""
    if name in _REGISTRY:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise BenchError(f"unknown model {name!r}{did_you_mean(name, [*_REGISTRY, *ALIASES])}; "
                     "`bench models` lists them")


def get_spec(name: str) -> ModelSpec:
    return _REGISTRY[resolve_name(name)]


def list_models(pattern: str = "*") -> list[str]:
    """Canonical names matching a shell-style pattern (aliases match too), sorted."""
    matches = {n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern)}
    matches |= {t for a, t in ALIASES.items() if fnmatch.fnmatchcase(a, pattern)}
    return sorted(matches, key=_natural_key)


def _natural_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def constructor(name: str) -> type:
    """The HybridBlock class that builds the registered network ``name``."""
    return _arch_class(get_spec(name).arch)


@functools.lru_cache(maxsize=None)
def _arch_class(arch: str) -> type:
    module, cls = ARCHITECTURES[arch].split(":")
    return getattr(importlib.import_module(module), cls)


def constructor_defaults(name: str) -> dict[str, Any]:
    """The keyword defaults of ``name``'s constructor (``None`` defaults left out): what a
    recipe's ``[network_args]`` may override, with the type each one takes."""
    params = inspect.signature(constructor(name).__init__).parameters
    return {k: p.default for k, p in params.items()
            if p.default is not inspect.Parameter.empty and p.default is not None}


def model_flags(name: str, **overrides: Any) -> dict[str, Any]:
    """The constructor flags of a registered net with ``overrides`` applied (checked)."""
    spec = get_spec(name)
    flags = {"classes": spec.classes, **spec.flags}
    params = inspect.signature(constructor(name).__init__).parameters
    allowed = set(params) - {"self", "kwargs"}
    for key in overrides:
        if key not in allowed:
            raise BenchError(f"unknown model option {key!r} for {spec.name}"
                             f"{did_you_mean(key, allowed)}")
    flags.update(overrides)
    return flags


def get_model(name: str, **overrides: Any):
    """Build a registered network (random init not done: call ``net.initialize()``)."""
    flags = model_flags(name, **overrides)
    try:
        return constructor(name)(prefix=f"{resolve_name(name)}_", **flags)
    except ValueError as exc:
        raise BenchError(f"bad option for {name}: {exc}") from None
