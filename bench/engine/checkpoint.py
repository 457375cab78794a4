"""Crash-safe checkpoints: a run can be killed at any moment and resumed from the last good one.

Layout: ``run_dir/checkpoints/ckpt-{epoch:04d}-{iteration:08d}/`` holding

* ``net.params``     -- ``net.save_parameters`` (the only ``*.params`` file, so ``mx.nd.load`` of
  the first ``*.params`` in the directory gives the weights by name);
* ``trainer.states`` -- ``trainer.save_states`` (optimizer state: momentum, update counts);
* ``state.json``     -- epoch, global iteration, batch index within the epoch, recipe hash, the
  Python and NumPy RNG states, the trainer's ``extra`` dict, and the sha256 of both binary files.

Atomicity: a checkpoint is written into a hidden sibling ``.tmp-<pid>-<name>`` directory, every
file and the directory are fsynced, and only then is it renamed to its final name (a rename within
one directory is atomic on POSIX). :func:`latest_checkpoint` only considers final names, so a crash
mid-write leaves nothing it would pick; older checkpoints are removed only after the new one is in
place, by first renaming them to a hidden name so that a crash mid-delete leaves no half checkpoint
under a final name either.

Validity: a complete checkpoint can still be unusable (a disk error, a file edited by hand, a
file replaced together with its checksum). :func:`verify_checkpoint` checks what a resume needs
without a network (checksums, the shape of ``state.json``, weights MXNet reads and that are
finite, an optimizer state that unpickles); :func:`newest_valid_checkpoint` gives the newest that
passes and the newer ones it skipped, with why. A resume that skips one sets it aside
(:func:`set_aside`: renamed ``skipped-<name>``, kept) so that pruning and "the run's last
checkpoint" never count it.

MXNet 1.9.1 specifics (verified on the CPU wheel with 1 and 2 contexts, kvstore device/local):

* ``Trainer.save_states``/``load_states`` create the kvstore themselves (``_init_kvstore``), so
  neither needs a prior ``trainer.step``; but both need every parameter initialised (deferred
  shapes resolved by a forward pass or by ``load_parameters``).
* With several devices the trainer updates on the kvstore (``update_on_kvstore``): the kvstore
  holds the weights and the optimizer state. ``Parameter.set_data`` (which ``load_parameters``
  uses) then resets the trainer's kvstore so it picks up the new weights, and that reset also
  drops any optimizer state loaded into it. So parameters must be loaded *before* the optimizer
  states, or the momentum silently restarts from zero. :func:`load_checkpoint` keeps that order.
* The states file format is the same with and without the kvstore (``Updater.get_states``), so a
  checkpoint loads regardless of how the kvstore was set up.
* ``KVStore.load_optimizer_states`` (used by ``load_states`` on several devices) leaves its file to
  the garbage collector, which warns (ResourceWarning); that warning is silenced around the call.
* ``save_parameters`` stores one copy per parameter; BatchNorm running statistics, which differ
  per device, are averaged over the devices.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bench.errors import BenchError, summary
from bench.files import fsync_dir, sha256_file, write_error

FORMAT = 1
PARAMS = "net.params"
STATES = "trainer.states"
STATE = "state.json"
_NAME = re.compile(r"^ckpt-(\d{4,})-(\d{8,})$")
_TMP = ".tmp-"
_DEL = ".del-"
_SKIPPED = "skipped-"


# --- checksums -----------------------------------------------------------------------------

def _sha256_and_fsync(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb+") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        os.fsync(f.fileno())
    return h.hexdigest()


# --- RNG states -----------------------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """Python's and NumPy's global RNG states as JSON-serialisable lists. (MXNet has no API to
    read its generator's state: the trainer reseeds it before every step instead.)"""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _plain(obj: Any) -> Any:
    """json.dumps ``default``: NumPy scalars/arrays and paths inside ``extra``."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"checkpoint extra: {type(obj).__name__} is not JSON-serialisable")


# --- save / find / load ---------------------------------------------------------------------

def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (by global iteration, then epoch)."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_dir() and (entry / STATE).is_file():
            found.append(((int(match.group(2)), int(match.group(1))), entry))
    return [path for _, path in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None. Temporary and half-deleted ones are ignored."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(run_dir: Path, *, net, trainer, epoch: int, iteration: int,
                    batch_in_epoch: int, recipe_hash: str, extra: dict, keep: int = 2) -> Path:
    """Write a checkpoint atomically and keep only the newest ``keep``; returns its directory.

    ``epoch``/``batch_in_epoch`` say where the data loader resumes (epoch ``epoch``, skipping its
    first ``batch_in_epoch`` batches); ``iteration`` is the global optimizer step done so far.
    ``extra`` is the trainer's own JSON-serialisable state (history, gate, ...)."""
    if keep < 1:
        raise BenchError(f"keep_checkpoints must be >= 1, got {keep}")
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    name = f"ckpt-{epoch:04d}-{iteration:08d}"
    tmp = root / f"{_TMP}{os.getpid()}-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        net.save_parameters(str(tmp / PARAMS))
        trainer.save_states(str(tmp / STATES))
        state = {"format": FORMAT, "epoch": int(epoch), "iteration": int(iteration),
                 "batch_in_epoch": int(batch_in_epoch), "recipe_hash": recipe_hash,
                 "time": time.time(),
                 "files": {f: _sha256_and_fsync(tmp / f) for f in (PARAMS, STATES)},
                 "rng": rng_state(), "extra": extra}
        text = json.dumps(state, default=_plain)
        with open(tmp / STATE, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
        final = root / name
        if final.exists():  # the same step saved twice (e.g. an epoch end, then a stop)
            _discard(final)
        os.rename(tmp, final)
        fsync_dir(root)
    except (OSError, RuntimeError) as exc:  # RuntimeError: MXNet's own write errors (disk full)
        error = write_error(root / name, exc)  # the free space as the write found it
        shutil.rmtree(tmp, ignore_errors=True)
        raise error from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(run_dir)[:-keep]:
        if old != final:
            _discard(old)
    return final


def _discard(path: Path) -> None:
    """Delete a checkpoint: rename it out of :func:`latest_checkpoint`'s sight, then remove."""
    hidden = path.parent / f"{_DEL}{os.getpid()}-{path.name}"
    if hidden.exists():
        shutil.rmtree(hidden, ignore_errors=True)
    os.rename(path, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def _remove_stale(root: Path) -> None:
    """Leftovers of a process that died mid-write or mid-delete (its pid no longer runs)."""
    for entry in root.iterdir():
        if not entry.name.startswith((_TMP, _DEL)):
            continue
        pid = entry.name[len(_TMP):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BadCheckpoint(BenchError):
    """A checkpoint that cannot be resumed from; ``why`` is the reason alone (a resume that
    skips it prints that), the message adds what to do."""

    def __init__(self, path: Path, why: str, advice: str = ""):
        super().__init__(f"checkpoint {path} {why}" + (f": {advice}" if advice else ""))
        self.path, self.why = Path(path), why


def read_state(path: Path) -> dict[str, Any]:
    """A checkpoint's ``state.json``, checked for shape, after checking both binary files
    against their sha256."""
    path = Path(path)

    def corrupt(why: str) -> BadCheckpoint:
        return BadCheckpoint(path, f"is corrupt ({why})")

    try:
        state = json.loads((path / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise corrupt(f"{STATE} missing") from None
    except (OSError, ValueError) as exc:
        raise corrupt(f"{STATE} unreadable: {type(exc).__name__}") from None
    problem = _state_problem(state, path.name)
    if problem:
        raise corrupt(f"{STATE} {problem}")
    for fname in (PARAMS, STATES):
        target = path / fname
        if not target.is_file():
            raise corrupt(f"{fname} missing")
        try:
            digest = sha256_file(target)
        except OSError as exc:
            raise corrupt(f"{fname} unreadable: {exc.strerror}") from None
        if digest != state["files"].get(fname):
            raise corrupt(f"{fname} sha256 mismatch")
    return state


def _state_problem(state: Any, name: str) -> str | None:
    """What is wrong with a parsed ``state.json`` (None: nothing), so that a resume never
    fails half-way through restoring it."""
    if not isinstance(state, dict):
        return f"is a JSON {type(state).__name__}, not an object"
    for key in ("epoch", "iteration", "batch_in_epoch"):
        value = state.get(key)
        if type(value) is not int or value < 0:
            return f"field {key} is {value!r}, not a count"
    match = _NAME.match(name)
    if match and (int(match.group(1)), int(match.group(2))) != (state["epoch"],
                                                                 state["iteration"]):
        return (f"says epoch {state['epoch']}, iteration {state['iteration']}, unlike its "
                "directory's name")
    if not isinstance(state.get("files"), dict):
        return "lacks the files' checksums"
    if not isinstance(state.get("extra", {}), dict):
        return "field extra is not an object"
    if "rng" in state:
        try:
            version, internal, gauss = state["rng"]["python"]
            random.Random().setstate((version, tuple(internal), gauss))
            name_, keys, pos, has_gauss, cached = state["rng"]["numpy"]
            np.random.RandomState().set_state((name_, np.asarray(keys, dtype=np.uint32), pos,
                                               has_gauss, cached))
        except (TypeError, ValueError, KeyError, OverflowError):
            return "field rng is not a pair of generator states"
    return None


def verify_checkpoint(path: Path, recipe_hash: str | None,
                      extra_types: Mapping[str, type | tuple[type, ...]] | None = None
                      ) -> dict[str, Any]:
    """Everything a resume needs from a checkpoint, checked without loading it into a network:
    :func:`read_state`, the recipe hash, the types of the ``extra`` fields the caller names,
    weights MXNet can read (named, finite) and an optimizer state that unpickles. Returns the
    state; raises :class:`BadCheckpoint` saying why not."""
    path = Path(path)
    state = read_state(path)
    _check_recipe(path, state, recipe_hash)
    extra = state.get("extra", {})
    for key, kinds in (extra_types or {}).items():
        if key in extra and (not isinstance(extra[key], kinds) or isinstance(extra[key], bool)):
            raise BadCheckpoint(path, f"is corrupt ({STATE} field extra.{key} is a "
                                      f"{type(extra[key]).__name__})")
    from bench._mxnet import require_mxnet
    mx = require_mxnet()
    try:
        weights = mx.nd.load(str(path / PARAMS))
    except Exception as exc:  # MXNetError (a RuntimeError) and whatever a broken file raises
        raise BadCheckpoint(path, f"is corrupt ({PARAMS} unreadable by MXNet: "
                                  f"{summary(exc)[:200]})") from None
    if not isinstance(weights, dict) or not weights:
        raise BadCheckpoint(path, f"is corrupt ({PARAMS} holds no named parameters)")
    for key, value in weights.items():
        bad = int(value.size - np.isfinite(value.asnumpy()).sum())
        if bad:
            raise BadCheckpoint(path, f"is not finite ({bad} non-finite values in {key})")
    try:
        with open(path / STATES, "rb") as f:
            pickle.loads(f.read())  # what Trainer.load_states does with it
    except Exception as exc:
        raise BadCheckpoint(path, f"is corrupt ({STATES} unreadable: "
                                  f"{summary(exc)[:200]})") from None
    return state


def newest_valid_checkpoint(run_dir: Path, recipe_hash: str | None,
                            extra_types: Mapping[str, type | tuple[type, ...]] | None = None
                            ) -> tuple[Path, dict[str, Any], list[tuple[Path, str]]]:
    """The newest checkpoint that passes :func:`verify_checkpoint`, its state, and the newer
    ones skipped with why (newest first). No checkpoint at all, or no valid one: one line."""
    skipped: list[tuple[Path, str]] = []
    found = list_checkpoints(run_dir)
    if not found:
        raise BenchError(f"cannot resume {run_dir}: it has no checkpoint yet; start it again")
    for path in reversed(found):
        try:
            return path, verify_checkpoint(path, recipe_hash, extra_types), skipped
        except BadCheckpoint as exc:
            skipped.append((path, exc.why))
    reasons = "; ".join(f"{p.name} {why}" for p, why in skipped)
    raise BenchError(f"cannot resume {run_dir}: none of its {len(found)} checkpoint(s) is "
                     f"valid ({reasons}); start it again")


def set_aside(path: Path) -> Path:
    """Move a skipped checkpoint out of the run's sight (``skipped-<name>``, kept to look at):
    a resume that fell back past it must not prune good checkpoints for it, nor name it as the
    run's last or final checkpoint."""
    path = Path(path)
    for n in range(1000):
        target = path.parent / (f"{_SKIPPED}{path.name}" + (f"-{n}" if n else ""))
        if not target.exists():
            os.rename(path, target)
            fsync_dir(path.parent)
            return target
    raise BenchError(f"cannot set {path} aside: {path.parent} is full of skipped checkpoints")


def _check_recipe(path: Path, state: dict[str, Any], recipe_hash: str | None) -> None:
    if recipe_hash is not None and state.get("recipe_hash") != recipe_hash:
        raise BadCheckpoint(path, f"was written for a different recipe (hash "
                                  f"{str(state.get('recipe_hash'))[:12]}, now "
                                  f"{recipe_hash[:12]})",
                            "the recipe changed since the run started; restore it or start a "
                            "new run")


def load_checkpoint(path: Path, *, net, trainer, recipe_hash: str | None,
                    restore_rng: bool = True) -> dict:
    """Verify and load a checkpoint into ``net`` and ``trainer``; returns its state dict
    (``epoch``, ``iteration``, ``batch_in_epoch``, ``recipe_hash``, ``rng``, ``extra``...).

    ``recipe_hash=None`` skips the recipe check. The network must have the checkpoint's
    architecture (its parameters may still be deferred). Parameters are loaded before the
    optimizer states, for the reason in the module docstring.
    ``restore_rng`` puts Python's and NumPy's global generators back as they were at the save."""
    path = Path(path)
    state = read_state(path)
    _check_recipe(path, state, recipe_hash)
    try:
        net.load_parameters(str(path / PARAMS))
    except Exception as exc:  # MXNetError (a RuntimeError), AssertionError, ValueError...
        raise BadCheckpoint(path, f"does not fit this network: {summary(exc)[:200]}") from None
    try:
        with warnings.catch_warnings():
            # MXNet 1.9.1's KVStore.load_optimizer_states reads with a bare open(...).read(); the
            # file is closed as soon as it is collected (at once in CPython), with a
            # ResourceWarning.
            warnings.simplefilter("ignore", ResourceWarning)
            trainer.load_states(str(path / STATES))
    except Exception as exc:
        raise BadCheckpoint(path, f"is corrupt ({STATES} unreadable: "
                                  f"{summary(exc)[:200]})") from None
    if restore_rng and "rng" in state:
        try:
            set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            raise BenchError(f"checkpoint {path} is corrupt ({STATE} rng unreadable: "
                             f"{type(exc).__name__}); delete it to resume from the previous "
                             "one") from None
    return state


def weights_file(weights: str | Path, network: str, option: str, role: str = "") -> Path:
    """The .params file that ``weights`` names: the file itself, a checkpoint directory's
    net.params, or a run directory's newest valid checkpoint (whose recipe must train
    ``network``). ``option`` and ``role`` name it in the one-line errors (``distill.weights``,
    ``--params``). Shared by distillation's teacher and ``bench eval``."""
    path = Path(weights)
    if path.is_file():
        return path
    if (path / PARAMS).is_file():
        return path / PARAMS
    if (path / "checkpoints").is_dir():
        try:
            ran = json.loads((path / "recipe.json").read_text(encoding="utf-8"))["network"]
        except (OSError, ValueError, KeyError, TypeError):
            ran = None
        from bench.models import resolve_name
        if ran is not None and resolve_name(str(ran)) != resolve_name(network):
            raise BenchError(f"{option} {weights} is a run of {ran}, not of {role}{network}")
        checkpoint, _, _ = newest_valid_checkpoint(path, None)
        return checkpoint / PARAMS
    raise BenchError(f"{option} {weights} is neither a .params file nor a run or "
                     "checkpoint directory of this suite")
