"""The model-layer protocol: what an application may ask of a transformer, and the registry of families.

An application never names a model attribute. It asks ``registry.adapter_for`` for the family's
:class:`ModelAdapter` and uses its methods: the layers, the attention and FFN modules that carry the units, the
Linear roles, the head and key/value-head counts, pooling, model inputs, the pad id. A new family is one subclass
(see ``bert.py``) registered with ``registry.register_adapter`` plus its tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

# The Linear roles an adapter names, per layer: attention inputs (query/key/value), the attention output projection
# (its input carries the heads), the FFN input projections (their outputs are the FFN neurons) and the FFN output
# projection (its input carries the neurons).
ROLES = ("query", "key", "value", "attention_output", "ffn_input", "ffn_output")
PRUNING_KEY = "hf_qselect_pruning"  # the config attribute holding the pruning record (what each layer kept)


@dataclass(frozen=True)
class Shape:
    """The structure a fitted editor must see again at ``apply`` time: heads, key/value heads and FFN width per layer."""

    model_type: str
    hidden_size: int
    heads_per_layer: tuple[int, ...]
    ffn_per_layer: tuple[int, ...]
    kv_heads_per_layer: tuple[int, ...] = field(default=(), compare=True)


class ModelAdapter:
    """One model family's layout. Subclasses set ``model_types`` and implement the methods that raise here."""

    model_types: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = ""
    model_inputs: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")
    vocabulary: ClassVar[str | None] = None  # the tokenizer model vocabulary pruning can renumber ("WordPiece")

    # ------------------------------------------------------------------ structure
    def layers(self, model: Any) -> nn.ModuleList | None:
        """The model's transformer layers, or ``None`` if ``model`` does not have this family's layout."""
        raise NotImplementedError

    def set_layers(self, model: Any, kept: list[int]) -> None:
        """Keep layers ``kept`` (indices into the current layers, in order) and renumber what the cache needs."""
        raise NotImplementedError

    def linear(self, layer: nn.Module, role: str) -> tuple[str, ...]:
        """The names (relative to ``layer``) of the Linears of ``role`` (one of :data:`ROLES`)."""
        raise NotImplementedError

    def head_dim(self, config: Any) -> int:
        raise NotImplementedError

    def heads(self, layer: nn.Module, config: Any) -> int:
        """Query heads of ``layer``."""
        return layer.get_submodule(self.linear(layer, "query")[0]).out_features // self.head_dim(config)

    def kv_heads(self, layer: nn.Module, config: Any) -> int:
        """Key/value heads of ``layer`` (equal to the query heads without grouped-query attention)."""
        return layer.get_submodule(self.linear(layer, "key")[0]).out_features // self.head_dim(config)

    def ffn_width(self, layer: nn.Module) -> int:
        return layer.get_submodule(self.linear(layer, "ffn_output")[0]).in_features

    def head_carrier(self, layer: nn.Module) -> nn.Module:
        """The module whose input holds the heads' outputs side by side (the attention output projection)."""
        return layer.get_submodule(self.linear(layer, "attention_output")[0])

    def ffn_carrier(self, layer: nn.Module) -> nn.Module:
        """The module whose input holds the FFN neurons' activations (the FFN output projection)."""
        return layer.get_submodule(self.linear(layer, "ffn_output")[0])

    def set_head_count(self, layer: nn.Module, heads: int, kv_heads: int, config: Any) -> None:
        """Update the attention module's own head bookkeeping after its Linears were sliced to ``heads`` query and
        ``kv_heads`` key/value heads."""

    def uniform_config(self, config: Any, heads: int, kv_heads: int, width: int) -> bool:
        """Write the same-in-every-layer shape into ``config`` so plain ``from_pretrained`` rebuilds it; ``False`` (and
        ``config`` untouched) when the family's config cannot express it (BERT derives the head size from the count)."""
        if heads != config.num_attention_heads or kv_heads != getattr(config, "num_key_value_heads", config.num_attention_heads):
            return False
        config.intermediate_size = int(width)
        return True

    def can_generate(self, model: Any) -> bool:
        """Whether ``model`` is a causal LM (its loss is the next-token loss on ``labels``)."""
        return bool(getattr(model, "can_generate", lambda: False)())
    # ------------------------------------------------------------------ inputs and outputs
    def pad_id(self, config: Any) -> int:
        pad = getattr(config, "pad_token_id", None)
        return int(pad) if pad is not None else 0

    def pooled(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One feature vector per row (mean over the tokens the mask keeps, by default)."""
        hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weight = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weight).sum(1) / weight.sum(1).clamp(min=1.0)

    def other_linears(self, model: Any) -> list[str]:
        """Linears outside the layers that compression may quantize (a pooler), by name relative to ``model``."""
        return []

    # ------------------------------------------------------------------ derived
    def layer_prefix(self, model: Any) -> str:
        layers = self.layers(model)
        return next(name for name, module in model.named_modules() if module is layers)

    def shape(self, model: Any) -> Shape:
        config = model.config
        layers = self.layers(model)
        return Shape(model_type=config.model_type, hidden_size=config.hidden_size,
                     heads_per_layer=tuple(self.heads(layer, config) for layer in layers),
                     ffn_per_layer=tuple(self.ffn_width(layer) for layer in layers),
                     kv_heads_per_layer=tuple(self.kv_heads(layer, config) for layer in layers))

    def config_shape(self, config: Any) -> Shape:
        """The shape a saved config describes (its pruning record's per-layer counts, if it has one), without building
        the model: what a budget is checked against before any weight is loaded."""
        record = getattr(config, PRUNING_KEY, None) or {}
        layers = config.num_hidden_layers
        heads = record.get("heads_per_layer", [config.num_attention_heads] * layers)
        kv = record.get("kv_heads_per_layer", [getattr(config, "num_key_value_heads", None) or config.num_attention_heads] * layers)
        if "kv_heads_per_layer" not in record and kv[0] == config.num_attention_heads:
            kv = list(heads)
        return Shape(model_type=config.model_type, hidden_size=config.hidden_size, heads_per_layer=tuple(heads),
                     ffn_per_layer=tuple(record.get("ffn_per_layer", [config.intermediate_size] * layers)), kv_heads_per_layer=tuple(kv))

    def describe(self) -> str:
        return f"{self.family} ({', '.join(self.model_types)})"


def unit_weight_norms(adapter: ModelAdapter, model: Any) -> tuple[list, list, list, list]:
    """Per layer: each query head's, each key/value head's and each FFN neuron's weight norm, and the layer's.

    A query head owns its rows of the query projection and its columns of the attention output projection; a
    key/value head its rows of the key and value projections; a neuron its rows of the FFN input projections and its
    column of the FFN output projection (magnitude pruning's scores)."""
    import numpy as np

    config = model.config
    size = adapter.head_dim(config)
    heads, kv, neurons, layers = [], [], [], []
    with torch.no_grad():
        for layer in adapter.layers(model):
            weight = {role: [layer.get_submodule(n).weight.float() for n in adapter.linear(layer, role)] for role in
                      ("query", "key", "value", "attention_output", "ffn_input", "ffn_output")}
            rows = lambda ws: sum((w ** 2).sum(1) for w in ws)  # noqa: E731
            cols = lambda ws: sum((w ** 2).sum(0) for w in ws)  # noqa: E731
            q = rows(weight["query"]).view(-1, size).sum(1) + cols(weight["attention_output"]).view(-1, size).sum(1)
            k = (rows(weight["key"]) + rows(weight["value"])).view(-1, size).sum(1)
            n = rows(weight["ffn_input"]) + cols(weight["ffn_output"])
            heads.append(np.sqrt(q.cpu().numpy()))
            kv.append(np.sqrt(k.cpu().numpy()))
            neurons.append(np.sqrt(n.cpu().numpy()))
            layers.append(float(np.sqrt(sum(float((p.float() ** 2).sum()) for p in layer.parameters()))))
    return heads, kv, neurons, layers
