"""Solve many independent block QUBOs with a dimod sampler, in parallel through joblib.

Blocks are grouped into chunks; each chunk is one disjoint-union BQM built from NumPy arrays with
each block's constraint penalties. Because blocks share no variables, the best read is chosen per
block. A block whose best read breaks a count is repaired greedily, so the result always meets every
count; then ``swap_descent`` exchanges a set and an unset variable of one group while that lowers the
energy, so every answer is a local minimum among the feasible answers (the annealer's single flips
cannot move between two of those without breaking a count).
A user's joblib backend (Ray, Dask) spreads the chunks over a cluster.
"""
from __future__ import annotations

from dataclasses import dataclass

import dimod
import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from .backends import on_cluster
from .constraints import repair, swap_descent
from .model import BlockQUBO
from .solvers import SolverPlan, sample_kwargs


@dataclass
class BlockSolution:
    """Answer of one block, its objective energy, and whether the annealer's answer needed repair."""

    x: np.ndarray
    energy: float
    repaired: bool


def penalised_bqm(blocks: list[BlockQUBO]) -> dimod.BinaryQuadraticModel:
    """Disjoint union of the blocks' QUBOs plus their constraint penalties, built from NumPy vectors.

    Each group ``g`` of a block adds ``lambda (sum_{i in g} x_i - count_g)^2``: ``lambda (1 - 2 count_g)`` on its
    variables, ``2 lambda`` on each pair inside it and ``lambda count_g^2`` to the offset.
    """
    linear, rows, cols, quad = [], [], [], []
    offset, start = 0.0, 0
    for q in blocks:
        lam = q.penalty
        r, c = np.triu_indices(q.size, 1)
        grouped = q.groups >= 0
        same = 1.0 if q.single_group else ((q.groups[r] == q.groups[c]) & grouped[r]).astype(np.float64)
        need = np.where(grouped, q.counts[np.maximum(q.groups, 0)] if len(q.counts) else 0, 0)
        linear.append(q.h + lam * grouped * (1 - 2 * need))
        rows.append(r + start)
        cols.append(c + start)
        quad.append(q.J[r, c] + 2 * lam * same)
        offset += q.offset + lam * float((q.counts.astype(np.float64) ** 2).sum())
        start += q.size
    return dimod.BQM.from_numpy_vectors(
        np.concatenate(linear), (np.concatenate(rows), np.concatenate(cols), np.concatenate(quad)), offset, dimod.BINARY
    )


def best_read(q: BlockQUBO, reads: np.ndarray, polish: bool = True) -> BlockSolution:
    """The read of lowest penalised energy, repaired if it breaks a count, then polished by swaps."""
    penalised = q.energy(reads) + q.penalty * q.violation(reads)
    best = reads[int(np.argmin(penalised))]
    needs_repair = not q.feasible(best)
    x = repair(q, best) if needs_repair else best.astype(np.int8)
    if polish:
        x, _ = swap_descent(q, x)
    return BlockSolution(x=x, energy=float(q.energy(x)), repaired=needs_repair)


def _solve_chunk(blocks: list[BlockQUBO], sampler: dimod.Sampler, kwargs: dict, polish: bool = True) -> list[BlockSolution]:
    """Sample one chunk and return the best (repaired if needed) solution of each block."""
    bqm = penalised_bqm(blocks)
    sampleset = sampler.sample(bqm, **kwargs)
    order = np.argsort(np.asarray(list(sampleset.variables)))
    samples = np.asarray(sampleset.record.sample)[:, order]
    solutions, start = [], 0
    for q in blocks:
        solutions.append(best_read(q, samples[:, start : start + q.size], polish))
        start += q.size
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


def work_estimate(blocks: list[BlockQUBO], num_reads: int, num_sweeps: int | None) -> float:
    """Couplings x reads x sweeps: what a simulated-annealing pass over the blocks costs, in arbitrary units."""
    return float(sum(q.size * q.size for q in blocks)) * max(num_reads, 1) * (num_sweeps or 1000)


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
    min_parallel_work: float = 0.0,
) -> list[BlockSolution]:
    """Solve every block; each answer meets its counts, polished by :func:`swap_descent` unless
    ``polish=False``. Work below ``min_parallel_work`` (:func:`work_estimate`) runs in this process: starting
    a pool costs more than it saves there; inside ``backend_context("dask" | "ray")`` it goes to the cluster."""
    if plan.max_block is not None:
        too_big = [q.size for q in blocks if q.size > plan.max_block]
        if too_big:
            raise ValueError(f"solver={plan.name!r} takes blocks of at most {plan.max_block} variables, got {max(too_big)}: lower block_size")
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
    if plan.serial or len(jobs) == 1 or (not on_cluster() and work_estimate(blocks, num_reads, num_sweeps) < min_parallel_work):
        n_jobs = 1
    solutions: list[BlockSolution] = []
    with tqdm(total=len(blocks), desc=f"annealing ({plan.name})", unit="block", disable=not show_progress) as bar:
        for chunk_solutions in run_jobs(jobs, n_jobs):
            solutions.extend(chunk_solutions)
            bar.update(len(chunk_solutions))
    return solutions


def run_jobs(jobs: list, n_jobs: int | None):
    """Results in order: streamed where the joblib backend can (loky, Dask), else all at the end (Ray)."""
    if n_jobs == 1:
        return (fn(*args, **kwargs) for fn, args, kwargs in jobs)
    try:
        return Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    except ValueError as err:  # a backend without generator support says so when called
        if "return_as" not in str(err):
            raise
        return Parallel(n_jobs=n_jobs)(jobs)
