"""The QUBO and random selection methods: each turns embeddings and label codes into a keep-mask of exactly ``n_keep`` rows."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..qubo import BlockQUBO, anneal, as_vectors
from .chunked import class_chunks, solve_chunks
from .formulations import mmd_block, pasin_block
from .options import MethodOptions, MethodResult
from .quotas import apportion, block_quotas, class_blocks, class_quotas, random_blocks
from .scoring import likely_mislabelled, out_of_fold_proba

PASIN_BATCH_SIZE = 80


def select_random(embeddings: np.ndarray | None, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """Random rows within class quotas: stratified (``class_balance=0``) unless told otherwise."""
    start = time.perf_counter()
    rng = np.random.default_rng(options.seed)
    mask = np.zeros(len(codes), dtype=bool)
    for c, k in enumerate(class_quotas(codes, n_keep, options.class_balance)):
        members = np.flatnonzero(codes == c)
        mask[rng.choice(members, size=int(k), replace=False)] = True
    return MethodResult(mask=mask, timings={"select": time.perf_counter() - start})


def _solve_qubos(qubos: list[BlockQUBO], n_rows: int, options: MethodOptions, formulation: str, timings: dict) -> MethodResult:
    """Anneal the block QUBOs and merge their answers into one mask."""
    start = time.perf_counter()
    solutions = anneal(qubos, options.anneal)
    timings["solve"] = time.perf_counter() - start
    mask = np.zeros(n_rows, dtype=bool)
    for q, s in zip(qubos, solutions):
        mask[q.index[s.x.astype(bool)]] = True
    return MethodResult(
        mask=mask,
        formulation=formulation,
        blocks=[q.index for q in qubos],
        energy=float(sum(s.energy for s in solutions)),
        feasible_blocks=sum(not s.repaired for s in solutions),
        repaired_blocks=sum(s.repaired for s in solutions),
        timings=timings,
    )


def select_mmd(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """The default QUBO: class quotas, likely-mislabelled rows flagged, kernel herding per compact block.

    A class larger than ``options.chunk_rows`` is first cut into chunks that are solved as independent jobs
    (:mod:`.chunked`); otherwise every block is built here and the blocks are annealed in parallel."""
    timings = {}
    start = time.perf_counter()
    noisy, proba = None, None
    if options.denoise:
        proba = out_of_fold_proba(embeddings, codes, seed=0 if options.seed is None else options.seed,
                                  max_rows=options.score_rows, show_progress=options.anneal.show_progress)
        noisy = likely_mislabelled(proba, codes, options.noise_confidence)
    timings["score"] = time.perf_counter() - start
    class_keep = class_quotas(codes, n_keep, options.class_balance)
    if np.bincount(codes).max() > options.chunk_rows:
        result = _select_chunked(embeddings, codes, class_keep, noisy, options, timings)
    else:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        start = time.perf_counter()
        blocks = class_blocks(embeddings, codes, options.anneal.block_size)
        quotas = block_quotas(blocks, codes, class_keep)
        timings["partition"] = time.perf_counter() - start
        start = time.perf_counter()
        qubos = [mmd_block(b, embeddings, int(k), noisy, options.quality, options.quality_weight) for b, k in zip(blocks, quotas)]
        timings["qubo"] = time.perf_counter() - start
        result = _solve_qubos(qubos, len(codes), options, "mmd", timings)
    result.noisy = int(noisy.sum()) if noisy is not None else 0
    result.proba = proba
    return result


def _select_chunked(embeddings: np.ndarray, codes: np.ndarray, class_keep: np.ndarray, noisy: np.ndarray | None,
                    options: MethodOptions, timings: dict) -> MethodResult:
    """Chunks of at most ``chunk_rows`` rows, each partitioned, built and annealed by its own job."""
    vectors = as_vectors(embeddings)
    start = time.perf_counter()
    chunks, quotas = class_chunks(vectors, codes, class_keep, options.chunk_rows, options.anneal.show_progress)
    timings["partition"] = time.perf_counter() - start
    start = time.perf_counter()
    answers = solve_chunks(vectors, chunks, quotas, noisy, options.anneal, options.quality, options.quality_weight)
    timings["solve"] = time.perf_counter() - start
    for phase in ("blocks", "qubo", "anneal"):  # summed over the jobs: CPU seconds, not wall time
        timings[f"jobs_{phase}"] = float(sum(a.seconds[phase] for a in answers))
    mask = np.zeros(len(codes), dtype=bool)
    for answer in answers:
        mask[answer.kept] = True
    blocks = [b for a in answers for b in a.blocks]
    repaired = int(sum(a.repaired for a in answers))
    return MethodResult(mask=mask, formulation="mmd", blocks=blocks, energy=float(sum(a.energy for a in answers)),
                        feasible_blocks=len(blocks) - repaired, repaired_blocks=repaired, timings=timings)


def select_pasin2024(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """Pasin et al. 2024: random batches of about 80 rows, +/-cos couplings, class-share diagonal.

    One deviation, documented: the batch quotas are apportioned so the total is exactly
    ``n_keep`` (the published code keeps ``int(batch * keep)`` per batch, which rounds down).
    The annealer's answers are used as they come (no swap polish), as in the paper.
    """
    timings = {}
    start = time.perf_counter()
    rng = np.random.default_rng(options.seed)
    blocks = random_blocks(len(codes), PASIN_BATCH_SIZE, rng)
    quotas = apportion(n_keep, np.array([len(b) for b in blocks]))
    timings["partition"] = time.perf_counter() - start
    start = time.perf_counter()
    share = np.bincount(codes) / len(codes)
    qubos = [pasin_block(b, embeddings, codes, share, int(k)) for b, k in zip(blocks, quotas)]
    timings["qubo"] = time.perf_counter() - start
    published = replace(options, anneal=replace(options.anneal, polish=False))
    return _solve_qubos(qubos, len(codes), published, "pasin2024", timings)
