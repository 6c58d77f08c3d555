"""The Hessian spectrum of a loss over a set of parameters, from Hessian-vector products only (PyHessian-style).

* :func:`lanczos`: ``steps`` Lanczos iterations with full re-orthogonalisation; the tridiagonal matrix's
  eigenvalues (Ritz values) approximate the extreme eigenvalues first, and with the squared first components
  of its eigenvectors they are one stochastic-Lanczos-quadrature sample of the spectral density.
* :func:`hutchinson_trace`: ``E[v^T H v]`` over Rademacher ``v``.

Vectors live on a restriction ``mask`` of the parameters (the unpruned weights): every product is projected
onto it, so the spectrum is that of the Hessian restricted to those coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

Vector = list[torch.Tensor]


def hvp_fn(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor], masks: list[torch.Tensor | None]) -> Callable[[Vector], Vector]:
    """``v -> P H P v`` by double backward (``P``: zero outside ``masks``); ``loss_fn`` recomputes the loss."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def product(v: Vector) -> Vector:
        with sdpa_kernel(SDPBackend.MATH):  # the fused attention kernels have no double backward
            loss = loss_fn()
            grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((g * x).sum() for g, x in zip(grads, v))
            hv = torch.autograd.grad(dot, params)
        return [h.detach() * m if m is not None else h.detach() for h, m in zip(hv, masks)]

    return product


def _dot(a: Vector, b: Vector) -> float:
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b)))


def _random(params: list[torch.Tensor], masks: list[torch.Tensor | None], generator: torch.Generator, rademacher: bool) -> Vector:
    out = []
    for p, m in zip(params, masks):
        v = torch.randint(0, 2, p.shape, generator=generator).to(p.dtype) * 2 - 1 if rademacher else torch.randn(p.shape, generator=generator).to(p.dtype)
        out.append(v * m if m is not None else v)
    return out


@dataclass
class Lanczos:
    """Ritz values (ascending) and their quadrature weights (summing to 1)."""

    values: np.ndarray
    weights: np.ndarray


def lanczos(product: Callable[[Vector], Vector], params: list[torch.Tensor], masks: list[torch.Tensor | None], steps: int,
            seed: int = 0) -> Lanczos:
    """``steps`` Lanczos iterations from a random start on the masked coordinates."""
    generator = torch.Generator().manual_seed(seed)
    v = _random(params, masks, generator, rademacher=False)
    norm = np.sqrt(_dot(v, v))
    v = [x / norm for x in v]
    basis, alphas, betas = [v], [], []
    for i in range(steps):
        w = product(basis[-1])
        alpha = _dot(w, basis[-1])
        alphas.append(alpha)
        for q in basis:  # full re-orthogonalisation (twice is enough)
            c = _dot(w, q)
            w = [x - c * y for x, y in zip(w, q)]
        for q in basis:
            c = _dot(w, q)
            w = [x - c * y for x, y in zip(w, q)]
        beta = np.sqrt(max(_dot(w, w), 0.0))
        if i == steps - 1 or beta < 1e-10 * (abs(alpha) + 1.0):
            break
        betas.append(beta)
        basis.append([x / beta for x in w])
    T = np.diag(alphas) + np.diag(betas[: len(alphas) - 1], 1) + np.diag(betas[: len(alphas) - 1], -1)
    values, vectors = np.linalg.eigh(T)
    return Lanczos(values=values, weights=vectors[0] ** 2)


def hutchinson_trace(product: Callable[[Vector], Vector], params: list[torch.Tensor], masks: list[torch.Tensor | None], samples: int,
                     seed: int = 0) -> tuple[float, float]:
    """Mean and standard error of ``v^T H v`` over ``samples`` Rademacher vectors."""
    generator = torch.Generator().manual_seed(seed + 1)
    estimates = []
    for _ in range(samples):
        v = _random(params, masks, generator, rademacher=True)
        estimates.append(_dot(v, product(v)))
    estimates = np.asarray(estimates)
    return float(estimates.mean()), float(estimates.std(ddof=1) / np.sqrt(len(estimates))) if len(estimates) > 1 else float("nan")


def density(lz: Lanczos, grid: np.ndarray, width: float) -> np.ndarray:
    """The spectral density on ``grid``: Gaussians of ``width`` at the Ritz values, weighted by quadrature weight."""
    diffs = grid[:, None] - lz.values[None, :]
    return (lz.weights[None, :] * np.exp(-0.5 * (diffs / width) ** 2) / (width * np.sqrt(2 * np.pi))).sum(axis=1)
