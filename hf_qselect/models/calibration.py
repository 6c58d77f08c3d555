"""Calibration rows for the editors: checks, and padded tensor batches of the model's inputs."""
from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def label_column(dataset: Dataset) -> str:
    for name in ("labels", "label"):
        if name in dataset.column_names:
            return name
    raise KeyError(f"the calibration dataset needs a 'labels' (or 'label') column for the gradients; its columns are {dataset.column_names}")


def check_calibration(dataset: Any) -> str:
    """A non-empty, tokenized ``datasets.Dataset`` with labels, or a one-line error; returns the label column."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"calibration_dataset must be a tokenized datasets.Dataset, got {type(dataset).__name__}")
    labels = label_column(dataset)
    if "input_ids" not in dataset.column_names:
        raise KeyError(f"the calibration dataset must be tokenized: no 'input_ids' column (columns: {dataset.column_names})")
    if len(dataset) == 0:
        raise ValueError("the calibration dataset is empty")
    return labels


def calibration_batches(dataset: Dataset, batch_size: int, device: torch.device, pad_id: int = 0):
    """Padded tensor batches of the model inputs and labels (``input_ids`` padded with ``pad_id``, the rest with 0;
    an absent ``attention_mask`` marks each row's own tokens)."""
    labels = check_calibration(dataset)
    columns = [c for c in MODEL_INPUTS if c in dataset.column_names]
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        batch = {}
        for column in columns:
            seqs = [torch.as_tensor(list(x)) for x in rows[column]]
            padding = pad_id if column == "input_ids" else 0
            batch[column] = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=padding).to(device)
        if "attention_mask" not in batch:
            lengths = torch.as_tensor([len(x) for x in rows["input_ids"]])
            batch["attention_mask"] = (torch.arange(batch["input_ids"].shape[1])[None, :] < lengths[:, None]).long().to(device)
        batch["labels"] = torch.as_tensor(list(rows[labels])).to(device)
        yield batch
