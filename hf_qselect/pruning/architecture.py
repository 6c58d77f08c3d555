"""The BERT-family layout that pruning edits, the physical removal of units, and reloading a pruned model.

transformers 5 has no ``prune_heads``/``config.pruned_heads`` any more, and BERT derives the head size from
``hidden_size / num_attention_heads``, so a model whose layers keep different head counts cannot be rebuilt
by plain ``from_pretrained``. The pruning plan is therefore stored in ``config.hf_qselect_pruning`` and
:func:`load_pruned` rebuilds the shapes before loading the weights. FFN widths may differ between layers (the
plan's ``ffn_per_layer``; ``intermediate_size`` is the widest). Removed layers and FFN neurons alone at one
width round-trip through plain ``from_pretrained`` as well.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

SUPPORTED = ("bert", "roberta", "xlm-roberta", "camembert", "electra")
PLAN_KEY = "hf_qselect_pruning"


@dataclass(frozen=True)
class Shape:
    """What the pruner must see again at ``apply`` time: the structure it was fitted on."""

    model_type: str
    hidden_size: int
    heads_per_layer: tuple[int, ...]
    ffn_per_layer: tuple[int, ...]


def check_supported(model: Any) -> None:
    """Raise ``TypeError`` naming the supported families unless ``model`` is a BERT-style encoder."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED or encoder_layers(model) is None:
        raise TypeError(
            f"structured pruning supports the BERT family ({', '.join(SUPPORTED)}); got "
            f"{type(model).__name__} (model_type={model_type!r})"
        )


def encoder_layers(model: Any) -> nn.ModuleList | None:
    base = getattr(model, "base_model", model)
    encoder = getattr(base, "encoder", None)
    return getattr(encoder, "layer", None)


def head_size(model: Any) -> int:
    return model.config.hidden_size // model.config.num_attention_heads


def shape_of(model: Any) -> Shape:
    """The current structure: heads and FFN width of every layer."""
    size = head_size(model)
    layers = encoder_layers(model)
    return Shape(
        model_type=model.config.model_type,
        hidden_size=model.config.hidden_size,
        heads_per_layer=tuple(layer.attention.self.query.out_features // size for layer in layers),
        ffn_per_layer=tuple(layer.intermediate.dense.out_features for layer in layers),
    )


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


def _head_index(heads: list[int], size: int) -> torch.Tensor:
    return torch.cat([torch.arange(h * size, (h + 1) * size) for h in heads]) if heads else torch.zeros(0, dtype=torch.long)


def plan_modules(model: Any, kept_layers: list[int], kept_heads: dict[int, list[int]],
                 kept_neurons: dict[int, list[int]]) -> list[tuple[nn.Module, dict[str, nn.Linear], int | None]]:
    """Build the sliced replacement Linears of each kept layer without touching ``model``.

    Returns ``(layer, {name: new Linear}, kept head count or None)`` in the original layer order.
    """
    size = head_size(model)
    new_layers = []
    for index in kept_layers:
        layer = encoder_layers(model)[index]
        heads = kept_heads.get(index)
        neurons = kept_neurons.get(index)
        replacement = {}
        if heads is not None:
            rows = _head_index(sorted(heads), size)
            replacement.update(
                query=keep_outputs(layer.attention.self.query, rows),
                key=keep_outputs(layer.attention.self.key, rows),
                value=keep_outputs(layer.attention.self.value, rows),
                attention_out=keep_inputs(layer.attention.output.dense, rows),
            )
        if neurons is not None:
            idx = torch.as_tensor(sorted(neurons), dtype=torch.long)
            replacement.update(intermediate=keep_outputs(layer.intermediate.dense, idx), output=keep_inputs(layer.output.dense, idx))
        new_layers.append((layer, replacement, len(heads) if heads is not None else None))
    return new_layers


def apply_plan(model: Any, kept_layers: list[int], kept_heads: dict[int, list[int]], kept_neurons: dict[int, list[int]]) -> Any:
    """Physically remove everything not kept; record the plan in ``config``. Builds first, then swaps in."""
    check_supported(model)
    before = shape_of(model)
    built = plan_modules(model, kept_layers, kept_heads, kept_neurons)
    widths = [len(kept_neurons[i]) if i in kept_neurons else before.ffn_per_layer[i] for i in kept_layers]
    # --- from here on the model is modified; nothing below can fail on shapes built above
    layers = encoder_layers(model)
    for layer, replacement, n_heads in built:
        if "query" in replacement:
            attention = layer.attention.self
            attention.query, attention.key, attention.value = replacement["query"], replacement["key"], replacement["value"]
            layer.attention.output.dense = replacement["attention_out"]
            attention.num_attention_heads = n_heads
            attention.all_head_size = n_heads * attention.attention_head_size
        if "intermediate" in replacement:
            layer.intermediate.dense = replacement["intermediate"]
            layer.output.dense = replacement["output"]
    model.base_model.encoder.layer = nn.ModuleList([layers[i] for i in kept_layers])
    for new_index, layer in enumerate(model.base_model.encoder.layer):
        if hasattr(layer.attention.self, "layer_idx"):
            layer.attention.self.layer_idx = new_index
    previous = getattr(model.config, PLAN_KEY, None) or {}
    model.config.num_hidden_layers = len(kept_layers)
    model.config.intermediate_size = int(max(widths))
    heads_now = [len(kept_heads[i]) if i in kept_heads else before.heads_per_layer[i] for i in kept_layers]
    setattr(model.config, PLAN_KEY, {
        "heads_per_layer": heads_now,
        "ffn_per_layer": [int(w) for w in widths],
        "original_num_hidden_layers": previous.get("original_num_hidden_layers", len(before.heads_per_layer)),
        "original_num_attention_heads": previous.get("original_num_attention_heads", model.config.num_attention_heads),
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
    plan = getattr(config, PLAN_KEY, None) or {}
    model = model_class.from_config(config)
    size = config.hidden_size // config.num_attention_heads
    layers = encoder_layers(model)
    heads_per_layer = plan.get("heads_per_layer", [config.num_attention_heads] * len(layers))
    widths = plan.get("ffn_per_layer", [config.intermediate_size] * len(layers))
    for layer, heads, width in zip(layers, heads_per_layer, widths):
        if heads != config.num_attention_heads:
            rows = _head_index(list(range(heads)), size)
            attention = layer.attention.self
            attention.query, attention.key, attention.value = keep_outputs(attention.query, rows), keep_outputs(attention.key, rows), keep_outputs(attention.value, rows)
            layer.attention.output.dense = keep_inputs(layer.attention.output.dense, rows)
            attention.num_attention_heads = heads
            attention.all_head_size = heads * size
        if width != layer.intermediate.dense.out_features:
            index = torch.arange(width)
            layer.intermediate.dense = keep_outputs(layer.intermediate.dense, index)
            layer.output.dense = keep_inputs(layer.output.dense, index)
    return model


def load_pruned(path: str | Path, model_class: Any = None, **kwargs) -> Any:
    """``from_pretrained`` for models pruned by hf_qselect (and for any other model, unchanged)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    model_class = model_class or AutoModelForSequenceClassification
    config = AutoConfig.from_pretrained(path, **kwargs)
    plan = getattr(config, PLAN_KEY, None)
    if not plan or not plan_is_uneven(config):
        return model_class.from_pretrained(path, config=config)
    model = pruned_skeleton(config, model_class)
    from safetensors.torch import load_file

    weights = Path(path) / "model.safetensors"
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"{weights} does not match the pruned structure: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()
