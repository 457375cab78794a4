"""Read recipe files into :class:`~bench.recipes.schema.Recipe` objects.

Strict on purpose: an unknown key, a value of the wrong type or out of range is a one-line
:class:`BenchError` naming the file, the key's path and the closest valid key. Inheritance is one
level deep (``base = "other_recipe"``; the base may not have a base) so that any recipe can be read
on one screen together with its base. Tables merge key by key, except ``[reference]``, which a child
replaces whole.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from bench.errors import BenchError, did_you_mean
from bench.files import NAME_MAX, check_names, os_error_text
from bench.recipes.schema import INIT_RENAMED, SECTIONS, TOP_LEVEL, Recipe

INT_LIMIT = 2 ** 63  # integers must fit in int64, as TOML's own integers do


def recipes_dir() -> Path:
    """``$BENCH_RECIPES`` or the checkout's ``recipes/`` folder."""
    env = os.environ.get("BENCH_RECIPES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "recipes"


def list_recipes(pattern: str = "*", directory: Path | None = None) -> list[str]:
    """Names of the recipe files matching a shell-style pattern, sorted."""
    directory = directory or recipes_dir()
    return sorted(p.stem for p in directory.glob("*.toml") if fnmatch.fnmatchcase(p.stem, pattern))


def recipe_path(name: str, directory: Path | None = None) -> Path:
    """The file of recipe ``name`` (or ``name`` itself when it is a path to a .toml file)."""
    if name.endswith(".toml"):
        path = check_names(name, "recipe file")
        if path.is_dir():
            raise BenchError(f"recipe file {name} is a folder; give a .toml file or a recipe "
                             "name (`bench recipes` lists them)")
        if path.is_file():
            return path
        if os.sep in name:
            raise BenchError(f"no recipe file {name}; give a .toml file or a recipe name "
                             "(`bench recipes` lists them)")
    directory = directory or recipes_dir()
    if len(os.fsencode(name)) > NAME_MAX - len(".toml"):
        raise BenchError(f"unknown recipe {name[:24]}... ({len(name)} characters; a recipe "
                         "name is its file name, so it is shorter); `bench recipes` lists them")
    path = directory / f"{name}.toml"
    if not path.is_file():
        raise BenchError(f"unknown recipe {name!r}{did_you_mean(name, list_recipes('*', directory))}"
                         "; `bench recipes` lists them")
    return path


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise BenchError(f"{path}: not UTF-8 text (byte {exc.start} is 0x{byte:02x}); TOML files "
                         "are UTF-8: save it as UTF-8") from None
    except OSError as exc:
        raise BenchError(f"cannot read {path}: {os_error_text(exc, path)}") from None


def load_recipe(name: str, overrides: list[str] | tuple[str, ...] = (),
                directory: Path | None = None) -> Recipe:
    """Load, merge with its base, apply ``key=value`` overrides and validate."""
    path = recipe_path(name, directory)
    raw = read_toml(path)
    base = raw.get("base")
    if base:
        if not isinstance(base, str):
            raise BenchError(f"{path}: base must be a recipe name (a string)")
        base_path = recipe_path(base, path.parent if directory is None else directory)
        base_raw = read_toml(base_path)
        if base_raw.get("base"):
            raise BenchError(f"{path}: its base {base!r} has a base itself; recipes inherit one "
                             "level only so each reads on one screen")
        _check_keys(base_raw, str(base_path))
        raw = _merge(base_raw, raw)
    _check_keys(raw, str(path))
    where = str(path)
    for item in overrides:
        key, value = parse_override(item)
        _set_path(raw, key, value)
    if overrides:
        where += " with --set " + ", ".join(parse_override(item)[0] for item in overrides)
    return build_recipe(path.stem, raw, where)


def parse_override(item: str) -> tuple[str, Any]:
    """``"optim.lr=0.2"`` -> ``("optim.lr", 0.2)``; the value is one TOML value (bare words are
    strings). A line break is refused: in TOML it would start a second assignment."""
    if "\n" in item or "\r" in item:
        raise BenchError(f"--set {item!r}: a value is one line (a line break would start another "
                         "assignment); give each key=value as its own --set")
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise BenchError(f"--set {item!r}: expected key=value, e.g. --set optim.lr=0.2")
    try:
        parsed = tomllib.loads(f"v = {text.strip()}")
    except tomllib.TOMLDecodeError:
        return key, text.strip()
    if list(parsed) != ["v"]:  # cannot happen without a line break; never drop a value quietly
        raise BenchError(f"--set {item!r}: expected one value after '='")
    return key, parsed["v"]


def build_recipe(name: str, raw: dict[str, Any], where: str) -> Recipe:
    """Typed :class:`Recipe` from a merged dict; every error is one line naming ``where``."""
    _check_keys(raw, where)
    for key in ("network", "description", "reference"):
        if key not in raw:
            raise BenchError(f"{where}: missing required key {key!r}")
    kwargs: dict[str, Any] = {"name": name}
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise BenchError(f"{where}: [{key}] must be a table")
            kwargs[key] = _build_section(SECTIONS[key], value, key, where)
        elif key == "network_args":
            if not isinstance(value, dict):
                raise BenchError(f"{where}: [network_args] must be a table")
            kwargs[key] = _check_network_args(value, str(raw["network"]), where)
        elif key in ("notes", "tags"):
            kwargs[key] = tuple(_check_type(f"{key}", value, tuple[str, ...], where))
        else:
            kwargs[key] = _check_type(key, value, str, where)
    if "distill" in kwargs and kwargs["distill"].teacher_args:
        d = kwargs["distill"]
        args = _check_network_args(d.teacher_args, d.teacher, where, "distill.teacher_args")
        kwargs["distill"] = dataclasses.replace(d, teacher_args=args)
    recipe = Recipe(**kwargs)
    _check_network(recipe, where)
    _check_distill(recipe, where)
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """A JSON-ready dict (tuples as lists), the inverse of :func:`build_recipe`."""
    out = dataclasses.asdict(recipe)
    return json.loads(json.dumps(out))


def recipe_from_dict(data: dict[str, Any], where: str = "recipe.json") -> Recipe:
    """The inverse of :func:`recipe_to_dict`. A run directory's recipe.json written before the
    initialisers were renamed says ``init = "msra"`` / ``"xavier"``; those meant exactly
    ``msra_prelu`` / ``xavier_uniform``, so they are read as such and ``--resume`` still works
    (recipe files and ``--set`` refuse the old names)."""
    if not isinstance(data, dict):
        raise BenchError(f"{where} is not a recipe: a JSON object was expected, not "
                         f"{type(data).__name__}")
    data = dict(data)
    train = data.get("train")
    if isinstance(train, dict) and train.get("init") in INIT_RENAMED:
        data["train"] = {**train, "init": INIT_RENAMED[train["init"]][0]}
    name = _check_type("name", data.pop("name", "recipe"), str, where)
    return build_recipe(name, data, where)


def recipe_hash(recipe: Recipe) -> str:
    """sha256 of what changes training (not the prose), so a checkpoint knows its recipe.

    Only values that differ from the schema's defaults are hashed: a new option added to the
    schema (with a default that keeps the old behaviour) leaves every existing hash, and so
    every checkpoint's claim to its recipe, as it was."""
    data = recipe_to_dict(recipe)
    for key in ("description", "notes", "tags", "reference", "base", "name",
                "default_for_network"):
        data.pop(key, None)
    for section, cls in SECTIONS.items():
        if section in data:  # ([reference] is gone: it has no defaults to construct)
            defaults = json.loads(json.dumps(dataclasses.asdict(cls())))
            data[section] = {k: v for k, v in data[section].items() if defaults.get(k) != v}
    # The teacher's weights are named by a path (where they happen to be), not by what they
    # are: the run records their sha256 in run.json and a resume checks it (bench.engine.distill).
    data.get("distill", {}).pop("weights", None)
    if not data.get("distill"):  # no distillation: the hash of every recipe before [distill]
        data.pop("distill", None)
    # A renamed initialiser hashes under its old spelling: the rename changed no training, so
    # checkpoints and records of the old name keep matching.
    old_name = {new: old for old, (new, _) in INIT_RENAMED.items()}
    train = data.get("train", {})
    if train.get("init") in old_name:
        train["init"] = old_name[train["init"]]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _check_keys(raw: dict[str, Any], where: str) -> None:
    for key, value in raw.items():
        if key not in TOP_LEVEL:
            raise BenchError(f"{where}: unknown key {key!r}{did_you_mean(key, TOP_LEVEL)}")
        if key in SECTIONS and isinstance(value, dict):
            valid = [f.name for f in dataclasses.fields(SECTIONS[key])]
            for sub in value:
                if sub not in valid:
                    hint = did_you_mean(sub, valid)
                    raise BenchError(f"{where}: unknown key '{key}.{sub}'{hint}")


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in child.items():
        # A child's [reference] is its own published number: replace it whole, so a missing
        # top5_err in the child is not silently inherited from the base.
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "reference":
            merged[key].update(value)
        else:
            merged[key] = value
    merged["base"] = child.get("base", "")
    # A base's claim to be its network's default recipe is its own, not its children's.
    merged.pop("default_for_network", None)
    if "default_for_network" in child:
        merged["default_for_network"] = child["default_for_network"]
    return merged


def _set_path(raw: dict[str, Any], key: str, value: Any) -> None:
    head, _, sub = key.partition(".")
    if head == "network_args" and sub:
        raw.setdefault("network_args", {})[sub] = value
        return
    if head == "distill" and sub.startswith("teacher_args.") and sub != "teacher_args.":
        raw.setdefault("distill", {}).setdefault("teacher_args", {})[sub.partition(".")[2]] = value
        return
    if head in SECTIONS and sub:
        valid = [f.name for f in dataclasses.fields(SECTIONS[head])]
        if sub not in valid:
            raise BenchError(f"--set {key}: unknown key{did_you_mean(sub, valid)}"
                             f"; valid keys of [{head}]: {', '.join(valid)}")
        raw.setdefault(head, {})[sub] = value
        return
    if head in ("network", "description") and not sub:
        raw[head] = value
        return
    paths = [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    raise BenchError(f"--set {key}: unknown key{did_you_mean(key, [*paths, 'network'])}")


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # resolving the annotations is most of a section's cost


def _build_section(cls: type, values: dict[str, Any], section: str, where: str) -> Any:
    hints = _hints(cls)
    kwargs = {}
    for k, v in values.items():
        if section == "distill" and k == "teacher_args":
            if not isinstance(v, dict):
                raise BenchError(f"{where}: distill.teacher_args must be a table, got {_shown(v)}")
            kwargs[k] = dict(v)  # checked against the teacher's constructor in _check_distill
        else:
            kwargs[k] = _check_type(f"{section}.{k}", v, hints[k], where)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise BenchError(f"{where}: {exc}") from None


def _check_type(key: str, value: Any, hint: Any, where: str) -> Any:
    """Return ``value`` converted to ``hint`` (int -> float, list -> tuple) or raise. Numbers
    must be finite (TOML and Python's JSON spell NaN and infinities) and integers fit int64."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise BenchError(f"{where}: {key} must be a list, got {_shown(value)}")
        return tuple(_check_type(f"{key}[{i}]", v, args[0], where) for i, v in enumerate(value))
    if hint is bool and not isinstance(value, bool) or (hint in (int, float)
                                                          and isinstance(value, bool)):
        raise BenchError(f"{where}: {key} must be {hint.__name__}, got {_shown(value)}")
    if hint in (int, float) and isinstance(value, int) and not -INT_LIMIT <= value < INT_LIMIT:
        raise BenchError(f"{where}: {key} = {_shown(value)} is too large")
    if hint is float and isinstance(value, int):
        return float(value)
    if isinstance(hint, type) and not isinstance(value, hint):
        raise BenchError(f"{where}: {key} must be {hint.__name__}, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BenchError(f"{where}: {key} = {value!r} is not a finite number")
    return value


def _shown(value: Any) -> str:
    """``repr`` of a value, shortened when long (a 400-digit number)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:16]}...{text[-8:]} ({len(text)} characters)"


def _check_network_args(values: dict[str, Any], network: str, where: str,
                        table: str = "network_args") -> dict[str, Any]:
    """[network_args] values of the right type and range. Their names are checked against the
    network's constructor (:func:`bench.models.model_flags`); their values here: each takes the
    type of its default, and every numeric option of :class:`bench.models.resnet.ResNet` is a
    count (an int >= 1: classes, in_channels, widths) or a probability (a float in [0, 1]);
    the other families' constructors keep to the same rule."""
    defaults = _network_defaults(network)
    out = {}
    for name, value in values.items():
        key = f"{table}.{name}"
        default = defaults.get(name)
        if default is None:
            out[name] = value
            continue
        value = _check_type(key, value, type(default), where)
        if isinstance(default, int) and not isinstance(default, bool) and value < 1:
            raise BenchError(f"{where}: {key} = {value!r} must be at least 1")
        if isinstance(default, float) and not 0.0 <= value <= 1.0:
            raise BenchError(f"{where}: {key} = {value!r} must be between 0 and 1")
        out[name] = value
    return out


@functools.lru_cache(maxsize=None)
def _network_defaults(network: str) -> dict[str, Any]:
    from bench.models.registry import constructor_defaults, resolve_name
    try:
        return constructor_defaults(resolve_name(network))
    except BenchError:
        return {}  # an unknown network is reported by _check_network, with close matches


def _check_distill(recipe: Recipe, where: str) -> None:
    """The teacher is a registered network that takes ``teacher_args``; the JS loss is SSLD's,
    which trains on soft labels only (PaddleClas docs/en/advanced_tutorials/distillation:
    label smoothing off), so label smoothing with it is refused rather than mixed in."""
    d = recipe.distill
    if not d.enabled:
        return
    from bench.models import model_flags, resolve_name
    try:
        resolve_name(d.teacher)
        model_flags(d.teacher, **d.teacher_args)
    except BenchError as exc:
        raise BenchError(f"{where}: distill.teacher: {exc}") from None
    if d.loss == "js" and recipe.train.label_smoothing > 0:
        raise BenchError(f"{where}: distill.loss = 'js' (PaddleClas SSLD) trains on the teacher's "
                         f"soft labels without label smoothing: set train.label_smoothing = 0 "
                         f"(it is {recipe.train.label_smoothing:g})")


def _check_network(recipe: Recipe, where: str) -> None:
    from bench.models import model_flags, resolve_name
    try:
        resolve_name(recipe.network)
        model_flags(recipe.network, **recipe.network_args)
    except BenchError as exc:
        raise BenchError(f"{where}: {exc}") from None
