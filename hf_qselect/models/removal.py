"""Physical removal of heads, FFN neurons and layers through a family's adapter, and the plan it records.

The plan is stored in ``config.hf_qselect_pruning`` (per-layer heads and FFN widths, the original sizes) so that
:func:`~hf_qselect.models.saved.load_pruned` can rebuild shapes ``from_pretrained`` cannot. Every replacement
module is built before the model is touched: a failure leaves the model as it was.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .adapter import ModelAdapter
from .registry import adapter_for
from .linear import head_index, keep_inputs, keep_outputs

PLAN_KEY = "hf_qselect_pruning"


def sliced_layer(adapter: ModelAdapter, layer: nn.Module, config: Any, heads: list[int] | None,
                 neurons: list[int] | None) -> dict[str, nn.Module]:
    """``{name relative to layer: new Linear}`` keeping query heads ``heads`` and FFN neurons ``neurons`` (``None``: all)."""
    replacement: dict[str, nn.Module] = {}
    if heads is not None:
        size = adapter.head_dim(config)
        if adapter.kv_heads(layer, config) != adapter.heads(layer, config):
            raise NotImplementedError(f"{adapter.family}: removing query heads of grouped-query attention needs key/value groups")
        rows = head_index(sorted(heads), size)
        for role in ("query", "key", "value"):
            for name in adapter.linear(layer, role):
                replacement[name] = keep_outputs(layer.get_submodule(name), rows)
        for name in adapter.linear(layer, "attention_output"):
            replacement[name] = keep_inputs(layer.get_submodule(name), rows)
    if neurons is not None:
        index = torch.as_tensor(sorted(neurons), dtype=torch.long)
        for name in adapter.linear(layer, "ffn_input"):
            replacement[name] = keep_outputs(layer.get_submodule(name), index)
        for name in adapter.linear(layer, "ffn_output"):
            replacement[name] = keep_inputs(layer.get_submodule(name), index)
    return replacement


def install(adapter: ModelAdapter, layer: nn.Module, config: Any, replacement: dict[str, nn.Module], heads: int | None) -> None:
    for name, module in replacement.items():
        layer.set_submodule(name, module)
    if heads is not None:
        adapter.set_head_count(layer, heads, config)


def apply_plan(model: Any, kept_layers: list[int], kept_heads: dict[int, list[int]], kept_neurons: dict[int, list[int]]) -> Any:
    """Physically remove everything not kept; record the plan in ``config``. Builds first, then swaps in."""
    adapter = adapter_for(model, what="structured pruning")
    config = model.config
    before = adapter.shape(model)
    layers = adapter.layers(model)
    built = [(layers[i], sliced_layer(adapter, layers[i], config, kept_heads.get(i), kept_neurons.get(i)),
              len(kept_heads[i]) if i in kept_heads else None) for i in kept_layers]
    widths = [len(kept_neurons[i]) if i in kept_neurons else before.ffn_per_layer[i] for i in kept_layers]
    # --- from here on the model is modified; nothing below can fail on shapes built above
    for layer, replacement, heads in built:
        install(adapter, layer, config, replacement, heads)
    adapter.set_layers(model, [layers[i] for i in kept_layers])
    previous = getattr(config, PLAN_KEY, None) or {}
    config.num_hidden_layers = len(kept_layers)
    config.intermediate_size = int(max(widths))
    heads_now = [len(kept_heads[i]) if i in kept_heads else before.heads_per_layer[i] for i in kept_layers]
    setattr(config, PLAN_KEY, {
        "heads_per_layer": heads_now,
        "ffn_per_layer": [int(w) for w in widths],
        "original_num_hidden_layers": previous.get("original_num_hidden_layers", len(before.heads_per_layer)),
        "original_num_attention_heads": previous.get("original_num_attention_heads", config.num_attention_heads),
        "original_intermediate_size": previous.get("original_intermediate_size", max(before.ffn_per_layer)),
    })
    return model


def plan_is_uneven(config: Any) -> bool:
    """Whether the recorded plan has shapes ``from_pretrained`` cannot build: fewer heads somewhere, or FFN widths
    that differ between layers (``intermediate_size`` holds the widest)."""
    plan = getattr(config, PLAN_KEY, None) or {}
    heads = plan.get("heads_per_layer", [])
    widths = plan.get("ffn_per_layer", [])
    return any(h != config.num_attention_heads for h in heads) or any(w != config.intermediate_size for w in widths)


def pruned_skeleton(config: Any, model_class: Any) -> Any:
    """A randomly initialised model with the shapes recorded in ``config``'s pruning plan (weights are loaded next)."""
    adapter = adapter_for(config, what="loading a pruned model")
    plan = getattr(config, PLAN_KEY, None) or {}
    model = model_class.from_config(config)
    layers = adapter.layers(model)
    heads_per_layer = plan.get("heads_per_layer", [config.num_attention_heads] * len(layers))
    widths = plan.get("ffn_per_layer", [config.intermediate_size] * len(layers))
    for layer, heads, width in zip(layers, heads_per_layer, widths):
        keep_heads = list(range(heads)) if heads != adapter.heads(layer, config) else None
        keep_neurons = list(range(width)) if width != adapter.ffn_width(layer) else None
        install(adapter, layer, config, sliced_layer(adapter, layer, config, keep_heads, keep_neurons), heads if keep_heads else None)
    return model
