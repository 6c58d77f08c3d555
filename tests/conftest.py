"""Shared fixtures: small real datasets and embeddings. No network: the Hub is never contacted."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
from datasets import Dataset


def clustered(n: int, dim: int = 16, classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around a few centres per class, and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, 3, dim))
    x = centres[labels, rng.integers(0, 3, n)] + 0.7 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def mmd_energy(embeddings: np.ndarray, blocks: list[np.ndarray], mask: np.ndarray) -> float:
    """``sum over blocks of k^2 MMD^2(kept, block)`` with the Gaussian kernel on cosine distance, written out."""
    total = 0.0
    for block in blocks:
        x = np.asarray(embeddings[block], dtype=np.float64)
        dist = 1.0 - x @ x.T
        tau = np.median(dist[np.triu_indices(len(x), 1)])
        kernel = np.exp(-np.clip(dist, 0, None) / tau)
        np.fill_diagonal(kernel, 1.0)
        kept = mask[block]
        k = kept.sum()
        mmd2 = kernel[np.ix_(kept, kept)].mean() - 2 * kernel[kept].mean() + kernel.mean()
        total += k * k * mmd2
    return float(total)


@pytest.fixture
def small() -> tuple[Dataset, np.ndarray]:
    """240 rows, 2 classes, with precomputed 16-d embeddings."""
    emb, labels = clustered(240, classes=2)
    ds = Dataset.from_dict({"text": [f"row {i} label {y}" for i, y in enumerate(labels)], "label": labels.tolist()})
    return ds, emb


@pytest.fixture
def sentences() -> Dataset:
    """A few dozen real sentences for tests that embed with the packaged MiniLM."""
    pos = ["a wonderful, moving film", "great acting and a clever plot", "I loved every minute", "a delightful surprise",
           "beautifully shot and warmly told", "funny, smart and kind", "the best film of the year", "a joy to watch",
           "superb performances all round", "charming and heartfelt", "an uplifting story", "brilliant direction"]
    neg = ["a dull, lifeless mess", "the plot makes no sense", "I was bored throughout", "a tedious waste of time",
           "clumsy writing and flat acting", "painfully slow and predictable", "the worst film of the year", "an ugly chore",
           "nothing works here", "lazy, loud and empty", "a depressing failure", "poorly edited and overlong"]
    return Dataset.from_dict({"text": pos + neg, "label": [1] * len(pos) + [0] * len(neg)})


def fit_within_latency(compressor, model, calibration) -> bool:
    """Fit ``compressor`` (a latency budget) and check the budget holds; ``False`` where this machine is too slow for
    even the smallest answer (the error must then name what is reachable)."""
    try:
        compressor.fit(model, calibration)
    except ValueError as err:
        assert "smallest reachable" in str(err)
        return False
    assert compressor.report_.cost_unit == "ms" and compressor.report_.cost_after <= compressor.report_.limit
    assert "whole model fp32" in compressor.report_.latency_table
    return True
