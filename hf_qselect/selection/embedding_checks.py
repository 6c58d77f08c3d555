"""Checking embeddings given to the selector: shape, finite, non-zero rows, unit length, a block of rows at a time."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..qubo import Vectors  # reads a memory-mapped file a block at a time, without keeping it mapped

CHECK_ROWS = 65_536
UNIT_TOLERANCE = {False: 1e-5, True: 2e-3}  # |norm - 1| of a unit row stored in float32, float16


def check_embeddings(embeddings: Any, n_rows: int) -> np.ndarray:
    """Return embeddings as float32 (n, d), L2-normalised; refuse NaN, inf and all-zero rows.

    Checked a block of rows at a time. Rows that are already unit length are not copied: a float32 array comes
    back as it is, and a memory-mapped ``.npy`` (float32 or float16) stays on disk; anything else is copied,
    as float32, and normalised."""
    array = embeddings if isinstance(embeddings, np.ndarray) else np.asarray(embeddings)
    if array.ndim != 2 or array.shape[0] != n_rows:
        raise ValueError(f"embeddings must have shape ({n_rows}, d) to match the dataset, got {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"embeddings must be numeric, got dtype {array.dtype}")
    unit = True
    for start, block in Vectors(array).blocks(CHECK_ROWS):
        bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
        if bad.size:
            raise ValueError(f"embeddings contain NaN or inf at rows {(start + bad[:10]).tolist()}")
        norms = np.linalg.norm(block, axis=1)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValueError(f"embeddings are all-zero at rows {(start + zero[:10]).tolist()}; cosine similarity is undefined there")
        unit = unit and bool(np.abs(norms - 1.0).max() <= UNIT_TOLERANCE[array.dtype == np.float16])
    if unit and (array.dtype == np.float32 or (isinstance(array, np.memmap) and array.dtype == np.float16)):
        return array
    array = array.astype(np.float32, copy=True)
    for start in range(0, n_rows, CHECK_ROWS):
        block = array[start : start + CHECK_ROWS]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return array
