"""The Llama family: Llama, Qwen2 and Mistral decoders (``model.layers[i].self_attn.{q,k,v,o}_proj`` and
``mlp.{gate,up,down}_proj``), with grouped-query attention.

Query heads come in key/value groups: group ``g`` is key/value head ``g`` with the query heads that share it. After
pruning every group a layer keeps holds the same number of query heads (``repeat_kv`` needs that); the attention
module's ``num_key_value_groups`` is set per layer, and the head size is written into the config (``head_dim``), so
a model pruned alike in every layer reloads with plain ``from_pretrained``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .adapter import ModelAdapter

_LINEARS = {"query": ("self_attn.q_proj",), "key": ("self_attn.k_proj",), "value": ("self_attn.v_proj",),
            "attention_output": ("self_attn.o_proj",), "ffn_input": ("mlp.gate_proj", "mlp.up_proj"), "ffn_output": ("mlp.down_proj",)}


class LlamaAdapter(ModelAdapter):
    model_types = ("llama", "qwen2", "mistral")
    family = "the Llama family"

    def layers(self, model: Any) -> nn.ModuleList | None:
        base = getattr(model, "base_model", model)
        layers = getattr(base, "layers", None)
        if layers is None or not len(layers) or not hasattr(layers[0], "self_attn") or not hasattr(layers[0], "mlp"):
            return None
        return layers

    def set_layers(self, model: Any, kept: list[int]) -> None:
        base = model.base_model
        base.layers = nn.ModuleList([base.layers[i] for i in kept])
        for index, layer in enumerate(base.layers):
            layer.self_attn.layer_idx = index
            if hasattr(layer, "layer_idx"):
                layer.layer_idx = index
        types = getattr(model.config, "layer_types", None)
        if types is not None and len(types) > max(kept, default=-1):
            model.config.layer_types = [types[i] for i in kept]

    def linear(self, layer: nn.Module, role: str) -> tuple[str, ...]:
        return _LINEARS[role]

    def head_dim(self, config: Any) -> int:
        return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads

    def set_head_count(self, layer: nn.Module, heads: int, kv_heads: int, config: Any) -> None:
        layer.self_attn.num_key_value_groups = heads // kv_heads
        layer.self_attn.head_dim = self.head_dim(config)

    def uniform_config(self, config: Any, heads: int, kv_heads: int, width: int) -> bool:
        """Rewrite the counts (``head_dim`` made explicit first: ``hidden / heads`` no longer is it), unless the family's
        config would refuse them when loaded (``LlamaConfig`` insists that the hidden size is a multiple of the head count)."""
        values = {**config.to_dict(), "head_dim": self.head_dim(config), "num_attention_heads": int(heads),
                  "num_key_value_heads": int(kv_heads), "intermediate_size": int(width)}
        try:
            type(config).from_dict(values)
        except Exception:  # noqa: BLE001 - any refusal means from_pretrained would refuse the saved config too
            return False
        config.head_dim = self.head_dim(config)
        config.num_attention_heads, config.num_key_value_heads, config.intermediate_size = int(heads), int(kv_heads), int(width)
        return True
