"""Per-row scores from a cheap out-of-fold classifier on the embeddings.

A shrinkage LDA (one shared covariance, closed form, O(n d^2)) is fitted on k-1 folds and
scores the held-out fold, so every row gets the probability of its own label from a model
that never saw it. A row is *likely mislabelled* when that model predicts another class
with confidence at least ``confidence`` (biO-IS's noise rule: misclassified, low entropy).
"""
from __future__ import annotations

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold


def out_of_fold_proba(embeddings: np.ndarray, codes: np.ndarray, folds: int = 5, seed: int | None = 0) -> np.ndarray:
    """``(n, C)`` class probabilities, each row predicted by a model fitted without it."""
    n_classes = int(codes.max()) + 1
    proba = np.zeros((len(codes), n_classes))
    folds = max(2, min(folds, int(np.bincount(codes).min())))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(embeddings, codes):
        model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(embeddings[train], codes[train])
        proba[np.ix_(test, model.classes_)] = model.predict_proba(embeddings[test])
    return proba


def likely_mislabelled(proba: np.ndarray, codes: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """Rows whose out-of-fold prediction is another class with probability >= ``confidence``."""
    predicted = proba.argmax(axis=1)
    return (predicted != codes) & (proba.max(axis=1) >= confidence)
