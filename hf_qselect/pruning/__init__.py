"""Annealing-driven structured pruning of BERT-family encoders: heads, FFN neurons and whole layers.

The parameter declaration is light; the pruner itself (torch) is imported on first use.
"""
from ..lazy import lazy_getattr
from .params import PRUNE_METHODS, PruningParams, check_budget

_EXPORTS = {"AnnealingPruner": ".pruner", "PruningReport": ".report", "check_supported": ".architecture", "load_pruned": ".architecture"}
__all__ = ["AnnealingPruner", "PRUNE_METHODS", "PruningParams", "PruningReport", "check_budget", "check_supported", "load_pruned"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
