"""Paired comparisons over repeated cross-validation splits, and the rule that turns them into a recommendation.

Every method is scored on the same R x k splits, so differences are paired split by split. The splits of
repeated k-fold share training rows, which makes a plain paired t interval too narrow; the interval here
is the corrected resampled t of Nadeau & Bengio (2003), as used for repeated k-fold by Bouckaert & Frank
(2004): the variance of the mean difference is ``(1/(R k) + n_test/n_train) s^2`` instead of ``s^2/(R k)``,
with ``R k - 1`` degrees of freedom.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PairedDifference:
    """Mean of ``a - b`` over paired splits, its corrected 95% interval, and how often ``a`` won."""

    mean: float
    low: float
    high: float
    win_rate: float
    n: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "ci95": [self.low, self.high], "win_rate": self.win_rate, "n": self.n}


def corrected_interval(differences: np.ndarray, test_fraction: float, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the corrected resampled t interval for paired ``differences`` over repeated splits.

    ``test_fraction`` is ``n_test / n`` of one split (``1/k`` for k-fold); the correction term is
    ``n_test / n_train = test_fraction / (1 - test_fraction)``. With a single difference the interval is unbounded.
    """
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, -np.inf, np.inf
    ratio = test_fraction / (1.0 - test_fraction)
    se = np.sqrt((1.0 / len(d) + ratio) * d.var(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(d) - 1) * se)
    return mean, mean - half, mean + half


def paired(a: np.ndarray, b: np.ndarray, test_fraction: float) -> PairedDifference:
    """``a - b`` split by split (the same splits, in the same order)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same splits, got {a.shape} and {b.shape}")
    mean, low, high = corrected_interval(a - b, test_fraction)
    return PairedDifference(mean=mean, low=low, high=high, win_rate=float(np.mean(a > b)), n=len(a))


def reduction_without_loss(scores: dict[float, np.ndarray], full: np.ndarray, test_fraction: float, tolerance: float = 0.01) -> float | None:
    """The smallest keep rate whose lower 95% bound of (method - full) is above ``-tolerance``; ``None`` if none is."""
    passing = [keep for keep, s in scores.items() if paired(s, full, test_fraction).low > -tolerance]
    return min(passing) if passing else None


def recommend(results: dict[str, dict[float, np.ndarray]], full: np.ndarray, test_fraction: float,
              tolerance: float = 0.01) -> dict | None:
    """The method and smallest keep rate that stay within ``tolerance`` of full data with 95% confidence.

    Among methods that pass at that keep rate, the one with the highest mean wins. ``None`` when no method
    passes at any keep rate (keep everything).
    """
    best = None
    for method, by_keep in results.items():
        for keep, scores in by_keep.items():
            diff = paired(scores, full, test_fraction)
            if diff.low <= -tolerance:
                continue
            candidate = (keep, -float(np.mean(scores)), method)
            if best is None or candidate < best[0]:
                best = (candidate, {"method": method, "keep": keep, "mean": float(np.mean(scores)), "vs_full": diff.to_dict()})
    return best[1] if best else None
