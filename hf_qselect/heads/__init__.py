"""Deprecated: the QUBO-trained classifier heads moved to :mod:`hf_qselect.classifier` (``QuboHead`` is now
``QuboClassifier``), since "heads" means attention heads everywhere else in hf_qselect. This path warns and
re-exports for one release."""
import warnings

from ..classifier import ClassifierReport, QuboClassifier, QuboClassifierParams

warnings.warn("hf_qselect.heads is deprecated: use hf_qselect.classifier (QuboHead is now QuboClassifier)", FutureWarning, stacklevel=2)

QuboHead = QuboClassifier
QuboHeadParams = QuboClassifierParams
HeadReport = ClassifierReport

__all__ = ["HeadReport", "QuboHead", "QuboHeadParams"]
