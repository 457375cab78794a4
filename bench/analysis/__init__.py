"""Analyses of trained nets for the papers' experiments: clean error, lesion studies
(Veit et al. 2016) and layer response magnitudes (He et al. 2015, Fig. 7)."""
from bench.analysis.errors import clean_error
from bench.analysis.graph import rebuild_graph
from bench.analysis.lesion import (Unit, bypass, deletion_sets, lesion_errors, single_deletions,
                                   units)
from bench.analysis.responses import layer_responses, sorted_responses

__all__ = ["Unit", "bypass", "clean_error", "deletion_sets", "layer_responses", "lesion_errors",
           "rebuild_graph", "single_deletions", "sorted_responses", "units"]
