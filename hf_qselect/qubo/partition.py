"""Cutting a set of vectors into compact blocks small enough to anneal, without any n x n matrix."""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .vectors import Vectors, as_vectors

SPLIT_SAMPLE = 20_000  # split_large: rows per part that estimate its mean and principal direction


def principal_direction(centred: np.ndarray, power_iterations: int = 5) -> np.ndarray:
    """Leading principal direction of centred rows by power iteration, started deterministically from the row
    farthest from the mean."""
    direction = centred[np.argmax(np.einsum("ij,ij->i", centred, centred))]
    for _ in range(power_iterations):
        direction = centred.T @ (centred @ direction)
        norm = np.linalg.norm(direction)
        if norm == 0:
            break
        direction /= norm
    return direction


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
        direction = principal_direction(x, power_iterations)
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


def split_large(vectors: np.ndarray | Vectors, parts: list[np.ndarray], max_size: int, *, sample: int = SPLIT_SAMPLE,
                power_iterations: int = 5, show_progress: bool = False) -> list[np.ndarray]:
    """Halve every part larger than ``max_size`` along its principal direction until none is (the cut of
    :func:`bisect`, for inputs too large to copy a part at a time).

    Each part's mean and direction come from at most ``sample`` of its rows, evenly spaced; the rows are then
    projected in one streamed pass over ``vectors`` per level, so memory is one read block plus two numbers a
    row, and a memory-mapped file is read sequentially. Parts come back sorted, each at most ``max_size``.
    """
    if max_size < 2:
        raise ValueError(f"chunk size must be at least 2, got {max_size}")
    vectors = as_vectors(vectors)
    done = [np.sort(p) for p in parts if len(p) <= max_size]
    todo = [np.sort(p) for p in parts if len(p) > max_size]
    levels = 0 if not todo else int(np.ceil(np.log2(max(len(p) for p in todo) / max_size)))
    with tqdm(total=levels, desc="partition", unit="level", disable=not show_progress) as bar:
        while todo:
            directions = np.empty((len(todo), vectors.shape[1]), dtype=np.float32)
            shifts = np.empty(len(todo), dtype=np.float32)
            owner = np.full(len(vectors), -1, dtype=np.int32)
            for i, part in enumerate(todo):
                picked = part[np.unique(np.linspace(0, len(part) - 1, min(sample, len(part))).astype(np.int64))]
                x = vectors.rows(picked)
                mean = x.mean(axis=0)
                x -= mean
                directions[i] = principal_direction(x, power_iterations)
                shifts[i] = mean @ directions[i]
                owner[part] = i
            projection = np.zeros(len(vectors), dtype=np.float32)
            for start, block in vectors.blocks():
                mine = owner[start : start + len(block)]
                rows = np.flatnonzero(mine >= 0)
                projection[start + rows] = np.einsum("ij,ij->i", block[rows], directions[mine[rows]]) - shifts[mine[rows]]
            halves = []
            for part in todo:
                order = np.argsort(projection[part], kind="stable")
                half = len(part) // 2
                halves.extend([np.sort(part[order[:half]]), np.sort(part[order[half:]])])
            done.extend(p for p in halves if len(p) <= max_size)
            todo = [p for p in halves if len(p) > max_size]
            bar.update(1)
    return done
