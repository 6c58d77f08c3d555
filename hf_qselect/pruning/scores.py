"""Importance and redundancy of heads, FFN neurons and layers, measured on a calibration set.

* head importance: ``E|dL/d m_h|`` for a gate ``m_h = 1`` on each head's output (Michel et al. 2019);
* neuron importance: ``E|dL/d m_n|`` for a gate on each FFN activation, i.e. ``|sum activation x gradient|``
  (first-order Taylor, as TextPruner);
* layer importance: block influence ``1 - cos(input, output)`` per token (ShortGPT);
* redundancy: correlation of heads' per-token output norms, of neurons' activations, and of layers'
  residual updates, over a sample of at most ``max_tokens`` tokens (memory stays bounded).
Hooks are removed and ``requires_grad`` restored afterwards: the model is left as it was.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from ..models import Gates, adapter_for, calibration_batches, check_calibration, layer_unit_sets


@dataclass
class UnitScores:
    """Per-unit importance, and per-unit unit vectors whose dot products are the redundancies.

    ``head_vectors`` rows are heads (layer-major), ``neuron_vectors[l]`` rows are layer ``l``'s neurons:
    centred, normalised per-token signals, so ``V @ V.T`` is their correlation. ``layer_vectors`` rows are
    the layers' normalised residual updates, so ``V @ V.T`` is their cosine similarity.
    """

    head_importance: list[np.ndarray]  # L x (H_l,)
    head_vectors: np.ndarray  # (sum H_l, tokens)
    neuron_importance: list[np.ndarray]  # L x (I,)
    neuron_vectors: list[np.ndarray]  # L x (I, tokens)
    layer_importance: np.ndarray  # (L,)
    layer_vectors: np.ndarray  # (L, tokens * hidden)
    tokens: int


def unit_rows(x: np.ndarray, centre: bool = True) -> np.ndarray:
    """Columns of ``x`` (tokens, units) as unit-norm rows (units, tokens), centred for correlations."""
    x = np.asarray(x, dtype=np.float32)
    if centre:
        x = x - x.mean(axis=0)
    norm = np.linalg.norm(x, axis=0)
    norm[norm == 0] = 1.0
    return np.ascontiguousarray((x / norm).T)


def compute_scores(model, dataset: Dataset, batch_size: int = 16, max_tokens: int = 2048, show_progress: bool = True) -> UnitScores:
    """Run the calibration set through ``model`` with gates and hooks; return :class:`UnitScores`."""
    adapter = adapter_for(model, what="structured pruning")
    causal = adapter.can_generate(model)
    check_calibration(dataset, causal)
    device = next(model.parameters()).device
    sets = layer_unit_sets(model)
    heads_sets, ffn_sets = [u for u in sets if u.kind == "heads"], [u for u in sets if u.kind == "ffn"]
    n_layers = len(heads_sets)
    head_gates = [torch.ones(u.size, device=device, requires_grad=True) for u in heads_sets]
    neuron_gates = [torch.ones(u.size, device=device, requires_grad=True) for u in ffn_sets]
    head_imp = [torch.zeros(u.size, device=device) for u in heads_sets]
    neuron_imp = [torch.zeros_like(g) for g in neuron_gates]
    head_norms: list[list[np.ndarray]] = [[] for _ in range(n_layers)]
    activations: list[list[np.ndarray]] = [[] for _ in range(n_layers)]
    influence = np.zeros(n_layers)
    updates: list[list[np.ndarray]] = [[] for _ in range(n_layers)]
    state = {"mask": None, "taken": 0, "take": 0}

    def sample(tensor: torch.Tensor) -> np.ndarray:
        flat = tensor.detach()[state["mask"]]
        return flat[: state["take"]].float().cpu().numpy()

    def observe(unit, gated: torch.Tensor) -> None:
        """Sample each head's per-token output norm and each neuron's activation, as gated."""
        if not state["take"]:
            return
        if unit.kind == "heads":
            b, s, width = gated.shape
            head_norms[unit.layer].append(sample(gated.view(b, s, unit.size, width // unit.size).norm(dim=-1)))
        else:
            activations[unit.layer].append(sample(gated))

    gates = Gates(model, sets, observe=observe)
    gates.values = {u.name: g for u, g in zip(heads_sets + ffn_sets, head_gates + neuron_gates)}
    grad_flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    total_tokens = 0
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        n_batches = -(-len(dataset) // batch_size)
        for batch in tqdm(calibration_batches(dataset, batch_size, device, adapter.pad_id(model.config), causal), total=n_batches, desc="pruning scores", disable=not show_progress):
            mask = batch["attention_mask"].bool()
            state["mask"], state["take"] = mask, max(0, min(int(mask.sum()), max_tokens - state["taken"]))
            out = model(**batch, output_hidden_states=True)
            grads = torch.autograd.grad(out.loss, head_gates + neuron_gates)
            for i in range(n_layers):
                head_imp[i] += grads[i].abs()
                neuron_imp[i] += grads[n_layers + i].abs()
            hidden = out.hidden_states
            with torch.no_grad():
                for i in range(n_layers):
                    before, after = hidden[i][mask], hidden[i + 1][mask]
                    influence[i] += float((1 - torch.nn.functional.cosine_similarity(before, after, dim=-1)).sum())
                    if state["take"]:
                        updates[i].append((after - before)[: state["take"]].float().cpu().numpy())
            total_tokens += int(mask.sum())
            state["taken"] += state["take"]
    finally:
        gates.remove()
        for p, flag in zip(model.parameters(), grad_flags):
            p.requires_grad_(flag)
        model.train(was_training)

    norms = np.concatenate([np.concatenate(h) for h in head_norms], axis=1)
    layer_updates = np.stack([np.concatenate(u).ravel() for u in updates], axis=1)
    return UnitScores(
        head_importance=[h.cpu().numpy() for h in head_imp],
        head_vectors=unit_rows(norms),
        neuron_importance=[n.cpu().numpy() for n in neuron_imp],
        neuron_vectors=[unit_rows(np.concatenate(a)) for a in activations],
        layer_importance=influence / max(total_tokens, 1),
        layer_vectors=unit_rows(layer_updates, centre=False),
        tokens=state["taken"],
    )
