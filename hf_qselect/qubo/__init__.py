"""The annealing core: block QUBOs, exact-k and one-hot constraints, solvers, decomposition, polish.

It knows nothing of datasets, labels or models; every application (selection, pruning, ...) builds
``BlockQUBO``s and calls ``anneal``.
"""
from .backends import BACKENDS, backend_context, check_backend, on_cluster
from .anneal import MIN_PARALLEL_WORK, AnnealSettings, anneal
from .constraints import boundary_penalty, exact_k, flip_descent, max_delta_penalty, one_hot, repair, swap_descent
from .decompose import BlockSolution, penalised_bqm, run_jobs
from .model import BlockQUBO
from .partition import bisect, principal_direction, random_parts, ranked_quotas, split_large
from .vectors import READ_ROWS, Vectors, as_vectors
from .solvers import CLOUD_SOLVERS, LOCAL_SOLVERS, SOLVERS, SolverPlan, check_solver, get_solver, leap_token

__all__ = [
    "AnnealSettings", "BACKENDS", "READ_ROWS", "on_cluster", "run_jobs", "BlockQUBO", "BlockSolution", "CLOUD_SOLVERS", "LOCAL_SOLVERS", "MIN_PARALLEL_WORK", "SOLVERS", "SolverPlan",
    "anneal", "backend_context", "bisect", "check_backend", "boundary_penalty", "check_solver", "exact_k", "flip_descent", "get_solver", "leap_token", "max_delta_penalty", "one_hot",
    "penalised_bqm", "principal_direction", "random_parts", "ranked_quotas", "repair", "split_large", "swap_descent", "Vectors", "as_vectors",
]
