"""Which whole layers to drop, from the measured loss of dropping them: singly and in neighbouring pairs.

With ``d_i`` the calibration loss increase when layer ``i`` alone is skipped and ``d_ij`` when neighbours ``i`` and
``j = i + 1`` are skipped together, the loss of dropping a set ``x`` (``x_i = 1``: dropped) is modelled to second order
in the neighbour interactions:

    E(x) = sum_i d_i x_i + sum_i (d_{i,i+1} - d_i - d_{i+1}) x_i x_{i+1},   sum x = number to drop

Greedy ranking (ShortGPT-style, on measured losses) keeps only the first sum; two adjacent layers that each look
cheap but together break the model are where the QUBO's quadratic term decides differently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..models import SkipLayers, adapter_for, calibration_batches
from ..qubo import AnnealSettings, BlockQUBO, anneal, boundary_penalty


@dataclass
class DropLosses:
    base: float
    single: np.ndarray  # (L,) loss increase of dropping layer i
    pair: np.ndarray  # (L - 1,) loss increase of dropping layers i and i + 1


def mean_loss(model, batches: list[dict]) -> float:
    total, tokens = 0.0, 0
    for batch in batches:
        n = int((batch["labels"] != -100).sum()) if batch["labels"].dim() > 1 else len(batch["labels"])
        total += float(model(**batch).loss) * n
        tokens += n
    return total / max(tokens, 1)


def measure_drop_losses(model, dataset, rows: int, batch_size: int, show_progress: bool = True) -> DropLosses:
    """Calibration loss with each layer, then each neighbouring pair, skipped (``2L - 1`` passes over ``rows`` rows)."""
    adapter = adapter_for(model)
    device = next(model.parameters()).device
    subset = dataset.select(range(min(rows, len(dataset))))
    batches = list(calibration_batches(subset, batch_size, device, adapter.pad_id(model.config), adapter.can_generate(model)))
    n = len(adapter.layers(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            base = mean_loss(model, batches)
            sets = [[i] for i in range(n)] + [[i, i + 1] for i in range(n - 1)]
            losses = []
            for skipped in tqdm(sets, desc="layer drop losses", disable=not show_progress):
                with SkipLayers(model, skipped):
                    losses.append(mean_loss(model, batches) - base)
    finally:
        model.train(was_training)
    return DropLosses(base=base, single=np.array(losses[:n]), pair=np.array(losses[n:]))


def drop_qubo(losses: DropLosses, n_drop: int) -> BlockQUBO:
    """The QUBO above over drop indicators, exact-``n_drop``; scaled so the mean single-drop cost is 1."""
    n = len(losses.single)
    scale = float(np.mean(np.abs(losses.single))) or 1.0
    h = losses.single / scale
    J = np.zeros((n, n))
    for i in range(n - 1):
        J[i, i + 1] = (losses.pair[i] - losses.single[i] - losses.single[i + 1]) / scale
    return BlockQUBO(index=np.arange(n), h=h, J=J, offset=0.0, k=n_drop, penalty=boundary_penalty(h, J, n_drop))


def choose_drops(losses: DropLosses, n_drop: int, method: str, settings: AnnealSettings) -> tuple[list[int], float]:
    """Layers to drop: the ``n_drop`` cheapest singly (``greedy``) or the annealed QUBO's answer (``qubo``), and the
    QUBO energy of the answer."""
    qubo = drop_qubo(losses, n_drop)
    if method == "greedy":
        x = np.zeros(len(losses.single))
        x[np.argsort(losses.single, kind="stable")[:n_drop]] = 1
    else:
        x = anneal([qubo], settings)[0].x
    return sorted(int(i) for i in np.flatnonzero(x)), float(qubo.energy(x))
