"""Random generators keyed by (seed, epoch, batch or sample), so that any batch can be
recomputed on its own: a run resumed mid-epoch replays exactly what a straight run saw."""
from __future__ import annotations

import numpy as np

from bench.errors import BenchError

# The first entropy word says what the stream is for. SeedSequence pads entropy with zeros, so
# without it [seed, epoch] and [seed, epoch, 0] would be the same stream.
_ORDER, _BATCH, _SAMPLE, _SYNTHETIC = 0x0D3E, 0xBA7C, 0x5A4E, 0x5E7D


def _word(x: int) -> int:
    return int(x) % (1 << 64)  # SeedSequence takes non-negative integers only


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of ``n`` samples used in ``epoch``."""
    return np.random.default_rng([_ORDER, _word(seed), _word(epoch)]).permutation(n)


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    """Augmentation randomness of one batch (array data sets augment a whole batch at once)."""
    return np.random.default_rng([_BATCH, _word(seed), _word(epoch), _word(batch)])


def sample_rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    """Augmentation randomness of the sample at ``position`` in the epoch's order (image data
    sets augment one image at a time, in worker threads, in any order)."""
    return np.random.default_rng([_SAMPLE, _word(seed), _word(epoch), _word(position)])


def synthetic_rng(seed: int, split: int) -> np.random.Generator:
    return np.random.default_rng([_SYNTHETIC, _word(seed), _word(split)])


def check_shard(batch_size: int, shard: tuple[int, int]) -> int:
    """The per-worker batch of a global ``batch_size`` split over ``shard = (index, count)``
    workers: every worker takes the same-sized slice of every global batch, so all run the
    same number of steps (a multi-worker kvstore blocks forever otherwise)."""
    index, count = shard
    if not 0 <= index < count:
        raise BenchError(f"shard {index} of {count} does not exist")
    if batch_size % count:
        raise BenchError(f"a global batch of {batch_size} cannot be split evenly over {count} "
                         "workers: use a multiple of the worker count")
    return batch_size // count


def check_start(start_batch: int, batches_per_epoch: int) -> None:
    if not 0 <= start_batch <= batches_per_epoch:
        raise BenchError(f"cannot start at batch {start_batch}: an epoch has "
                         f"{batches_per_epoch} batches")
