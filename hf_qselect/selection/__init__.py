"""Instance selection: embed a labelled text dataset, pose the choice of rows as block QUBOs, anneal, keep the rows."""
from .backend_choice import backend_precision
from .embeddings import PRECISIONS, default_embedder, embed_dataset, embedder_name
from .params import SelectionParams
from .probe import ProbeScores, check_folds, paired_probe
from .quotas import keep_count
from .registry import METHODS, MethodSpec, get_method
from .report import SelectionReport
from .selector import InstanceSelector, row_hashes
from .stats import PairedDifference, corrected_interval, paired, recommend, reduction_without_loss

__all__ = [
    "InstanceSelector", "METHODS", "backend_precision", "PairedDifference", "ProbeScores", "check_folds", "corrected_interval", "paired", "paired_probe", "recommend",
    "reduction_without_loss", "MethodSpec", "PRECISIONS", "SelectionParams", "SelectionReport", "default_embedder",
    "embed_dataset", "embedder_name", "get_method", "keep_count", "row_hashes",
]
