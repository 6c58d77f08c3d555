"""The default QUBO at scale: classes larger than ``chunk_rows`` are cut into chunks that workers finish alone.

The main process only halves each large class along principal directions (streamed, see
:func:`~hf_qselect.qubo.split_large`) until every chunk has at most ``chunk_rows`` rows, and splits the class's
quota over its chunks by size. Each chunk is then one job, on this machine's processes or on a Dask or Ray
cluster: read its rows, cut them into blocks, build the block QUBOs, anneal and polish them, and return the rows
kept. No job waits on another and no block matrix exists outside the job that solves it. Every chunk carries
its own seed, so the answer does not depend on the backend or the number of workers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from joblib import delayed
from tqdm.auto import tqdm

from ..qubo import AnnealSettings, Vectors, anneal, bisect, get_solver, split_large
from ..qubo import run_jobs
from .formulations import mmd_block
from .quotas import apportion


@dataclass
class ChunkAnswer:
    """What one chunk's job returns: the kept rows, its blocks (dataset row numbers), and its totals."""

    kept: np.ndarray
    blocks: list[np.ndarray]
    energy: float
    repaired: int
    seconds: dict[str, float]


def solve_chunk(source: np.ndarray | Vectors, rows: np.ndarray, noisy: np.ndarray | None, k: int,
                settings: AnnealSettings, quality: np.ndarray | None = None, quality_weight: float = 0.0) -> ChunkAnswer:
    """Blocks, QUBOs and annealing of one chunk of ``rows`` keeping ``k``; ``source`` is the chunk's vectors, or
    :class:`Vectors` to read them from."""
    start = time.perf_counter()
    x = source.rows(rows) if isinstance(source, Vectors) else source
    local = bisect(x, np.arange(len(rows)), settings.block_size)
    quotas = apportion(k, np.array([len(b) for b in local]))
    seconds = {"blocks": time.perf_counter() - start}
    start = time.perf_counter()
    qubos = [mmd_block(b, x, int(q), noisy, quality, quality_weight) for b, q in zip(local, quotas)]
    del x
    seconds["qubo"] = time.perf_counter() - start
    start = time.perf_counter()
    solutions = anneal(qubos, replace(settings, n_jobs=1, show_progress=False))
    seconds["anneal"] = time.perf_counter() - start
    kept = np.concatenate([q.index[s.x.astype(bool)] for q, s in zip(qubos, solutions)])
    return ChunkAnswer(kept=rows[np.sort(kept)], blocks=[rows[b] for b in local], energy=float(sum(s.energy for s in solutions)),
                       repaired=int(sum(s.repaired for s in solutions)), seconds=seconds)


def class_chunks(vectors: Vectors, codes: np.ndarray, class_keep: np.ndarray, chunk_rows: int,
                 show_progress: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    """Chunks of at most ``chunk_rows`` rows of one class each, and the rows each keeps (class totals exact)."""
    classes = [np.flatnonzero(codes == c) for c in range(len(class_keep))]
    chunks = split_large(vectors, classes, chunk_rows, show_progress=show_progress)
    chunks.sort(key=lambda rows: (codes[rows[0]], rows[0]))
    owner = np.array([codes[rows[0]] for rows in chunks])
    sizes = np.array([len(rows) for rows in chunks])
    quotas = np.zeros(len(chunks), dtype=np.int64)
    for c, k in enumerate(class_keep):
        quotas[owner == c] = apportion(int(k), sizes[owner == c])
    return chunks, quotas


def solve_chunks(vectors: Vectors, chunks: list[np.ndarray], quotas: np.ndarray, noisy: np.ndarray | None,
                 settings: AnnealSettings, quality: np.ndarray | None = None, quality_weight: float = 0.0) -> list[ChunkAnswer]:
    """One job per chunk through joblib (the backend in force), answers in chunk order.

    A chunk of a file travels as the file's path and its row numbers, and the worker reads it; a chunk of an
    in-memory array travels as its rows, gathered only when the job is dispatched."""
    seeds = (np.random.SeedSequence(settings.seed).generate_state(len(chunks)) if settings.seed is not None
             else [None] * len(chunks))

    def jobs():
        for rows, k, seed in zip(chunks, quotas, seeds):
            source = vectors if vectors.on_disk else vectors.rows(rows)
            job_settings = replace(settings, seed=None if seed is None else int(seed))
            yield delayed(solve_chunk)(source, rows, None if noisy is None else noisy[rows], int(k), job_settings,
                                       None if quality is None else quality[rows], quality_weight)

    n_jobs = 1 if len(chunks) == 1 or get_solver(settings.solver).serial else settings.n_jobs  # a cloud solver queues calls itself
    answers = []
    with tqdm(total=int(sum(len(c) for c in chunks)), desc="annealing chunks", unit="row",
              disable=not settings.show_progress) as bar:
        for answer in run_jobs(jobs(), n_jobs):
            answers.append(answer)
            bar.update(sum(len(b) for b in answer.blocks))
    return answers
