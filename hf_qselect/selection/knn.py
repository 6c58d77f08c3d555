"""k-nearest-neighbour graphs of unit embeddings, computed block-wise: memory ``block x n``, never ``n x n``."""
from __future__ import annotations

import numpy as np
from scipy import sparse


def knn(embeddings: np.ndarray, k: int, candidates: np.ndarray | None = None, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, similarities)`` of the ``k`` most cosine-similar rows to each row (itself excluded).

    ``candidates`` restricts the neighbours to those rows (e.g. one class); indices are into ``embeddings``.
    """
    pool = np.arange(len(embeddings)) if candidates is None else np.asarray(candidates)
    k = min(k, len(pool) - 1)
    if k < 1:
        raise ValueError("k-nearest neighbours need at least two candidate rows")
    base = embeddings[pool]
    indices = np.empty((len(embeddings), k), dtype=np.int64)
    sims = np.empty((len(embeddings), k), dtype=np.float32)
    for start in range(0, len(embeddings), block):
        query = embeddings[start : start + block]
        s = query @ base.T
        rows = np.arange(len(query))
        own = np.searchsorted(pool, np.arange(start, start + len(query)))  # exclude each row itself
        is_self = (own < len(pool)) & (pool[np.minimum(own, len(pool) - 1)] == np.arange(start, start + len(query)))
        s[rows[is_self], own[is_self]] = -np.inf
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(s, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        indices[start : start + len(query)] = pool[np.take_along_axis(top, order, axis=1)]
        sims[start : start + len(query)] = np.take_along_axis(top_sims, order, axis=1)
    return indices, sims


def similarity_graph(indices: np.ndarray, sims: np.ndarray, n: int) -> sparse.csr_matrix:
    """Symmetric sparse kNN graph with non-negative cosine weights."""
    rows = np.repeat(np.arange(len(indices)), indices.shape[1])
    graph = sparse.csr_matrix((np.maximum(sims.ravel(), 0.0), (rows, indices.ravel())), shape=(n, n))
    return graph.maximum(graph.T).tocsr()
