"""The workers of one training job and the few collective operations the loop needs.

One process trains on one machine's devices; a multi-worker job runs one such process per
worker. Kvstores ``dist_sync`` / ``dist_device_sync`` (MXNet's parameter server: a scheduler,
servers and workers found through the ``DMLC_*`` environment variables that ``bench launch`` or
any other launcher sets) and ``horovod`` (``horovodrun``) make a job of several workers; every
other kvstore is a job of one.

What the loop relies on, and why each matters:

* the global batch is the per-worker batch times the number of workers, so the LR is rescaled
  for the whole job, and ``trainer.step(global_batch)`` divides the summed gradients by it
  (Horovod's trainer averages over the workers itself and is given the per-worker batch);
* every worker runs the same number of steps (``dist_sync`` blocks forever otherwise), so the
  training set is sharded per global batch and a stop (a signal on any worker) is agreed on at
  every step through :meth:`Cluster.allreduce`;
* the logging window's loss and training error are summed over the workers, so the He 2015
  error-gated warm-up switches on every worker at the same step and a diverged window (see
  :mod:`.health`: non-finite loss or parameters, the loss bound) stops all;
* only rank 0 evaluates and writes (run directory, log, checkpoints): BN running statistics
  differ between workers, and one writer keeps the files consistent.

With ``dist_sync`` the trainer keeps ``update_on_kvstore=False``: the servers only sum
gradients and each worker applies the same update, so the optimizer state lives in the worker
and ``trainer.save_states`` can checkpoint it (with the update on the servers it cannot).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from bench._mxnet import require_mxnet
from bench.errors import BenchError

DIST_KVSTORES = ("dist_sync", "dist_device_sync")
# The kvstore key of the loop's own sums; the trainer uses 0..(number of parameters - 1).
_SUM_KEY = 1 << 30


@dataclass
class Cluster:
    """This process's place in its job: ``rank`` of ``size`` workers, and the kvstore object the
    trainer must use (None: the trainer makes its own, or needs none)."""

    rank: int = 0
    size: int = 1
    backend: str = "local"  # "local" | "dist" | "horovod"
    local_rank: int = 0  # the process's index on its machine (Horovod: which GPU it takes)
    kvstore: Any = None
    _sum_keys: set[int] = field(default_factory=set)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce(self, values: Sequence[float]) -> np.ndarray:
        """The element-wise sum of ``values`` over every worker (a synchronisation point: each
        worker must call it the same number of times with the same length)."""
        data = np.asarray(values, dtype=np.float32)  # counts stay exact below 2**24
        if self.size == 1:
            return data
        mx = require_mxnet()
        if self.backend == "horovod":
            import horovod.mxnet as hvd
            return hvd.allreduce(mx.nd.array(data), op=hvd.Sum,
                                 name=f"bench_sum_{len(data)}").asnumpy()
        key = _SUM_KEY + len(data)  # one key per length, initialised once, by every worker
        if key not in self._sum_keys:
            self.kvstore.init(key, mx.nd.zeros(len(data)))
            self._sum_keys.add(key)
        out = mx.nd.zeros(len(data))
        self.kvstore.push(key, mx.nd.array(data))
        self.kvstore.pull(key, out=out)
        return out.asnumpy()


def is_multi_worker(kvstore: str) -> bool:
    return kvstore in DIST_KVSTORES or kvstore == "horovod"


def expected_workers(kvstore: str) -> int:
    """The job's worker count as the launcher announced it, without joining (for ``--dry-run``)."""
    if kvstore in DIST_KVSTORES:
        if not os.environ.get("DMLC_NUM_WORKER"):
            return 1
        return _positive_env("DMLC_NUM_WORKER")
    if kvstore == "horovod":
        return int(os.environ.get("OMPI_COMM_WORLD_SIZE") or os.environ.get("HOROVOD_SIZE")
                   or 1)
    return 1


_PS_VARIABLES = ("DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_WORKER", "DMLC_NUM_SERVER")


def _positive_env(name: str, most: int | None = None) -> int:
    value = os.environ.get(name, "")
    if not (value.isascii() and value.isdigit() and 0 < int(value) <= (most or int(value))):
        bound = f"from 1 to {most}" if most else "of at least 1"
        raise BenchError(f"{name}={value!r} is not a whole number {bound}: fix or unset "
                         "the DMLC_* variables (`bench launch` sets them)")
    return int(value)


def check_ps_environment() -> None:
    """The variables a parameter-server worker needs before ``mx.kv.create`` (which dies with a
    ps-lite traceback when one is missing, or reads a bad number as 0)."""
    missing = [name for name in _PS_VARIABLES if not os.environ.get(name)]
    if missing:
        raise BenchError(f"DMLC_ROLE=worker but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not set: start the job with "
                         "`bench launch --workers N -- run recipe ...` or a launcher that sets "
                         f"{', '.join(_PS_VARIABLES)}")
    _positive_env("DMLC_PS_ROOT_PORT", most=65535)
    _positive_env("DMLC_NUM_WORKER")
    _positive_env("DMLC_NUM_SERVER")


def require_horovod():
    """``horovod.mxnet``, or a one-line error saying how to get it."""
    try:
        import horovod.mxnet as hvd
    except ImportError:
        raise BenchError("kvstore horovod needs horovod.mxnet (`make test-horovod` builds it; "
                         "see the Makefile) and a `horovodrun` launch; MXNet 1.9.1's "
                         "mx.kv.create('horovod') silently gives a single-worker store, so this "
                         "suite trains through horovod.mxnet.DistributedTrainer; or use kvstore "
                         "device") from None
    return hvd


def join_cluster(kvstore: str) -> Cluster:
    """Connect to the job's other workers (blocks until all have started) or, for a one-worker
    kvstore, return the trivial cluster."""
    if kvstore in DIST_KVSTORES:
        role = os.environ.get("DMLC_ROLE")
        if role != "worker":
            raise BenchError(f"kvstore {kvstore} trains one process per worker under a "
                             "parameter-server launch: start it with `bench launch --workers N "
                             "-- run recipe ...` (one machine) or a launcher that sets "
                             "DMLC_ROLE=worker, DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT, "
                             f"DMLC_NUM_WORKER and DMLC_NUM_SERVER (DMLC_ROLE is {role!r})")
        check_ps_environment()
        mx = require_mxnet()
        kv = mx.kv.create(kvstore)
        return Cluster(kv.rank, kv.num_workers, "dist", kvstore=kv)
    if kvstore == "horovod":
        hvd = require_horovod()
        hvd.init()
        return Cluster(hvd.rank(), hvd.size(), "horovod", local_rank=hvd.local_rank())
    return Cluster()
