"""The annealing core on its own: exact-k and one-hot groups, penalties, repair, polish, solvers, the pool threshold."""
import itertools

import dimod
import numpy as np
import pytest

from hf_qselect.qubo import (AnnealSettings, BlockQUBO, anneal, boundary_penalty, exact_k, get_solver, one_hot, penalised_bqm,
                             repair, swap_descent)
from hf_qselect.qubo import decompose


def random_block(sizes, seed=0, counts=None):
    """A QUBO over one-hot groups of ``sizes`` (or groups with ``counts``), with random h and J."""
    rng = np.random.default_rng(seed)
    groups, ones = one_hot(sizes)
    counts = ones if counts is None else np.asarray(counts)
    m = len(groups)
    h = rng.normal(size=m)
    J = np.triu(rng.normal(size=(m, m)), 1)
    penalty = boundary_penalty(h, J, groups=groups, counts=counts)
    return BlockQUBO(index=np.arange(m), h=h, J=J, offset=0.5, penalty=penalty, groups=groups, counts=counts)


def brute_force(q: BlockQUBO) -> tuple[np.ndarray, float]:
    best, best_e = None, np.inf
    for bits in itertools.product([0, 1], repeat=q.size):
        x = np.array(bits)
        if q.feasible(x) and q.energy(x) < best_e:
            best, best_e = x, float(q.energy(x))
    return best, best_e


def test_penalised_bqm_energy_is_objective_plus_penalty_for_every_state():
    q = random_block([3, 2, 4], seed=1)
    bqm = penalised_bqm([q])
    rng = np.random.default_rng(2)
    for x in rng.integers(0, 2, (50, q.size)):
        independent = x @ q.h + sum(q.J[i, j] * x[i] * x[j] for i in range(q.size) for j in range(i + 1, q.size)) + q.offset
        sums = [x[q.groups == g].sum() for g in range(3)]
        independent += q.penalty * sum((s - 1) ** 2 for s in sums)
        assert bqm.energy(dict(enumerate(x))) == pytest.approx(independent)


def test_exact_k_is_one_group():
    groups, counts = exact_k(5, 2)
    q = BlockQUBO(index=np.arange(5), h=np.arange(5.0), J=np.zeros((5, 5)), offset=0.0, k=2)
    assert np.array_equal(q.groups, groups) and np.array_equal(q.counts, counts) and q.single_group


def test_repair_and_polish_keep_every_group_exact():
    q = random_block([4, 3, 5, 2], seed=3, counts=[2, 1, 3, 1])
    rng = np.random.default_rng(4)
    for _ in range(20):
        x = repair(q, rng.integers(0, 2, q.size))
        assert q.feasible(x)
        polished, _ = swap_descent(q, x)
        assert q.feasible(polished) and q.energy(polished) <= q.energy(x) + 1e-12


def test_polish_only_swaps_inside_a_group():
    q = random_block([3, 3], seed=5)
    x = repair(q, np.zeros(q.size, dtype=int))
    polished, _ = swap_descent(q, x)
    for g in range(2):  # a local minimum: no swap inside a group lowers the energy
        on = np.flatnonzero(polished * (q.groups == g))[0]
        for off in np.flatnonzero((1 - polished) * (q.groups == g)):
            y = polished.copy()
            y[on], y[off] = 0, 1
            assert q.energy(y) >= q.energy(polished) - 1e-9


@pytest.mark.parametrize("solver", ["exact", "sa"])
def test_one_hot_block_reaches_the_brute_force_optimum(solver):
    q = random_block([3, 4, 3], seed=6)
    _, optimum = brute_force(q)
    solution = anneal([q], AnnealSettings(solver=solver, seed=0, num_reads=50, n_jobs=1, show_progress=False))[0]
    assert q.feasible(solution.x) and solution.energy == pytest.approx(optimum)
    assert solution.energy == pytest.approx(float(q.energy(solution.x)))


def test_solver_capabilities_are_declared_on_the_plan():
    assert get_solver("exact").max_block == 20 and not get_solver("sa").serial
    big = BlockQUBO(index=np.arange(25), h=np.zeros(25), J=np.zeros((25, 25)), offset=0.0, k=3)
    with pytest.raises(ValueError, match="at most 20 variables"):
        anneal([big], AnnealSettings(solver="exact", show_progress=False))
    plan = get_solver(dimod.SimulatedAnnealingSampler())
    assert plan.name == "SimulatedAnnealingSampler" and get_solver(plan) is plan


def test_small_work_runs_in_process_and_large_work_uses_the_pool(monkeypatch):
    """n_jobs=-1 starts a pool only when the work estimate passes the measured threshold."""
    calls = []
    real = decompose.Parallel

    def recording(*args, **kwargs):
        calls.append(kwargs.get("n_jobs"))
        return real(*args, **kwargs)

    monkeypatch.setattr(decompose, "Parallel", recording)
    qubos = [random_block([4, 4], seed=s) for s in range(40)]
    small = anneal(qubos, AnnealSettings(seed=0, n_jobs=-1, show_progress=False))
    assert calls == []
    forced = anneal(qubos, AnnealSettings(seed=0, n_jobs=2, show_progress=False, min_parallel_work=0))
    assert calls == [2]
    assert all(np.array_equal(a.x, b.x) for a, b in zip(small, forced))  # the same answers either way


def test_a_joblib_backend_without_streaming_still_solves(monkeypatch):
    """Ray's joblib backend cannot return a generator; a backend like it gets the results as a list instead."""
    from joblib import parallel_config, register_parallel_backend
    from joblib._parallel_backends import ThreadingBackend

    class NoStreaming(ThreadingBackend):
        supports_return_generator = False

    register_parallel_backend("no-streaming", NoStreaming)
    qubos = [random_block([4, 4], seed=s) for s in range(20)]
    serial = anneal(qubos, AnnealSettings(seed=0, n_jobs=1, show_progress=False))
    with parallel_config(backend="no-streaming"):
        pooled = anneal(qubos, AnnealSettings(seed=0, n_jobs=2, show_progress=False, min_parallel_work=0))
    assert all(np.array_equal(a.x, b.x) for a, b in zip(serial, pooled))
