"""Which whole layers to drop, from the measured loss of dropping them: singly and in neighbouring pairs.

With ``d_i`` the calibration loss increase when layer ``i`` alone is skipped and ``d_ij`` when neighbours ``i`` and
``j = i + 1`` are skipped together, the loss of dropping a set ``x`` (``x_i = 1``: dropped) is modelled to second order
in the neighbour interactions:

    E(x) = sum_i d_i x_i + sum_i (d_{i,i+1} - d_i - d_{i+1}) x_i x_{i+1},   sum x = number to drop

Greedy ranking (ShortGPT-style, on measured losses) keeps only the first sum; two adjacent layers that each look
cheap but together break the model are where the QUBO's quadratic term decides differently.

Losses compound beyond neighbours when many layers go. ``layer_rounds > 1`` drops them over several rounds, each
re-measuring the losses on the model without the layers earlier rounds dropped (as SLEB re-measures after every
block); each round costs another ``2L - 1`` passes.
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


def measure_drop_losses(model, dataset, rows: int, batch_size: int, show_progress: bool = True, skipped: list[int] = ()) -> DropLosses:
    """Calibration loss with each layer, then each neighbouring pair, skipped (``2L - 1`` passes over ``rows`` rows).

    With ``skipped`` (layers already dropped) everything is measured on the model without them, over the remaining
    layers in order: ``single[j]`` is the ``j``-th remaining layer, and a pair is two layers that are neighbours there."""
    adapter = adapter_for(model)
    device = next(model.parameters()).device
    subset = dataset.select(range(min(rows, len(dataset))))
    batches = list(calibration_batches(subset, batch_size, device, adapter.pad_id(model.config), adapter.can_generate(model)))
    gone = sorted(set(skipped))
    remaining = [i for i in range(len(adapter.layers(model))) if i not in gone]
    n = len(remaining)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            with SkipLayers(model, gone):
                base = mean_loss(model, batches)
            sets = [[i] for i in remaining] + [[a, b] for a, b in zip(remaining, remaining[1:])]
            losses = []
            for drop in tqdm(sets, desc="layer drop losses", disable=not show_progress):
                with SkipLayers(model, gone + drop):
                    losses.append(mean_loss(model, batches) - base)
    finally:
        model.train(was_training)
    return DropLosses(base=base, single=np.array(losses[:n]), pair=np.array(losses[n:]))


def round_sizes(n_drop: int, rounds: int) -> list[int]:
    """How many layers each round drops: ``n_drop`` split as evenly as it goes, larger rounds first, none empty."""
    rounds = max(1, min(rounds, n_drop))
    return [n_drop // rounds + (1 if r < n_drop % rounds else 0) for r in range(rounds)]


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
