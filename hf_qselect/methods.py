"""Selection methods: each turns embeddings and label codes into a boolean keep-mask of exactly ``n_keep`` rows."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .blocks import apportion, block_quotas, class_blocks, class_quotas, random_blocks
from .decompose import solve_blocks
from .formulations import BlockQUBO, mmd_block, pasin_block
from .scoring import likely_mislabelled, out_of_fold_proba
from .solvers import SolverPlan

PASIN_BATCH_SIZE = 80
DEFAULT_CLASS_BALANCE = 0.5  # the default QUBO's square-root class quotas


@dataclass
class SolveSettings:
    """How QUBO methods decompose and anneal."""

    plan: SolverPlan | None = None
    seed: int | None = None
    block_size: int = 100
    num_reads: int = 4
    num_sweeps: int | None = 1000
    n_jobs: int | None = -1
    sampler_params: dict | None = None
    show_progress: bool = True
    class_balance: float | None = None
    denoise: bool = True
    noise_confidence: float = 0.8
    polish: bool = True


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


def effective_class_balance(method: str, class_balance: float | None) -> float:
    """The class balance a method uses: the given one, else 0.5 for the default QUBO and 0 otherwise."""
    if class_balance is not None:
        return float(class_balance)
    return DEFAULT_CLASS_BALANCE if method == "qubo" else 0.0


def select_random(embeddings: np.ndarray | None, codes: np.ndarray, n_keep: int, settings: SolveSettings) -> MethodResult:
    """Random rows within class quotas: stratified (``class_balance=0``) unless told otherwise."""
    start = time.perf_counter()
    rng = np.random.default_rng(settings.seed)
    mask = np.zeros(len(codes), dtype=bool)
    balance = effective_class_balance("random", settings.class_balance)
    for c, k in enumerate(class_quotas(codes, n_keep, balance)):
        members = np.flatnonzero(codes == c)
        mask[rng.choice(members, size=int(k), replace=False)] = True
    return MethodResult(mask=mask, timings={"select": time.perf_counter() - start})


def anneal(qubos: list[BlockQUBO], settings: SolveSettings):
    """Solve block QUBOs with the settings' solver plan, reads, sweeps, seed and joblib workers."""
    return solve_blocks(qubos, settings.plan, num_reads=settings.num_reads, num_sweeps=settings.num_sweeps, seed=settings.seed,
                        n_jobs=settings.n_jobs, sampler_params=settings.sampler_params, show_progress=settings.show_progress,
                        polish=settings.polish)


def _solve_qubos(qubos: list[BlockQUBO], n_rows: int, settings: SolveSettings, formulation: str, timings: dict) -> MethodResult:
    """Anneal the block QUBOs and merge their answers into one mask."""
    start = time.perf_counter()
    solutions = anneal(qubos, settings)
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


def select_mmd(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, settings: SolveSettings) -> MethodResult:
    """The default QUBO: class quotas, likely-mislabelled rows flagged, kernel herding per compact block."""
    timings = {}
    start = time.perf_counter()
    noisy = None
    if settings.denoise:
        proba = out_of_fold_proba(embeddings, codes, seed=0 if settings.seed is None else settings.seed)
        noisy = likely_mislabelled(proba, codes, settings.noise_confidence)
    timings["score"] = time.perf_counter() - start
    start = time.perf_counter()
    blocks = class_blocks(embeddings, codes, settings.block_size)
    balance = effective_class_balance("qubo", settings.class_balance)
    quotas = block_quotas(blocks, codes, class_quotas(codes, n_keep, balance))
    timings["partition"] = time.perf_counter() - start
    start = time.perf_counter()
    qubos = [mmd_block(b, embeddings, int(k), noisy) for b, k in zip(blocks, quotas)]
    timings["qubo"] = time.perf_counter() - start
    result = _solve_qubos(qubos, len(codes), settings, "mmd", timings)
    result.noisy = int(noisy.sum()) if noisy is not None else 0
    return result


def select_pasin2024(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, settings: SolveSettings) -> MethodResult:
    """Pasin et al. 2024: random batches of about 80 rows, +/-cos couplings, class-share diagonal.

    One deviation, documented: the batch quotas are apportioned so the total is exactly
    ``n_keep`` (the published code keeps ``int(batch * keep)`` per batch, which rounds down).
    The annealer's answers are used as they come (no swap polish), as in the paper.
    """
    timings = {}
    start = time.perf_counter()
    rng = np.random.default_rng(settings.seed)
    blocks = random_blocks(len(codes), PASIN_BATCH_SIZE, rng)
    quotas = apportion(n_keep, np.array([len(b) for b in blocks]))
    timings["partition"] = time.perf_counter() - start
    start = time.perf_counter()
    share = np.bincount(codes) / len(codes)
    qubos = [pasin_block(b, embeddings, codes, share, int(k)) for b, k in zip(blocks, quotas)]
    timings["qubo"] = time.perf_counter() - start
    return _solve_qubos(qubos, len(codes), replace(settings, polish=False), "pasin2024", timings)


MethodFn = Callable[[np.ndarray, np.ndarray, int, SolveSettings], MethodResult]


def registry() -> dict[str, MethodFn]:
    """Every selection method by name (the classical baselines live in :mod:`hf_qselect.baselines`)."""
    from . import baselines

    return {
        "qubo": select_mmd,
        "pasin2024": select_pasin2024,
        "random": select_random,
        "e2sc": baselines.select_e2sc,
        "biois": baselines.select_biois,
        "facility": baselines.select_facility,
        "semdedup": baselines.select_semdedup,
    }


NEEDS_EMBEDDINGS = {"qubo", "pasin2024", "e2sc", "biois", "facility", "semdedup"}
NEEDS_SOLVER = {"qubo", "pasin2024"}
