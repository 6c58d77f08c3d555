"""Median latency of several models on the same inputs, in interleaved rounds (so drift hits them all alike)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..measure import interleaved_seconds


def _runner(model: Any, inputs: dict[str, torch.Tensor]):
    if hasattr(model, "run") and hasattr(model, "get_inputs"):  # an onnxruntime.InferenceSession
        names = {i.name for i in model.get_inputs()}
        feeds = {k: v.numpy() for k, v in inputs.items() if k in names}
        return lambda: model.run(None, feeds)
    model.eval()
    wanted = {k: v for k, v in inputs.items() if k != "token_type_ids" or getattr(model.config, "type_vocab_size", 0) > 1}
    return lambda: model(**wanted)


def measure_latency(models: dict[str, Any], batch: int = 8, length: int = 128, rounds: int = 5, repeats: int = 5,
                    vocab_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Median milliseconds per forward pass of each model (torch modules or onnxruntime sessions) at ``batch x length``.

    Every round runs each model ``repeats`` times in turn after one warm-up pass; token ids are drawn below
    ``vocab_size`` (the smallest vocabulary among the models).
    """
    generator = torch.Generator().manual_seed(seed)
    inputs = {"input_ids": torch.randint(0, vocab_size, (batch, length), generator=generator),
              "attention_mask": torch.ones(batch, length, dtype=torch.long), "token_type_ids": torch.zeros(batch, length, dtype=torch.long)}
    runners = {name: _runner(model, inputs) for name, model in models.items()}
    times = interleaved_seconds(runners, rounds=rounds, repeats=repeats)
    return {name: round(1000.0 * float(np.median(t)), 3) for name, t in times.items()}
