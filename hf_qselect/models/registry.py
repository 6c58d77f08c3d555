"""The registry of model families: which adapter serves a model or a config, and the error that names them all."""
from __future__ import annotations

from typing import Any

from torch import nn

from .adapter import ModelAdapter
from .bert import BertAdapter
from .llama import LlamaAdapter

_REGISTRY: dict[str, ModelAdapter] = {}


def register_adapter(adapter: ModelAdapter | type) -> ModelAdapter:
    """Register ``adapter`` (an instance or a class) for each of its ``model_types``; returns the instance."""
    instance = adapter() if isinstance(adapter, type) else adapter
    if not instance.model_types:
        raise ValueError(f"{type(instance).__name__} names no model_types")
    for model_type in instance.model_types:
        _REGISTRY[model_type] = instance
    return instance


def unregister_adapter(adapter: ModelAdapter) -> None:
    for model_type in adapter.model_types:
        if _REGISTRY.get(model_type) is adapter:
            del _REGISTRY[model_type]


def registered() -> list[ModelAdapter]:
    """The registered adapters, each once."""
    seen: list[ModelAdapter] = []
    for adapter in _REGISTRY.values():
        if adapter not in seen:
            seen.append(adapter)
    return seen


def supported_text() -> str:
    return "; ".join(a.describe() for a in registered())


def is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def adapter_for(model_or_config: Any, *, what: str = "this operation") -> ModelAdapter:
    """The adapter of a model (checked against its structure) or of a config; a one-line ``TypeError`` naming the
    supported families otherwise."""
    if is_peft(model_or_config):
        raise TypeError(f"{what} needs a plain model, got a PEFT-wrapped {type(model_or_config).__name__}: "
                        "call model = model.merge_and_unload() first")
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    adapter = _REGISTRY.get(model_type)
    is_model = isinstance(model_or_config, nn.Module)
    if adapter is None or (is_model and adapter.layers(model_or_config) is None):
        name = type(model_or_config).__name__
        raise TypeError(f"{what} supports {supported_text()}; got {name} (model_type={model_type!r})")
    return adapter


for _builtin in (BertAdapter, LlamaAdapter):
    register_adapter(_builtin)
