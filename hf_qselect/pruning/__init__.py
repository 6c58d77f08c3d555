"""Annealing-driven structured pruning of BERT-family encoders: heads, FFN neurons and whole layers.

The parameter declaration is light; the pruner itself (torch) is imported on first use.
"""
from ..lazy import lazy_getattr
from .params import PRUNE_METHODS, PruningParams, check_budget

_EXPORTS = {"AnnealingPruner": ".pruner", "PruningReport": ".report", **{name: ".architecture" for name in (
    "apply_plan", "check_supported", "encoder_layers", "keep_inputs", "keep_outputs", "load_pruned", "shape_of")}}
__all__ = ["AnnealingPruner", "PRUNE_METHODS", "PruningParams", "PruningReport", "apply_plan", "check_budget", "check_supported",
           "encoder_layers", "keep_inputs", "keep_outputs", "load_pruned", "shape_of"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
