"""LR schedules against their closed forms, written out by hand here."""
from __future__ import annotations

import math

import pytest

from bench.engine.schedules import ErrorGatedWarmup, Schedule, build_schedule, scale_lr
from bench.errors import BenchError


def _build(**kw):
    args = dict(kind="step", base_lr=0.1, epochs=10, iters_per_epoch=100, milestones=(),
                unit="epoch", factor=0.1, power=2.0, final_lr=0.0, warmup_epochs=0.0,
                warmup_start_lr=0.0)
    args.update(kw)
    return build_schedule(**args)


def test_step_milestones_in_epochs_and_in_iterations_agree():
    by_epoch = _build(milestones=(3, 6), unit="epoch")
    by_iter = _build(milestones=(300, 600), unit="iteration")
    assert by_epoch == by_iter
    assert by_epoch.milestones == (300, 600) and by_epoch.total_iters == 1000
    for it, expected in [(0, 0.1), (299, 0.1), (300, 0.01), (599, 0.01), (600, 0.001),
                         (999, 0.001)]:
        assert by_epoch(it) == pytest.approx(expected, rel=1e-12), it


def test_fractional_epoch_milestones_round_to_iterations():
    assert _build(milestones=(2.5, 7.25)).milestones == (250, 725)


def test_cosine_closed_form_with_warmup():
    base, final, w, total = 0.4, 0.001, 50, 1000
    s = _build(kind="cosine", base_lr=base, final_lr=final, warmup_epochs=0.5,
               warmup_start_lr=0.0)
    assert (s.warmup_iters, s.total_iters) == (w, total)
    for it in (50, 51, 300, 525, 999, 1000):
        expected = final + (base - final) * (1 + math.cos(math.pi * (it - w) / (total - w))) / 2
        assert s(it) == pytest.approx(expected, rel=1e-12), it
    assert s(w) == pytest.approx(base) and s(total) == pytest.approx(final)
    assert s(total + 10) == pytest.approx(final)  # clamps past the end


def test_poly_closed_form():
    base, final, power, total = 0.1, 0.0, 2.0, 1000
    s = _build(kind="poly", base_lr=base, final_lr=final, power=power)
    for it in (0, 1, 250, 500, 999):
        expected = final + (base - final) * (1 - it / total) ** power
        assert s(it) == pytest.approx(expected, rel=1e-12), it


def test_poly_decays_over_the_iterations_after_warmup():
    s = _build(kind="poly", base_lr=0.2, final_lr=0.02, power=0.9, warmup_epochs=1)
    for it in (100, 400, 999):
        expected = 0.02 + (0.2 - 0.02) * (1 - (it - 100) / 900) ** 0.9
        assert s(it) == pytest.approx(expected, rel=1e-12), it


def test_constant():
    s = _build(kind="constant", base_lr=0.05)
    assert {s(i) for i in (0, 500, 999)} == {0.05}


def test_linear_warmup_start_middle_end():
    s = _build(kind="step", base_lr=0.4, warmup_epochs=2, warmup_start_lr=0.04,
               milestones=(5,))
    w = 200
    assert s.warmup_iters == w
    assert s(0) == pytest.approx(0.04)
    assert s(w // 2) == pytest.approx(0.04 + (0.4 - 0.04) * 0.5)
    assert s(w - 1) == pytest.approx(0.04 + (0.4 - 0.04) * (w - 1) / w)
    assert s(w) == pytest.approx(0.4)
    assert s(500) == pytest.approx(0.04)  # step milestones stay absolute


def test_warmup_rounds_fractional_epochs():
    assert _build(kind="cosine", warmup_epochs=0.125).warmup_iters == 12  # round(12.5) == 12


def test_iteration_budget_overrides_epochs():
    # He 2015 CIFAR: 64k iterations, lr /10 at 32k and 48k, whatever the epoch count says.
    s = _build(base_lr=0.1, epochs=182, iters_per_epoch=391, milestones=(32000, 48000),
               unit="iteration", total_iters=64000)
    assert s.total_iters == 64000
    assert s(31999) == pytest.approx(0.1) and s(32000) == pytest.approx(0.01)
    assert s(48000) == pytest.approx(0.001)


def test_describe_mentions_epochs_and_iterations():
    s = _build(kind="step", base_lr=0.4, epochs=120, iters_per_epoch=1251, milestones=(30, 60),
               warmup_epochs=5)
    lines = s.describe(1251)
    assert lines[0] == "warm-up 0 -> 0.4 over 5 epochs (6255 iterations)"
    assert "x0.1 at epoch 30 (iteration 37530): lr 0.04" in lines
    cos = _build(kind="cosine", base_lr=0.4, epochs=120, iters_per_epoch=1251).describe(1251)
    assert cos == ["cosine 0.4 -> 0 from epoch 0 (iteration 0) to epoch 120 (iteration 150120)"]


def test_linear_scaling_rule():
    assert scale_lr(0.4, 1024, 128) == pytest.approx(0.05)
    assert scale_lr(0.1, 256, 256) == 0.1
    with pytest.raises(BenchError):
        scale_lr(0.1, 0, 256)


@pytest.mark.parametrize("kw, words", [
    (dict(kind="cosin"), "did you mean: cosine"),
    (dict(unit="epochs"), "did you mean: epoch"),
    (dict(milestones=(6, 3)), "strictly increasing"),
    (dict(milestones=(3, 3.001)), "after rounding"),
    (dict(milestones=(10,)), "outside"),
    (dict(milestones=(0,)), "outside"),
    (dict(milestones=(1,), warmup_epochs=2), "inside the warm-up"),
    (dict(kind="cosine", milestones=(3,)), "only apply to kind 'step'"),
    (dict(warmup_epochs=10), "not shorter"),
    (dict(base_lr=0.0), "base lr"),
    (dict(base_lr=float("nan")), "base lr"),
    (dict(iters_per_epoch=0), "iterations per epoch"),
    (dict(epochs=0), "epochs"),
    (dict(kind="poly", power=0), "power"),
    (dict(factor=-0.1), "factor"),
])
def test_bad_inputs_are_one_line_errors(kw, words):
    with pytest.raises(BenchError) as info:
        _build(**kw)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_negative_iteration_is_a_bug():
    with pytest.raises(ValueError):
        Schedule(base_lr=0.1, total_iters=10)(-1)


def test_error_gated_warmup_switches_exactly_once():
    schedule = Schedule(base_lr=0.1, total_iters=1000, milestones=(500,))
    gate = ErrorGatedWarmup(0.01, 0.8)
    assert gate.lr(schedule, 0) == 0.01 and not gate.done
    assert gate.update(0.9) is False and gate.update(0.8) is False  # "below" is strict
    assert gate.update(float("nan")) is False
    assert gate.update(0.79) is True and gate.done
    assert gate.update(0.5) is False and gate.update(0.95) is False  # never switches back
    assert gate.lr(schedule, 10) == 0.1 and gate.lr(schedule, 600) == pytest.approx(0.01)
    restored = ErrorGatedWarmup(0.01, 0.8)
    restored.load_state_dict(gate.state_dict())
    assert restored.done and restored.lr(schedule, 10) == 0.1


@pytest.mark.parametrize("lr, threshold", [(0.0, 0.8), (0.01, 80), (0.01, 0.0)])
def test_error_gated_warmup_rejects_bad_settings(lr, threshold):
    with pytest.raises(BenchError):
        ErrorGatedWarmup(lr, threshold)
