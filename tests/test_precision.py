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
