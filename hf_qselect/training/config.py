"""``QSelectConfig``: ``TrainingArguments`` plus the selection and pruning options of a run (as TRL's configs do).

The selection and pruning fields are generated from their single declarations
(:class:`~hf_qselect.selection.SelectionParams`, :class:`~hf_qselect.pruning.PruningParams`), under the recipe
keys those declare (``selection_seed``, ``embedding_precision``, ``prune_method``, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..compression import CompressionParams
from ..params import from_recipe, recipe_dataclass
from ..pruning import PruningParams
from ..selection import SelectionParams

SelectionArguments = recipe_dataclass(SelectionParams, "SelectionArguments",
                                      "The instance selector's options; keep=1.0 or method='none' trains on every row.")
PruningArguments = recipe_dataclass(PruningParams, "PruningArguments", "Structured pruning's options; all budgets 0 = no pruning.")
CompressionArguments = recipe_dataclass(CompressionParams, "CompressionArguments",
                                        "Joint pruning + int8 compression after training (quantize=True, size_budget or latency_budget).")


@dataclass
class QSelectConfig(TrainingArguments, SelectionArguments, PruningArguments, CompressionArguments):
    """Everything a ``QSelectTrainer`` run needs: ``TrainingArguments``, selection, pruning, compression, and output safety."""

    prune_at: str = field(default="start", metadata={"help": "start: prune (or compress) then train; end: train, prune, recover"})
    recovery_epochs: float = field(default=1.0, metadata={"help": "epochs trained after pruning at the end"})
    calibration_rows: int = field(default=256, metadata={"help": "training rows the pruner scores units on"})
    quantize: bool = field(default=False, metadata={"help": "compress after training: choose drops and int8 modules within "
                                                            "size_budget (default 25%%) or latency_budget, recover, quantize"})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "replace a non-empty output_dir (atomically, once training succeeded)"})

    @property
    def selects(self) -> bool:
        """Whether this run selects rows (``method != "none"`` and ``keep < 1``)."""
        return self.method != "none" and self.keep != 1.0

    @property
    def prunes(self) -> bool:
        return bool(self.heads or self.ffn or self.layers)

    def make_selector(self, text_column: str = "text", label_column: str = "label"):
        """The :class:`~hf_qselect.selection.InstanceSelector` these options describe (``None`` when not selecting)."""
        from ..selection import InstanceSelector

        return from_recipe(InstanceSelector, self, text_column=text_column, label_column=label_column) if self.selects else None

    @property
    def compresses(self) -> bool:
        return bool(self.quantize or self.size_budget is not None or self.latency_budget is not None)

    def make_compressor(self):
        """The :class:`~hf_qselect.compression.AnnealingCompressor` these options describe (``None`` when not compressing)."""
        from ..compression import AnnealingCompressor

        return from_recipe(AnnealingCompressor, self, seed=self.seed) if self.compresses else None

    def make_pruner(self):
        """The :class:`~hf_qselect.pruning.AnnealingPruner` these options describe (``None`` when not pruning);
        its seed is the training seed."""
        from ..pruning import AnnealingPruner

        return from_recipe(AnnealingPruner, self, seed=self.seed) if self.prunes else None
