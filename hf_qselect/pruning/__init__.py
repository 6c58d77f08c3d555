"""Annealing-driven structured pruning of BERT-family encoders: heads, FFN neurons and whole layers.

The parameter declaration is light; the pruner itself (torch) is imported on first use.
"""
from ..lazy import lazy_getattr
from .params import PRUNE_METHODS, PruningParams, check_budget

_EXPORTS = {"AnnealingPruner": ".pruner", "PruningReport": ".report", "label_column": ".scores",
            "calibration_batches": ".scores", "check_calibration": ".scores", "check_model_dir": ".saved", "calibration_rows_of": ".saved",
            **{name: ".architecture" for name in ("apply_plan", "check_supported", "encoder_layers", "keep_inputs", "keep_outputs",
                                                   "load_pruned", "plan_is_uneven", "pruned_skeleton", "shape_of", "PLAN_KEY")}}
__all__ = ["AnnealingPruner", "PLAN_KEY", "PRUNE_METHODS", "PruningParams", "PruningReport", "apply_plan", "calibration_batches",
           "calibration_rows_of", "check_budget", "check_calibration", "check_model_dir", "check_supported", "encoder_layers", "keep_inputs",
           "keep_outputs", "label_column", "load_pruned", "plan_is_uneven", "pruned_skeleton", "shape_of"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
