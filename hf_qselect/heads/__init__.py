"""QUBO-trained classifier heads on frozen features: K-bit linear heads trained without gradients."""
from .head import HeadReport, QuboHead, QuboHeadParams

__all__ = ["HeadReport", "QuboHead", "QuboHeadParams"]
