"""The block QUBO: a small binary quadratic objective with cardinality constraints on groups of its variables.

``E(x) = h.x + sum_{i<j} J_ij x_i x_j + offset`` over binary ``x``, minimised subject to
``sum_{i in g} x_i == counts[g]`` for every group ``g``. One group holding every variable is an
exact-k constraint (keep k rows, k units); groups of ``counts == 1`` are one-hot choices (one option
per layer); a variable in group ``-1`` is free, and a block with no groups is unconstrained (the bits
of fixed-point weights). ``J`` is dense upper-triangular: blocks are small (about 100 variables), never a whole dataset.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BlockQUBO:
    """One block's QUBO. ``index`` says what each variable stands for in the caller's numbering.

    Give ``k`` for an exact-k constraint over all variables, or ``groups`` (group id per variable, 0..G-1,
    or -1 for a free variable) with ``counts`` (the required number of ones per group), or neither for an
    unconstrained block; ``penalty`` is the strength of every constraint's ``penalty * (sum_g x - count_g)^2``
    term when the block is annealed.
    """

    index: np.ndarray
    h: np.ndarray
    J: np.ndarray
    offset: float
    k: int | None = None
    penalty: float = 0.0
    groups: np.ndarray | None = None
    counts: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.groups is None and self.k is None:  # unconstrained
            self.groups = np.full(len(self.h), -1, dtype=np.int64)
            self.counts = np.zeros(0, dtype=np.int64)
        elif self.groups is None:
            self.groups = np.zeros(len(self.h), dtype=np.int64)
            self.counts = np.array([self.k], dtype=np.int64)
        else:
            self.groups = np.asarray(self.groups, dtype=np.int64)
            self.counts = np.asarray(self.counts, dtype=np.int64)
            if len(self.groups) != len(self.h) or (len(self.groups) and self.groups.max() >= len(self.counts)):
                raise ValueError("groups must give a group id in 0..len(counts)-1 for every variable")
            if self.k is None and len(self.counts) == 1:
                self.k = int(self.counts[0])
        sizes = np.bincount(self.groups[self.groups >= 0], minlength=len(self.counts))
        if np.any(self.counts < 0) or np.any(self.counts > sizes):
            raise ValueError(f"cannot keep {self.counts.tolist()} of groups sized {sizes.tolist()}")

    @property
    def size(self) -> int:
        return len(self.index)

    @property
    def single_group(self) -> bool:
        return len(self.counts) == 1 and bool(np.all(self.groups == 0))

    @property
    def unconstrained(self) -> bool:
        return len(self.counts) == 0

    def energy(self, x: np.ndarray) -> np.ndarray:
        """Objective of one (m,) or many (r, m) binary vectors, without the constraint penalties."""
        x = np.asarray(x, dtype=np.float64)
        return x @ self.h + np.einsum("...i,ij,...j->...", x, self.J, x) + self.offset

    def violation(self, x: np.ndarray) -> np.ndarray:
        """``sum_g (sum_{i in g} x_i - count_g)^2`` of one (m,) or many (r, m) binary vectors."""
        members = (self.groups[:, None] == np.arange(len(self.counts))[None, :]).astype(np.float64)  # (m, G); free rows are 0
        return ((np.asarray(x, dtype=np.float64) @ members - self.counts) ** 2).sum(axis=-1)

    def feasible(self, x: np.ndarray) -> bool:
        """Every group keeps exactly its count."""
        x = np.asarray(x)
        return all(int(x[self.groups == g].sum()) == int(c) for g, c in enumerate(self.counts))

    def marginal_form(self) -> tuple[np.ndarray, np.ndarray]:
        """``(h, W)`` with ``J``'s diagonal folded into ``h`` and ``W = J + J^T`` zero on the diagonal, so
        ``g = h + W x`` is each variable's marginal cost given the others."""
        W = self.J + self.J.T
        np.fill_diagonal(W, 0.0)
        return self.h + np.diag(self.J), W
