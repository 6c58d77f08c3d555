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
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from .architecture import encoder_layers, head_size

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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


def label_column(dataset: Dataset) -> str:
    for name in ("labels", "label"):
        if name in dataset.column_names:
            return name
    raise KeyError(f"the calibration dataset needs a 'labels' (or 'label') column for the gradients; its columns are {dataset.column_names}")


def check_calibration(dataset: Any) -> str:
    """A non-empty, tokenized ``datasets.Dataset`` with labels, or a one-line error; returns the label column."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"calibration_dataset must be a tokenized datasets.Dataset, got {type(dataset).__name__}")
    labels = label_column(dataset)
    if "input_ids" not in dataset.column_names:
        raise KeyError(f"the calibration dataset must be tokenized: no 'input_ids' column (columns: {dataset.column_names})")
    if len(dataset) == 0:
        raise ValueError("the calibration dataset is empty")
    return labels


def calibration_batches(dataset: Dataset, batch_size: int, device: torch.device):
    """Padded tensor batches of the model inputs and labels."""
    labels = check_calibration(dataset)
    columns = [c for c in MODEL_INPUTS if c in dataset.column_names]
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        batch = {}
        for column in columns:
            seqs = [torch.as_tensor(list(x)) for x in rows[column]]
            batch[column] = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=0).to(device)
        if "attention_mask" not in batch:
            batch["attention_mask"] = (batch["input_ids"] != 0).long()
        batch["labels"] = torch.as_tensor(list(rows[labels])).to(device)
        yield batch


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
    check_calibration(dataset)
    device = next(model.parameters()).device
    layers = encoder_layers(model)
    n_layers, size = len(layers), head_size(model)
    heads = [layer.attention.self.query.out_features // size for layer in layers]
    head_gates = [torch.ones(h, device=device, requires_grad=True) for h in heads]
    neuron_gates = [torch.ones(layer.intermediate.dense.out_features, device=device, requires_grad=True) for layer in layers]
    head_imp = [torch.zeros(h, device=device) for h in heads]
    neuron_imp = [torch.zeros_like(g) for g in neuron_gates]
    head_norms: list[list[np.ndarray]] = [[] for _ in layers]
    activations: list[list[np.ndarray]] = [[] for _ in layers]
    influence = np.zeros(n_layers)
    updates: list[list[np.ndarray]] = [[] for _ in layers]
    state = {"mask": None, "taken": 0, "take": 0}

    def sample(tensor: torch.Tensor) -> np.ndarray:
        flat = tensor.detach()[state["mask"]]
        return flat[: state["take"]].float().cpu().numpy()

    def attention_hook(index):
        def hook(module, args, output):
            out = output[0]
            b, s, _ = out.shape
            gated = (out.view(b, s, heads[index], size) * head_gates[index].view(1, 1, -1, 1)).view(b, s, -1)
            if state["take"]:
                head_norms[index].append(sample(gated.view(b, s, heads[index], size).norm(dim=-1)))
            return (gated, *output[1:])
        return hook

    def ffn_hook(index):
        def hook(module, args, output):
            gated = output * neuron_gates[index]
            if state["take"]:
                activations[index].append(sample(gated))
            return gated
        return hook

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.attention.self.register_forward_hook(attention_hook(i)))
        handles.append(layer.intermediate.register_forward_hook(ffn_hook(i)))
    grad_flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    total_tokens = 0
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        n_batches = -(-len(dataset) // batch_size)
        for batch in tqdm(calibration_batches(dataset, batch_size, device), total=n_batches, desc="pruning scores", disable=not show_progress):
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
        for handle in handles:
            handle.remove()
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
