"""How the gates are chosen: the QUBO-local search and the three baselines, all on one objective.

* ``qubo``: from all units open, one QUBO per layer (blocks of ``block_size``) closes the units whose loss
  the quadratic model rates cheapest to lose; then ``rounds`` of local moves: each layer's units are cut into
  random blocks, each block's QUBO swaps units in and out at a fixed count, and the move is kept only if the
  measured training loss drops (the trust weight ``rho`` grows 4x after a refused move, halves after a kept one).
* ``greedy``: keep the units whose removal alone the model rates most costly (second-order Taylor ranking).
* ``random``: a uniformly random mask per layer.
* ``edgepopup``: Ramanujan et al.'s edge-popup on units: a score per unit, the top ``keep`` scores open,
  scores trained by SGD with momentum through the straight-through estimator.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..qubo import AnnealSettings, anneal, random_parts, ranked_quotas
from .gates import UnitSet
from .quadratic import local_qubo, removal_importance

Masks = dict[str, np.ndarray]


@dataclass
class SearchReport:
    """What a search did: the training loss after the start and after every round, kept/refused moves,
    the QUBO energies of the kept moves (the modelled loss change), the trust weights and the time."""

    method: str
    losses: list[float] = field(default_factory=list)
    accepted: int = 0
    refused: int = 0
    energies: list[float] = field(default_factory=list)
    trust: list[float] = field(default_factory=list)
    blocks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kept_counts(sets: list[UnitSet], keep: float) -> dict[str, int]:
    """Units kept per set: ``round(keep * size)``, at least one."""
    return {u.name: max(1, int(round(keep * u.size))) for u in sets}


def _solve(terms: tuple[np.ndarray, np.ndarray | None], mask: np.ndarray, parts: list[np.ndarray], counts: np.ndarray, rho: float,
           settings: AnnealSettings) -> tuple[np.ndarray, float]:
    G, V = terms
    qubos = [local_qubo(G, mask, p, int(c), rho, V) for p, c in zip(parts, counts)]
    solutions = anneal(qubos, settings)
    new = np.zeros_like(mask)
    for q, s in zip(qubos, solutions):
        new[q.index] = s.x
    return new, float(sum(s.energy for s in solutions))


def _terms(objective: Any, masks: Masks, curvature: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    terms = objective.local_terms(masks)
    return terms if curvature == "gauss-newton" else {name: (G, None) for name, (G, _) in terms.items()}


def qubo_search(objective: Any, sets: list[UnitSet], keep: float, settings: AnnealSettings, *, rounds: int, block_size: int,
                schedule: str, curvature: str, trust: float, tries: int, seed: int | None,
                show_progress: bool) -> tuple[Masks, SearchReport]:
    """The QUBO-local search (module docstring); returns the masks and the report."""
    rng = np.random.default_rng(seed)
    report = SearchReport("qubo")
    start = time.perf_counter()
    counts = kept_counts(sets, keep)
    masks = {u.name: np.ones(u.size, dtype=np.int8) for u in sets}
    T = _terms(objective, masks, curvature)
    for u in sets:
        parts = random_parts(u.size, block_size, rng)
        quotas = ranked_quotas(removal_importance(*T[u.name]), parts, counts[u.name])
        masks[u.name], _ = _solve(T[u.name], masks[u.name], parts, quotas, 0.0, settings)
        report.blocks += len(parts)
    objective.loss(masks)
    loss = objective.commit()
    report.losses.append(loss)
    groups = [[u] for u in sets] if schedule == "layer" else [list(sets)]
    rho = {u.name: trust * float(np.mean(np.abs(T[u.name][0].mean(0)))) for u in sets}
    for _ in tqdm(range(rounds), desc="subnetwork rounds", disable=not show_progress):
        for group in groups:
            T = _terms(objective, masks, curvature)
            for _attempt in range(tries):
                candidate, energy = dict(masks), 0.0
                for u in group:
                    parts = random_parts(u.size, block_size, rng)
                    quotas = np.array([int(masks[u.name][p].sum()) for p in parts])
                    candidate[u.name], e = _solve(T[u.name], masks[u.name], parts, quotas, rho[u.name], settings)
                    energy += e
                    report.blocks += len(parts)
                if all(np.array_equal(candidate[u.name], masks[u.name]) for u in group):
                    report.refused += 1
                    for u in group:
                        rho[u.name] /= 2.0  # the model sees no gain inside the trust region: widen it
                    continue
                new = objective.loss(candidate)
                if new < loss:
                    masks, loss = candidate, objective.commit()
                    report.accepted += 1
                    report.energies.append(energy)
                    for u in group:
                        rho[u.name] /= 2.0
                    break
                report.refused += 1
                for u in group:
                    rho[u.name] *= 4.0
        report.losses.append(loss)
        report.trust.append(float(np.mean(list(rho.values()))))
    report.seconds = time.perf_counter() - start
    return masks, report


def greedy_masks(objective: Any, sets: list[UnitSet], keep: float) -> tuple[Masks, SearchReport]:
    start = time.perf_counter()
    counts = kept_counts(sets, keep)
    T = objective.local_terms({u.name: np.ones(u.size, dtype=np.int8) for u in sets})
    masks = {}
    for u in sets:
        mask = np.zeros(u.size, dtype=np.int8)
        mask[np.argsort(-removal_importance(*T[u.name]), kind="stable")[:counts[u.name]]] = 1
        masks[u.name] = mask
    report = SearchReport("greedy", losses=[objective.loss(masks)])
    report.seconds = time.perf_counter() - start
    return masks, report


def random_masks(objective: Any, sets: list[UnitSet], keep: float, seed: int | None) -> tuple[Masks, SearchReport]:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    masks = {}
    for u, k in zip(sets, kept_counts(sets, keep).values()):
        mask = np.zeros(u.size, dtype=np.int8)
        mask[rng.choice(u.size, k, replace=False)] = 1
        masks[u.name] = mask
    report = SearchReport("random", losses=[objective.loss(masks)])
    report.seconds = time.perf_counter() - start
    return masks, report


def edge_popup(objective: Any, sets: list[UnitSet], keep: float, *, epochs: int, lr: float, seed: int | None,
               show_progress: bool) -> tuple[Masks, SearchReport]:
    """Unit-level edge-popup: SGD (momentum 0.9, cosine learning rate) on scores through the straight-through
    estimator; the gradient of a score is the gradient of its unit's gate."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    counts = kept_counts(sets, keep)
    scores = {u.name: rng.uniform(0.0, 1.0, u.size) for u in sets}
    velocity = {u.name: np.zeros(u.size) for u in sets}

    def top(s: np.ndarray, k: int) -> np.ndarray:
        mask = np.zeros(len(s), dtype=np.int8)
        mask[np.argsort(-s, kind="stable")[:k]] = 1
        return mask

    report = SearchReport("edgepopup")
    steps, step = epochs * len(objective.minibatches(rng)), 0  # draws one shuffle: kept so seeded runs reproduce
    for _ in tqdm(range(epochs), desc="edge-popup epochs", disable=not show_progress):
        for rows in objective.minibatches(rng):
            rate = lr * 0.5 * (1.0 + np.cos(np.pi * step / steps))
            masks = {name: top(s, counts[name]) for name, s in scores.items()}
            G = objective.gradients(masks, rows)
            for name in scores:
                velocity[name] = 0.9 * velocity[name] + G[name].mean(axis=0)
                scores[name] -= rate * velocity[name]
            step += 1
        masks = {name: top(s, counts[name]) for name, s in scores.items()}
        report.losses.append(objective.loss(masks))
        objective.commit()
    report.seconds = time.perf_counter() - start
    return {name: top(s, counts[name]) for name, s in scores.items()}, report
