"""Held-out loss of a causal LM, and a short LoRA fine-tune scored by it: what ``compare --eval causal-lm`` and
``benchmarks/sft.py`` run.

The loss is the token-weighted mean next-token loss on the unmasked labels (the response, for prompt/completion and
Alpaca rows), so a long answer weighs as many tokens as it has. One epoch is ``ceil(rows / batch_size)`` LoRA steps:
a smaller subset trains fewer steps, as the same number of epochs would.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch


def held_out_loss(model: Any, rows: Any, *, batch_size: int = 16, pad_id: int | None = None) -> float:
    """Token-weighted mean next-token loss of ``model`` on tokenized ``rows`` (``input_ids``, optional ``labels`` with
    -100 on prompt tokens), in length-sorted batches."""
    from ..models import adapter_for, calibration_batches

    pad = adapter_for(model).pad_id(model.config) if pad_id is None else pad_id
    order = np.argsort([len(x) for x in rows["input_ids"]], kind="stable")
    rows = rows.select(order)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for batch in calibration_batches(rows, batch_size, device, pad, causal=True):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                                     ignore_index=-100, reduction="sum")
            total += float(loss)
            count += int((labels != -100).sum())
    model.train(was_training)
    if count == 0:
        raise ValueError("no response tokens to score: every row's labels are masked (a prompt longer than max_length?)")
    return total / count


def lora_epochs_score(model: Any, train_rows: Any, eval_sets: dict[str, Any], *, epochs: float = 1.0, batch_size: int = 8,
                      learning_rate: float = 2e-4, r: int = 8, alpha: int = 16, seed: int = 0) -> dict[str, float]:
    """Train LoRA adapters on a copy of ``model`` for ``epochs`` passes over tokenized ``train_rows``, then return the
    held-out loss on each of ``eval_sets`` (name -> tokenized rows). ``model`` itself is left as it was."""
    from ..pruning import lora_recover

    if not epochs > 0:
        raise ValueError(f"epochs must be > 0, got {epochs}")
    if len(train_rows) == 0:
        raise ValueError("no training rows to fine-tune on")
    steps = max(1, math.ceil(epochs * len(train_rows) / batch_size))
    tuned, _ = lora_recover(copy.deepcopy(model), train_rows, steps=steps, batch_size=batch_size, learning_rate=learning_rate, r=r,
                            alpha=alpha, seed=seed, show_progress=False)
    return {name: held_out_loss(tuned, rows) for name, rows in eval_sets.items()}
