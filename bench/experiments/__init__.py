"""Experiments: declarative TOML files in ``experiments/`` that reproduce a paper's figure at
small scale — networks, seeds, analyses and the claims to judge (:mod:`.schema`,
:mod:`.loader`), in the one vocabulary of measured quantities (:mod:`.quantities`) and the claim
language (:mod:`.predicate`)."""
from bench.experiments.predicate import Predicate, PredicateError, Ref, parse
from bench.experiments.quantities import ANALYSES, QUANTITIES, Quantity, quantity_value

__all__ = ["ANALYSES", "Predicate", "PredicateError", "QUANTITIES", "Quantity", "Ref", "parse",
           "quantity_value"]
