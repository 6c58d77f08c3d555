"""hf_qselect: shrink what gets fine-tuned, data and model, with QUBOs solved on annealers."""
from .report import SelectionReport
from .selector import InstanceSelector
from .trainer import QSelectTrainer

__version__ = "0.1.0"
__all__ = ["InstanceSelector", "QSelectTrainer", "SelectionReport", "publish_reduced", "load_reduced", "__version__"]


def __getattr__(name: str):
    """``publish_reduced`` and ``load_reduced`` are imported on first use (they pull in plotting)."""
    if name in ("publish_reduced", "load_reduced"):
        from . import publish

        return getattr(publish, name)
    raise AttributeError(name)
