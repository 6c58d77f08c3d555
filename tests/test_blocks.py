import numpy as np
import pytest

from hf_qselect.qubo import bisect
from hf_qselect.selection.quotas import apportion, block_quotas, class_blocks, class_quotas, keep_count, random_blocks


def test_apportion_sums_and_is_proportional():
    counts = apportion(10, np.array([50, 30, 20]))
    assert counts.tolist() == [5, 3, 2]
    assert apportion(7, np.array([3, 3, 3])).sum() == 7


def test_keep_count_rounds_half_up_and_keeps_one():
    assert keep_count(0.5, 5) == 3
    assert keep_count(0.01, 10) == 1
    assert keep_count(1.0, 7) == 7


def test_class_quotas_balance_modes():
    codes = np.array([0] * 90 + [1] * 10)
    assert class_quotas(codes, 50, 0.0).tolist() == [45, 5]
    # full balance: the small class gives all it has, the rest goes to the large class
    assert class_quotas(codes, 50, 1.0).tolist() == [40, 10]
    sqrt = class_quotas(codes, 40, 0.5)
    assert sqrt.sum() == 40 and sqrt[1] == 10  # sqrt allocation 30:10 caps at 10
    with pytest.raises(ValueError, match="class_balance"):
        class_quotas(codes, 10, 1.5)


def test_bisect_covers_every_row_once_within_size():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 8)).astype(np.float32)
    parts = bisect(x, np.arange(1000), 64)
    joined = np.sort(np.concatenate(parts))
    assert np.array_equal(joined, np.arange(1000))
    assert max(len(p) for p in parts) <= 64


def test_class_blocks_are_single_class_and_quotas_exact():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    codes = rng.integers(0, 3, 500)
    blocks = class_blocks(x, codes, 50)
    assert all(len(np.unique(codes[b])) == 1 for b in blocks)
    per_class = class_quotas(codes, 200)
    quotas = block_quotas(blocks, codes, per_class)
    for c in range(3):
        assert sum(q for b, q in zip(blocks, quotas) if codes[b[0]] == c) == per_class[c]
    assert all(0 <= q <= len(b) for b, q in zip(blocks, quotas))


def test_random_blocks_partition():
    parts = random_blocks(170, 80, np.random.default_rng(0))
    assert len(parts) == 3 and sum(map(len, parts)) == 170
