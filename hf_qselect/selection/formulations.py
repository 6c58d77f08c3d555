"""QUBO formulations of instance selection on one block of rows (``x_i = 1`` keeps row i, exactly k kept)."""
from __future__ import annotations

import numpy as np

from ..qubo import BlockQUBO, boundary_penalty, max_delta_penalty


def rbf_kernel(embeddings: np.ndarray) -> np.ndarray:
    """Gaussian kernel on cosine distance, ``exp(-(1 - cos) / tau)``, tau = median pairwise distance."""
    x = np.asarray(embeddings, dtype=np.float64)
    cos = np.clip(x @ x.T, -1.0, 1.0)
    dist = 1.0 - cos
    m = len(embeddings)
    pairs = dist[np.triu_indices(m, 1)]
    tau = float(np.median(pairs)) if pairs.size else 1.0
    tau = tau if tau > 1e-12 else 1.0
    kernel = np.exp(-np.maximum(dist, 0.0) / tau)
    np.fill_diagonal(kernel, 1.0)
    return kernel


def mmd_block(
    index: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    noisy: np.ndarray | None = None,
    quality: np.ndarray | None = None,
    quality_weight: float = 0.0,
) -> BlockQUBO:
    """Kernel-herding QUBO: ``k^2 * MMD^2`` between the kept rows S and the block's clean rows P.

    ``MMD^2 = mean_{S,S} K - 2 mean_{S,P} K + mean_{P,P} K`` (K: :func:`rbf_kernel`). Rows
    flagged ``noisy`` (likely mislabelled) are left out of the target P and pay a penalty
    to be kept. Multiplying by ``k^2`` gives a QUBO:

    * ``J_ij = 2 K_ij``: keeping two similar rows costs (redundancy);
    * ``h_i = K_ii - (2k/|P|) sum_{j in P} K_ij``: rows in dense clean regions pay less (coverage);
    * ``h_i += K_ii + max_j |h_j|`` for noisy rows, so a clean row always pays less to keep;
    * ``offset = (k/|P|)^2 sum_{P,P} K``, so the energy is ``k^2 MMD^2 + penalty * (noisy kept)``;
    * with ``quality`` (standardised scores, indexed like ``noisy``): ``h_i -= w * sd(h) * q_i``, so a row one
      standard deviation better is worth ``w`` standard deviations of the block's coverage costs.
    """
    kernel = rbf_kernel(embeddings[index])
    clean = np.ones(len(index), dtype=bool) if noisy is None else ~noisy[index]
    if not clean.any():
        clean[:] = True
    p = int(clean.sum())
    h = np.diag(kernel) - (2.0 * k / p) * kernel[:, clean].sum(axis=1)
    if quality is not None and quality_weight:
        h = h - quality_weight * (float(np.std(h)) or 1.0) * np.asarray(quality, dtype=np.float64)[index]
    h[~clean] += noise_penalty(h)
    J = np.triu(2.0 * kernel, 1)
    offset = (k / p) ** 2 * float(kernel[np.ix_(clean, clean)].sum())
    return BlockQUBO(index=index, h=h, J=J, offset=offset, k=k, penalty=boundary_penalty(h, J, k))


def noise_penalty(h: np.ndarray) -> float:
    """Extra linear cost of keeping a likely-mislabelled row: ``1 + max_j |h_j|``."""
    return 1.0 + float(np.max(np.abs(h)))


def pasin_block(index: np.ndarray, embeddings: np.ndarray, codes: np.ndarray, class_share: np.ndarray, k: int) -> BlockQUBO:
    """Pasin et al. (ICTIR 2024), cosine variant: ``+cos`` same label, ``-cos`` across labels, class-share diagonal."""
    x = embeddings[index].astype(np.float64)
    cos = x @ x.T
    labels = codes[index]
    sign = np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    J = np.triu(sign * cos, 1)
    h = class_share[labels].astype(np.float64)
    return BlockQUBO(index=index, h=h, J=J, offset=0.0, k=k, penalty=max_delta_penalty(h, J))
