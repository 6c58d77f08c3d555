"""hf_qselect: shrink what gets fine-tuned, data and model, with QUBOs solved on annealers."""
from .report import SelectionReport
from .selector import InstanceSelector

__version__ = "0.1.0"
__all__ = ["InstanceSelector", "SelectionReport", "__version__"]
