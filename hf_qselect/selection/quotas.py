"""How many rows each class and each block keeps, and the single-class blocks a selection is cut into.

No function here builds an n x n matrix: partitions are found by recursive principal
-direction bisection (O(n d log n)), so each block is a compact region of one class.
"""
from __future__ import annotations

import numpy as np

from ..qubo import bisect


def keep_count(keep: float, n_rows: int) -> int:
    """Rows to keep for fraction ``keep`` of ``n_rows``: round half up, at least 1."""
    return int(min(n_rows, max(1, np.floor(keep * n_rows + 0.5))))


def apportion(total: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``total`` over groups proportionally to ``sizes`` (largest remainder); sums to ``total``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if total > sizes.sum() or total < 0:
        raise ValueError(f"cannot keep {total} of {sizes.sum()} rows")
    if total == 0 or sizes.sum() == 0:
        return np.zeros_like(sizes)
    return apportion_float(total, sizes.astype(np.float64))


def class_quotas(codes: np.ndarray, n_keep: int, balance: float = 0.0) -> np.ndarray:
    """Rows kept per class, summing to ``n_keep``, at least one per class when possible.

    Quotas are proportional to ``n_c ** (1 - balance)``: ``balance=0`` keeps the class shares
    (stratified), ``balance=1`` aims at equal counts, ``0.5`` is square-root allocation. No
    class gets more than it has; what a small class cannot take goes to the others.
    """
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"class_balance must be in [0, 1], got {balance}")
    sizes = np.bincount(codes)
    quotas = np.zeros_like(sizes)
    left, open_ = n_keep, np.ones(len(sizes), dtype=bool)
    while left > 0:
        weights = np.where(open_, sizes.astype(np.float64) ** (1.0 - balance), 0.0)
        share = np.minimum(apportion_float(left, weights), sizes - quotas)
        quotas += share
        left -= int(share.sum())
        open_ &= quotas < sizes
    if n_keep >= len(sizes):
        for c in np.flatnonzero(quotas == 0):  # every class keeps at least one row
            quotas[np.argmax(quotas)] -= 1
            quotas[c] = 1
    return quotas


def apportion_float(total: int, weights: np.ndarray) -> np.ndarray:
    """Largest-remainder split of ``total`` proportional to non-negative real ``weights``."""
    raw = total * weights / weights.sum()
    counts = np.floor(raw).astype(np.int64)
    order = np.lexsort((np.arange(len(weights)), -(raw - counts)))
    counts[order[: total - counts.sum()]] += 1
    return counts


def class_blocks(embeddings: np.ndarray, codes: np.ndarray, max_size: int) -> list[np.ndarray]:
    """Compact single-class blocks of at most ``max_size`` rows covering every row once."""
    blocks = []
    for c in range(codes.max() + 1):
        blocks.extend(bisect(embeddings, np.flatnonzero(codes == c), max_size))
    return blocks


def random_blocks(n_rows: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle the rows and cut them into consecutive batches of about ``size`` (Pasin et al.)."""
    order = rng.permutation(n_rows)
    n_parts = max(1, int(np.ceil(n_rows / size)))
    return [np.sort(p) for p in np.array_split(order, n_parts)]


def block_quotas(blocks: list[np.ndarray], codes: np.ndarray, class_keep: np.ndarray) -> np.ndarray:
    """Rows kept per single-class block, apportioned within each class so class totals are exact."""
    quotas = np.zeros(len(blocks), dtype=np.int64)
    block_class = np.array([codes[b[0]] for b in blocks])
    sizes = np.array([len(b) for b in blocks])
    for c, k in enumerate(class_keep):
        members = np.flatnonzero(block_class == c)
        quotas[members] = apportion(int(k), sizes[members])
    return quotas
