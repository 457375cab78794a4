"""Each quantity read from a hand-written measurement dict (test data), with the expected
numbers worked out by hand in the comments."""
from __future__ import annotations

import math

import pytest

from bench.experiments.quantities import ANALYSES, QUANTITIES, quantity_value

# Test data: one (network, seed) measurement in the runner's layout.
MEASUREMENT = {
    "network": "cifar_resnet20_v1_a", "seed": 1,
    "final": {"train_err": 3.5, "test_err": 4.25, "clean_train_err": 1.0, "epoch_time_s": 2.5},
    "epochs": [{"epoch": 1, "train_err": 50.0, "test_err": 40.0, "time_s": 2.0}],
    "responses": {"std": [1.0, 2.0, 4.0, 1.0]},
    "lesion": {
        "base_err": 2.0,
        "single": [
            {"index": 0, "stage": 1, "position": 1, "downsampling": False, "err": 3.0},
            {"index": 1, "stage": 1, "position": 2, "downsampling": False, "err": 5.0},
            {"index": 2, "stage": 2, "position": 1, "downsampling": True, "err": 40.0},
            {"index": 3, "stage": 2, "position": 2, "downsampling": False, "err": 7.0},
            {"index": 4, "stage": 3, "position": 1, "downsampling": True, "err": 60.0},
        ],
        "k": [{"k": 1, "errs": [3.0, 5.0]}, {"k": 3, "errs": [20.0, 30.0, 40.0]},
              {"k": 2, "errs": [8.0, 12.0]}],
    },
    "model": {"units": 9, "expected_depth": 6.5},
}


@pytest.mark.parametrize("name, index, expected", [
    ("final.train_err", None, 3.5),
    ("final.test_err", None, 4.25),
    ("final.clean_train_err", None, 1.0),
    ("final.epoch_time_s", None, 2.5),
    ("responses.mean", None, 2.0),                 # (1 + 2 + 4 + 1) / 4
    ("lesion.base_err", None, 2.0),
    ("lesion.single_mean_err", None, 5.0),         # (3 + 5 + 7) / 3, downsampling left out
    ("lesion.single_max_err", None, 7.0),
    ("lesion.downsampling_mean_err", None, 50.0),  # (40 + 60) / 2
    ("lesion.single_all_max_err", None, 60.0),
    ("lesion.k_err", 1, 4.0),                      # (3 + 5) / 2
    ("lesion.k_err", 2, 10.0),                     # (8 + 12) / 2
    ("lesion.k_err", 3, 30.0),                     # (20 + 30 + 40) / 3
    ("lesion.k_err", 4, None),                     # not measured
    ("lesion.k_max_step", None, 20.0),             # k = 0..3: 2, 4, 10, 30 -> steps 2, 6, 20
    ("model.units", None, 9.0),
    ("model.expected_depth", None, 6.5),
])
def test_each_quantity_reads_its_number(name, index, expected):
    value = quantity_value(MEASUREMENT, name, index)
    assert value == expected and (value is None or isinstance(value, float))


def test_the_table_covers_every_quantity_with_a_known_analysis():
    tested = {"final.train_err", "final.test_err", "final.clean_train_err",
              "final.epoch_time_s", "responses.mean", "lesion.base_err",
              "lesion.single_mean_err", "lesion.single_max_err", "lesion.downsampling_mean_err",
              "lesion.single_all_max_err", "lesion.k_err", "lesion.k_max_step", "model.units",
              "model.expected_depth"}
    assert set(QUANTITIES) == tested
    assert all(q.analysis in ANALYSES and q.unit and q.description for q in QUANTITIES.values())
    assert [n for n, q in QUANTITIES.items() if q.indexed] == ["lesion.k_err"]


def test_a_part_not_measured_reads_none():
    training_only = {"network": "x", "seed": 1, "final": MEASUREMENT["final"]}
    for name, quantity in QUANTITIES.items():
        value = quantity_value(training_only, name, 1 if quantity.indexed else None)
        assert (value is None) == (quantity.analysis != "training"), name


def test_empty_lists_and_nan_read_none():
    empty = {"responses": {"std": []}, "lesion": {"single": [], "k": []},
             "final": {"test_err": math.nan}}
    for name in ("responses.mean", "lesion.single_mean_err", "lesion.single_all_max_err",
                 "lesion.k_max_step", "final.test_err"):
        assert quantity_value(empty, name, None) is None, name


def test_k_max_step_without_base_err_uses_the_measured_ks_only():
    lesion = {k: v for k, v in MEASUREMENT["lesion"].items() if k != "base_err"}
    assert quantity_value({"lesion": lesion}, "lesion.k_max_step", None) == 20.0  # 4, 10, 30
    one_k = {"lesion": {"k": [{"k": 1, "errs": [3.0]}]}}
    assert quantity_value(one_k, "lesion.k_max_step", None) is None  # no step to measure


def test_a_wrong_index_is_a_programming_error():
    with pytest.raises(ValueError):
        quantity_value(MEASUREMENT, "lesion.k_err", None)
    with pytest.raises(ValueError):
        quantity_value(MEASUREMENT, "final.test_err", 1)


def test_the_experiments_readme_lists_every_quantity():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "experiments" / "README.md").read_text()
    rows = [line.split("|")[1:4] for line in readme.splitlines()
            if line.startswith("| `") and "." in line.split("|")[1]]
    listed = {name.strip().strip("`").removesuffix("[k]"): (analysis.strip(), unit.strip())
              for name, analysis, unit in rows}
    assert listed == {n: (q.analysis, q.unit) for n, q in QUANTITIES.items()}
