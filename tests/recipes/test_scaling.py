"""The batch rule: the recipe's global batch is kept when it fits the devices used, and only
rescaled (per-device batch kept, linear LR scaling) when it does not. Every branch, no GPU."""
from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.recipes import DeviceMemory, choose_batch, fit_to_check, load_recipe, plan_for

MIB = 2 ** 20


def _memory(capacity_mib, per_image_mib=7, fixed_mib=0):
    capacity = None if capacity_mib is None else capacity_mib * MIB
    return DeviceMemory(capacity, per_image_mib * MIB, fixed_mib * MIB, "the test's memory")


def test_the_recipes_own_devices_keep_its_batch_and_say_nothing():
    assert fit_to_check(128, 2, 2) is None
    choice = choose_batch(128, 2, 2, _memory(1))  # even a memory too small is not asked
    assert (choice.global_batch, choice.kept, choice.why) == (128, True, "")


def test_more_devices_split_the_recipes_batch_without_asking_the_memory():
    choice = choose_batch(256, 8, 16, memory=None)  # 16 x 16, fewer than the recipe's 32 each
    assert (choice.global_batch, choice.kept) == (256, True)
    assert "as 16 device(s) x 16, no more images per device than the recipe's own" in choice.why
    assert fit_to_check(256, 8, 16) is None


def test_a_batch_that_does_not_split_evenly_keeps_the_per_device_batch():
    choice = choose_batch(256, 8, 3, _memory(10 ** 6))  # 256 / 3 is not whole: 3 x 32 = 96
    assert (choice.global_batch, choice.kept) == (96, False)
    assert "does not split evenly over 3 device(s)" in choice.why
    assert fit_to_check(256, 8, 3) is None


@pytest.mark.parametrize("memory", [None, _memory(None)])
def test_unknown_memory_keeps_the_recipes_per_device_batch(memory):
    # A GPU whose memory MXNet cannot report: 64 images are known to fit (the recipe's own).
    choice = choose_batch(128, 2, 1, memory)
    assert (choice.global_batch, choice.kept) == (64, False)
    assert "is unknown" in choice.why and "--batch-size 128 keeps the recipe's batch" in choice.why


def test_the_fit_is_the_estimate_against_90_percent_of_the_capacity():
    # 128 images x 7 MiB = 896 MiB; 90 % of 1000 MiB = 900 MiB.
    assert fit_to_check(128, 2, 1) == 128
    fits = choose_batch(128, 2, 1, _memory(1000, fixed_mib=4))  # 900 MiB: fits exactly
    assert (fits.global_batch, fits.kept) == (128, True)
    assert fits.why == ("recipe is for 2 device(s) x 64 images; running its global batch 128 as "
                        "1 device(s) x 128: an estimated 900 MiB per device fits in 90% of the "
                        "test's memory (1000 MiB)")
    tight = choose_batch(128, 2, 1, DeviceMemory(1000 * MIB, 7 * MIB, 4 * MIB + 1, "RAM"))
    assert (tight.global_batch, tight.kept) == (64, False)  # one byte over
    assert "would need an estimated 900 MiB per device, more than 90% of RAM" in tight.why


def test_workers_count_as_devices():
    # 8 x 32 = 256 on 2 workers x 2 devices: 64 each, kept if it fits, else 4 x 32 = 128.
    assert choose_batch(256, 8, 4, _memory(1000)).global_batch == 256
    assert choose_batch(256, 8, 4, _memory(100)).global_batch == 128
    for devices in (3, 4, 6, 16):
        assert choose_batch(256, 8, devices, _memory(100)).global_batch % devices == 0


def test_batch_size_sets_the_global_batch():
    choice = choose_batch(128, 2, 1, _memory(1), requested=64)
    assert (choice.global_batch, choice.kept, choice.why) == (
        64, False, "--batch-size 64: 1 device(s) x 64 images")
    assert fit_to_check(128, 2, 1, requested=64) is None
    with pytest.raises(BenchError, match="positive multiple of the 2 device"):
        choose_batch(128, 2, 2, requested=65)


def test_plan_keeps_he2015_cifar_at_128_and_64k_iterations_when_it_fits():
    # He 2015 Sec. 4.2: batch 128 on 2 GPUs, lr 0.1, /10 at 32k and 48k, 64k iterations.
    recipe = load_recipe("he2015_cifar10_resnet20")
    plan = plan_for(recipe, 1, memory=_memory(10 ** 5))
    assert (plan.global_batch, plan.per_device_batch, plan.lr, plan.iterations,
            plan.milestones, plan.batch_kept) == (128, 128, 0.1, 64000, (32000, 48000), True)
    assert len(plan.changes) == 1 and "running its global batch 128" in plan.changes[0]


def test_plan_rescales_he2015_cifar_to_64_when_it_does_not_fit():
    # Half the batch: half the lr, twice the iterations, the same epochs (linear scaling rule).
    plan = plan_for(load_recipe("he2015_cifar10_resnet20"), 1, memory=_memory(10))
    assert (plan.global_batch, plan.lr, plan.iterations, plan.milestones, plan.batch_kept) == (
        64, pytest.approx(0.05), 128000, (64000, 96000), False)
    assert "global batch 128 -> 64: lr 0.1 -> 0.05 (linear scaling rule)" in plan.changes


def test_a_teachers_share_counts_against_the_capacity_and_is_named():
    # Student 4 MiB + 128 x 5 MiB = 644 MiB; a teacher of 2 MiB weights + 2 MiB per image adds
    # 258 MiB: 902 MiB, over 90 % of 1000 MiB (900) though the student alone fits.
    taught = DeviceMemory(1000 * MIB, 5 * MIB, 4 * MIB, "RAM", teacher="resnet152_v1d",
                          teacher_per_image=2 * MIB, teacher_fixed=2 * MIB)
    assert (taught.teacher_need(128), taught.need(128)) == (258 * MIB, 902 * MIB)
    refused = choose_batch(128, 2, 1, taught)
    assert (refused.global_batch, refused.kept) == (64, False)
    assert ("would need an estimated 902 MiB per device (teacher resnet152_v1d: 258 MiB), "
            "more than 90% of RAM") in refused.why
    alone = choose_batch(128, 2, 1, DeviceMemory(1000 * MIB, 5 * MIB, 4 * MIB, "RAM"))
    assert alone.kept and "an estimated 644 MiB per device fits" in alone.why
