"""Energies recomputed independently from their definitions, not from the QUBO coefficients."""
import itertools

import numpy as np

from hf_qselect.qubo.decompose import penalised_bqm, repair, swap_descent
from hf_qselect.selection.formulations import mmd_block, pasin_block

from .conftest import clustered


def mmd_squared(kernel_fn, x_kept, x_target):
    """MMD^2 between two point sets from the kernel function, by explicit sums."""
    kss = np.mean([[kernel_fn(a, b) for b in x_kept] for a in x_kept])
    kst = np.mean([[kernel_fn(a, b) for b in x_target] for a in x_kept])
    ktt = np.mean([[kernel_fn(a, b) for b in x_target] for a in x_target])
    return kss - 2 * kst + ktt


def block_kernel(x):
    x = x.astype(np.float64)
    dists = [1 - float(a @ b) for a, b in itertools.combinations(x, 2)]
    tau = float(np.median(dists))
    return lambda a, b: 1.0 if np.array_equal(a, b) else np.exp(-max(1 - float(np.float64(a) @ np.float64(b)), 0.0) / tau)


def test_mmd_energy_is_k_squared_mmd():
    emb, _ = clustered(20, dim=8)
    index = np.arange(20)
    q = mmd_block(index, emb, k=7)
    rng = np.random.default_rng(3)
    kernel = block_kernel(emb)
    for _ in range(5):
        x = np.zeros(20, dtype=np.int8)
        x[rng.choice(20, 7, replace=False)] = 1
        expected = 49 * mmd_squared(kernel, emb[x == 1], emb)
        assert np.isclose(q.energy(x), expected, rtol=1e-9, atol=1e-9)


def test_mmd_noisy_rows_leave_the_target_and_pay():
    emb, _ = clustered(16, dim=8)
    noisy = np.zeros(16, dtype=bool)
    noisy[[2, 9]] = True
    q = mmd_block(np.arange(16), emb, k=6, noisy=noisy)
    plain = mmd_block(np.arange(16), emb, k=6)
    assert np.all(q.h[noisy] > q.h[~noisy].max())
    kernel = block_kernel(emb)
    x = np.zeros(16, dtype=np.int8)
    x[[0, 1, 3, 4, 5, 6]] = 1
    assert np.isclose(q.energy(x), 36 * mmd_squared(kernel, emb[x == 1], emb[~noisy]))
    assert not np.isclose(q.energy(x), plain.energy(x))


def test_pasin_energy_from_its_definition():
    emb, labels = clustered(12, dim=8)
    share = np.bincount(labels) / len(labels)
    q = pasin_block(np.arange(12), emb, labels, share, k=5)
    x = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0])
    kept = np.flatnonzero(x)
    expected = sum(share[labels[i]] for i in kept)
    for i, j in itertools.combinations(kept, 2):
        cos = float(emb[i] @ emb[j])
        expected += cos if labels[i] == labels[j] else -cos
    assert np.isclose(q.energy(x), expected)


def test_penalised_bqm_matches_objective_plus_penalty():
    emb, _ = clustered(10, dim=8)
    q = mmd_block(np.arange(10), emb, k=4)
    bqm = penalised_bqm([q])
    for x in ([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0, 1], [1] * 10):
        x = np.array(x)
        expected = q.energy(x) + q.penalty * (x.sum() - 4) ** 2
        assert np.isclose(bqm.energy(dict(enumerate(x))), expected)


def test_repair_reaches_exact_k():
    emb, _ = clustered(15, dim=8)
    q = mmd_block(np.arange(15), emb, k=5)
    assert repair(q, np.ones(15)).sum() == 5
    assert repair(q, np.zeros(15)).sum() == 5


def test_swap_descent_keeps_the_count_and_ends_where_no_swap_helps():
    emb, _ = clustered(14, dim=8)
    q = mmd_block(np.arange(14), emb, k=5)
    start = np.array([1, 1, 1, 1, 1] + [0] * 9, dtype=np.int8)
    x, swaps = swap_descent(q, start)
    assert x.sum() == 5 and swaps > 0 and q.energy(x) < q.energy(start)
    kept, dropped = np.flatnonzero(x), np.flatnonzero(x == 0)
    for i in kept:  # brute force: no single exchange lowers the energy any more
        for j in dropped:
            y = x.copy()
            y[i], y[j] = 0, 1
            assert q.energy(y) >= q.energy(x) - 1e-9
    best = min(q.energy(np.isin(np.arange(14), c).astype(np.int8)) for c in itertools.combinations(range(14), 5))
    assert q.energy(x) >= best - 1e-9
