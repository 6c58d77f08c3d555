"""One entry point for every application: ``anneal(qubos, settings)``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .decompose import BlockSolution, solve_blocks
from .model import BlockQUBO
from .solvers import get_solver

# Below this much work (decompose.work_estimate: couplings x reads x sweeps) the blocks are solved in this
# process. Measured here (2 cores, SA, 100-variable blocks, 4 reads x 1000 sweeps, swap polish): 64 blocks
# took 0.53 s serially and 0.77 s with a fresh 2-worker loky pool, 256 blocks 2.1 s and 1.6 s; the two
# cross near 150 blocks, 150 x 100^2 x 4 x 1000 = 6e9. (docs/architecture.md, "When a pool starts")
MIN_PARALLEL_WORK = 6e9


@dataclass
class AnnealSettings:
    """How block QUBOs are annealed: the solver (a name, a ``dimod.Sampler`` or a resolved plan), reads,
    sweeps, seed, joblib workers, extra sampler keywords, the progress bar and the swap polish.

    ``block_size`` is the largest block an application cuts its problem into (100 fits a QPU clique).
    """

    solver: Any = "sa"
    seed: int | None = None
    block_size: int = 100
    num_reads: int = 4
    num_sweeps: int | None = 1000
    n_jobs: int | None = -1
    sampler_params: dict | None = None
    show_progress: bool = True
    polish: bool = True
    min_parallel_work: float = MIN_PARALLEL_WORK


def anneal(qubos: list[BlockQUBO], settings: AnnealSettings) -> list[BlockSolution]:
    """Solve every block QUBO with the settings' solver; each answer meets its block's counts."""
    return solve_blocks(qubos, get_solver(settings.solver), num_reads=settings.num_reads, num_sweeps=settings.num_sweeps,
                        seed=settings.seed, n_jobs=settings.n_jobs, sampler_params=settings.sampler_params,
                        show_progress=settings.show_progress, polish=settings.polish, min_parallel_work=settings.min_parallel_work)
