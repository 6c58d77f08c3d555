"""hf_qselect: shrink what gets fine-tuned, data and model, with QUBOs solved on annealers.

The public names are imported on first use, so ``import hf_qselect`` stays cheap (no torch, no transformers).
"""
from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "InstanceSelector": ".selection",
    "SelectionReport": ".selection",
    "QSelectTrainer": ".training",
    "QSelectConfig": ".training",
    "AnnealingPruner": ".pruning",
    "publish_reduced": ".hub",
    "load_reduced": ".hub",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hf_qselect' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
