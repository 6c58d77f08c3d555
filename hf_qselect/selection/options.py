"""What a selection method is given besides the data, and what it returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..qubo import AnnealSettings


@dataclass
class MethodOptions:
    """Seed and annealing (``anneal``), the resolved class balance, the likely-mislabelled rule, and the sizes
    past which scoring samples (``score_rows``) and a class is cut into chunks solved alone (``chunk_rows``)."""

    anneal: AnnealSettings = field(default_factory=AnnealSettings)
    class_balance: float = 0.0
    denoise: bool = True
    noise_confidence: float = 0.8
    score_rows: int | None = 50_000
    chunk_rows: int = 50_000
    quality: np.ndarray | None = None  # standardised per-row scores (higher is better), or None
    quality_weight: float = 1.0

    @property
    def seed(self) -> int | None:
        return self.anneal.seed


@dataclass
class MethodResult:
    """A method's keep-mask plus what the report needs from it."""

    mask: np.ndarray
    formulation: str | None = None
    blocks: list[np.ndarray] = field(default_factory=list)
    noisy: int = 0
    energy: float | None = None
    feasible_blocks: int = 0
    repaired_blocks: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    proba: np.ndarray | None = None  # out-of-fold class probabilities, when the method computed them
