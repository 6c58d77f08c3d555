"""``QSelectConfig``: ``TrainingArguments`` plus the selection, pruning and compression options of a run (as TRL's
configs do).

The options are generated from their single declarations (:class:`~hf_qselect.selection.SelectionParams`,
:class:`~hf_qselect.pruning.PruningParams`, :class:`~hf_qselect.compression.CompressionParams`) under one key
scheme: ``<prefix>_<parameter>`` with the prefix ``selection``, ``prune`` or ``compress`` (``selection_keep``,
``prune_remove_heads``, ``compress_budget``). Each application's seed is its own key (``selection_seed``, ``prune_seed``,
``compress_seed``, all 0 by default); the training ``seed`` seeds training only. The keys used before this scheme
still work, with a ``FutureWarning`` naming the new key (:data:`RENAMED_KEYS`).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from ..compression import CompressionParams
from ..params import from_recipe, recipe_dataclass, renamed_kwargs
from ..pruning import PruningParams
from ..selection import SelectionParams

PREFIXES = {"selection": SelectionParams, "prune": PruningParams, "compress": CompressionParams}
SelectionArguments = recipe_dataclass(SelectionParams, "SelectionArguments",
                                      "The instance selector's options; selection_keep=1.0 or selection_method='none' trains on every row.",
                                      "selection")
PruningArguments = recipe_dataclass(PruningParams, "PruningArguments", "Structured pruning's options; all budgets 0 = no pruning.", "prune")
CompressionArguments = recipe_dataclass(CompressionParams, "CompressionArguments",
                                        "Joint pruning + int8 compression after training (quantize=True, compress_budget or compress_latency_ms).",
                                        "compress")

# recipe keys before the one-prefix scheme -> their keys now (accepted for one release, with a FutureWarning)
RENAMED_KEYS = {
    "keep": "selection_keep", "method": "selection_method", "embedder": "selection_embedder", "solver": "selection_solver",
    "block_size": "selection_block_size", "num_reads": "selection_num_reads", "num_sweeps": "selection_num_sweeps",
    "embedding_batch_size": "selection_batch_size", "embedding_device": "selection_device", "embedding_precision": "selection_precision",
    "embedder_backend": "selection_embedder_backend", "embedding_cache_dir": "selection_cache_dir",
    "selection_progress": "selection_show_progress", "sampler_params": "selection_sampler_params", "class_balance": "selection_class_balance",
    "denoise": "selection_denoise", "noise_confidence": "selection_noise_confidence", "polish": "selection_polish",
    "score_rows": "selection_score_rows", "chunk_rows": "selection_chunk_rows", "candidates": "selection_candidates",
    "heads": "prune_remove_heads", "ffn": "prune_remove_ffn", "layers": "prune_remove_layers",
    "prune_heads": "prune_remove_heads", "prune_ffn": "prune_remove_ffn", "prune_layers": "prune_remove_layers", "redundancy_weight": "prune_redundancy_weight",
    "ffn_multiple": "prune_ffn_multiple", "prune_progress": "prune_show_progress", "size_budget": "compress_budget",
    "latency_budget": "compress_latency_ms", "quantize_options": "compress_options", "latency_batch": "compress_latency_batch",
    "latency_length": "compress_latency_length", "compress_progress": "compress_show_progress",
}


def renamed(values: dict[str, Any], where: str = "recipe") -> dict[str, Any]:
    """``values`` with every old key replaced by its new one (a ``FutureWarning`` each); giving both is an error."""
    return renamed_kwargs(values, RENAMED_KEYS, f"{where} key", error=ValueError, form="{!r}")


@dataclass
class QSelectConfig(TrainingArguments, SelectionArguments, PruningArguments, CompressionArguments):
    """Everything a ``QSelectTrainer`` run needs: ``TrainingArguments``, selection, pruning, compression, and output safety."""

    prune_at: str = field(default="start", metadata={"help": "start: prune (or compress) then train; end: train, prune, recover"})
    recovery_epochs: float = field(default=1.0, metadata={"help": "epochs trained after pruning at the end"})
    calibration_rows: int = field(default=256, metadata={"help": "training rows the pruner scores units on"})
    quantize: bool = field(default=False, metadata={"help": "compress after training: choose drops and int8 modules within "
                                                            "compress_budget (default 25%%) or compress_latency_ms, recover, quantize"})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "replace a non-empty output_dir (atomically, once training succeeded)"})

    @property
    def selects(self) -> bool:
        """Whether this run selects rows (``selection_method != "none"`` and ``selection_keep < 1``)."""
        return self.selection_method != "none" and self.selection_keep != 1.0

    @property
    def prunes(self) -> bool:
        return bool(self.prune_remove_heads or self.prune_remove_ffn or self.prune_remove_layers)

    def make_selector(self, text_column: str = "text", label_column: str = "label"):
        """The :class:`~hf_qselect.selection.InstanceSelector` these options describe (``None`` when not selecting)."""
        from ..selection import InstanceSelector

        return from_recipe(InstanceSelector, self, text_column=text_column, label_column=label_column) if self.selects else None

    @property
    def compresses(self) -> bool:
        return bool(self.quantize or self.compress_budget is not None or self.compress_latency_ms is not None)

    def make_compressor(self):
        """The :class:`~hf_qselect.compression.AnnealingCompressor` these options describe (``None`` when not compressing)."""
        from ..compression import AnnealingCompressor

        return from_recipe(AnnealingCompressor, self) if self.compresses else None

    def make_pruner(self):
        """The :class:`~hf_qselect.pruning.AnnealingPruner` these options describe (``None`` when not pruning)."""
        from ..pruning import AnnealingPruner

        return from_recipe(AnnealingPruner, self) if self.prunes else None


_dataclass_init = QSelectConfig.__init__


def _init(self, *args, **kwargs) -> None:
    _dataclass_init(self, *args, **renamed(kwargs, "QSelectConfig"))


_init.__signature__ = inspect.signature(_dataclass_init)
QSelectConfig.__init__ = _init
