"""The run record: what a run writes as ``result.json`` and ``bench record`` copies into
``results/runs/``. One typed definition, written by the engine and read by the results layer.

A record must be consistent with itself or it is refused, so that a number in the results
table is the number a run measured:

* ``digest`` holds a sha256 (16 hex digits) of every other field as the run wrote it, so an edit
  to any field is named when the record is read. (This catches hand edits and corruption; it
  is not a signature: whoever can run this code can write a matching digest.)
* the summary (``top1_err``, ``top5_err``, ``num_eval_samples``, ``complete``, ``epochs_done``,
  ``iterations``, ``train_time_s``, ``train_images_per_s``, ``reached_reference``) is
  recomputed from the record's own per-epoch ``history``;
* ``files`` holds the sha256 and size of the run directory's ``recipe.json``, ``run.json``,
  ``log.jsonl`` (append-only: the checksum covers the bytes written before the record, the run
  appends its ``end`` line after it), ``metrics.json`` and the files of the final checkpoint,
  checked by :func:`verify_files` when a run directory is checked or recorded.

A record is one training run's: ``run_id`` (made when the run starts and kept in its
``run.json``) is the same after any resume and in any copy of the run directory, so ``bench
record`` keeps one record per run (:meth:`RunRecord.identity`). ``modified`` lists what makes the
run differ from its recipe as shipped (``--epochs``, ``--set`` values, another global batch or
precision, a ``--max-steps`` stop): such a run is its own labelled row, never the shipped one's.
Both are digest-protected like every field; records written before them lack both keys and are
identified by their ``run.json`` checksum.

Schema 2 (this one) added ``kind``, ``shipped_recipe_hash``, ``files`` and ``digest``. Schema-1
records carry neither checksums nor digests and are refused with a pointer to rerun.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.errors import BenchError
from bench.files import atomic_write_text, sha256_file

SCHEMA = 2
KINDS = ("training", "weights")  # a run of a recipe | a re-evaluation of published weights
# A complete run's final top-1 error: far below chance level | at chance level (a failure),
# while its reference is far lower; None: not judged.
OUTCOMES = (None, "learned", "chance")
RUN_FILES = ("recipe.json", "run.json", "log.jsonl", "metrics.json")
APPEND_ONLY = ("log.jsonl",)
HISTORY_KEYS = ("epoch", "iteration", "top1_err", "top5_err", "num_samples", "train_time_s",
                "partial")
_RERECORD = "the record was edited or is corrupt: rerun or re-record it (`bench record RUN_DIR`)"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")  # UTC start time, 32 random bits


def new_run_id() -> str:
    """A training run's identity, made once when it starts (``run.json``): its UTC start time
    and 32 random bits, so two runs started in the same second (same seed or not) differ."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class RunRecord:
    kind: str
    recipe: str
    recipe_hash: str
    shipped_recipe_hash: str | None  # the shipped recipe of this name, with this run's seed
    network: str
    dataset: str
    protocol: str
    seed: int | None
    top1_err: float | None
    top5_err: float | None
    num_eval_samples: int | None
    complete: bool
    epochs_done: int
    epochs: int | None
    iterations: int | None
    total_iterations: int | None
    train_time_s: float | None
    train_images_per_s: float | None
    global_batch: int | None
    workers: int | None
    lr: float | None
    dtype: str | None
    wall_time_s: float | None
    reference: dict
    reached_reference: dict | None
    history: list
    files: dict
    changes: list
    command: str
    started: str | None
    date: str
    git: dict
    versions: dict
    hardware: dict
    # One training run across resumes and copies (None: written before runs had an identity).
    run_id: str | None = None
    # What differs from the recipe as shipped (None: written before; see changed()).
    modified: list | None = None
    params_file: str | None = None  # kind "weights": the re-evaluated file and its sha256
    params_sha256: str | None = None
    input_size: int | None = None
    resize: int | None = None
    outcome: str | None = None  # OUTCOMES; bench.engine.record.outcome says which
    run_dir: str | None = None  # where the run wrote it: not content (no digest, not recorded)
    schema: int = SCHEMA

    def content(self) -> dict[str, Any]:
        """The fields as JSON values (what the digest covers): everything but ``run_dir``."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "run_dir"}
        return json.loads(json.dumps(data))

    def to_dict(self) -> dict[str, Any]:
        data = self.content()
        data["digest"] = digests(data)
        if self.run_dir is not None:
            data["run_dir"] = self.run_dir
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def dump(self, path: Path) -> None:
        atomic_write_text(Path(path), self.dumps())

    def stored(self) -> "RunRecord":
        """The record as ``bench record`` keeps it (without the local ``run_dir``)."""
        return dataclasses.replace(self, run_dir=None)

    def identity(self) -> str:
        """What makes two records the same measurement: a training run's ``run_id`` (older
        records: the checksum of their ``run.json``, which no resume rewrote), or for
        re-evaluated weights the file, recipe and evaluation."""
        if self.kind == "weights":
            return (f"weights {self.params_sha256} as {self.recipe}, {self.protocol}, "
                    f"input {self.input_size}, resize {self.resize}")
        if self.run_id is not None:
            return f"run {self.run_id}"
        entry = self.files.get("run.json") if isinstance(self.files, dict) else None
        run_json = str(entry.get("sha256") if isinstance(entry, dict) else None)[:16]
        return f"run with run.json sha256 {run_json}"

    def changed(self) -> list[str]:
        """What differs from the recipe as shipped (empty: a run of the shipped recipe). A
        record older than ``modified`` is judged by its recipe hash."""
        if self.modified is not None:
            return list(self.modified)
        if self.shipped_recipe_hash is not None and self.recipe_hash != self.shipped_recipe_hash:
            return [f"recipe {self.recipe_hash[:8]}"]
        return []

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "RunRecord":
        """A record that passed every check (fields, digest, summary against its history), or
        a one-line :class:`BenchError` naming ``where`` and the field."""
        if not isinstance(data, dict):
            raise BenchError(f"{where} is not a run record (not a JSON object)")
        schema = data.get("schema")
        if schema != SCHEMA:
            hint = ("it predates checksums: rerun the recipe and `bench record` the new run "
                    "directory" if isinstance(schema, int) and schema < SCHEMA else
                    "update resnet-bench")
            raise BenchError(f"{where}: record schema {schema!r}, this suite reads schema "
                             f"{SCHEMA}; {hint}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"digest"})
        if unknown:
            raise BenchError(f"{where}: field {unknown[0]!r} is not part of a run record "
                             f"(schema {SCHEMA}); {_RERECORD}")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data
                   and f.default is dataclasses.MISSING]
        if missing:
            raise BenchError(f"{where}: run record lacks field {missing[0]!r}")
        _check_digest(data, where)
        record = cls(**{k: v for k, v in data.items() if k != "digest"})
        _check_types(record, where)
        record.check(where)
        return record

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BenchError(f"no run record at {path}: a run writes result.json when it "
                             "finishes or stops") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise BenchError(f"{path} is not a readable run record ({type(exc).__name__}: "
                             f"{first})") from None
        return cls.from_dict(data, str(path))

    def check(self, where: str) -> None:
        """Refuse a record whose summary is not what its own history gives."""
        if self.kind not in KINDS:
            raise BenchError(f"{where}: field 'kind' is {self.kind!r}, not one of "
                             f"{', '.join(KINDS)}")
        _check_identity(self, where)
        if self.outcome not in OUTCOMES or (self.outcome and not self.complete):
            raise BenchError(f"{where}: field 'outcome' is {self.outcome!r}: not one of "
                             f"{OUTCOMES} or set on an incomplete run; {_RERECORD}")
        try:
            for name, expected, how, compare in self._derived():
                recorded = getattr(self, name)
                if not compare(recorded, expected):
                    raise BenchError(f"{where}: field {name!r} is {recorded!r} but {how} gives "
                                     f"{expected!r}; {_RERECORD}")
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
            raise BenchError(f"{where}: field 'history' is malformed ({type(exc).__name__}: "
                             f"{exc}); {_RERECORD}") from None

    def _derived(self) -> list[tuple[str, Any, str, Callable[[Any, Any], bool]]]:
        """(field, value derived from the rest, how, comparison) for every derivable field."""
        if self.kind == "weights":
            why = "a re-evaluation of published weights (no training)"
            return [("history", [], why, _same), ("epochs_done", 0, why, _same),
                    ("complete", True, why, _same), ("train_time_s", None, why, _same),
                    ("reached_reference", None, why, _same), ("files", {}, why, _same)]
        history = self.history
        _check_history(history)
        last = history[-1] if history else {}
        how = "the last evaluation in its history"
        out = [("top1_err", last.get("top1_err"), how, _same),
               ("top5_err", last.get("top5_err"), how, _same),
               ("num_eval_samples", last.get("num_samples"), how, _same)]
        ends = bool(history) and not last["partial"] and (
            last["epoch"] >= self.epochs or last["iteration"] >= self.total_iterations)
        out.append(("complete", ends, "its history (whether the last evaluation ends the "
                                      f"{self.epochs}-epoch schedule)", _same))
        if self.complete:
            out += [("epochs_done", last["epoch"], how, _same),
                    ("iterations", last["iteration"], how, _same),
                    ("train_time_s", last["train_time_s"], how, _same)]
        elif history:  # stopped: it trained at least as far as its last evaluation
            at_least = f"{how} (at least)"
            out += [("epochs_done", last["epoch"], at_least, _at_least),
                    ("iterations", last["iteration"], at_least, _at_least),
                    ("train_time_s", last["train_time_s"], at_least, _at_least)]
        speed = (self.iterations * self.global_batch / self.train_time_s
                 if self.train_time_s else None)
        out.append(("train_images_per_s", speed, "iterations x global_batch / train_time_s",
                    _close))
        out.append(("reached_reference", reached_reference(history, self.reference),
                    "its history against its reference", _same))
        return out


def _check_identity(record: RunRecord, where: str) -> None:
    """``run_id`` and ``modified`` have their shape (a weights record has neither)."""
    run_id, modified = record.run_id, record.modified
    if run_id is not None and (record.kind != "training" or not isinstance(run_id, str)
                               or not RUN_ID.fullmatch(run_id)):
        raise BenchError(f"{where}: field 'run_id' is {run_id!r}, not a training run's "
                         f"identity (UTC start time and 8 hex digits); {_RERECORD}")
    if modified is not None and (not isinstance(modified, list)
                                 or not all(isinstance(m, str) and m for m in modified)
                                 or (modified and record.kind != "training")):
        raise BenchError(f"{where}: field 'modified' is {modified!r}, not a list of what "
                         f"changed from the shipped recipe; {_RERECORD}")


def recipe_changes(trained: Any, shipped: Any) -> list[str]:
    """``key=value`` (TOML/JSON spelling) for every recipe value that ``trained`` sets
    differently from ``shipped`` (two :class:`bench.recipes.Recipe`), compared by value (so
    32000 and 32000.0 are one value), prose left out, the reference included: a changed
    reference changes what a run is judged against."""
    from bench.recipes import recipe_to_dict
    from bench.recipes.schema import SECTIONS
    keys = ("network", "network_args", *SECTIONS)
    a, b = recipe_to_dict(trained), recipe_to_dict(shipped)
    flat_a = _flatten({k: a.get(k) for k in keys})
    flat_b = _flatten({k: b.get(k) for k in keys})
    # distill.weights is where the teacher file was (a distillation recipe cannot ship one);
    # the file's sha256 is in run.json, so a path alone is no change of training.
    return [f"{key}={json.dumps(_spelled(flat_a.get(key)))}"
            for key in sorted(set(flat_a) | set(flat_b))
            if flat_a.get(key) != flat_b.get(key) and key != "distill.weights"]


def _spelled(value: Any) -> Any:
    """Whole floats as ints (milestones 16000.0 read 16000 in a row's label)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_spelled(v) for v in value]
    return value


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _check_types(record: RunRecord, where: str) -> None:
    """Every field of the type its annotation says (a digest only proves the field is what
    was written, and a hand-made record can carry a matching one)."""
    import typing
    for name, hint in typing.get_type_hints(RunRecord).items():
        value = getattr(record, name)
        allowed = typing.get_args(hint) or (hint,)
        if value is None and type(None) in allowed:
            continue
        ok = any(isinstance(value, t) and not (isinstance(value, bool) and t in (int, float))
                 or (t is float and isinstance(value, int) and not isinstance(value, bool))
                 for t in allowed if t is not type(None))
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise BenchError(f"{where}: field {name!r} is {value!r:.40}, not {names}; "
                             f"{_RERECORD}")


def reached_reference(history: list[dict], reference: dict) -> dict | None:
    """The first full-epoch evaluation within tolerance of the published top-1 error (its epoch
    and training time so far), or None."""
    if reference.get("top1_err") is None:
        return None
    limit = reference["top1_err"] + reference["tolerance"]
    for entry in history:
        if not entry.get("partial") and entry["top1_err"] <= limit:
            return {"epoch": entry["epoch"], "train_time_s": entry["train_time_s"]}
    return None


def _check_history(history: Any) -> None:
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise TypeError("not a list of evaluations")
    for i, entry in enumerate(history):
        missing = [k for k in HISTORY_KEYS if k not in entry]
        if missing:
            raise KeyError(f"entry {i + 1} lacks {missing[0]}")
        if entry["partial"] and i != len(history) - 1:
            raise ValueError(f"entry {i + 1} is a mid-epoch evaluation but not the last")
    for before, after in zip(history, history[1:]):
        if (after["iteration"] < before["iteration"]
                or after["train_time_s"] < before["train_time_s"]):
            raise ValueError(f"evaluations at iterations {before['iteration']} and "
                             f"{after['iteration']} are not in training order")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b or (_number(a) and _number(b) and a == b)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _at_least(recorded: Any, floor: Any) -> bool:
    return _number(recorded) and recorded >= floor


def _close(recorded: Any, expected: Any) -> bool:
    if recorded is None or expected is None:
        return recorded is expected
    return _number(recorded) and math.isclose(recorded, expected, rel_tol=1e-9)


# --- digests --------------------------------------------------------------------------------

def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digests(content: dict[str, Any]) -> dict[str, str]:
    """sha256 (16 hex digits) of each field's canonical JSON."""
    return {k: hashlib.sha256(_canonical(v)).hexdigest()[:16] for k, v in sorted(content.items())}


def _check_digest(data: dict[str, Any], where: str) -> None:
    recorded = data.get("digest")
    if not isinstance(recorded, dict):
        raise BenchError(f"{where}: field 'digest' is missing or malformed; {_RERECORD}")
    content = {k: v for k, v in data.items() if k not in ("digest", "run_dir")}
    actual = digests(content)
    for name in sorted(set(actual) | set(recorded)):
        if name not in recorded:
            raise BenchError(f"{where}: field {name!r} was added after the run wrote the "
                             f"record; {_RERECORD}")
        if name not in actual:
            raise BenchError(f"{where}: field {name!r} was removed after the run wrote the "
                             f"record; {_RERECORD}")
        if actual[name] != recorded[name]:
            raise BenchError(f"{where}: field {name!r} differs from what the run wrote (its "
                             f"digest does not match); {_RERECORD}")


# --- the run directory's files --------------------------------------------------------------

def file_entry(path: Path) -> dict[str, Any]:
    return {"bytes": Path(path).stat().st_size, "sha256": sha256_file(path)}


def run_files(run_dir: Path, checkpoint: Path | None) -> dict[str, dict[str, Any]]:
    """Checksums of the run directory's files and of the final checkpoint's files, by path
    relative to ``run_dir``."""
    run_dir = Path(run_dir)
    paths = [run_dir / name for name in RUN_FILES]
    if checkpoint is not None:
        paths += sorted(p for p in Path(checkpoint).iterdir() if p.is_file())
    return {p.relative_to(run_dir).as_posix(): file_entry(p) for p in paths}


def verify_files(run_dir: Path, files: dict[str, Any], where: str) -> None:
    """Every file the record lists is there with its recorded sha256 (for an append-only log:
    its first recorded bytes)."""
    run_dir = Path(run_dir)
    for name in RUN_FILES:
        if name not in files:
            raise BenchError(f"{where}: field 'files' lacks {name}; {_RERECORD}")
    for name, entry in sorted(files.items()):
        path = run_dir / name
        if not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)*", name) or ".." in name.split("/"):
            raise BenchError(f"{where}: field 'files' names {name!r}, not a file of the run")
        if not path.is_file():
            raise BenchError(f"{path}: missing, but {where} field 'files' lists it (restore "
                             "it, or rerun)")
        size = path.stat().st_size
        append_only = name in APPEND_ONLY
        if size < entry["bytes"] or (size != entry["bytes"] and not append_only):
            raise BenchError(f"{path}: {size} bytes, {where} field 'files' says "
                             f"{entry['bytes']}: the file changed after the run wrote its record")
        if sha256_file(path, entry["bytes"] if append_only else None) != entry["sha256"]:
            raise BenchError(f"{path}: sha256 differs from {where} field 'files': the file "
                             "changed after the run wrote its record")
