"""ResidualUnit.bypassed: which units can lose their layers, and a one-line refusal."""
from __future__ import annotations

import pytest

from bench.models.resnet import ResidualUnit

UNIT = dict(kind="basic", preact=False, stride_on="1x1", mid_channels=8)


@pytest.mark.parametrize("shortcut,in_ch,stride,changes,removable", [
    ("B", 8, 1, False, True), ("B", 4, 2, True, True), ("A", 4, 1, True, True),
    ("none", 8, 1, False, True), ("none", 8, 2, True, False), ("none", 4, 1, True, False),
])
def test_changes_shape_and_removable(shortcut, in_ch, stride, changes, removable):
    unit = ResidualUnit(in_ch, 8, stride, shortcut=shortcut, **UNIT)
    assert (unit.changes_shape, unit.removable, unit.bypassed) == (changes, removable, False)
    if removable:
        unit.bypassed = True
        assert unit.bypassed
        unit.bypassed = False
        assert not unit.bypassed


def test_a_plain_shape_changing_unit_refuses_in_one_line():
    unit = ResidualUnit(4, 8, 2, shortcut="none", **UNIT)
    with pytest.raises(ValueError, match="cannot be bypassed") as err:
        unit.bypassed = True
    assert "\n" not in str(err.value) and not unit.bypassed
    unit.bypassed = False  # switching it off is always allowed


def test_bypassed_is_not_a_parameter():
    unit = ResidualUnit(8, 8, 1, shortcut="B", **UNIT)
    before = set(unit.collect_params())
    unit.bypassed = True
    assert set(unit.collect_params()) == before and "bypassed" not in unit._children
