"""The K-bit fixed-point grid of a head's weights, and the two rounding baselines onto it.

A weight is ``w = scale * (code / 2)`` with an odd integer ``code`` in ``[-(2^K - 1), 2^K - 1]``: the
grid is symmetric, has ``2^K`` levels one step apart, and at ``K = 1`` is the binary ``{-scale/2, +scale/2}``.
In bits, ``code / 2 = sum_b 2^b x_b - (2^K - 1) / 2``, so every level is one assignment of K binary variables.
"""
from __future__ import annotations

import numpy as np


def offset(bits: int) -> float:
    """``(2^K - 1) / 2``: the grid's half-width in steps."""
    return (2.0 ** bits - 1.0) / 2.0


def levels(bits: int) -> np.ndarray:
    """The grid's levels in steps: ``-(2^K-1)/2, ..., (2^K-1)/2``."""
    return np.arange(2 ** bits) - offset(bits)


def bit_weights(bits: int) -> np.ndarray:
    """``2^b`` for ``b = 0..K-1``: a level is ``bit_weights . x - offset``."""
    return 2.0 ** np.arange(bits)


def to_bits(steps: np.ndarray, bits: int) -> np.ndarray:
    """Levels (in steps) -> ``(n, K)`` bits, least significant first."""
    value = np.rint(np.asarray(steps) + offset(bits)).astype(np.int64)
    return ((value[..., None] >> np.arange(bits)) & 1).astype(np.int8)


def from_bits(x: np.ndarray, bits: int) -> np.ndarray:
    """``(..., K)`` bits -> levels in steps."""
    return np.asarray(x, dtype=np.float64) @ bit_weights(bits) - offset(bits)


def nearest(values: np.ndarray, bits: int) -> np.ndarray:
    """The nearest level (in steps) of each value (in steps), clipped to the grid. Levels sit at half-integers
    (``2^K`` of them is even), so the nearest one is ``floor(v) + 1/2``."""
    half = offset(bits)
    return np.clip(np.floor(np.asarray(values, dtype=np.float64)) + 0.5, -half, half)


def best_scale(w: np.ndarray, steps: np.ndarray, H: np.ndarray) -> float:
    """The scale ``s`` minimising ``(s q - w)^T H (s q - w)`` for fixed levels ``q``: ``q^T H w / q^T H q``."""
    Hq = H @ steps
    denom = float(steps @ Hq)
    return float(steps @ (H @ w)) / denom if denom > 0 else 1.0


def round_to_nearest(w: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Round-to-nearest: ``(levels, scale)`` with the scale that maps ``max |w|`` to the outermost level."""
    scale = float(np.max(np.abs(w))) / offset(bits) if np.any(w) else 1.0
    return nearest(w / scale, bits), scale


def gptq(w: np.ndarray, H: np.ndarray, bits: int, scale: float) -> np.ndarray:
    """Error-feedback rounding (GPTQ/OBQ): quantise one weight at a time and push its error, weighted by
    ``H^{-1}``, onto the weights not yet quantised, so ``(q s - w)^T H (q s - w)`` stays small. Returns levels."""
    d = len(w)
    damp = 1e-6 * float(np.mean(np.diag(H))) or 1e-6
    inverse = np.linalg.inv(H + damp * np.eye(d))
    upper = np.linalg.cholesky(inverse).T  # upper-triangular factor of H^{-1}, as in GPTQ
    work = np.asarray(w, dtype=np.float64).copy()
    steps = np.zeros(d)
    for j in range(d):
        steps[j] = nearest(work[j] / scale, bits)
        error = (work[j] - steps[j] * scale) / upper[j, j]
        work[j + 1:] -= error * upper[j, j + 1:]
    return steps
