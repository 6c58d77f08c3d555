"""Per-row scores from a cheap out-of-fold classifier on the embeddings.

A shrinkage LDA (one shared covariance, closed form, O(n d^2)) is fitted on k-1 folds and
scores the held-out fold, so every row gets the probability of its own label from a model
that never saw it. A row is *likely mislabelled* when that model predicts another class
with confidence at least ``confidence`` (biO-IS's noise rule: misclassified, low entropy).

Past ``max_rows`` rows the folds are drawn on a stratified sample of that many rows, and one model fitted on the
whole sample scores every other row, a block at a time (as jobs on the cluster inside
``backend_context("dask" | "ray")``): those rows are out of its fold too.
"""
from __future__ import annotations

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold
from tqdm.auto import tqdm

from ..qubo import Vectors, as_vectors
from ..qubo import on_cluster
from ..qubo import run_jobs
from ..qubo import READ_ROWS
from .quotas import apportion

SCORE_ROWS = 50_000


def _lda() -> LinearDiscriminantAnalysis:
    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")


def out_of_fold_proba(embeddings: np.ndarray | Vectors, codes: np.ndarray, folds: int = 5, seed: int | None = 0,
                      max_rows: int | None = SCORE_ROWS, show_progress: bool = False) -> np.ndarray:
    """``(n, C)`` class probabilities, each row predicted by a model fitted without it."""
    if max_rows is None or len(codes) <= max_rows:
        x = embeddings.rows(np.arange(len(codes))) if isinstance(embeddings, Vectors) else embeddings
        return _folds_proba(x, codes, folds, seed)
    vectors = as_vectors(embeddings)
    sample = stratified_sample(codes, max_rows, folds, seed)
    x = vectors.rows(sample)
    proba = np.zeros((len(codes), int(codes.max()) + 1))
    proba[sample] = _folds_proba(x, codes[sample], folds, seed, n_classes=proba.shape[1])
    model = _lda().fit(x, codes[sample])
    del x
    rest = np.setdiff1d(np.arange(len(codes)), sample)
    groups = np.array_split(rest, max(1, -(-len(rest) // READ_ROWS)))
    if on_cluster():  # inside backend_context("dask" | "ray"): the blocks are scored on the cluster
        from joblib import delayed

        answers = run_jobs((delayed(_predict)(model, vectors if vectors.on_disk else vectors.rows(g), g) for g in groups), -1)
    else:
        answers = (_predict(model, vectors, g) for g in groups)
    with tqdm(total=len(codes), initial=len(sample), desc="scoring", unit="row", disable=not show_progress) as bar:
        for rows, block_proba in zip(groups, answers):
            proba[np.ix_(rows, model.classes_)] = block_proba
            bar.update(len(rows))
    return proba


def _predict(model: LinearDiscriminantAnalysis, source: np.ndarray | Vectors, rows: np.ndarray) -> np.ndarray:
    """Class probabilities of ``rows``: read from ``source`` when it is :class:`Vectors`, else ``source`` is them."""
    return model.predict_proba(source.rows(rows) if isinstance(source, Vectors) else source)


def _folds_proba(x: np.ndarray, codes: np.ndarray, folds: int, seed: int | None, n_classes: int | None = None) -> np.ndarray:
    n_classes = n_classes or int(codes.max()) + 1
    proba = np.zeros((len(codes), n_classes))
    folds = max(2, min(folds, int(np.bincount(codes).min())))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(codes)), codes):
        model = _lda().fit(x[train], codes[train])
        proba[np.ix_(test, model.classes_)] = model.predict_proba(x[test])
    return proba


def stratified_sample(codes: np.ndarray, size: int, min_per_class: int = 5, seed: int | None = 0) -> np.ndarray:
    """Sorted indices of about ``size`` rows, class shares kept, at least ``min_per_class`` of each class (or all it has)."""
    sizes = np.bincount(codes)
    floor = np.minimum(sizes, min_per_class)
    take = floor + apportion(max(0, min(size, len(codes)) - int(floor.sum())), sizes - floor)
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(codes == c), size=int(k), replace=False) for c, k in enumerate(take) if k]
    return np.sort(np.concatenate(picked))


def likely_mislabelled(proba: np.ndarray, codes: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """Rows whose out-of-fold prediction is another class with probability >= ``confidence``."""
    predicted = proba.argmax(axis=1)
    return (predicted != codes) & (proba.max(axis=1) >= confidence)
