"""Calibration rows for the editors: checks, and padded tensor batches of the model's inputs.

A classifier's rows carry a class label (``labels`` or ``label``). A causal LM's rows need only ``input_ids``: the
loss is the next-token loss on every real token, or on the tokens a list-valued ``labels`` column leaves unmasked
(``-100`` elsewhere, as for a completion-only loss).
"""
from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
IGNORE = -100


def label_column(dataset: Dataset, causal: bool = False) -> str | None:
    """The label column, or ``None`` for a causal LM's rows without one; a classifier's rows need one."""
    for name in ("labels", "label"):
        if name in dataset.column_names:
            return name
    if causal:
        return None
    raise KeyError(f"the calibration dataset needs a 'labels' (or 'label') column for the gradients; its columns are {dataset.column_names}")


def check_calibration(dataset: Any, causal: bool = False) -> str | None:
    """A non-empty, tokenized ``datasets.Dataset`` (with labels unless ``causal``), or a one-line error; returns the
    label column (``None``: the causal LM's own tokens are the labels)."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"calibration_dataset must be a tokenized datasets.Dataset, got {type(dataset).__name__}")
    labels = label_column(dataset, causal)
    if "input_ids" not in dataset.column_names:
        raise KeyError(f"the calibration dataset must be tokenized: no 'input_ids' column (columns: {dataset.column_names})")
    if len(dataset) == 0:
        raise ValueError("the calibration dataset is empty")
    return labels


def _pad(seqs: list, value: int, device: torch.device) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence([torch.as_tensor(list(x)) for x in seqs], batch_first=True, padding_value=value).to(device)


def calibration_batches(dataset: Dataset, batch_size: int, device: torch.device, pad_id: int = 0, causal: bool = False):
    """Padded tensor batches of the model inputs and labels (``input_ids`` padded with ``pad_id``, the rest with 0;
    an absent ``attention_mask`` marks each row's own tokens; token labels padded with -100)."""
    labels = check_calibration(dataset, causal)
    columns = [c for c in MODEL_INPUTS if c in dataset.column_names]
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        batch = {column: _pad(rows[column], pad_id if column == "input_ids" else 0, device) for column in columns}
        if "attention_mask" not in batch:
            lengths = torch.as_tensor([len(x) for x in rows["input_ids"]])
            batch["attention_mask"] = (torch.arange(batch["input_ids"].shape[1])[None, :] < lengths[:, None]).long().to(device)
        if labels is None:
            batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE)
        elif rows[labels] and isinstance(rows[labels][0], (list, tuple)):
            batch["labels"] = _pad(rows[labels], IGNORE, device)
        else:
            batch["labels"] = torch.as_tensor(list(rows[labels])).to(device)
        yield batch
