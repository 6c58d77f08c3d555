"""Dynamic int8 for the chosen Linears, and sizes as stored.

``torch.ao.quantization.quantize_dynamic`` is deprecated in favour of torchao, but on this CPU with torch 2.13 it
is the fast path: MiniLM at 8x128 on 2 threads ran 4.0x faster than fp32 with it, and 1.2x with torchao's
``Int8DynamicActivationInt8WeightConfig`` (``benchmarks/compression.py --engines``). It is used until that changes.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

QUANTIZED_LINEAR = torch.ao.nn.quantized.dynamic.Linear
SCALE_BYTES = 8  # fp32 scale + int32 zero point per quantized Linear (per output row with per-channel scales)


def quantized_modules(model) -> list[str]:
    """Names of the modules of ``model`` that are already quantized."""
    return [name for name, module in model.named_modules() if isinstance(module, QUANTIZED_LINEAR)
            or (type(module).__module__.startswith(("torch.ao.nn.quantized", "torch.nn.quantized"))
                and type(module).__name__ != "LinearPackedParams")]


def check_not_quantized(model) -> None:
    done = quantized_modules(model)
    if done:
        raise ValueError(f"the model is already quantized ({len(done)} modules, e.g. {done[0]}); compress the fp32 model instead")


def int8_qconfig(per_channel: bool = False):
    """``quantize_dynamic``'s int8 config: one symmetric weight scale per tensor, or per output row."""
    return torch.ao.quantization.per_channel_dynamic_qconfig if per_channel else torch.ao.quantization.default_dynamic_qconfig


def quantize_linears(model, names: list[str], per_channel: bool = False):
    """Quantize the named ``nn.Linear`` modules of ``model`` to dynamic int8 (symmetric; one scale per Linear, or per
    output row with ``per_channel``), in place; returns ``model``."""
    if not names:
        return model
    missing = [n for n in names if not isinstance(model.get_submodule(n), nn.Linear)]
    if missing:
        raise ValueError(f"not nn.Linear modules, cannot be quantized: {missing[:3]}")
    qconfig = int8_qconfig(per_channel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(model, {name: qconfig for name in names}, dtype=torch.qint8, inplace=True)
    return model


def is_per_channel(weight: torch.Tensor) -> bool:
    return weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)


def scale_count(weight: torch.Tensor) -> int:
    """How many (scale, zero point) pairs a quantized weight carries: one per row per channel, else one."""
    return int(weight.q_per_channel_scales().numel()) if is_per_channel(weight) else 1


def is_embedding(name: str) -> bool:
    return ".embeddings." in f".{name}"


def embedding_weights(model) -> set[int]:
    """``id`` of the token embedding and the LM head (tied or not), whatever the family calls them."""
    found = set()
    for get in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, get, lambda: None)()
        if module is not None and getattr(module, "weight", None) is not None:
            found.add(id(module.weight))
    return found


def weight_bytes(model) -> tuple[int, int]:
    """``(non-embedding, total)`` bytes of the weights as :func:`save_compressed` stores them."""
    embeddings = embedding_weights(model)
    non_embedding = total = 0
    quantized = {}
    for name, module in model.named_modules():
        if isinstance(module, QUANTIZED_LINEAR):
            weight, bias = module._packed_params._weight_bias()
            quantized[name] = weight.numel() + SCALE_BYTES * scale_count(weight) + (bias.numel() * 4 if bias is not None else 0)
    for name, size in quantized.items():
        total += size
        non_embedding += 0 if is_embedding(name + ".") else size
    for name, p in model.named_parameters():
        size = p.numel() * p.element_size()
        total += size
        non_embedding += 0 if is_embedding(name) or id(p) in embeddings else size
    return non_embedding, total
