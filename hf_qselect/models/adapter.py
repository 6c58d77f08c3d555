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

    def set_layers(self, model: Any, layers: list[nn.Module]) -> None:
        """Replace the layer list (after layers were removed) and renumber what the cache needs."""
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

    def set_head_count(self, layer: nn.Module, heads: int, config: Any) -> None:
        """Update the attention module's own head bookkeeping after its Linears were sliced to ``heads``."""

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

    def describe(self) -> str:
        return f"{self.family} ({', '.join(self.model_types)})"
