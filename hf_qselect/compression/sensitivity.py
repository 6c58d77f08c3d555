"""What each choice is estimated to cost in loss, measured on calibration rows.

* dropping a unit: the first-order estimate ``E|dL/d m|`` for a gate ``m = 1`` on the unit's output, a head or a
  whole FFN block (one gate for the block: summing its neurons' ``|dL/dm|`` instead would count 64 neurons'
  gradients that largely cancel as if they added up, and make every block look far costlier than a head);
* quantizing a module to int8: ``1/2 sum_w F_w (w - Q(w))^2`` over the weights each unit owns in it, with
  ``F`` the diagonal empirical Fisher (squared per-batch gradients times the batch size) and ``Q`` exactly the
  symmetric int8 rounding ``quantize_dynamic`` applies (one scale per tensor, or per output row) (HAWQ's Hessian-weighted perturbation,
  diagonal and per unit, so that dropping a unit also removes its share of the error).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from .layout import Layout
from .quantize import int8_qconfig


@dataclass
class Sensitivity:
    drop: np.ndarray  # per unit
    quant: list[np.ndarray]  # per module, aligned with module.units
    batches: int
    quant_fixed: np.ndarray | None = None  # per module: the error of weights no unit owns (the pooler's)

    def __post_init__(self) -> None:
        if self.quant_fixed is None:
            self.quant_fixed = np.zeros(len(self.quant))


def int8_rounding(weight: torch.Tensor, per_channel: bool = False) -> torch.Tensor:
    """``weight`` after the int8 round trip ``quantize_dynamic`` applies (its weight observer: one scale per tensor,
    or per output row with ``per_channel``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        observer = int8_qconfig(per_channel).weight()
    w = weight.detach().float()
    observer(w)
    scale, zero_point = observer.calculate_qparams()
    if per_channel:
        return torch.fake_quantize_per_channel_affine(w, scale.float(), zero_point.int(), 0, observer.quant_min, observer.quant_max)
    return torch.fake_quantize_per_tensor_affine(w, float(scale), int(zero_point), observer.quant_min, observer.quant_max)


def unit_gates(model, layout: Layout) -> tuple[Any, list[torch.Tensor], list[torch.Tensor]]:
    """The model layer's gating hook on every layer's heads and FFN neurons, and per layer the unit each query head
    is in (its key/value group with grouped-query attention) and the block each neuron is in."""
    from ..models import Gates, layer_unit_sets

    def owner(kind: str, l: int) -> torch.Tensor:
        members = [u.members for u in layout.units if u.layer == l and u.kind == kind]
        return torch.as_tensor(np.concatenate([np.full(len(m), i) for i, m in enumerate(members)]))

    head_of = [owner("head", l) for l in range(layout.n_layers)]
    block_of = [owner("ffn", l) for l in range(layout.n_layers)]
    return Gates(model, layer_unit_sets(model)), head_of, block_of


def gradient_pass(model, dataset: Dataset, layout: Layout, names: list[str], batch_size: int,
                  show_progress: bool) -> tuple[np.ndarray, dict[str, torch.Tensor], int]:
    """One pass over ``dataset``: per unit ``sum_batches |dL/d gate|`` (heads and whole FFN blocks gated alike), and
    the named Linears' squared per-batch weight gradients times the batch size (the diagonal empirical Fisher)."""
    from ..models import adapter_for, calibration_batches

    device = next(model.parameters()).device
    head_gates = [torch.ones(sum(1 for u in layout.units if u.layer == l and u.kind == "head"), device=device, requires_grad=True)
                  for l in range(layout.n_layers)]
    block_gates = [torch.ones(sum(1 for u in layout.units if u.layer == l and u.kind == "ffn"), device=device, requires_grad=True)
                   for l in range(layout.n_layers)]
    weights = {name: model.get_submodule(name).weight for name in names}
    flags = {name: w.requires_grad for name, w in weights.items()}
    fisher = {name: torch.zeros_like(w) for name, w in weights.items()}
    gates = np.zeros(len(layout.units))
    order = [i for l in range(layout.n_layers) for kind in ("head", "ffn") for i, u in enumerate(layout.units) if u.layer == l and u.kind == kind]
    hooks, head_of, block_of = unit_gates(model, layout)
    head_of = [index.to(device) for index in head_of]
    block_of = [index.to(device) for index in block_of]
    was_training = model.training
    model.eval()
    count = 0
    try:
        for w in weights.values():
            w.requires_grad_(True)
        n_batches = -(-len(dataset) // batch_size)
        adapter = adapter_for(model)
        pad, causal = adapter.pad_id(model.config), adapter.can_generate(model)
        for batch in tqdm(calibration_batches(dataset, batch_size, device, pad, causal), total=n_batches, desc="compression sensitivity", disable=not show_progress):
            hooks.values = {name: gate for l in range(layout.n_layers)
                            for name, gate in ((f"layer.{l}.heads", head_gates[l][head_of[l]]), (f"layer.{l}.ffn", block_gates[l][block_of[l]]))}
            loss = model(**batch).loss
            gate_list = [g for pair in zip(head_gates, block_gates) for g in pair]
            grads = torch.autograd.grad(loss, gate_list + list(weights.values()))
            gates[order] += torch.cat([g.abs() for g in grads[: len(gate_list)]]).detach().cpu().numpy()
            rows = len(batch["labels"])
            for name, g in zip(weights, grads[len(gate_list):]):
                fisher[name] += g.detach() ** 2 * rows
            count += 1
    finally:
        hooks.remove()
        for name, w in weights.items():
            w.requires_grad_(flags[name])
        model.train(was_training)
    return gates, {name: f / max(count, 1) for name, f in fisher.items()}, count


def unit_slices(layout: Layout, module_index: int, linear: torch.nn.Linear) -> list[tuple[slice | np.ndarray, bool]]:
    """Per unit of a module: the rows (``True``) or columns (``False``) of ``linear`` (one of its Linears) that unit
    owns. A head unit's share is an equal slice in unit order (``head_size`` for a head; with grouped-query attention
    a group's query heads in ``q_proj`` and ``o_proj``, its key/value head in ``k_proj`` and ``v_proj``)."""
    module = layout.modules[module_index]
    outputs = module.role in ("qkv", "intermediate")
    width = (linear.out_features if outputs else linear.in_features) // max(len(module.units), 1)
    out = []
    for position, u in enumerate(module.units):
        unit = layout.units[u]
        if unit.kind == "head":
            out.append((slice(position * width, (position + 1) * width), outputs))
        else:
            out.append((np.asarray(unit.members), outputs))
    return out


def measure_sensitivity(model, dataset: Dataset, layout: Layout, batch_size: int, show_progress: bool, per_channel: bool = False) -> Sensitivity:
    """Drop and int8 costs of every unit and module (int8 scales per tensor or per output row), from one gradient pass
    over ``dataset``."""
    names = [name for module in layout.modules for name in layout.module_names(module)]
    gates, fisher, batches = gradient_pass(model, dataset, layout, names, batch_size, show_progress)
    drop = gates / max(batches, 1)
    quant, fixed = [], np.zeros(len(layout.modules))
    for m, module in enumerate(layout.modules):
        errors = np.zeros(len(module.units))
        for name in layout.module_names(module):
            linear = model.get_submodule(name)
            weight = linear.weight.detach().float()
            weighted = 0.5 * fisher[name] * (weight - int8_rounding(weight, per_channel)) ** 2
            if not module.units:
                fixed[m] += float(weighted.sum())
            for j, (index, rows) in enumerate(unit_slices(layout, m, linear)):
                errors[j] += float(weighted[index].sum() if rows else weighted[:, index].sum())
        quant.append(errors)
    return Sensitivity(drop=drop, quant=quant, batches=batches, quant_fixed=fixed)
