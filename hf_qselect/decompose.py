"""Solve many independent block QUBOs with a dimod sampler, in parallel through joblib.

Blocks are grouped into chunks; each chunk is one disjoint-union BQM built from NumPy
arrays with each block's exact-k penalty ``lambda_b (sum x - k_b)^2``. Because blocks
share no variables, the best read is chosen per block. A block whose best read keeps
the wrong count is repaired greedily so the result always keeps exactly ``k_b``; then
``swap_descent`` exchanges a kept and a dropped row while that lowers the energy, so every
answer is a local minimum among the exact-k subsets (the annealer's single flips cannot
move between two of those without breaking the count).
A user's joblib backend (Ray, Dask) spreads the chunks over a cluster.
"""
from __future__ import annotations

from dataclasses import dataclass

import dimod
import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from .formulations import BlockQUBO
from .solvers import CLOUD_SOLVERS, EXACT_MAX_VARIABLES, SolverPlan, sample_kwargs


@dataclass
class BlockSolution:
    """Kept mask of one block, its objective energy, and whether the annealer's answer needed repair."""

    x: np.ndarray
    energy: float
    repaired: bool


def penalised_bqm(blocks: list[BlockQUBO]) -> dimod.BinaryQuadraticModel:
    """Disjoint union of the blocks' QUBOs plus their cardinality penalties, built from NumPy vectors."""
    linear, rows, cols, quad = [], [], [], []
    offset, start = 0.0, 0
    for q in blocks:
        lam = q.penalty
        m = q.size
        r, c = np.triu_indices(m, 1)
        linear.append(q.h + lam * (1 - 2 * q.k))
        rows.append(r + start)
        cols.append(c + start)
        quad.append(q.J[r, c] + 2 * lam)
        offset += q.offset + lam * q.k**2
        start += m
    return dimod.BQM.from_numpy_vectors(
        np.concatenate(linear), (np.concatenate(rows), np.concatenate(cols), np.concatenate(quad)), offset, dimod.BINARY
    )


def marginal_form(q: BlockQUBO) -> tuple[np.ndarray, np.ndarray]:
    """``(h, W)`` with ``J``'s diagonal folded into ``h`` and ``W = J + J^T`` zero on the diagonal, so
    ``g = h + W x`` is each row's marginal cost given the other kept rows."""
    W = q.J + q.J.T
    np.fill_diagonal(W, 0.0)
    return q.h + np.diag(q.J), W


def repair(q: BlockQUBO, x: np.ndarray) -> np.ndarray:
    """Greedy repair to exactly ``q.k`` kept: drop the costliest kept row, or add the cheapest dropped one."""
    x = x.astype(np.float64).copy()
    h, W = marginal_form(q)
    while x.sum() > q.k:
        gain = h + W @ x
        gain[x == 0] = -np.inf
        x[np.argmax(gain)] = 0
    while x.sum() < q.k:
        gain = h + W @ x
        gain[x == 1] = np.inf
        x[np.argmin(gain)] = 1
    return x.astype(np.int8)


def swap_descent(q: BlockQUBO, x: np.ndarray, max_swaps: int | None = None) -> tuple[np.ndarray, int]:
    """Best-improvement swaps (one kept row out, one dropped row in) until none lowers ``q.energy``.

    Keeps the count. With ``g = h + W x`` the marginal cost of each row given the others, swapping
    kept ``i`` for dropped ``j`` changes the energy by ``g_j - g_i - W_ij``. Returns the answer and the
    number of swaps made."""
    x = x.astype(np.float64).copy()
    h, W = marginal_form(q)
    g = h + W @ x
    energy = float(q.energy(x))
    limit = q.size * q.size if max_swaps is None else max_swaps
    swaps = 0
    while swaps < limit:
        kept, dropped = np.flatnonzero(x == 1), np.flatnonzero(x == 0)
        if not len(kept) or not len(dropped):
            break
        delta = g[dropped][None, :] - g[kept][:, None] - W[np.ix_(kept, dropped)]
        a, b = np.unravel_index(int(np.argmin(delta)), delta.shape)
        if delta[a, b] >= -1e-9 * (1.0 + abs(energy)):
            break
        out, into = kept[a], dropped[b]
        x[out], x[into] = 0.0, 1.0
        g += W[into] - W[out]  # W is symmetric: row = column
        energy += float(delta[a, b])
        swaps += 1
    return x.astype(np.int8), swaps


def _solve_chunk(blocks: list[BlockQUBO], sampler: dimod.Sampler, kwargs: dict, polish: bool = True) -> list[BlockSolution]:
    """Sample one chunk and return the best (repaired if needed) solution of each block."""
    bqm = penalised_bqm(blocks)
    sampleset = sampler.sample(bqm, **kwargs)
    order = np.argsort(np.asarray(list(sampleset.variables)))
    samples = np.asarray(sampleset.record.sample)[:, order]
    solutions, start = [], 0
    for q in blocks:
        reads = samples[:, start : start + q.size]
        start += q.size
        lam = q.penalty
        penalised = q.energy(reads) + lam * (reads.sum(axis=1) - q.k) ** 2
        best = reads[int(np.argmin(penalised))]
        needs_repair = int(best.sum()) != q.k
        x = repair(q, best) if needs_repair else best.astype(np.int8)
        if polish:
            x, _ = swap_descent(q, x)
        solutions.append(BlockSolution(x=x, energy=float(q.energy(x)), repaired=needs_repair))
    return solutions


def chunk_blocks(blocks: list[BlockQUBO], max_variables: int | None, min_chunks: int = 16) -> list[list[BlockQUBO]]:
    """Group consecutive blocks into chunks of at most ``max_variables`` (one block each if ``None``)."""
    if max_variables is None:
        return [[q] for q in blocks]
    total = sum(q.size for q in blocks)
    target = min(max_variables, max(1, int(np.ceil(total / min(min_chunks, len(blocks))))))
    chunks, current, size = [], [], 0
    for q in blocks:
        if current and size + q.size > target:
            chunks.append(current)
            current, size = [], 0
        current.append(q)
        size += q.size
    if current:
        chunks.append(current)
    return chunks


def solve_blocks(
    blocks: list[BlockQUBO],
    plan: SolverPlan,
    *,
    num_reads: int = 4,
    num_sweeps: int | None = 1000,
    seed: int | None = None,
    n_jobs: int | None = -1,
    sampler_params: dict | None = None,
    show_progress: bool = True,
    polish: bool = True,
) -> list[BlockSolution]:
    """Solve every block; the answer keeps exactly ``q.k`` rows in each block ``q``, polished by
    :func:`swap_descent` unless ``polish=False``."""
    if plan.name == "exact":
        too_big = [q.size for q in blocks if q.size > EXACT_MAX_VARIABLES]
        if too_big:
            raise ValueError(f"solver='exact' enumerates 2^m states; blocks of {max(too_big)} rows exceed {EXACT_MAX_VARIABLES}: lower block_size")
    chunks = chunk_blocks(blocks, plan.max_variables)
    seeds = np.random.SeedSequence(seed).generate_state(len(chunks)) if seed is not None else [None] * len(chunks)
    base = sample_kwargs(plan.sampler, num_reads=num_reads, num_sweeps=num_sweeps, seed=None)
    base.update(sampler_params or {})
    jobs = []
    for chunk, chunk_seed in zip(chunks, seeds):
        kwargs = dict(base)
        if chunk_seed is not None and "seed" in (plan.sampler.parameters or {}):
            kwargs["seed"] = int(chunk_seed) % (2**31 - 1)
        jobs.append(delayed(_solve_chunk)(chunk, plan.sampler, kwargs, polish))
    if plan.name in CLOUD_SOLVERS or len(jobs) == 1:
        n_jobs = 1
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    solutions: list[BlockSolution] = []
    with tqdm(total=len(blocks), desc=f"annealing ({plan.name})", unit="block", disable=not show_progress) as bar:
        for chunk_solutions in results:
            solutions.extend(chunk_solutions)
            bar.update(len(chunk_solutions))
    return solutions
