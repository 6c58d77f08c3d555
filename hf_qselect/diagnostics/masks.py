"""Global magnitude pruning (Liu et al.'s code: L1 over all weight matrices at one threshold) and keeping a mask fixed."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


def task_head(model: nn.Module) -> str | None:
    """The name of a classifier's output layer: the last ``nn.Linear``, when it has ``config.num_labels`` outputs."""
    labels = getattr(getattr(model, "config", None), "num_labels", None)
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if labels and linears and linears[-1][1].out_features == labels:
        return linears[-1][0]
    return None


def prunable(model: nn.Module, include_head: bool = False) -> dict[str, torch.Tensor]:
    """The weight matrices of every ``nn.Linear`` (biases, norms and embeddings stay dense), without the task head
    unless ``include_head``: a new head is small and random, and one global threshold would zero it whole."""
    head = None if include_head else task_head(model)
    return {f"{name}.weight" if name else "weight": module.weight for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and name != head}


def magnitude_masks(model: nn.Module, sparsity: float, include_head: bool = False, scope: str = "global") -> dict[str, torch.Tensor]:
    """Boolean keep-masks removing the ``sparsity`` fraction of smallest-|w| entries: over all Linear weights at once
    (``scope="global"``, the authors' choice) or in every matrix alike (``scope="layer"``). The task head stays
    dense unless ``include_head``."""
    weights = prunable(model, include_head)
    if not weights:
        raise TypeError(f"{type(model).__name__} has no nn.Linear weights to prune")
    if sparsity <= 0:
        return {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}
    if scope == "layer":
        return {name: w.detach().abs() > torch.kthvalue(w.detach().abs().flatten(), max(int(round(sparsity * w.numel())), 1)).values
                for name, w in weights.items()}
    flat = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * flat.numel()))
    threshold = torch.kthvalue(flat, max(k, 1)).values
    return {name: w.detach().abs() > threshold for name, w in weights.items()}


def emptied(masks: dict[str, torch.Tensor]) -> list[str]:
    """The matrices a mask removes whole: the network is cut there and nothing before them can learn."""
    return [name for name, mask in masks.items() if not bool(mask.any())]


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero every masked-out weight, in place."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].dtype))


def sparsity_of(model: nn.Module) -> float:
    """Share of zeros among the prunable weights."""
    weights = list(prunable(model).values())
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / max(total, 1))


def fixed_mask_callback(masks: dict[str, torch.Tensor]) -> Any:
    """A ``transformers`` callback keeping pruned weights at zero: applied before training and after every step."""
    from transformers import TrainerCallback

    class FixedMaskCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            apply_masks(model, masks)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            apply_masks(model, masks)

    return FixedMaskCallback()
