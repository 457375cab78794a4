"""bench.errors.did_you_mean and bench._mxnet.require_mxnet."""
from __future__ import annotations

import os
import sys

import pytest

from bench._mxnet import require_mxnet
from bench.errors import BenchError, did_you_mean

NAMES = ["resnet50_v1", "resnet50_v1b", "resnet50_v1c", "resnet50_v1d", "resnet18_v2",
         "cifar_resnet20_v1"]


def test_did_you_mean_names_close_choices_best_first():
    assert did_you_mean("resnet50v1d", NAMES, n=2) == " (did you mean: resnet50_v1d, resnet50_v1?)"


def test_did_you_mean_keeps_at_most_n():
    assert did_you_mean("resnet50", NAMES).count(",") == 2  # three names


def test_did_you_mean_empty_when_nothing_is_close():
    assert did_you_mean("vgg16", NAMES) == ""
    assert did_you_mean("resnet50_v1d", []) == ""


def test_did_you_mean_takes_any_iterable():
    assert did_you_mean("resnt18_v2", iter(NAMES), n=1) == " (did you mean: resnet18_v2?)"


def test_require_mxnet_returns_the_module():
    mx = require_mxnet()
    assert mx.__name__ == "mxnet"
    assert hasattr(mx, "nd")


def test_require_mxnet_explains_in_one_line_when_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "mxnet", None)  # makes `import mxnet` raise ImportError
    with pytest.raises(BenchError) as info:
        require_mxnet()
    message = str(info.value)
    assert "\n" not in message
    assert message == ("MXNet is not installed: run `pip install -e '.[cpu]'` (CPU) or "
                       "`pip install -e '.[cu112]'` (CUDA 11.2 GPUs)")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_require_mxnet_keeps_a_user_set_thread_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    require_mxnet()
    assert os.environ["OMP_NUM_THREADS"] == "7"
