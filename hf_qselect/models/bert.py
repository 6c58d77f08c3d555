"""The BERT family: BERT, RoBERTa, XLM-R, CamemBERT and ELECTRA encoders (``encoder.layer[i]``)."""
from __future__ import annotations

from typing import Any

from torch import nn

from .adapter import ModelAdapter

_LINEARS = {"query": ("attention.self.query",), "key": ("attention.self.key",), "value": ("attention.self.value",),
            "attention_output": ("attention.output.dense",), "ffn_input": ("intermediate.dense",), "ffn_output": ("output.dense",)}


class BertAdapter(ModelAdapter):
    model_types = ("bert", "roberta", "xlm-roberta", "camembert", "electra")
    family = "the BERT family"
    model_inputs = ("input_ids", "attention_mask", "token_type_ids")
    vocabulary = "WordPiece"

    def layers(self, model: Any) -> nn.ModuleList | None:
        base = getattr(model, "base_model", model)
        return getattr(getattr(base, "encoder", None), "layer", None)

    def set_layers(self, model: Any, kept: list[int]) -> None:
        layers = self.layers(model)
        model.base_model.encoder.layer = nn.ModuleList([layers[i] for i in kept])
        for index, layer in enumerate(model.base_model.encoder.layer):
            if hasattr(layer.attention.self, "layer_idx"):
                layer.attention.self.layer_idx = index

    def linear(self, layer: nn.Module, role: str) -> tuple[str, ...]:
        return _LINEARS[role]

    def head_dim(self, config: Any) -> int:
        return config.hidden_size // config.num_attention_heads

    def set_head_count(self, layer: nn.Module, heads: int, kv_heads: int, config: Any) -> None:
        attention = layer.attention.self
        attention.num_attention_heads = heads
        attention.all_head_size = heads * attention.attention_head_size

    def other_linears(self, model: Any) -> list[str]:
        dense = getattr(getattr(getattr(model, "base_model", model), "pooler", None), "dense", None)
        if not isinstance(dense, nn.Linear):
            return []
        return [next(n for n, m in model.named_modules() if m is dense)]

