"""The precision decision (bench/precision.py), every branch, without a GPU or a given CPU."""
from __future__ import annotations

import pytest

from bench import precision
from bench.errors import BenchError

NONE = {flag: False for flag in precision.CPU_FLAGS}
AMD_ZEN4 = {**NONE, "avx2": True, "avx512f": True, "avx512_bf16": True, "avx512_vnni": True}
SAPPHIRE = {**AMD_ZEN4, "amx_tile": True, "amx_bf16": True, "amx_int8": True, "avx_vnni": True}
SKYLAKE = {**NONE, "avx2": True, "avx512f": True}  # AVX-512 without BF16 or VNNI


def test_cpu_flags_are_read_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512f avx512_vnni\n"
                    "bugs\t\t: avx512_bf16\n")  # a flag named on another line does not count
    flags = precision.cpu_flags(info)
    assert precision.present(flags) == ["avx2", "avx512f", "avx512_vnni"]


def test_unreadable_cpuinfo_means_no_flags(tmp_path):
    assert not any(precision.cpu_flags(tmp_path / "missing").values())


@pytest.mark.parametrize("flags", [NONE, SKYLAKE, AMD_ZEN4, SAPPHIRE])
def test_float32_runs_everywhere(flags):
    assert precision.unsupported("float32", False, flags) is None
    assert precision.unsupported("float32", True, flags) is None


@pytest.mark.parametrize("dtype", ["float16", "amp"])
def test_half_precision_needs_a_gpu(dtype):
    assert precision.unsupported(dtype, True, NONE, training=True) is None
    assert "needs a GPU" in precision.unsupported(dtype, False, SAPPHIRE, training=True)


def test_amp_is_a_training_mode_only():
    assert "unknown precision 'amp'" in precision.unsupported("amp", True, NONE)


@pytest.mark.parametrize("dtype, ok, missing", [
    ("bfloat16", [AMD_ZEN4, SAPPHIRE, {**NONE, "amx_bf16": True}], [NONE, SKYLAKE,
                                                                    {**NONE, "avx512_vnni": True}]),
    ("int8", [AMD_ZEN4, SAPPHIRE, {**NONE, "avx_vnni": True}], [NONE, SKYLAKE,
                                                                {**NONE, "avx512_bf16": True}]),
])
def test_cpu_precisions_need_their_instructions(dtype, ok, missing):
    for flags in ok:
        assert precision.unsupported(dtype, False, flags) is None
    for flags in missing:
        reason = precision.unsupported(dtype, False, flags)
        assert reason.startswith(f"{dtype} needs a CPU with") and "use float32" in reason


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_cpu_precisions_refuse_a_gpu(dtype):
    assert "CPU path" in precision.unsupported(dtype, True, SAPPHIRE)


def test_int8_does_not_train_but_bfloat16_does():
    assert "not training" in precision.unsupported("int8", False, SAPPHIRE, training=True)
    assert precision.unsupported("bfloat16", False, SAPPHIRE, training=True) is None


def test_unknown_precision_names_the_choices():
    assert "choose from float32, float16, bfloat16, int8" in precision.unsupported(
        "bf16", False, SAPPHIRE)


def test_require_raises_one_line():
    with pytest.raises(BenchError, match=r"^int8 needs a CPU with [^\n]*$"):
        precision.require("int8", False, flags=SKYLAKE)
    precision.require("int8", False, flags=SAPPHIRE)  # no error


# ---- AMX (bench.precision.amx_plan; bench._mxnet._enable_amx acts on it) ------------------

@pytest.mark.parametrize("flags, environ, machine, why", [
    (SAPPHIRE, {}, "aarch64", "not an x86-64 CPU"),
    (AMD_ZEN4, {}, "x86_64", "no AMX"),
    ({**SAPPHIRE, "amx_bf16": False, "amx_int8": False}, {}, "x86_64", "no AMX"),
    (SAPPHIRE, {"BENCH_AMX": "0"}, "x86_64", "BENCH_AMX=0"),
    (SAPPHIRE, {"DNNL_MAX_CPU_ISA": "AVX512_CORE"}, "x86_64", "set by the user"),
    (SAPPHIRE, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "x86_64", "set by the user"),
])
def test_amx_stays_off_unless_the_cpu_has_it_and_the_user_left_the_isa_alone(flags, environ,
                                                                              machine, why):
    assert why in precision.amx_plan(flags, environ, machine)


def test_amx_goes_on_for_an_amx_cpu():
    assert precision.amx_plan(SAPPHIRE, {"BENCH_AMX": "1"}, "x86_64") is None


def test_the_isa_variable_is_not_left_for_child_processes():
    """A child that inherits DNNL_MAX_CPU_ISA=AVX512_CORE_AMX without asking Linux for the tile
    state dies of SIGILL at its first AMX instruction (seen: exit -4), so after MXNet is
    imported through bench the variable must be gone, whatever AMX_STATE says."""
    import os
    from bench import _mxnet
    _mxnet.require_mxnet()
    assert not any(name in os.environ and os.environ[name] == precision.AMX_ISA
                   for name in precision.ISA_VARIABLES)
    assert _mxnet.AMX_STATE == "on" or _mxnet.AMX_STATE.startswith("off: ")


AMX_PROBE = """
import os, subprocess, sys
from bench import _mxnet
mx = _mxnet.require_mxnet()
from mxnet.contrib import amp
from mxnet.gluon import nn
net = nn.HybridSequential()
net.add(nn.Conv2D(32, 3, padding=1, in_channels=32))
net.initialize()
net.hybridize()
x = mx.nd.ones((2, 32, 8, 8))
net(x).wait_to_read()
bf16 = amp.convert_hybrid_block(net, target_dtype="bfloat16", ctx=mx.cpu())
bf16(x).wait_to_read()
print("STATE", _mxnet.AMX_STATE, flush=True)
if len(sys.argv) > 1:  # a child that imports mxnet itself, after the parent turned AMX on
    child = subprocess.run([sys.executable, "-c", "import mxnet as mx; from mxnet.contrib import "
                            "amp; print('child ok')"], capture_output=True, text=True)
    print("CHILD", child.returncode, flush=True)
"""


@pytest.mark.skipif(precision.amx_plan(precision.cpu_flags(), {}, __import__("platform").machine())
                    is not None, reason="this CPU has no AMX")
def test_on_an_amx_cpu_bf16_convolutions_run_on_amx_and_children_are_safe(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in precision.ISA_VARIABLES
           and k != precision.AMX_SWITCH}
    env.update(PYTHONPATH=str(root), DNNL_VERBOSE="1", OMP_NUM_THREADS="1")
    script = tmp_path / "probe.py"
    script.write_text(AMX_PROBE)
    out = subprocess.run([sys.executable, str(script), "child"], env=env, capture_output=True,
                         text=True, timeout=300).stdout
    assert "STATE on" in out
    kernels = {line.split(",")[4] for line in out.splitlines()
               if line.startswith("dnnl_verbose,exec") and ",convolution," in line}
    assert any("amx" in k for k in kernels), kernels  # e.g. brgconv:avx512_core_amx_bf16
    assert "CHILD 0" in out
