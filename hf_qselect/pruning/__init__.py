"""Annealing-driven structured pruning of BERT-family encoders: heads, FFN neurons and whole layers.

The parameter declaration is light; the pruner itself (torch) is imported on first use.
"""
from importlib import import_module

from .params import PRUNE_METHODS, PruningParams, check_budget

_EXPORTS = {"AnnealingPruner": ".pruner", "PruningReport": ".report", "check_supported": ".architecture", "load_pruned": ".architecture"}
__all__ = ["AnnealingPruner", "PRUNE_METHODS", "PruningParams", "PruningReport", "check_budget", "check_supported", "load_pruned"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hf_qselect.pruning' has no attribute {name!r}")
