"""Classical instance-selection baselines, implemented from their published descriptions (see the README).

All keep exactly ``n_keep`` rows so they compare with the QUBO methods at the same keep rate.
"""
from __future__ import annotations

import heapq
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from .knn import knn, similarity_graph
from .options import MethodOptions, MethodResult
from .quotas import class_quotas

E2SC_NEIGHBOURS = 10
FACILITY_NEIGHBOURS = 20
DEITA_THRESHOLD = 0.9  # DEITA's repr filter: skip a row whose cosine to a kept row is above this


def _timed(mask: np.ndarray, start: float, **extra) -> MethodResult:
    return MethodResult(mask=mask, timings={"select": time.perf_counter() - start}, **extra)


def _per_class(codes: np.ndarray, n_keep: int, options: MethodOptions):
    """``(members, rows to remove)`` per class under the class quotas (stratified by default)."""
    quotas = class_quotas(codes, n_keep, options.class_balance)
    for c, k in enumerate(quotas):
        members = np.flatnonzero(codes == c)
        yield members, len(members) - int(k)


def select_e2sc(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """E2SC (SIGIR 2023): a kNN classifier's confidence; correctly classified rows are removed with probability
    proportional to it, misclassified rows are never removed (unless a class's quota is below its correct rows).
    Removal is applied within stratified class quotas, so no class is emptied at low keep rates."""
    start = time.perf_counter()
    rng = np.random.default_rng(options.seed)
    neighbours, _ = knn(embeddings, E2SC_NEIGHBOURS)
    votes = np.stack([(codes[neighbours] == c).mean(axis=1) for c in range(codes.max() + 1)], axis=1)
    predicted = votes.argmax(axis=1)
    confidence = votes[np.arange(len(codes)), codes]
    mask = np.ones(len(codes), dtype=bool)
    for members, n_remove in _per_class(codes, n_keep, options):
        correct = members[predicted[members] == codes[members]]
        from_correct = min(n_remove, len(correct))
        if from_correct:
            weights = confidence[correct] + 1e-9
            mask[rng.choice(correct, size=from_correct, replace=False, p=weights / weights.sum())] = False
        if n_remove > from_correct:  # the quota is below the correct rows: drop the least-supported misclassified ones
            wrong = members[predicted[members] != codes[members]]
            mask[wrong[np.argsort(confidence[wrong], kind="stable")[: n_remove - from_correct]]] = False
    return _timed(mask, start)


def out_of_fold_logistic(embeddings: np.ndarray, codes: np.ndarray, seed: int | None, folds: int = 5) -> np.ndarray:
    """``(n, C)`` out-of-fold logistic-regression probabilities (biO-IS's scorer)."""
    proba = np.zeros((len(codes), codes.max() + 1))
    splitter = StratifiedKFold(n_splits=max(2, min(folds, np.bincount(codes).min())), shuffle=True, random_state=seed)
    for train, test in splitter.split(embeddings, codes):
        model = LogisticRegression(max_iter=1000).fit(embeddings[train], codes[train])
        proba[np.ix_(test, model.classes_)] = model.predict_proba(embeddings[test])
    return proba


def select_biois(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """biO-IS (TOIS 2025): noise step drops confidently misclassified rows (low-entropy wrong predictions);
    redundancy step drops the most confidently correct rows, until each class's stratified quota remains."""
    start = time.perf_counter()
    proba = out_of_fold_logistic(embeddings, codes, options.seed)
    own = proba[np.arange(len(codes)), codes]
    noisy = (proba.argmax(axis=1) != codes) & (proba.max(axis=1) >= options.noise_confidence)
    mask = np.ones(len(codes), dtype=bool)
    for members, n_remove in _per_class(codes, n_keep, options):
        wrong = members[noisy[members]]
        rest = members[~noisy[members]]
        removal_order = np.concatenate([
            wrong[np.argsort(-proba.max(axis=1)[wrong], kind="stable")],  # noise: the most confidently wrong first
            rest[np.argsort(-own[rest], kind="stable")],  # redundancy: the most confidently right first
        ])
        mask[removal_order[:n_remove]] = False
    return _timed(mask, start, noisy=int(noisy.sum()))


def lazy_greedy_facility(graph, k: int) -> tuple[list[int], list[float]]:
    """Lazy greedy maximisation of ``sum_i max_{j in S} w_ij`` on a sparse graph; returns picks and their gains."""
    n = graph.shape[0]
    best = np.zeros(n)
    heap = [(-float(graph[j].sum()), j) for j in range(n)]
    heapq.heapify(heap)
    picks, gains = [], []
    while heap and len(picks) < k:
        negative, j = heapq.heappop(heap)
        row = graph.getrow(j)
        gain = float(np.maximum(row.data - best[row.indices], 0.0).sum())
        if not heap or gain >= -heap[0][0] - 1e-12:
            picks.append(j)
            gains.append(gain)
            best[row.indices] = np.maximum(best[row.indices], row.data)
            best[j] = max(best[j], 1.0)
        else:
            heapq.heappush(heap, (-gain, j))
    return picks, gains


def select_facility(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """Facility location per class on the kNN similarity graph, lazy greedy (as apricot/submodlib)."""
    start = time.perf_counter()
    mask = np.zeros(len(codes), dtype=bool)
    for members, n_remove in _per_class(codes, n_keep, options):
        k = len(members) - n_remove
        if k == len(members) or len(members) < 2:
            mask[members[: int(k)]] = True
            continue
        local = embeddings[members]
        neighbours, sims = knn(local, FACILITY_NEIGHBOURS)
        graph = similarity_graph(neighbours, sims, len(members))
        graph.setdiag(1.0)
        picks, _ = lazy_greedy_facility(graph.tocsr(), int(k))
        mask[members[picks]] = True
    return _timed(mask, start)


def semdedup_scores(x: np.ndarray, clusters: int, seed: int | None, chunk: int = 1024) -> np.ndarray:
    """Each row's SemDeDup duplicate score (NeMo Curator's rule): k-means on the rows; inside each cluster the rows are
    ranked by cosine distance to the centroid, farthest first (NeMo's ``keep_hard``), and a row's score is its highest
    cosine to a row ranked before it (0 for the first). A row scoring above ``1 - eps`` is a duplicate at threshold
    ``eps``. The cluster's similarities are taken ``chunk`` rows at a time, never as a whole matrix."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n = len(x)
    scores = np.zeros(n, dtype=np.float32)
    k = int(min(max(1, clusters), n))
    if n < 2:
        return scores
    kind = KMeans if n <= 10_000 else MiniBatchKMeans
    model = kind(n_clusters=k, random_state=0 if seed is None else seed, n_init=3).fit(x)
    centres = model.cluster_centers_ / np.maximum(np.linalg.norm(model.cluster_centers_, axis=1, keepdims=True), 1e-12)
    for c in range(k):
        members = np.flatnonzero(model.labels_ == c)
        ranked = members[np.argsort(x[members] @ centres[c], kind="stable")]  # lowest cosine to the centre first
        local = x[ranked]
        for begin in range(1, len(ranked), chunk):
            rows = local[begin: begin + chunk]
            sims = rows @ local[: begin + len(rows)].T  # against every row ranked up to the chunk's end
            earlier = np.arange(begin + len(rows))[None, :] < (begin + np.arange(len(rows)))[:, None]
            scores[ranked[begin: begin + len(rows)]] = np.where(earlier, sims, -np.inf).max(axis=1)
    return scores


SEMDEDUP_CLUSTER_ROWS = 100  # about this many rows per k-means cluster


def select_semdedup(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """SemDeDup as NeMo Curator runs it, per group: k-means (about ``SEMDEDUP_CLUSTER_ROWS`` rows a cluster), then
    each row's highest cosine to a row ranked before it in its cluster (``semdedup_scores``). NeMo drops the rows above
    a threshold ``1 - eps``; here the threshold is the one that leaves exactly the group's quota: the rows with the
    highest scores go (ties: the later row)."""
    start = time.perf_counter()
    x = np.asarray(embeddings, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mask = np.zeros(len(codes), dtype=bool)
    for members, n_remove in _per_class(codes, n_keep, options):
        clusters = int(np.ceil(len(members) / SEMDEDUP_CLUSTER_ROWS))
        scores = semdedup_scores(x[members], clusters, options.seed)
        order = np.argsort(scores, kind="stable")  # least duplicated first
        kept = order[: len(members) - n_remove]
        mask[members[kept]] = True
    return _timed(mask, start)


def _quality(options: MethodOptions, method: str) -> np.ndarray:
    if options.quality is None:
        raise ValueError(f"method={method!r} ranks rows by quality: give quality=<a numeric column>")
    return options.quality


def select_quality(embeddings: np.ndarray | None, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """The highest-quality rows within each group's quota (ties: the earlier row)."""
    start = time.perf_counter()
    quality = _quality(options, "quality")
    mask = np.zeros(len(codes), dtype=bool)
    for members, n_remove in _per_class(codes, n_keep, options):
        k = len(members) - n_remove
        mask[members[np.argsort(-quality[members], kind="stable")[:k]]] = True
    return _timed(mask, start)


def select_deita(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """DEITA's score-first, diversity-aware pass: rows in descending quality, each kept unless its cosine similarity
    to a row already kept exceeds ``DEITA_THRESHOLD``; if the pass ends short of the quota, the best skipped rows
    fill it (so exactly the quota is kept)."""
    start = time.perf_counter()
    quality = _quality(options, "deita")
    x = np.asarray(embeddings, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mask = np.zeros(len(codes), dtype=bool)
    for members, n_remove in _per_class(codes, n_keep, options):
        k = len(members) - n_remove
        order = members[np.argsort(-quality[members], kind="stable")]
        kept: list[int] = []
        nearest = np.full(len(x), -np.inf, dtype=np.float32)  # each row's highest cosine to a kept row
        for row in order:
            if len(kept) == k:
                break
            if nearest[row] <= DEITA_THRESHOLD:
                kept.append(int(row))
                nearest[members] = np.maximum(nearest[members], x[members] @ x[row])
        if len(kept) < k:
            chosen = set(kept)
            kept += [int(r) for r in order if int(r) not in chosen][: k - len(kept)]
        mask[kept] = True
    return _timed(mask, start)


def select_kcenter(embeddings: np.ndarray, codes: np.ndarray, n_keep: int, options: MethodOptions) -> MethodResult:
    """Greedy k-center coreset per group (Sener & Savarese): start from the row nearest the group's mean, then
    repeatedly keep the row farthest (cosine distance) from every kept row. ``O(rows x kept)`` distance work."""
    start = time.perf_counter()
    x = np.asarray(embeddings, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mask = np.zeros(len(codes), dtype=bool)
    for members, n_remove in _per_class(codes, n_keep, options):
        k = len(members) - n_remove
        if k <= 0:
            continue
        local = x[members]
        centre = local.mean(axis=0)
        first = int(np.argmax(local @ centre))
        distance = 1.0 - local @ local[first]
        picks = [first]
        distance[first] = -np.inf
        while len(picks) < k:
            far = int(np.argmax(distance))
            picks.append(far)
            distance = np.minimum(distance, 1.0 - local @ local[far])
            distance[picks] = -np.inf
        mask[members[picks]] = True
    return _timed(mask, start)
