"""hf_qselect: shrink what gets fine-tuned, data and model, with QUBOs solved on annealers.

The public names are imported on first use, so ``import hf_qselect`` stays cheap (no torch, no transformers).
"""
from typing import TYPE_CHECKING

from .lazy import lazy_dir, lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "InstanceSelector": ".selection",
    "SelectionReport": ".selection",
    "QSelectTrainer": ".training",
    "QSelectConfig": ".training",
    "AnnealingPruner": ".pruning",
    "publish_reduced": ".hub",
    "load_reduced": ".hub",
    "compare": ".comparison",
    "QuboClassifier": ".classifier",
    "QuboHead": ".heads",
}
__all__ = [*(name for name in _EXPORTS if name != "QuboHead"), "__version__"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
__dir__ = lazy_dir(_EXPORTS, globals())

if TYPE_CHECKING:
    from .comparison import compare
    from .classifier import QuboClassifier
    from .hub import load_reduced, publish_reduced
    from .pruning import AnnealingPruner
    from .selection import InstanceSelector, SelectionReport
    from .training import QSelectConfig, QSelectTrainer
