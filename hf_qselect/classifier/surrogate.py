"""Quadratic surrogates of a linear head's cross-entropy, and the block QUBO of one block of its weights' bits.

For one output ``c`` with weights ``w`` (features + bias) the surrogate is ``f(w) = 1/2 w^T A w + b^T w``:

* ``"surrogate"`` (one shot): the second-order expansion around the fp32 optimum ``w*``,
  ``A = X^T D X / n + Lambda`` with ``D = p (1 - p)``, ``b = -A w*``; so ``f(w) - f(w*) = 1/2 (w - w*)^T A (w - w*)``.
* ``"iterative"`` (the paper's scheme: re-linearise at the current weights ``w_t`` every iteration): first the
  local expansion, ``A = X^T D_t X / n + Lambda``, ``b = g_t - A w_t`` with ``g_t`` the gradient at ``w_t``
  (fast, but not a bound); when its answer does not lower the loss, the majoriser built from the feature
  Gram matrix only, ``A = beta X^T X / n + Lambda`` (``beta = 1/4`` for a sigmoid, ``1/2`` for a softmax:
  Böhning's bound), whose answers can never raise the loss.

``Lambda`` is scikit-learn's L2 penalty ``1 / (C n)`` on the features (not the bias). The size of every
surrogate is ``(d + 1)^2``, whatever the number of samples.
"""
from __future__ import annotations

import numpy as np

from ..qubo import BlockQUBO
from .grid import bit_weights, offset


def augment(X: np.ndarray) -> np.ndarray:
    """Features plus a constant column for the bias."""
    return np.hstack([X, np.ones((len(X), 1))])


def ridge(d: int, C: float, n: int) -> np.ndarray:
    """``Lambda``: ``1 / (C n)`` on the ``d`` features, 0 on the bias."""
    return np.diag(np.r_[np.full(d, 1.0 / (C * n)), 0.0])


def probabilities(Xa: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``(n, outputs)`` sigmoid (one output) or softmax (several) of ``Xa W^T``."""
    z = Xa @ W.T
    if W.shape[0] == 1:
        return 1.0 / (1.0 + np.exp(-z))
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def targets(codes: np.ndarray, outputs: int) -> np.ndarray:
    """``(n, outputs)``: the label (one output) or its one-hot row."""
    if outputs == 1:
        return codes[:, None].astype(np.float64)
    return np.eye(outputs)[codes]


def loss(Xa: np.ndarray, codes: np.ndarray, W: np.ndarray, Lam: np.ndarray) -> float:
    """Mean cross-entropy plus ``1/2 sum_c w_c^T Lambda w_c``."""
    p = np.clip(probabilities(Xa, W), 1e-12, 1 - 1e-12)
    if W.shape[0] == 1:
        ce = -np.mean(codes * np.log(p[:, 0]) + (1 - codes) * np.log(1 - p[:, 0]))
    else:
        ce = -np.mean(np.log(p[np.arange(len(codes)), codes]))
    return float(ce + 0.5 * np.einsum("ci,ij,cj->", W, Lam, W))


def hessian_blocks(Xa: np.ndarray, p: np.ndarray, Lam: np.ndarray) -> list[np.ndarray]:
    """Each output's own block of the loss Hessian, ``X^T diag(p_c (1 - p_c)) X / n + Lambda``."""
    return [(Xa * (p[:, c] * (1 - p[:, c]))[:, None]).T @ Xa / len(Xa) + Lam for c in range(p.shape[1])]


def expansion(Xa: np.ndarray, W_star: np.ndarray, Lam: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(A_c, b_c)`` of the one-shot surrogate around the fp32 weights, per output."""
    blocks = hessian_blocks(Xa, probabilities(Xa, W_star), Lam)
    return [(A, -A @ w) for A, w in zip(blocks, W_star)]


def local(Xa: np.ndarray, codes: np.ndarray, W: np.ndarray, Lam: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(A_c, b_c)`` of the second-order expansion of the loss at ``W``, per output (each output's own block of
    the Hessian)."""
    p = probabilities(Xa, W)
    residual = p - targets(codes, W.shape[0])
    return [(A, Xa.T @ residual[:, c] / len(Xa) + Lam @ W[c] - A @ W[c]) for c, A in enumerate(hessian_blocks(Xa, p, Lam))]


def majoriser(Xa: np.ndarray, gram: np.ndarray, codes: np.ndarray, W: np.ndarray, Lam: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(A, b_c)`` of the Böhning majoriser at ``W``, per output (one ``A`` for all)."""
    n = len(Xa)
    beta = 0.25 if W.shape[0] == 1 else 0.5
    A = beta * gram / n + Lam
    residual = probabilities(Xa, W) - targets(codes, W.shape[0])
    return [(A, Xa.T @ residual[:, c] / n + Lam @ W[c] - A @ W[c]) for c in range(W.shape[0])]


def energy(A: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """``1/2 w^T A w + b^T w``."""
    return float(0.5 * w @ A @ w + b @ w)


def block_qubo(A: np.ndarray, b: np.ndarray, steps: np.ndarray, scale: float, block: np.ndarray, bits: int) -> BlockQUBO:
    """The unconstrained QUBO over the ``len(block) * bits`` bits of the weights in ``block``, the others fixed.

    With ``q`` the levels (``w = scale q``) and ``q_S = B x - o``: ``f = 1/2 x^T B^T M B x + (v - o M 1)^T B x + const``
    where ``M = scale^2 A_SS`` and ``v = scale (b_S + scale A_{S,rest} q_rest)``. ``offset`` makes the QUBO's
    energy equal ``f`` at every assignment (the other weights held fixed).
    """
    rest = np.setdiff1d(np.arange(len(steps)), block)
    M = scale ** 2 * A[np.ix_(block, block)]
    v = scale * (b[block] + scale * A[np.ix_(block, rest)] @ steps[rest])
    o = offset(bits)
    B = np.kron(np.eye(len(block)), bit_weights(bits)[None, :])  # (|S|, |S| K)
    Q = 0.5 * B.T @ M @ B
    linear = np.diag(Q) + B.T @ (v - o * M.sum(axis=1))
    J = 2.0 * np.triu(Q, 1)
    q_rest = steps[rest]
    constant = (0.5 * o * o * M.sum() - o * v.sum()
                + 0.5 * scale ** 2 * q_rest @ A[np.ix_(rest, rest)] @ q_rest + scale * b[rest] @ q_rest)
    return BlockQUBO(index=np.repeat(block, bits), h=linear, J=J, offset=float(constant))
