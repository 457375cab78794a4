"""What each alias's source says its network is: stage depths and learnable parameters.

The numbers come from the sources, never from bench.models: a count the source prints, a count
computed by building the source's own model in a scratch environment (``how`` names the
package, version and call), or, for code that cannot run here (Lua Torch, Caffe prototxt), a
closed form read off that code and summed by the functions below, which are checked against
the counts torchvision and the Caffe prototxts give. ``offset`` is a known difference (ours
minus the source's) and ``tolerance`` the source's rounding; ``how`` says why.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLayout:
    source: str  # repository@commit path, package==version, or paper and table
    stages: tuple[int, ...]  # residual units per stage
    params: int  # learnable parameters at ``classes`` outputs
    how: str  # where ``params`` comes from; why ``offset`` / ``tolerance``
    offset: int = 0  # ours - params, explained in ``how``
    tolerance: int = 0  # half a unit of the last digit the source prints
    total: bool = False  # params counts BN running statistics too (paddle.flops)
    classes: int = 1000


# --- closed forms for sources that cannot be run here -------------------------------------
WIDTHS = (64, 128, 256, 512)


def he2015_imagenet_params(block: str, layers: tuple[int, ...], shortcut: str,
                           stem_bias: int = 0) -> int:
    """He et al. 2015 Table 1 summed: a 7x7/64 stem, units of two 3x3 convs ("basic") or
    1x1-3x3-1x1 with 4x expansion ("bottleneck"), BN (scale and shift) after every conv and no
    conv bias (Sec. 3.4), a 1000-way fc. Shortcuts (Sec. 3.3): "A" zero-pads (no parameters),
    "B" projects with 1x1 conv + BN where the shape changes, "C" projects in every unit,
    "none" is the plain net. ``stem_bias``: the released ResNet-50 prototxt's conv1 bias."""
    n, cin = 3 * 64 * 49 + stem_bias + 2 * 64, 64
    for stage, depth in enumerate(layers):
        w = WIDTHS[stage]
        out = w if block == "basic" else 4 * w
        for unit in range(depth):
            if block == "basic":
                n += 9 * cin * w + 2 * w + 9 * w * w + 2 * w
            else:
                n += cin * w + 2 * w + 9 * w * w + 2 * w + w * out + 2 * out
            if shortcut == "C" or (shortcut == "B" and unit == 0 and cin != out):
                n += cin * out + 2 * out
            cin = out
    return n + cin * 1000 + 1000


def _preact_bottleneck(cin: int, w: int, project: bool, input_bn: bool) -> int:
    """A pre-activation bottleneck unit: [BN] 1x1 BN 3x3 BN 1x1, a bias-free 1x1 projection
    without BN where it changes shape (both Torch codes below: ConvInit drops conv biases)."""
    return ((2 * cin if input_bn else 0) + cin * w + 2 * w + 9 * w * w + 2 * w + w * 4 * w
            + (cin * 4 * w if project else 0))


def fb_preresnet_params(layers: tuple[int, ...]) -> int:
    """facebookarchive/fb.resnet.torch@985e569 models/preresnet.lua, ImageNet: conv 7x7 + BN
    stem, units as above where the very first unit is 'no_preact' (no input BN, the stem's
    BN-ReLU precedes it), a final BN and the 1000-way fc."""
    n, cin = 3 * 64 * 49 + 2 * 64, 64
    for stage, depth in enumerate(layers):
        for unit in range(depth):
            first = stage == 0 and unit == 0
            n += _preact_bottleneck(cin, WIDTHS[stage], unit == 0, not first)
            cin = 4 * WIDTHS[stage]
    return n + 2 * cin + cin * 1000 + 1000


def kh_preact_cifar_params(depth: int, classes: int = 10) -> int:
    """KaimingHe/resnet-1k-layers@fde7ee9 resnet-pre-act.lua (He 2016's CIFAR code): a bare
    3x3/16 conv stem, 9n+2 layers in three stages of bottleneck widths 16/32/64 (outputs
    64/128/256), every unit with an input BN, a final BN and the fc."""
    n, cin = 3 * 16 * 9, 16
    for w in (16, 32, 64):
        for unit in range((depth - 2) // 9):
            n += _preact_bottleneck(cin, w, unit == 0, True)
            cin = 4 * w
    return n + 2 * cin + cin * classes + classes


def gluoncv_v1_biases(layers: tuple[int, ...]) -> int:
    """GluonCV's BottleneckV1 leaves both 1x1 convs at Gluon's default use_bias=True
    (gluoncv/model_zoo/resnet.py); our resnet*_v1 copies it: w + 4w biases per unit."""
    return sum(depth * 5 * w for depth, w in zip(layers, WIDTHS))


FRACTAL_FILTERS = (64, 128, 256, 512, 512)  # gustavla/fractalnet@7d07da6 fractalnet.py FILTERS


def fractalnet_code_params(columns: int = 3, filters: tuple[int, ...] = FRACTAL_FILTERS,
                           classes: int = 10) -> int:
    """gustavla/fractalnet@7d07da6 generation/fractalnet.py with globals.crox (the authors'
    Caffe generator): per block, column j of ``columns`` is 2^(j-1) 3x3 convs with bias, the
    first reading the block's input; BatchNorm without a Scale layer (nothing learnable); an
    InnerProduct with bias on the last block's 1x1 map."""
    n, cin = 0, 3
    for w in filters:
        for j in range(1, columns + 1):
            n += 9 * cin * w + w + (2 ** (j - 1) - 1) * (9 * w * w + w)
        cin = w
    return n + cin * classes + classes


# --- the table --------------------------------------------------------------------------------
TIMM = "timm==1.0.31 timm/models/resnet.py (huggingface/pytorch-image-models@aa4b585)"
TIMM_HOW = "computed with timm==1.0.31 (torch 2.14.1) `sum(p.numel() for p in m.parameters())`"
TV = "torchvision==0.29.1 torchvision/models/resnet.py"
MM = "open-mmlab/mmpretrain@ee7f2e8 mmpretrain/models/backbones/resnet.py arch_settings"
MM_HOW = ("configs/resnet/metafile.yml 'Parameters' (printed to 10 000: tolerance 5 000); "
          "ResNetV1c/V1d = deep stem 32-32-64, stride on the 3x3")
PADDLE = ("PaddlePaddle/PaddleClas@d178931 ppcls/arch/backbone/legendary_models/resnet.py "
          "NET_CONFIG")
PADDLE_HOW = ("docs/zh_CN/models/ImageNet1k/model_list.md Params(M), printed to 0.01 M "
              "(tolerance 5 000); paddle.flops counts BN running mean/var too, so compared with "
              "our total parameters (ResNet50: 25.61 = 25 557 032 learnable + 53 120)")
CAFFE = "KaimingHe/deep-residual-networks@a7026cb prototxt/ResNet-{}-deploy.prototxt"
CAFFE_HOW = ("counted from the prototxt (the paper's released model): conv and fc weights and "
             "biases (every conv sets bias_term: false{}), Scale gamma/beta; BatchNorm blobs "
             "are statistics. Ours is GluonCV's resnet{}_v1: +{} 1x1-conv biases{}")
FUSENET = "zlmzju/fusenet@659e6bf network/cross.py"
FUSENET_HOW = ("computed with mxnet==1.9.1 from that file and network/base.py (run under Python 3 "
               "with set_blocks' `/` as Python 2's `//`): the sizes of the symbol's arguments "
               "but data and the label, the sum its utility.cal_params prints")
DPN_TIMM = "timm==1.0.31 timm/models/dpn.py"
DPN_TIMM_HOW = ("computed with timm==1.0.31 (torch 2.14.1): sum of numel of timm.create_model({!r})"
                ".parameters() (all require grad; BN statistics are buffers). The authors' "
                "cypw/DPNs@081328f symbol_dpn-{}.py builds the same layers; rwightman/"
                "pytorch-dpn-pretrained's README prints {} M (the port of their weights)")
R2N_TIMM = "timm==1.0.31 timm/models/res2net.py (huggingface/pytorch-image-models@aa4b585)"
R2N_CODE = "Res2Net/Res2Net-PretrainedModels@219c8c6 {}"  # the authors' released models
R2N_CODE_HOW = "computed with torch 2.14.1 from that file, `sum(p.numel() for p in m.parameters())`"
R2N_README = ("Res2Net/Res2Net-PretrainedModels@219c8c6 README.md 'Pretrained models' #Params, "
              "printed to 0.01 M (tolerance 5 000)")
R2N_PADDLE = "PaddlePaddle/PaddleClas@d178931 ppcls/arch/backbone/model_zoo/{} {}"
R2N_PADDLE_HOW = ("docs/zh_CN/models/ImageNet1k/README.md Params(M), printed to 0.01 M (tolerance "
                  "5 000); paddle.flops counts BN running mean/var too, so compared with our total "
                  "parameters")
R2N_50, R2N_101 = (3, 4, 6, 3), (3, 4, 23, 3)

# Our canonical Res2Net rows that are timm's own networks (no alias: same name or registered
# under ours), with timm's count; tests/models/test_res2net.py checks them.
RES2NET_TIMM: dict[str, SourceLayout] = {
    ours: SourceLayout(f"{R2N_TIMM} {theirs}", layers, count, TIMM_HOW)
    for ours, theirs, layers, count in (
        ("res2net50_26w_4s", "res2net50_26w_4s", R2N_50, 25699120),
        ("res2net50_48w_2s", "res2net50_48w_2s", R2N_50, 25287304),
        ("res2net50_14w_8s", "res2net50_14w_8s", R2N_50, 25059816),
        ("res2net50_26w_6s", "res2net50_26w_6s", R2N_50, 37051448),
        ("res2net50_26w_8s", "res2net50_26w_8s", R2N_50, 48403776),
        ("res2net101_26w_4s", "res2net101_26w_4s", R2N_101, 45206688),
        ("res2next50", "res2next50", R2N_50, 24671464),
        ("res2net50_v1d_26w_4s", "res2net50d", R2N_50, 25718352),
        ("res2net101_v1d_26w_4s", "res2net101d", R2N_101, 45225920))}
HE15 = "He et al. 2015 (arXiv:1512.03385)"
HE15_HOW = "closed form of Table 1 (he2015_imagenet_params), option {}; the paper prints none"
HE15_CIFAR = (f"{HE15} Sec. 4.2 (6n+2 layers, n units per stage) and Table 6 params, printed to "
              "{} (tolerance {})")

SOURCE_LAYOUTS: dict[str, SourceLayout] = {
    **{f"resnet{d}": SourceLayout(f"{TIMM} resnet{d}", layers, count, TIMM_HOW)
       for d, layers, count in ((18, (2, 2, 2, 2), 11689512), (34, (3, 4, 6, 3), 21797672),
                                (50, (3, 4, 6, 3), 25557032), (101, (3, 4, 23, 3), 44549160),
                                (152, (3, 8, 36, 3), 60192808))},
    **{f"resnet{d}{s}": SourceLayout(f"{TIMM} resnet{d}{s} (stem_width=32, stem_type='deep'"
                                     + (", avg_down=True)" if s == "d" else ")"),
                                     layers, count, TIMM_HOW)
       for d, layers, count in ((50, (3, 4, 6, 3), 25576264), (101, (3, 4, 23, 3), 44568392),
                                (152, (3, 8, 36, 3), 60212040)) for s in "cd"},
    "resnet200d": SourceLayout(f"{TIMM} resnet200d (layers=(3, 24, 36, 3), stem_width=32, "
                               "stem_type='deep', avg_down=True)", (3, 24, 36, 3), 64693064,
                               TIMM_HOW),
    **{f"torchvision.resnet{d}": SourceLayout(f"{TV} resnet{d}", layers, count,
                                              f"ResNet{d}_Weights.IMAGENET1K_V1.meta"
                                              "['num_params']")
       for d, layers, count in ((18, (2, 2, 2, 2), 11689512), (34, (3, 4, 6, 3), 21797672),
                                (50, (3, 4, 6, 3), 25557032), (101, (3, 4, 23, 3), 44549160),
                                (152, (3, 8, 36, 3), 60192808))},
    **{f"resnetv1{v}{d}": SourceLayout(f"{MM} {d}; resnetv1{v}{d}_8xb32_in1k", layers, count,
                                       MM_HOW, tolerance=5000)
       for d, layers, count in ((50, (3, 4, 6, 3), 25580000), (101, (3, 4, 23, 3), 44570000),
                                (152, (3, 8, 36, 3), 60210000)) for v in "cd"},
    **{name: SourceLayout(f"{PADDLE} {key}", layers, count, PADDLE_HOW, tolerance=5000,
                          total=True)
       for name, key, layers, count in (
           ("ResNet18", "18", (2, 2, 2, 2), 11700000), ("ResNet34", "34", (3, 4, 6, 3), 21810000),
           ("ResNet50", "50", (3, 4, 6, 3), 25610000),
           ("ResNet101", "101", (3, 4, 23, 3), 44650000),
           ("ResNet152", "152", (3, 8, 36, 3), 60340000),
           ("ResNet50_vd", "50", (3, 4, 6, 3), 25630000),
           ("ResNet101_vd", "101", (3, 4, 23, 3), 44670000),
           ("ResNet152_vd", "152", (3, 8, 36, 3), 60360000),
           ("ResNet200_vd", "200", (3, 12, 48, 3), 74930000))},
    "ResNet50_vc": SourceLayout("PaddlePaddle/PaddleClas@d178931 ppcls/arch/backbone/model_zoo/"
                                "resnet_vc.py (layers == 50: depth [3, 4, 6, 3])", (3, 4, 6, 3),
                                25630000, PADDLE_HOW, tolerance=5000, total=True),
    "resnet50_v1.5": SourceLayout(
        "NVIDIA/DeepLearningExamples@729963d PyTorch/Classification/ConvNets/image_classification"
        "/models/resnet.py resnet50 (layers=[3, 4, 6, 3], stride on the 3x3)", (3, 4, 6, 3),
        25557032, "computed with torch 2.14.1 from that file (its Model constructor, "
        "num_classes=1000) `sum(p.numel() for p in m.parameters())`"),
    **{f"ResNet-50-{v}": SourceLayout(
        f"He, T. et al. 2018 (arXiv:1812.01187) Fig. 2 ResNet-{v} of ResNet-50 (stages 3/4/6/3);"
        f" its code: GluonCV resnet50_v1{v.lower()}", (3, 4, 6, 3), count,
        "computed with gluoncv==0.10.5.post0 (mxnet 1.9.1): parameters with grad_req != 'null' "
        "after initialize(); the paper prints 25M")
       for v, count in (("B", 25557032), ("C", 25576264), ("D", 25576264))},
    "ResNet-18": SourceLayout(f"{HE15} Table 1", (2, 2, 2, 2),
                              he2015_imagenet_params("basic", (2, 2, 2, 2), "B"),
                              HE15_HOW.format("B")),
    "ResNet-34": SourceLayout(f"{HE15} Table 1", (3, 4, 6, 3),
                              he2015_imagenet_params("basic", (3, 4, 6, 3), "B"),
                              HE15_HOW.format("B")),
    "ResNet-50": SourceLayout(CAFFE.format(50), (3, 4, 6, 3), 25557096,
                              CAFFE_HOW.format(" except conv1", 50, 18880,
                                               ", less conv1's 64 bias"),
                              offset=gluoncv_v1_biases((3, 4, 6, 3)) - 64),
    "ResNet-101": SourceLayout(CAFFE.format(101), (3, 4, 23, 3), 44549160,
                               CAFFE_HOW.format("", 101, 40640, ""),
                               offset=gluoncv_v1_biases((3, 4, 23, 3))),
    "ResNet-152": SourceLayout(CAFFE.format(152), (3, 8, 36, 3), 60192808,
                               CAFFE_HOW.format("", 152, 59840, ""),
                               offset=gluoncv_v1_biases((3, 8, 36, 3))),
    **{f"ResNet-34 {o}": SourceLayout(f"{HE15} Table 1, Sec. 3.3 option {o}", (3, 4, 6, 3),
                                      he2015_imagenet_params("basic", (3, 4, 6, 3), o),
                                      HE15_HOW.format(o)) for o in "ABC"},
    **{f"plain-{d}": SourceLayout(f"{HE15} Table 1 (plain: no shortcuts)", layers,
                                  he2015_imagenet_params("basic", layers, "none"),
                                  HE15_HOW.format("none (plain)"))
       for d, layers in ((18, (2, 2, 2, 2)), (34, (3, 4, 6, 3)))},
    **{f"ResNet-{d} (CIFAR)": SourceLayout(
        HE15_CIFAR.format(places, tol), ((d - 2) // 6,) * 3, int(millions * 1e6),
        "the paper's Table 6 count, rounded as printed", tolerance=tol, classes=10)
       for d, millions, places, tol in ((20, 0.27, "0.01 M", 5000), (32, 0.46, "0.01 M", 5000),
                                        (44, 0.66, "0.01 M", 5000), (56, 0.85, "0.01 M", 5000),
                                        (110, 1.7, "0.1 M", 50000),
                                        (1202, 19.4, "0.1 M", 50000))},
    # Sec. 4.2: with option A "our residual models have exactly the same depth, width, and
    # number of parameters as the plain counterparts", so Table 6's counts are the plain nets'.
    **{f"plain-{d} (CIFAR)": SourceLayout(
        f"{HE15} Sec. 4.2 (same parameters as option-A ResNet-{d}) and Table 6",
        ((d - 2) // 6,) * 3, int(millions * 1e6), "Table 6's count of ResNet-{d}, rounded as "
        "printed", tolerance=tol, classes=10)
       for d, millions, tol in ((20, 0.27, 5000), (32, 0.46, 5000), (44, 0.66, 5000),
                                (56, 0.85, 5000), (110, 1.7, 50000))},
    **{f"ResNet-{d}": SourceLayout(
        "KaimingHe/resnet-1k-layers@fde7ee9 resnet-pre-act.lua (He et al. 2016's CIFAR code; "
        "9n+2 layers)", ((d - 2) // 9,) * 3, kh_preact_cifar_params(d),
        "closed form of that file (kh_preact_cifar_params); the paper's Table 4 prints "
        f"{printed}", classes=10)
       for d, printed in ((164, "1.7M"), (1001, "10.2M (conv weights only; with BN 10.33M)"))},
    "ResNet-200 (pre-act)": SourceLayout(
        "facebookarchive/fb.resnet.torch@985e569 models/preresnet.lua cfg[200] = {3, 24, 36, 3} "
        "(He et al. 2016 Table 5 trains this code)", (3, 24, 36, 3),
        fb_preresnet_params((3, 24, 36, 3)),
        "closed form of preresnet.lua (fb_preresnet_params). Ours is GluonCV's v2 layout, whose "
        "first unit has an input BN (64 scale + 64 shift) where preresnet.lua's 'no_preact' "
        "first unit has none", offset=128),
    **{f"WRN-{d}-{k}": SourceLayout(
        "szagoruyko/wide-residual-networks@ae6d0d0 pytorch/resnet.py resnet(depth, width) "
        "(n = (depth - 4) / 6 units per group; Zagoruyko & Komodakis 2016 Table 1)",
        ((d - 4) // 6,) * 3, count,
        f"computed with torch 2.14.1 from that file: resnet({d}, {k}, 10), parameters with "
        "requires_grad (its set_requires_grad_except_bn_)", classes=10)
       for d, k, count in ((16, 8, 10961370), (28, 10, 36479194), (40, 4, 8949210))},
    # --- DPN ---
    **{f"DPN-{d}": SourceLayout(f"{DPN_TIMM} dpn{d} (k_sec {stages})", stages, count,
                                DPN_TIMM_HOW.format(f"dpn{d}", d, printed))
       for d, stages, count, printed in (
           (68, (3, 4, 12, 3), 12611602, "12.61"), (92, (3, 4, 20, 3), 37668392, "37.67"),
           (98, (3, 6, 20, 3), 61570728, "61.57"), (107, (4, 8, 20, 3), 86917800, "86.92"),
           (131, (4, 8, 28, 3), 79254504, "79.25"))},
    # --- Res2Net ---
    "res2net50d": RES2NET_TIMM["res2net50_v1d_26w_4s"],
    "res2net101d": RES2NET_TIMM["res2net101_v1d_26w_4s"],
    **{f"res2net{d}_v1b_26w_4s": SourceLayout(
        R2N_CODE.format(f"res2net_v1b.py res2net{d}_v1b_26w_4s"), layers, count, R2N_CODE_HOW)
       for d, layers, count in ((50, R2N_50, 25718352), (101, R2N_101, 45225920),
                                (152, (3, 8, 36, 3), 61294480))},
    **{name: SourceLayout(f"Gao et al. 2019 (arXiv:1904.01169); {R2N_CODE.format(call)}",
                          layers, count, R2N_CODE_HOW)
       for name, call, layers, count in (
           ("Res2Net-50", "res2net.py res2net50 (26w 4s)", R2N_50, 25699120),
           ("Res2Net-101", "res2net.py res2net101_26w_4s", R2N_101, 45206688),
           ("Res2NeXt-50", "res2next.py res2next50", R2N_50, 24671464))},
    **{name: SourceLayout(R2N_README, layers, int(round(millions * 1e6)),
                          "the README's count, rounded as printed", tolerance=5000)
       for name, layers, millions in (
           ("Res2Net-50-48w-2s", R2N_50, 25.29), ("Res2Net-50-26w-4s", R2N_50, 25.70),
           ("Res2Net-50-14w-8s", R2N_50, 25.06), ("Res2Net-50-26w-6s", R2N_50, 37.05),
           ("Res2Net-50-26w-8s", R2N_50, 48.40), ("Res2Net-101-26w-4s", R2N_101, 45.21),
           ("Res2Net-v1b-50", R2N_50, 25.72), ("Res2Net-v1b-101", R2N_101, 45.23))},
    # PaddleClas's Res2Net200_vd (its 76.44 M total below matches ours within rounding) has
    # 76 215 536 learnable parameters, which rounds to 76.22: the README's 76.21 truncates.
    "Res2Net-v1d-200-SSLD": SourceLayout(
        f"{R2N_README}; the model is PaddleClas's Res2Net200_vd_26w_4s_ssld", (3, 12, 48, 3),
        76210000, "the README's count, its last digit truncated (tolerance 10 000)",
        tolerance=10000),
    **{name: SourceLayout(R2N_PADDLE.format(file, name), layers, int(round(millions * 1e6)),
                          R2N_PADDLE_HOW, tolerance=5000, total=True)
       for name, file, layers, millions in (
           ("Res2Net50_26w_4s", "res2net.py", R2N_50, 25.76),
           ("Res2Net50_14w_8s", "res2net.py", R2N_50, 25.12),
           ("Res2Net50_vd_26w_4s", "res2net_vd.py", R2N_50, 25.78),
           ("Res2Net101_vd_26w_4s", "res2net_vd.py", R2N_101, 45.35),
           ("Res2Net200_vd_26w_4s", "res2net_vd.py (depth 200 = [3, 12, 48, 3])",
            (3, 12, 48, 3), 76.44))},
    # --- FractalNet ---
    "FractalNet-20": SourceLayout(
        "gustavla/fractalnet@7d07da6 generation/fractalnet.py (COLUMNS = 3, CLASSES = 10; "
        "Larsson et al. 2016 Table 1's 20-layer net)", (7,) * 5, fractalnet_code_params(3),
        "closed form of the generator's layers (fractalnet_code_params; 2^C - 1 = 7 convs a "
        "block). The paper prints 38.6M, 12.7 % more; khanrc/pt.fractalnet@05eed3f "
        "exp-note-kor.md finds the same 33.7M", classes=10),
    # --- Merge-and-Run ---
    **{f"DFN-MR{i}": SourceLayout(
        f"{FUSENET} CrossNet(10, {plain}, {k}) (--depth={plain} --widen-factor={k})",
        (blocks,) * 3, count, f"{FUSENET_HOW}; the README prints {printed}", classes=10)
       for i, plain, k, blocks, count, printed in (
           (1, 110, 1, 9, 1710426, "1.7M"), (2, 62, 4, 5, 14851402, "14.9M"),
           (3, 98, 4, 8, 24151882, "24.8M, 2.6 % more than this code builds"))},
}

# Published sizes of the DPNs, to the digits printed: params (M) in rwightman/pytorch-dpn-
# pretrained's README (the authors' weights ported to PyTorch; transcribed in the project's seed
# notes) and "GFLOPs" (multiply-adds, 224x224) in cypw/DPNs@081328f README's ImageNet-1k table.
DPN_PUBLISHED: dict[str, tuple[float, float]] = {
    "DPN-68": (12.61, 2.5), "DPN-92": (37.67, 6.5), "DPN-98": (61.57, 11.7),
    "DPN-107": (86.92, 18.3), "DPN-131": (79.25, 16.0),
}
