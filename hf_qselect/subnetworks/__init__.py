"""Subnetworks of frozen models found by selecting units, without training a weight (Whitaker, seed 004).

The parameter declaration is light; the selector (torch) is imported on first use.
"""
from typing import TYPE_CHECKING

from ..lazy import lazy_dir, lazy_getattr
from .params import SUBNETWORK_METHODS, SubnetworkParams

_EXPORTS = {"SubnetworkSelector": ".selector", "load_mask": ".masks", "save_mask": ".masks", "mask_bytes": ".masks"}
__all__ = ["SUBNETWORK_METHODS", "SubnetworkParams", "SubnetworkSelector", "load_mask", "mask_bytes", "save_mask"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
__dir__ = lazy_dir(_EXPORTS, globals())

if TYPE_CHECKING:
    from .masks import load_mask, mask_bytes, save_mask
    from .selector import SubnetworkSelector
