"""TRL's ``SFTTrainer`` that selects its rows first: ``QSelectSFTTrainer`` with ``QSelectSFTConfig`` (needs ``trl``:
``pip install 'hf-qselect[trl]'``).

The selector reads the raw rows, before ``SFTTrainer`` tokenizes them (its ``dataset_text_field``, or ``messages``,
``prompt``/``completion`` and Alpaca rows embedded whole), without class labels; training then uses the tokenized
rows of the kept indices only. Packing joins rows, so it must be off.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from .config import QSelectConfig
from .trainer import QSelectTrainer

try:
    from trl import SFTConfig, SFTTrainer
except ImportError as err:  # the message names the extra
    raise ImportError("QSelectSFTTrainer needs TRL: pip install 'hf-qselect[trl]'") from err


@dataclass
class QSelectSFTConfig(SFTConfig, QSelectConfig):
    """TRL's ``SFTConfig`` plus hf_qselect's selection, pruning and compression options (``selection_keep``, ...)."""


class QSelectSFTTrainer(QSelectTrainer, SFTTrainer):
    """``SFTTrainer`` + :class:`~hf_qselect.training.QSelectTrainer`: the rows are selected on the raw
    ``train_dataset`` (or ``selection_dataset``), then SFT trains on exactly the kept rows."""

    def __init__(self, model: Any, args: Any = None, train_dataset: Any = None, *, selection_dataset: Dataset | None = None,
                 **kwargs: Any) -> None:
        if getattr(args, "packing", False):
            raise ValueError("QSelectSFTTrainer selects rows before training: set packing=False (packing joins rows)")
        if selection_dataset is None and isinstance(train_dataset, Dataset):
            selection_dataset = train_dataset  # the raw rows, before SFTTrainer tokenizes them (same rows, same order)
        super().__init__(model, args=args, train_dataset=train_dataset, selection_dataset=selection_dataset, **kwargs)

    def selection_text_column(self) -> str:
        return getattr(self.args, "dataset_text_field", None) or "text"
