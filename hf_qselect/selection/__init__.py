"""Instance selection: embed a labelled text dataset, pose the choice of rows as block QUBOs, anneal, keep the rows."""
from .embeddings import PRECISIONS, default_embedder, embed_dataset, embedder_name
from .params import SelectionParams
from .quotas import keep_count
from .registry import METHODS, MethodSpec, get_method
from .report import SelectionReport
from .selector import InstanceSelector, row_hashes

__all__ = [
    "InstanceSelector", "METHODS", "MethodSpec", "PRECISIONS", "SelectionParams", "SelectionReport", "default_embedder",
    "embed_dataset", "embedder_name", "get_method", "keep_count", "row_hashes",
]
