"""Annealing-driven structured pruning: attention heads, FFN neurons and whole layers.

The parameter declaration is light; the pruner itself (torch) is imported on first use. The model surgery lives in
:mod:`hf_qselect.models`; ``load_pruned`` is re-exported here because pruned models are reloaded with it.
"""
from typing import TYPE_CHECKING

from ..lazy import lazy_dir, lazy_getattr
from .params import PRUNE_METHODS, PruningParams, check_budget

_EXPORTS = {"AnnealingPruner": ".pruner", "PruningReport": ".report", "calibration_rows_of": ".saved", "causal_calibration_rows": ".saved",
            "load_pruned": "..models", "lora_recover": ".recovery"}
__all__ = ["AnnealingPruner", "PRUNE_METHODS", "PruningParams", "PruningReport", "calibration_rows_of", "causal_calibration_rows", "check_budget",
           "load_pruned", "lora_recover"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
__dir__ = lazy_dir(_EXPORTS, globals())

if TYPE_CHECKING:
    from ..models import load_pruned
    from .pruner import AnnealingPruner
    from .recovery import lora_recover
    from .report import PruningReport
    from .saved import calibration_rows_of, causal_calibration_rows
