"""hf_qselect: shrink what gets fine-tuned, data and model, with QUBOs solved on annealers.

The public names are imported on first use, so ``import hf_qselect`` stays cheap (no torch, no transformers).
"""
from .lazy import lazy_getattr

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
    "QuboHead": ".heads",
}
__all__ = [*_EXPORTS, "__version__"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
