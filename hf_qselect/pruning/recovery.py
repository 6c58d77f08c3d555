"""Recovery after pruning: a short LoRA fine-tune of the pruned model (``peft``; ``pip install 'hf-qselect[peft]'``).

The adapters are trained with a real ``transformers.Trainer`` on tokenized rows (``input_ids`` and, for a
completion-only loss, list-valued ``labels``), then merged, so the model that comes back is a plain model of the same
shape: it saves and reloads as the pruned model did.
"""
from __future__ import annotations

import tempfile
from typing import Any

import torch


def _collate(pad_id: int):
    def collate(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.as_tensor(row["input_ids"])
            labels[i, :n] = torch.as_tensor(row.get("labels", row["input_ids"]))
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return collate


def lora_targets(model: Any) -> list[str]:
    """The Linear names (last component) LoRA adapts: every attention and FFN projection the family's adapter names."""
    from ..models import ROLES, adapter_for

    adapter = adapter_for(model, what="LoRA recovery")
    layer = adapter.layers(model)[0]
    return sorted({name.rsplit(".", 1)[-1] for role in ROLES for name in adapter.linear(layer, role)})


def lora_recover(model: Any, rows: Any, *, steps: int = 100, batch_size: int = 4, learning_rate: float = 2e-4, r: int = 8,
                 alpha: int = 16, seed: int = 0, show_progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """Train LoRA adapters on ``rows`` for ``steps`` steps of ``batch_size`` rows, merge them into ``model`` and return
    ``(model, record)``; the record says what was trained (for the pruning report and the card)."""
    for name, value, low in (("steps", steps, 1), ("batch_size", batch_size, 1), ("r", r, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {name}={value!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if "input_ids" not in getattr(rows, "column_names", []):
        raise KeyError("LoRA recovery needs tokenized rows with an 'input_ids' column (hf_qselect.text_formats.tokenize_causal)")
    try:
        import peft
    except ImportError:
        raise ImportError("LoRA recovery needs peft: pip install 'hf-qselect[peft]'") from None
    from transformers import Trainer, TrainingArguments

    from ..models import adapter_for

    targets = lora_targets(model)
    pad = adapter_for(model).pad_id(model.config)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets,
                                                         task_type="CAUSAL_LM"))
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=learning_rate,
                                 lr_scheduler_type="constant", warmup_steps=0, logging_steps=max(1, steps // 10), save_strategy="no",
                                 report_to=[], seed=seed, disable_tqdm=not show_progress, remove_unused_columns=False,
                                 use_cpu=not torch.cuda.is_available())
        trainer = Trainer(model=wrapped, args=args, train_dataset=rows.select_columns([c for c in ("input_ids", "labels") if c in rows.column_names]),
                          data_collator=_collate(pad))
        result = trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    merged = wrapped.merge_and_unload().eval()
    record = {"method": "lora", "r": r, "alpha": alpha, "target_modules": targets, "steps": steps, "batch_size": batch_size,
              "rows": steps * batch_size, "learning_rate": learning_rate, "seed": seed, "train_loss": float(result.training_loss),
              "first_logged_loss": losses[0] if losses else None, "last_logged_loss": losses[-1] if losses else None}
    return merged, record
