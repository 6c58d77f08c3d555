"""Which units to keep, as block QUBOs solved by the same annealer layer as instance selection.

For units with importance ``s`` (scaled to mean 1 within the set) and redundancy ``R = V V^T``:

    E(x) = - sum_i s_i x_i + (2 beta / (k - 1)) sum_{i<j} max(R_ij, 0) x_i x_j,   sum x = k

The first term keeps important units; the second charges for keeping two units that carry the same
signal (``beta = 0`` is plain importance ranking). Many units (1536 FFN neurons a layer) are split into
blocks of correlated units by principal-direction bisection of their signal vectors, so the QUBOs stay
small and the redundant pairs stay inside one block. A block's quota is the number of its units that
importance ranking would keep over the whole set (``ranked_quotas``), not its share of the units: a block
of unimportant neurons is not forced to keep two thirds of them, and ``beta = 0`` gives exactly the
ranking's choice, so the QUBO only re-decides inside each block which units carry distinct signal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..qubo import AnnealSettings, BlockQUBO, anneal, bisect, boundary_penalty, ranked_quotas


@dataclass
class UnitChoice:
    """Kept unit indices, the QUBO energy of the answer and how many blocks needed repair."""

    kept: np.ndarray
    energy: float
    repaired: int
    blocks: int


def unit_qubo(index: np.ndarray, importance: np.ndarray, vectors: np.ndarray, k: int, beta: float, scale: float) -> BlockQUBO:
    """The QUBO of one block of units (``index`` into ``importance``/``vectors``)."""
    h = -importance[index] / scale
    redundancy = np.maximum(vectors[index].astype(np.float64) @ vectors[index].T.astype(np.float64), 0.0)
    J = np.triu((2.0 * beta / max(k - 1, 1)) * redundancy, 1)
    return BlockQUBO(index=index, h=h, J=J, offset=0.0, k=k, penalty=boundary_penalty(h, J, k))


def select_units(importance: np.ndarray, vectors: np.ndarray, k: int, settings: AnnealSettings, beta: float = 0.5,
                 method: str = "qubo") -> UnitChoice:
    """Keep ``k`` of ``len(importance)`` units: the ``k`` most important (``method="greedy"``) or annealed QUBOs."""
    n = len(importance)
    if not 0 < k <= n:
        raise ValueError(f"cannot keep {k} of {n} units")
    if k == n:
        return UnitChoice(kept=np.arange(n), energy=0.0, repaired=0, blocks=0)
    if method == "greedy":
        return UnitChoice(kept=np.sort(np.argsort(-importance, kind="stable")[:k]), energy=0.0, repaired=0, blocks=0)
    scale = float(np.mean(importance)) or 1.0
    parts = bisect(vectors.astype(np.float32), np.arange(n), settings.block_size) if n > settings.block_size else [np.arange(n)]
    quotas = ranked_quotas(importance, parts, k)
    qubos = [unit_qubo(p, importance, vectors, int(q), beta, scale) for p, q in zip(parts, quotas) if q > 0]
    solutions = anneal(qubos, settings)
    kept = np.sort(np.concatenate([q.index[s.x.astype(bool)] for q, s in zip(qubos, solutions)]))
    return UnitChoice(kept=kept, energy=float(sum(s.energy for s in solutions)), repaired=sum(s.repaired for s in solutions), blocks=len(qubos))


def select_in_groups(importance: np.ndarray, vectors: np.ndarray, groups: np.ndarray, k: int, settings: AnnealSettings,
                     beta: float = 0.5, method: str = "qubo") -> UnitChoice:
    """Keep ``k`` units of every group (``groups[i]``: unit ``i``'s group) in one QUBO with one exact-k constraint per
    group (the query heads of each key/value group), or the ``k`` most important of each (``greedy``)."""
    n_groups = int(groups.max()) + 1
    if method == "greedy":
        kept = [np.flatnonzero(groups == g)[np.argsort(-importance[groups == g], kind="stable")[:k]] for g in range(n_groups)]
        return UnitChoice(kept=np.sort(np.concatenate(kept)), energy=0.0, repaired=0, blocks=0)
    n = len(importance)
    scale = float(np.mean(importance)) or 1.0
    h = -importance / scale
    redundancy = np.maximum(vectors.astype(np.float64) @ vectors.T.astype(np.float64), 0.0)
    J = np.triu((2.0 * beta / max(n_groups * k - 1, 1)) * redundancy, 1)
    counts = np.full(n_groups, k)
    qubo = BlockQUBO(index=np.arange(n), h=h, J=J, offset=0.0, groups=groups, counts=counts,
                     penalty=boundary_penalty(h, J, groups=groups, counts=counts))
    solution = anneal([qubo], settings)[0]
    return UnitChoice(kept=np.flatnonzero(solution.x), energy=float(solution.energy), repaired=int(solution.repaired), blocks=1)


def per_layer_widths(importance: list[np.ndarray], keep: int, multiple: int) -> list[int]:
    """FFN widths for layers whose neurons have first-order ``importance`` (``E|dL/dm|``, a loss change, so comparable
    across layers), with ``keep`` neurons a layer on average.

    Each layer's neurons, most important first, form blocks of ``multiple`` (1 when ``keep`` is not a multiple of it);
    a block's value is its neurons' summed importance. Every layer keeps its first block, then the most valuable
    blocks across all layers are kept while they fit in ``keep x layers``. Within a layer the values fall block by
    block, so each width is a prefix of that layer's ranking and a multiple of ``multiple`` (or the full width)."""
    step = multiple if multiple > 1 and keep % multiple == 0 else 1
    total = keep * len(importance)
    widths = [0] * len(importance)
    candidates = []
    for l, values in enumerate(importance):
        ordered = np.sort(np.asarray(values, dtype=np.float64))[::-1]
        for b, start in enumerate(range(0, len(ordered), step)):
            size = min(step, len(ordered) - start)
            if b == 0:
                widths[l] = size
            else:
                candidates.append((-float(ordered[start:start + size].sum()), l, b, size))
    room = total - sum(widths)
    if room < 0:
        raise ValueError(f"keeping {keep} FFN neurons a layer leaves less than one block of {step} for each of {len(importance)} layers")
    for _, l, _, size in sorted(candidates):
        if size <= room:
            widths[l] += size
            room -= size
    return widths
