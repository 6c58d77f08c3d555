"""QUBO-trained classifier heads on frozen features: K-bit linear heads trained without gradients."""
from .qubo_classifier import ClassifierReport, QuboClassifier, QuboClassifierParams

__all__ = ["ClassifierReport", "QuboClassifier", "QuboClassifierParams"]
