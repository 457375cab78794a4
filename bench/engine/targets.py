"""Training targets: label smoothing and mixup, as numpy functions of (labels, seed, step).

Drawing mixup's lambda and permutation from a generator keyed by (seed, iteration) makes a
resumed run see the same mixing as an uninterrupted one.
"""
from __future__ import annotations

import numpy as np


def one_hot(labels: np.ndarray, classes: int, smoothing: float = 0.0) -> np.ndarray:
    """Smoothed one-hot targets: 1 - eps on the label, eps / classes spread over all classes
    (Szegedy et al. 2016; Bag of Tricks Sec. 5.2 uses eps = 0.1)."""
    out = np.full((len(labels), classes), smoothing / classes, dtype=np.float32)
    out[np.arange(len(labels)), labels.astype(np.int64)] += 1.0 - smoothing
    return out


def mixup_lambda(alpha: float, rng: np.random.Generator) -> float:
    """Zhang et al. 2018: each sample is mixed with the batch reversed, weight lam ~ Beta(a, a)."""
    return float(rng.beta(alpha, alpha))


def mix_targets(targets: np.ndarray, lam: float) -> np.ndarray:
    return lam * targets + (1 - lam) * targets[::-1]


def step_rng(seed: int, iteration: int) -> np.random.Generator:
    return np.random.default_rng([seed, iteration])
