"""Sliced copies of ``nn.Linear``: the one primitive every physical removal is built from."""
from __future__ import annotations

import torch
from torch import nn


def keep_outputs(linear: nn.Linear, index: torch.Tensor) -> nn.Linear:
    """A new Linear keeping output features ``index``."""
    new = nn.Linear(linear.in_features, len(index), bias=linear.bias is not None, device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(linear.weight[index])
        if linear.bias is not None:
            new.bias.copy_(linear.bias[index])
    return new


def keep_inputs(linear: nn.Linear, index: torch.Tensor) -> nn.Linear:
    """A new Linear keeping input features ``index``."""
    new = nn.Linear(len(index), linear.out_features, bias=linear.bias is not None, device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(linear.weight[:, index])
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    return new


def head_index(heads: list[int], size: int) -> torch.Tensor:
    """The feature indices of ``heads`` (each ``size`` wide), in order."""
    return torch.cat([torch.arange(h * size, (h + 1) * size) for h in heads]) if heads else torch.zeros(0, dtype=torch.long)
