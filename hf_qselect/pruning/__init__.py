"""Annealing-driven structured pruning of BERT-family encoders: heads, FFN neurons and whole layers."""
from .architecture import load_pruned
from .pruner import AnnealingPruner
from .report import PruningReport

__all__ = ["AnnealingPruner", "PruningReport", "load_pruned"]
