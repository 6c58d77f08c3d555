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
