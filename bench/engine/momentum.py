"""Zero a ``gluon.Trainer``'s momentum buffers in place (WRN's fresh optimizer state at each LR
drop, ``schedule.reset_momentum``).

Where MXNet 1.9.1 keeps them (``mxnet/gluon/trainer.py``, ``mxnet/optimizer/optimizer.py``):

* with the update on the kvstore (several devices, kvstore ``device``/``local``), in the
  kvstore's single updater, ``trainer._kvstore._updater.states``;
* otherwise (one device, a dist kvstore with ``update_on_kvstore=False``, Horovod's
  ``DistributedTrainer``), in one updater per device, ``trainer._updaters[i].states``, each
  holding its own copy on its own device: every copy is zeroed.

A state is the momentum NDArray (SGD, NAG), None (no momentum), or ``(momentum, fp32 weights)``
with ``multi_precision``: only the momentum is zeroed, never the fp32 master weights. The
optimizer's update counts are left alone: they only drive MXNet's own LR schedulers, which the
engine does not use (it sets the LR itself).
"""
from __future__ import annotations


def updaters(trainer) -> list:
    """Every updater that holds ``trainer``'s optimizer states."""
    # Before the first step (or load_states) no kvstore exists yet and the states are empty.
    if trainer._kv_initialized and trainer._kvstore is not None and trainer._update_on_kvstore:
        return [trainer._kvstore._updater]
    return list(trainer._updaters)


def _momentum(state):
    """The momentum NDArray of one optimizer state, or None."""
    if isinstance(state, (tuple, list)):  # multi_precision: (momentum, fp32 master weights)
        return state[0]
    return state


def reset_momentum(trainer) -> int:
    """Zero every momentum buffer of ``trainer`` in place; returns how many were zeroed (0 before
    the first step: the states are created lazily, as zeros)."""
    count = 0
    for updater in updaters(trainer):
        for state in updater.states.values():
            momentum = _momentum(state)
            if momentum is not None:
                momentum[:] = 0
                count += 1
    return count
