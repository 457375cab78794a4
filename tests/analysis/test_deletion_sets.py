"""Which units a lesion study removes together: reproducible, distinct, the right sizes."""
from __future__ import annotations

import math

import pytest

from bench.analysis import deletion_sets
from bench.errors import BenchError


def test_same_seed_same_sets_other_seed_other_sets():
    first = deletion_sets(54, 5, 30, seed=1)
    assert deletion_sets(54, 5, 30, seed=1) == first
    assert deletion_sets(54, 5, 30, seed=2) != first


def test_each_k_has_its_own_stream():
    """Asking for k = 3 does not depend on whether k = 2 was drawn first, and k = 2 and 3
    are not prefixes of one another's draws."""
    three = deletion_sets(54, 3, 20, seed=7)
    deletion_sets(54, 2, 20, seed=7)
    assert deletion_sets(54, 3, 20, seed=7) == three
    assert [s[:2] for s in three] != deletion_sets(54, 2, 20, seed=7)


@pytest.mark.parametrize("n_units,k,samples", [(54, 1, 10), (54, 10, 50), (9, 4, 100),
                                               (9, 4, 120), (12, 6, 300), (20, 19, 15)])
def test_sizes_distinct_sorted_and_in_range(n_units, k, samples):
    sets = deletion_sets(n_units, k, samples, seed=0)
    assert len(sets) == min(samples, math.comb(n_units, k))
    assert len(set(sets)) == len(sets)
    for s in sets:
        assert isinstance(s, tuple) and len(s) == k and len(set(s)) == k
        assert list(s) == sorted(s) and all(0 <= i < n_units for i in s)
        assert all(type(i) is int for i in s)


def test_exclude_is_respected():
    sets = deletion_sets(18, 3, 200, seed=0, exclude=[0, 6, 12])
    assert len(sets) == 200
    assert not {0, 6, 12} & {i for s in sets for i in s}


def test_all_combinations_in_sorted_order_when_few():
    assert deletion_sets(4, 2, 6, seed=0) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert deletion_sets(5, 2, 100, seed=3, exclude=[1, 4]) == [(0, 2), (0, 3), (2, 3)]


@pytest.mark.parametrize("k", [0, -1, 7])
def test_bad_k_is_refused_in_one_line(k):
    with pytest.raises(BenchError, match="choose k from 1 to 6") as err:
        deletion_sets(9, k, 10, seed=0, exclude=[3, 6, 8])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs,message", [({"samples": 0}, "must be positive"),
                                            ({"exclude": [9]}, "cannot exclude unit 9")])
def test_bad_samples_or_exclude_refused(kwargs, message):
    with pytest.raises(BenchError, match=message):
        deletion_sets(9, 2, **{"samples": 5, "seed": 0, **kwargs})
