"""Read experiment files into :class:`~bench.experiments.schema.Experiment` objects.

Strict as the recipe loader is: an unknown key, a wrong type, an unknown network or quantity is
a one-line :class:`BenchError` naming the file, the key (or claim id) and the closest valid
name, so a typo fails before hours of training, not in the report after them. The ``[set]``
overrides are checked by building the recipe they make for every network.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from bench.errors import BenchError, did_you_mean
from bench.experiments.predicate import PredicateError, parse
from bench.experiments.quantities import ANALYSES, QUANTITIES
from bench.experiments.schema import Claim, Experiment, LesionParams, Quick, ResponseParams
from bench.files import NAME_MAX, check_names
from bench.recipes.loader import read_toml
from bench.recipes.schema import SEED_LIMIT

TOP_LEVEL = ("description", "recipe", "networks", "seeds", "analyses", "notes", "set", "lesion",
             "responses", "quick", "claims")
REQUIRED = ("description", "recipe", "networks", "seeds", "quick", "claims")
QUICK_KEYS = ("seeds", "max_steps", "set", "lesion", "responses")
CLAIM_KEYS = ("id", "claim", "source", "paper", "predicate", "unresolved")
# Analysis parameter tables: name -> (class, smallest value of each field)
PARAMS: dict[str, tuple[type, dict[str, int]]] = {
    "lesion": (LesionParams, {"samples": 1, "max_k": 0, "images": 0}),
    "responses": (ResponseParams, {"images": 1}),
}
# Recipe keys an experiment sets itself, so [set] may not: the network and the seed of each run.
OWN_KEYS = {"network": "networks", "train.seed": "seeds"}
CLAIM_ID = re.compile(r"[A-Za-z0-9_\-]+")


def experiments_dir() -> Path:
    """``$BENCH_EXPERIMENTS`` or the checkout's ``experiments/`` folder."""
    env = os.environ.get("BENCH_EXPERIMENTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "experiments"


def list_experiments(pattern: str = "*", directory: Path | None = None) -> list[str]:
    """Names of the experiment files matching a shell-style pattern, sorted."""
    directory = directory or experiments_dir()
    return sorted(p.stem for p in directory.glob("*.toml") if fnmatch.fnmatchcase(p.stem, pattern))


def experiment_path(name: str, directory: Path | None = None) -> Path:
    """The file of experiment ``name`` (or ``name`` itself when it is a path to a .toml file)."""
    if name.endswith(".toml"):
        path = check_names(name, "experiment file")
        if path.is_file():
            return path
        if path.is_dir() or os.sep in name:
            raise BenchError(f"no experiment file {name}; give a .toml file or an experiment "
                             "name (a file of experiments/)")
    directory = directory or experiments_dir()
    if len(os.fsencode(name)) > NAME_MAX - len(".toml"):
        raise BenchError(f"unknown experiment {name[:24]}... ({len(name)} characters; an "
                         "experiment name is its file name, so it is shorter)")
    path = directory / f"{name}.toml"
    if not path.is_file():
        known = list_experiments("*", directory)
        raise BenchError(f"unknown experiment {name!r}{did_you_mean(name, known)}; choose from "
                         f"{', '.join(known) or f'the .toml files of {directory} (none yet)'}")
    return path


def load_experiment(name_or_path: str, directory: Path | None = None) -> Experiment:
    """Load and validate an experiment by name (a file of ``directory``) or .toml path."""
    path = experiment_path(str(name_or_path), directory)
    return build_experiment(path.stem, read_toml(path), str(path))


def build_experiment(name: str, raw: dict[str, Any], where: str) -> Experiment:
    """Typed :class:`Experiment` from a parsed TOML dict; every error is one line naming
    ``where``."""
    _check_keys(raw, TOP_LEVEL, where, "")
    for key in REQUIRED:
        if key not in raw:
            raise BenchError(f"{where}: missing required key {key!r}"
                             + (" (a [quick] table: what --quick runs, e.g. seeds = [1] and "
                                "max_steps = 4)" if key == "quick" else ""))
    recipe = _text(raw["recipe"], "recipe", where)
    from bench.recipes.loader import recipe_path
    try:
        recipe_path(recipe)
    except BenchError as exc:
        raise BenchError(f"{where}: recipe: {exc}") from None
    analyses = _analyses(raw.get("analyses", ["training"]), where)
    lesion = _params("lesion", raw, analyses, LesionParams(), where)
    responses = _params("responses", raw, analyses, ResponseParams(), where)
    seeds = _seeds(raw["seeds"], "seeds", where)
    quick = _quick(raw["quick"], analyses, seeds, lesion, responses, where)
    experiment = Experiment(
        name=name, description=_text(raw["description"], "description", where), recipe=recipe,
        networks=_networks(raw["networks"], where), seeds=seeds, analyses=analyses,
        overrides=_overrides(raw.get("set", {}), "set", where), lesion=lesion,
        responses=responses, notes=_texts(raw.get("notes", []), "notes", where),
        claims=(), quick=quick)
    if "lesion" in analyses:
        _check_lesion_networks(experiment.networks, where)
    claims = _claims(raw["claims"], experiment, where)
    experiment = dataclasses.replace(experiment, claims=claims)
    _check_recipes(experiment, where)
    return experiment


# --- sections -------------------------------------------------------------------------------

def _check_keys(table: dict[str, Any], valid: tuple[str, ...], where: str, prefix: str) -> None:
    for key in table:
        if key not in valid:
            raise BenchError(f"{where}: unknown key '{prefix}{key}'{did_you_mean(key, valid)}")


def _table(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BenchError(f"{where}: {key} must be a table ([{key}]), got {_shown(value)}")
    return value


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BenchError(f"{where}: {key} must be a non-empty string, got {_shown(value)}")
    return value


def _texts(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise BenchError(f"{where}: {key} must be a list of strings, got {_shown(value)}")
    return tuple(_text(v, f"{key}[{i}]", where) for i, v in enumerate(value))


def _integer(value: Any, key: str, where: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BenchError(f"{where}: {key} must be a whole number, got {_shown(value)}")
    if value < low or (high is not None and value >= high):
        limit = f"in [{low}, {high})" if high is not None else f"at least {low}"
        raise BenchError(f"{where}: {key} = {_shown(value)} must be {limit}")
    return value


def _seeds(value: Any, key: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise BenchError(f"{where}: {key} must be a non-empty list of whole numbers, got "
                         f"{_shown(value)}")
    seeds = tuple(_integer(s, f"{key}[{i}]", where, 0, SEED_LIMIT) for i, s in enumerate(value))
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise BenchError(f"{where}: {key} lists seed {repeated[0]} twice; each seed is one run")
    return seeds


def _networks(value: Any, where: str) -> tuple[str, ...]:
    from bench.models import resolve_name
    if not isinstance(value, list) or not value:
        raise BenchError(f"{where}: networks must be a non-empty list of network names, got "
                         f"{_shown(value)}")
    names: list[str] = []
    for i, item in enumerate(value):
        text = _text(item, f"networks[{i}]", where)
        try:
            name = resolve_name(text)
        except BenchError as exc:
            raise BenchError(f"{where}: networks[{i}]: {exc}") from None
        if name in names:
            raise BenchError(f"{where}: networks lists {name} twice"
                             + (f" ({text!r} is another name of it)" if text != name else ""))
        names.append(name)
    return tuple(names)


def _check_lesion_networks(networks: tuple[str, ...], where: str) -> None:
    """Refuse a lesion study of a family without residual units before anything trains."""
    from bench.analysis.lesion import refusal
    from bench.models.registry import get_spec
    for name in networks:
        why = refusal(get_spec(name).arch)
        if why:
            raise BenchError(f"{where}: networks: {name}: {why}")


def _analyses(value: Any, where: str) -> tuple[str, ...]:
    """The analyses in :data:`ANALYSES` order; "training" always runs, so it is added."""
    names = _texts(value, "analyses", where)
    for name in names:
        if name not in ANALYSES:
            raise BenchError(f"{where}: unknown analysis {name!r}{did_you_mean(name, ANALYSES)}"
                             f"; choose from {', '.join(ANALYSES)}")
        if names.count(name) > 1:
            raise BenchError(f"{where}: analyses lists {name!r} twice")
    return tuple(a for a in ANALYSES if a in names or a == "training")


def _params(section: str, table: dict[str, Any], analyses: tuple[str, ...], base: Any,
            where: str, prefix: str = "") -> Any:
    """``base`` with the keys of ``table[section]`` replaced (checked); allowed only when the
    analysis they parametrise runs."""
    if section not in table:
        return base
    values = _table(table[section], f"{prefix}{section}", where)
    if section not in analyses:
        raise BenchError(f"{where}: [{prefix}{section}] is given but {section!r} is not in "
                         f"analyses; add it there or remove the table")
    cls, lowest = PARAMS[section]
    _check_keys(values, tuple(lowest), where, f"{prefix}{section}.")
    checked = {k: _integer(v, f"{prefix}{section}.{k}", where, lowest[k]) for k, v in
               values.items()}
    return dataclasses.replace(base, **checked)


def _overrides(value: Any, key: str, where: str) -> tuple[tuple[str, Any], ...]:
    """``[set]`` as (dotted key, value) pairs; ``"data.dataset" = ...`` and ``[set.data]``
    both give ``data.dataset``. The keys' validity is the recipe loader's to judge."""
    out: list[tuple[str, Any]] = []

    def walk(table: dict[str, Any], prefix: str) -> None:
        for sub, item in table.items():
            dotted = f"{prefix}{sub}"
            if isinstance(item, dict):
                walk(item, f"{dotted}.")
                continue
            if dotted in OWN_KEYS:
                raise BenchError(f"{where}: [{key}] may not set {dotted}: the experiment's "
                                 f"{OWN_KEYS[dotted]} list gives it for each run")
            if not _plain_value(item):
                raise BenchError(f"{where}: [{key}] {dotted} = {_shown(item)}: a recipe value "
                                 "is a string, number, true/false or a list of them")
            if any(k == dotted for k, _ in out):  # "a.b" = 1 and [set.a] b = 2
                raise BenchError(f"{where}: [{key}] sets {dotted} twice")
            out.append((dotted, item))
    walk(_table(value, key, where), "")
    return tuple(out)


def _quick(value: Any, analyses: tuple[str, ...], seeds: tuple[int, ...], lesion: LesionParams,
           responses: ResponseParams, where: str) -> Quick:
    table = _table(value, "quick", where)
    _check_keys(table, QUICK_KEYS, where, "quick.")
    return Quick(
        seeds=_seeds(table["seeds"], "quick.seeds", where) if "seeds" in table else seeds[:1],
        max_steps=(_integer(table["max_steps"], "quick.max_steps", where, 1)
                   if "max_steps" in table else None),
        overrides=_overrides(table.get("set", {}), "quick.set", where),
        lesion=_params("lesion", table, analyses, lesion, where, "quick."),
        responses=_params("responses", table, analyses, responses, where, "quick."))


def _claims(value: Any, experiment: Experiment, where: str) -> tuple[Claim, ...]:
    if not isinstance(value, list) or not value:
        raise BenchError(f"{where}: claims must be a non-empty list of [[claims]] tables, got "
                         f"{_shown(value)}")
    claims: list[Claim] = []
    for i, item in enumerate(value):
        table = _table(item, f"claims[{i}]", where)
        _check_keys(table, CLAIM_KEYS, where, f"claims[{i}].")
        for key in CLAIM_KEYS[:-1]:
            if key not in table:
                raise BenchError(f"{where}: claims[{i}] has no {key!r}")
        claim_id = _text(table["id"], f"claims[{i}].id", where)
        if not CLAIM_ID.fullmatch(claim_id):
            raise BenchError(f"{where}: claim id {claim_id!r}: use letters, digits, '_' and '-' "
                             "only (ids name report rows)")
        if any(c.id == claim_id for c in claims):
            raise BenchError(f"{where}: claim id {claim_id!r} is used twice; ids are unique")
        at = f"{where}: claim {claim_id!r}"
        try:
            predicate = parse(table["predicate"])
        except PredicateError as exc:
            raise BenchError(f"{at}: {exc}") from None
        _check_references(predicate, experiment, at)
        unresolved = table.get("unresolved")
        claims.append(Claim(
            id=claim_id, claim=_text(table["claim"], "claim", at),
            source=_text(table["source"], "source", at), paper=_text(table["paper"], "paper", at),
            predicate=predicate,
            unresolved=None if unresolved is None else _text(unresolved, "unresolved", at)))
    return tuple(claims)


def _check_references(predicate: Any, experiment: Experiment, at: str) -> None:
    """Every reference names a listed network, a quantity of an analysis that runs, and a k
    that will be measured."""
    from bench.models import resolve_name
    for ref in predicate.references():
        if ref.network not in experiment.networks:
            try:
                canonical = resolve_name(ref.network)
            except BenchError:
                canonical = None
            hint = (f"; write its registry name {canonical!r}" if canonical in experiment.networks
                    else did_you_mean(ref.network, experiment.networks))
            raise BenchError(f"{at}: predicate names network {ref.network!r}, which is not in "
                             f"networks{hint}")
        analysis = QUANTITIES[ref.quantity].analysis
        if analysis not in experiment.analyses:
            raise BenchError(f"{at}: {ref.quantity} is measured by the {analysis!r} analysis; "
                             "add it to analyses")
        if ref.index is not None:
            if ref.index < 1:
                raise BenchError(f"{at}: {ref} asks for k = 0 deleted units; that is "
                                 "lesion.base_err")
            max_k = experiment.lesion.max_k
            if max_k and ref.index > max_k:
                raise BenchError(f"{at}: {ref} asks for k = {ref.index}, but [lesion] max_k = "
                                 f"{max_k} measures k up to {max_k}")


def _check_recipes(experiment: Experiment, where: str) -> None:
    """Build the recipe of every run (full and quick) so a bad ``[set]`` key or value fails
    now, with the recipe loader's own one-line error."""
    from bench.recipes import load_recipe
    for label, version in (("[set]", experiment), ("[quick.set]", experiment.quick_version())):
        for network in experiment.networks:
            try:
                load_recipe(experiment.recipe, version.recipe_overrides(network))
            except BenchError as exc:
                text = str(exc)
                text = text[len("--set "):] if text.startswith("--set ") else text
                raise BenchError(f"{where}: {label} with recipe {experiment.recipe!r} for "
                                 f"{network}: {text}") from None


def _plain_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(_plain_value(v) for v in value)
    return isinstance(value, (str, int, float, bool))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:16]}...{text[-8:]} ({len(text)} characters)"
