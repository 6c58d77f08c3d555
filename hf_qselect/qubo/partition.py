"""Cutting a set of vectors into compact blocks small enough to anneal, without any n x n matrix."""
from __future__ import annotations

import numpy as np


def bisect(embeddings: np.ndarray, index: np.ndarray, max_size: int, power_iterations: int = 5) -> list[np.ndarray]:
    """Split ``index`` into compact parts of at most ``max_size`` rows by principal-direction bisection.

    Deterministic: the power iteration starts from the row farthest from the part's mean.
    """
    if max_size < 2:
        raise ValueError(f"block_size must be at least 2, got {max_size}")
    parts, stack = [], [np.asarray(index)]
    while stack:
        part = stack.pop()
        if len(part) <= max_size:
            parts.append(np.sort(part))
            continue
        x = embeddings[part]
        x -= x.mean(axis=0)
        direction = x[np.argmax(np.einsum("ij,ij->i", x, x))]
        for _ in range(power_iterations):
            direction = x.T @ (x @ direction)
            norm = np.linalg.norm(direction)
            if norm == 0:
                break
            direction /= norm
        projection = x @ direction
        order = np.argsort(projection, kind="stable")
        half = len(part) // 2
        stack.extend([part[order[half:]], part[order[:half]]])
    return parts


def ranked_quotas(importance: np.ndarray, parts: list[np.ndarray], k: int) -> np.ndarray:
    """How many of each part's members are among the ``k`` most important of all (ties by index)."""
    top = np.zeros(len(importance), dtype=bool)
    top[np.argsort(-importance, kind="stable")[:k]] = True
    return np.array([int(top[p].sum()) for p in parts])


def random_parts(n: int, max_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``range(n)`` shuffled and cut into near-equal parts of at most ``max_size`` (each sorted)."""
    if max_size < 2:
        raise ValueError(f"block_size must be at least 2, got {max_size}")
    count = max(1, -(-n // max_size))
    return [np.sort(part) for part in np.array_split(rng.permutation(n), count)]
