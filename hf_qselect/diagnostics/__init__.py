"""Sparse-training diagnostics (Liu et al. 2024, seed 002): is a fine-tuning run sparse and dissipative enough for
quantum gradient descent, what would it cost, and the classical half of the scheme (prune, train sparse,
save and load the sparse weights).

The parameter declaration is light; everything else (torch) is imported on first use.
"""
from typing import TYPE_CHECKING

from ..lazy import lazy_dir, lazy_getattr
from .params import DiagnosticsParams, check_sparsity

_EXPORTS = {"SparseTrainingReport": ".report", "sparse_training_report": ".report", "spectrum": ".report",
            "magnitude_masks": ".masks", "emptied": ".masks", "apply_masks": ".masks", "fixed_mask_callback": ".masks", "sparsity_of": ".masks",
            "save_sparse": ".export", "load_sparse": ".export", "download": ".export", "upload": ".export", "lanczos": ".hessian", "hutchinson_trace": ".hessian", "hvp_fn": ".hessian"}
__all__ = ["DiagnosticsParams", "check_sparsity", *sorted(set(_EXPORTS) - {"download", "upload"})]  # the two are deprecated aliases
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
__dir__ = lazy_dir(_EXPORTS, globals())

if TYPE_CHECKING:
    from .export import download, load_sparse, save_sparse, upload
    from .hessian import hutchinson_trace, hvp_fn, lanczos
    from .masks import apply_masks, emptied, fixed_mask_callback, magnitude_masks, sparsity_of
    from .report import SparseTrainingReport, sparse_training_report, spectrum
