"""Physical removal of heads, FFN neurons and layers through a family's adapter, and the shape record it leaves.

The pruning record (``config.hf_qselect_pruning``: per-layer heads, key/value heads and FFN widths, the original
sizes) says what the model kept, so that :func:`~hf_qselect.models.saved.load_pruned` can rebuild shapes
``from_pretrained`` cannot. Every replacement
module is built before the model is touched: a failure leaves the model as it was.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .adapter import PRUNING_KEY, ModelAdapter
from .linear import head_index, keep_inputs, keep_outputs
from .registry import adapter_for


def kept_groups(heads: list[int], n_heads: int, n_kv: int) -> list[int]:
    """The key/value groups that keep query heads ``heads`` (group ``g`` holds query heads ``g*G .. g*G+G-1``,
    ``G = n_heads / n_kv``); every kept group must keep the same number of query heads, as ``repeat_kv`` needs."""
    size = n_heads // n_kv
    counts: dict[int, int] = {}
    for h in heads:
        counts[h // size] = counts.get(h // size, 0) + 1
    if len(set(counts.values())) > 1:
        raise ValueError(f"grouped-query attention needs the same number of query heads in every kept key/value group; "
                         f"got {dict(sorted(counts.items()))} (group: heads)")
    return sorted(counts)


def grouped_heads(heads: int, kv_heads: int, n_heads: int, n_kv: int) -> list[int]:
    """``heads`` query heads spread evenly over the first ``kv_heads`` groups (the shape a skeleton is cut to)."""
    size, per_group = n_heads // n_kv, heads // kv_heads
    return [g * size + j for g in range(kv_heads) for j in range(per_group)]


def sliced_layer(adapter: ModelAdapter, layer: nn.Module, config: Any, heads: list[int] | None,
                 neurons: list[int] | None) -> tuple[dict[str, nn.Module], int | None]:
    """``({name relative to layer: new Linear}, kept key/value heads)`` keeping query heads ``heads`` (with their
    key/value groups) and FFN neurons ``neurons`` (``None``: all)."""
    replacement: dict[str, nn.Module] = {}
    kv_kept = None
    if heads is not None:
        size = adapter.head_dim(config)
        n_heads, n_kv = adapter.heads(layer, config), adapter.kv_heads(layer, config)
        heads = sorted(heads)
        rows = head_index(heads, size)
        kv_rows = rows
        kv_kept = len(heads)
        if n_kv != n_heads:
            groups = kept_groups(heads, n_heads, n_kv)
            kv_rows, kv_kept = head_index(groups, size), len(groups)
        for role, index in (("query", rows), ("key", kv_rows), ("value", kv_rows)):
            for name in adapter.linear(layer, role):
                replacement[name] = keep_outputs(layer.get_submodule(name), index)
        for name in adapter.linear(layer, "attention_output"):
            replacement[name] = keep_inputs(layer.get_submodule(name), rows)
    if neurons is not None:
        index = torch.as_tensor(sorted(neurons), dtype=torch.long)
        for name in adapter.linear(layer, "ffn_input"):
            replacement[name] = keep_outputs(layer.get_submodule(name), index)
        for name in adapter.linear(layer, "ffn_output"):
            replacement[name] = keep_inputs(layer.get_submodule(name), index)
    return replacement, kv_kept


def install(adapter: ModelAdapter, layer: nn.Module, config: Any, replacement: dict[str, nn.Module], heads: int | None,
            kv_heads: int | None) -> None:
    for name, module in replacement.items():
        layer.set_submodule(name, module)
    if heads is not None:
        adapter.set_head_count(layer, heads, kv_heads, config)


def remove_units(model: Any, kept_layers: list[int], kept_heads: dict[int, list[int]], kept_neurons: dict[int, list[int]]) -> Any:
    """Physically remove everything not kept; keep the record in ``config``. Builds first, then swaps in.

    ``kept_heads[l]`` are query heads; with grouped-query attention the key/value groups that keep none go too, and
    every kept group must keep as many query heads as the others. When every layer ends with the same shape and the
    family's config can say so, the config is rewritten and plain ``from_pretrained`` reloads the model."""
    adapter = adapter_for(model, what="structured pruning")
    config = model.config
    before = adapter.shape(model)
    layers = adapter.layers(model)
    built = []
    for i in kept_layers:
        replacement, kv = sliced_layer(adapter, layers[i], config, kept_heads.get(i), kept_neurons.get(i))
        built.append((layers[i], replacement, len(kept_heads[i]) if i in kept_heads else None, kv))
    widths = [len(kept_neurons[i]) if i in kept_neurons else before.ffn_per_layer[i] for i in kept_layers]
    heads_now = [len(kept_heads[i]) if i in kept_heads else before.heads_per_layer[i] for i in kept_layers]
    kv_now = [kv if kv is not None else before.kv_heads_per_layer[i] for i, (_, _, _, kv) in zip(kept_layers, built)]
    # --- from here on the model is modified; nothing below can fail on shapes built above
    for layer, replacement, heads, kv in built:
        install(adapter, layer, config, replacement, heads, kv)
    adapter.set_layers(model, kept_layers)
    previous = getattr(config, PRUNING_KEY, None) or {}
    grouped = any(k != h for k, h in zip(before.kv_heads_per_layer, before.heads_per_layer)) or "kv_heads_per_layer" in previous
    record = {
        "heads_per_layer": heads_now,
        "ffn_per_layer": [int(w) for w in widths],
        "original_num_hidden_layers": previous.get("original_num_hidden_layers", len(before.heads_per_layer)),
        "original_num_attention_heads": previous.get("original_num_attention_heads", config.num_attention_heads),
        "original_intermediate_size": previous.get("original_intermediate_size", max(before.ffn_per_layer)),
    }
    if grouped:
        record["kv_heads_per_layer"] = [int(k) for k in kv_now]
        record["original_num_key_value_heads"] = previous.get("original_num_key_value_heads", config.num_key_value_heads)
    config.num_hidden_layers = len(kept_layers)
    uniform = len(set(heads_now)) == 1 and len(set(kv_now)) == 1 and len(set(widths)) == 1
    if not (uniform and adapter.uniform_config(config, heads_now[0], kv_now[0], widths[0])):
        config.intermediate_size = int(max(widths))
    setattr(config, PRUNING_KEY, record)
    return model


def needs_load_pruned(config: Any) -> bool:
    """Whether the pruning record has shapes ``from_pretrained`` cannot build: fewer heads somewhere, or FFN widths
    that differ between layers (``intermediate_size`` holds the widest)."""
    record = getattr(config, PRUNING_KEY, None) or {}
    heads = record.get("heads_per_layer", [])
    widths = record.get("ffn_per_layer", [])
    kv = record.get("kv_heads_per_layer", [])
    return (any(h != config.num_attention_heads for h in heads) or any(w != config.intermediate_size for w in widths)
            or any(k != getattr(config, "num_key_value_heads", None) for k in kv))


def pruned_skeleton(config: Any, model_class: Any) -> Any:
    """A randomly initialised model with the shapes recorded in ``config``'s pruning record (weights are loaded next)."""
    adapter = adapter_for(config, what="loading a pruned model")
    shape = adapter.config_shape(config)
    model = model_class.from_config(config)
    for layer, heads, kv, width in zip(adapter.layers(model), shape.heads_per_layer, shape.kv_heads_per_layer, shape.ffn_per_layer):
        n_heads, n_kv = adapter.heads(layer, config), adapter.kv_heads(layer, config)
        keep_heads = None
        if heads != n_heads or kv != n_kv:
            keep_heads = grouped_heads(heads, kv, n_heads, n_kv) if n_kv != n_heads else list(range(heads))
        keep_neurons = list(range(width)) if width != adapter.ffn_width(layer) else None
        replacement, kv_kept = sliced_layer(adapter, layer, config, keep_heads, keep_neurons)
        install(adapter, layer, config, replacement, heads if keep_heads else None, kv_kept)
    return model
