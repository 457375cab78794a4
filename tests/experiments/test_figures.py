"""Figures of the small-scale experiments: each writes a valid PNG from measurements, names
networks as the papers do, and says in one line when the data it needs was never measured.

All measurements here are TEST DATA built by hand (made-up numbers in the runner's format),
not results of any training."""
from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.experiments import figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def measurement(network: str, seed: int, *, epochs: int = 4, layers: int = 6,
                lesion: bool = True, responses: bool = True) -> dict:
    """TEST DATA: a made-up measurement of ``network`` in the runner's format; the numbers
    only need to differ between networks and seeds so that lines and bands are drawn."""
    shift = 10.0 if "plain" in network else 2.0 if network.endswith("_sd") else 0.0
    offset = 3.0 * seed + shift
    m = {
        "network": network, "seed": seed,
        "final": {"train_err": 2.0 + offset, "test_err": 5.0 + offset,
                  "clean_train_err": 1.0 + offset, "epoch_time_s": 1.5 + 0.1 * seed - 0.05 * shift},
        "epochs": [{"epoch": e, "train_err": 60.0 / e + offset, "test_err": 50.0 / e + offset,
                    "time_s": 1.5} for e in range(1, epochs + 1)],
        "model": {"units": 9, "expected_depth": 6.5 if network.endswith("_sd") else 9.0},
    }
    if responses:
        m["responses"] = {"std": [(1.0 + shift / 10) * (1.0 + 0.1 * ((i * 7 + seed) % 5))
                                  for i in range(layers)]}
    if lesion:
        m["lesion"] = {
            "base_err": 5.0 + offset,
            "single": [{"index": i, "stage": i // 3 + 1, "position": i % 3 + 1,
                        "downsampling": i in (3, 6), "err": 6.0 + i + offset} for i in range(9)],
            "k": [{"k": k, "errs": [5.0 + 4 * k + offset + j for j in range(3)]}
                  for k in range(1, 5)],
        }
    return m


NETS = ["cifar_plain20_v1", "cifar_resnet20_v1_a", "cifar_resnet20_v1_sd"]
MEASUREMENTS = [measurement(n, s) for n in NETS for s in (0, 1)]  # TEST DATA


def assert_png(path, out):
    import matplotlib.image
    assert path == out and out.read_bytes()[:8] == PNG_MAGIC
    height, width, channels = matplotlib.image.imread(out).shape
    assert width >= 500 and height >= 400 and channels in (3, 4)


@pytest.mark.parametrize("name, call", [
    ("curves", lambda ms, out: figures.plot_training_curves(
        ms, out, panels={"plain": NETS[:1], "ResNet": NETS[1:]})),
    ("responses", lambda ms, out: figures.plot_responses(ms, out, networks=NETS[:2])),
    ("lesion", lambda ms, out: figures.plot_lesion(ms, out, networks=NETS[1:])),
    ("times", lambda ms, out: figures.plot_epoch_times(ms, out, networks=NETS[1:])),
])
def test_each_figure_is_a_png(tmp_path, name, call):
    out = tmp_path / f"{name}.png"
    assert_png(call(MEASUREMENTS, out), out)


def test_one_seed_without_a_band_and_a_network_without_the_data_left_out(tmp_path):
    data = [measurement(NETS[1], 0), measurement(NETS[2], 0, lesion=False)]  # TEST DATA
    out = tmp_path / "some.png"
    assert_png(figures.plot_lesion(data, out, networks=NETS[1:]), out)


@pytest.mark.parametrize("call, words", [
    (lambda ms, out: figures.plot_lesion(ms, out, networks=NETS[1:]), "'lesion'"),
    (lambda ms, out: figures.plot_responses(ms, out, networks=NETS), "'responses.std'"),
    (lambda ms, out: figures.plot_training_curves(
        [{**m, "epochs": []} for m in ms], out, panels={"all": NETS}), "'epochs'"),
    (lambda ms, out: figures.plot_epoch_times(
        [{**m, "final": {}} for m in ms], out, networks=NETS), "'final.epoch_time_s'"),
    (lambda ms, out: figures.plot_lesion(ms, out, networks=["cifar_resnet20_v1"]),
     "did you mean"),
    (lambda ms, out: figures.plot_responses(ms, out, networks=[]), "no networks"),
])
def test_missing_data_is_a_one_line_error(tmp_path, call, words):
    bare = [measurement(n, 0, lesion=False, responses=False) for n in NETS]  # TEST DATA
    out = tmp_path / "missing.png"
    with pytest.raises(BenchError) as error:
        call(bare, out)
    message = str(error.value)
    assert "\n" not in message and words in message
    assert not out.exists()


def test_seeds_with_different_layer_counts_are_an_error(tmp_path):
    data = [measurement(NETS[1], 0, layers=6), measurement(NETS[1], 1, layers=7)]
    with pytest.raises(BenchError, match="different numbers of layers"):
        figures.plot_responses(data, tmp_path / "r.png", networks=NETS[1:2])


def test_the_output_must_be_a_png(tmp_path):
    with pytest.raises(BenchError, match="must end in .png"):
        figures.plot_epoch_times(MEASUREMENTS, tmp_path / "t.jpg", networks=NETS)


@pytest.mark.parametrize("network, expected", [
    ("cifar_plain56_v1", "plain-56"),
    ("cifar_resnet56_v1_a", "ResNet-56"),
    ("cifar_resnet56_v1_sd", "ResNet-56 (stoch. depth)"),
    ("cifar_resnet110_v1_sd", "ResNet-110 (stoch. depth)"),
    ("cifar_resnet56_v2_a", "ResNet-56 (pre-act)"),
    ("cifar_resnet110_v2", "ResNet-110 (pre-act)"),
    ("cifar_resnet56_v1", "ResNet-56 (option B)"),
    ("resnet34_v1_c", "ResNet-34 (option C)"),
    ("plain34_v1", "plain-34"),
    ("resnet50_v1d", "resnet50_v1d"),
    ("cifar_wrn28_10", "cifar_wrn28_10"),
    ("cifar_resnet56_v1_zz", "cifar_resnet56_v1_zz"),
    ("cifar_plain56_v2", "cifar_plain56_v2"),
])
def test_labels_are_the_papers_names(network, expected):
    assert figures.label(network) == expected
