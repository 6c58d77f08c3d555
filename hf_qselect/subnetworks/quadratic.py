"""The local QUBO of one block of unit gates: a quadratic model of the training loss around the current mask.

With ``G`` the per-row gradients of the loss with respect to the gates (rows x units) at the current mask
``m``, ``g = mean(G)`` and a curvature ``F`` (the Gauss-Newton matrix ``V^T V / N`` from its factors ``V``, or
the empirical Fisher ``G^T G / N``), a new mask ``x`` differing by ``d = x - m``
is charged

    q(x) = g.d + (1/2) d^T F d + rho |d|_1

(``rho``: a trust-region weight, in units of the gradient). Restricted to one block ``B`` of units (the others
stay as they are) and written over binary ``x_B`` (``x_i^2 = x_i``), ``q`` is a QUBO with

    h_i = g_i - (F_BB m_B)_i + F_ii / 2 + rho (1 - 2 m_i),   J_ij = F_ij (i < j),
    offset = -g_B.m_B + m_B^T F_BB m_B / 2 + rho sum m_B,

so its energy *is* the model's value of the move. ``F_BB`` is formed per block: no units x units matrix.
"""
from __future__ import annotations

import numpy as np

from ..qubo import BlockQUBO, boundary_penalty


def local_qubo(G: np.ndarray, mask: np.ndarray, index: np.ndarray, count: int, rho: float, V: np.ndarray | None = None) -> BlockQUBO:
    """The QUBO of block ``index`` keeping ``count`` of its units, from per-row gradients ``G`` at ``mask``.

    ``V`` (any number of rows) gives the curvature ``F = V^T V / len(G)`` (the Gauss-Newton matrix when ``V``
    holds its factors); without it ``F`` is the empirical Fisher ``G^T G / len(G)``."""
    Gb = np.asarray(G[:, index], dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)[index]
    grad = Gb.mean(axis=0)
    Vb = Gb if V is None else np.asarray(V[:, index], dtype=np.float64)
    F = Vb.T @ Vb / max(len(Gb), 1)
    h = grad - F @ m + 0.5 * np.diag(F) + rho * (1.0 - 2.0 * m)
    J = np.triu(F, 1)
    offset = float(-grad @ m + 0.5 * m @ F @ m + rho * m.sum())
    return BlockQUBO(index=np.asarray(index), h=h, J=J, offset=offset, k=int(count), penalty=boundary_penalty(h, J, int(count)))


def removal_importance(G: np.ndarray, V: np.ndarray | None = None) -> np.ndarray:
    """Each open unit's modelled loss increase when it alone is closed: ``-g_i + F_ii / 2``."""
    G = np.asarray(G, dtype=np.float64)
    V = G if V is None else np.asarray(V, dtype=np.float64)
    return -G.mean(axis=0) + 0.5 * (V * V).sum(axis=0) / len(G)
