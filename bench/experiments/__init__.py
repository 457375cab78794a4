"""Experiments: declarative TOML files in ``experiments/`` that reproduce a paper's figure at
small scale (networks, seeds, analyses and the claims to judge; :mod:`.schema`, :mod:`.loader`),
in one vocabulary of measured quantities (:mod:`.quantities`) and a small claim language
(:mod:`.predicate`)."""
from bench.experiments.loader import (build_experiment, experiment_path, experiments_dir,
                                      list_experiments, load_experiment)
from bench.experiments.predicate import Predicate, PredicateError, Ref, parse
from bench.experiments.quantities import ANALYSES, QUANTITIES, Quantity, quantity_value
from bench.experiments.schema import (Claim, Experiment, LesionParams, Quick, ResponseParams,
                                      toml_value)

__all__ = ["ANALYSES", "Claim", "Experiment", "LesionParams", "Predicate", "PredicateError",
           "QUANTITIES", "Quantity", "Quick", "Ref", "ResponseParams", "build_experiment",
           "experiment_path", "experiments_dir", "list_experiments", "load_experiment", "parse",
           "quantity_value", "toml_value"]
