"""What changes the data or the model around training, as one protocol the trainer iterates over.

An :class:`Editor` is checked when the trainer is built (before any work), acts before training and after it, logs
what it did, contributes one section to the model card and writes its own report files. ``QSelectTrainer.train``
and its card loop over ``trainer.editors``; none of them is named there. A new editor (a decoder pruner, a
subnetwork mask) is one class here.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from datasets import Dataset, IterableDataset
from transformers import Trainer
from transformers.utils import logging

logger = logging.get_logger(__name__)



class Editor:
    """One change made around training. ``card_key`` names its section of the model card.

    The methods receive the ``QSelectTrainer``; besides the ``Trainer`` API they may call its ``queue_log(record)``,
    ``model_changed()`` and ``recover(record, epochs)``.
    """

    card_key: str = ""

    def check(self, trainer: Trainer) -> None:
        """Raise a one-line error for anything that would fail later; called when the trainer is built."""

    def before_training(self, trainer: Trainer) -> None:
        """Act before the first training step (select rows, prune at the start, fix a mask)."""

    def after_training(self, trainer: Trainer, result: Any) -> Any:
        """Act after training (prune at the end and recover, quantize); returns the latest train output."""
        return result

    def card(self, trainer: Trainer) -> dict[str, Any]:
        """``{card value name: value}`` for the model card (nothing before the editor has acted)."""
        return {}

    def training_rows(self, trainer: Trainer) -> dict[str, Any]:
        """Rows this editor adds to the card's table of training settings."""
        return {}

    def write_files(self, trainer: Trainer, output_dir: Path) -> None:
        """Write the editor's reports and plots beside the saved model."""


# ---------------------------------------------------------------------------------------------- selection
class SelectionEditor(Editor):
    """Fit an :class:`~hf_qselect.selection.InstanceSelector` on the raw rows once, then train on the kept rows."""

    card_key = "selection"

    def __init__(self, selector: Any, selection_dataset: Dataset | None = None) -> None:
        self.selector, self.selection_dataset = selector, selection_dataset
        self.report_, self.seconds_, self.indices_ = None, 0.0, None

    def source(self, trainer: Trainer) -> Dataset:
        return self.selection_dataset if self.selection_dataset is not None else trainer.train_dataset

    def check(self, trainer: Trainer) -> None:
        from ..selection import InstanceSelector, keep_count
        from ..text_formats import detect_format
        from ..validation import MATERIALISE, check_keep

        selector = self.selector
        if not isinstance(selector, InstanceSelector):
            raise TypeError(f"instance_selector must be an InstanceSelector, got {type(selector).__name__}")
        if isinstance(trainer.train_dataset, IterableDataset) or isinstance(self.selection_dataset, IterableDataset):
            raise TypeError(f"instance_selector needs a map-style datasets.Dataset, got an IterableDataset; {MATERIALISE}")
        if not isinstance(trainer.train_dataset, Dataset):
            raise TypeError(f"instance_selector needs train_dataset to be a datasets.Dataset, got {type(trainer.train_dataset).__name__}")
        source = self.source(trainer)
        if self.selection_dataset is not None and len(self.selection_dataset) != len(trainer.train_dataset):
            raise ValueError(f"selection_dataset has {len(self.selection_dataset)} rows but train_dataset has {len(trainer.train_dataset)}; "
                             "they must match row for row")
        try:  # a text column, or chat / instruction rows embedded whole
            detect_format(source.column_names, selector.text_column)
            text_found = True
        except KeyError:
            text_found = False
        for role, column in (("text_column", selector.text_column), ("label_column", selector.label_column)):
            if column is None or (role == "text_column" and text_found):
                continue
            if column not in source.column_names:
                where = "selection_dataset" if self.selection_dataset is not None else "train_dataset"
                hint = "" if self.selection_dataset is not None else (
                    "; keep the raw text column when tokenizing (Trainer drops unused columns itself) "
                    "or pass selection_dataset=<the raw dataset>"
                )
                raise KeyError(f"the selector's {role}={column!r} is not in {where} (columns: {source.column_names}){hint}")
        n_keep = keep_count(check_keep(selector.keep), len(source))
        batch = trainer.args.train_batch_size
        if n_keep < batch:
            raise ValueError(f"keep={selector.keep} leaves {n_keep} rows, fewer than one training batch ({batch}); raise keep or lower the batch size")

    def before_training(self, trainer: Trainer) -> None:
        """Fit the selector and keep the chosen rows (once). Under several processes only the main process selects;
        the kept indices and the report are broadcast, so every rank trains on the same rows."""
        if self.report_ is not None:
            return
        start = time.perf_counter()
        state = trainer.accelerator.state
        if state.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            payload = [None, None]
            if state.is_main_process:
                self.selector.fit(self.source(trainer))
                payload = [self.selector.indices_, self.selector.report_]
            broadcast_object_list(payload, from_process=0)
            indices, report = payload
        else:
            self.selector.fit(self.source(trainer))
            indices, report = self.selector.indices_, self.selector.report_
        trainer.train_dataset = trainer.train_dataset.select(indices)
        self.seconds_, self.report_, self.indices_ = time.perf_counter() - start, report, indices
        trainer.queue_log(self.record())

    def record(self) -> dict[str, Any]:
        """What goes into the log history: numbers for every logger, plus method and solver names."""
        report = self.report_
        record = {"selection/seconds": round(self.seconds_, 3), "selection/rows_before": report.n_rows,
                  "selection/rows_kept": report.n_kept, "selection/reduction": round(report.reduction, 4),
                  "selection/method": report.method, "selection/solver": report.solver or "none"}
        if report.energy is not None:
            record["selection/energy"] = report.energy
        for name, counts in report.kept_per_class.items():
            record[f"selection/kept_{name}"] = counts["after"]
        return record

    def card(self, trainer: Trainer) -> dict[str, Any]:
        return {"selection": self.report_.to_dict() if self.report_ is not None else None, "selection_seconds": self.seconds_}


# ---------------------------------------------------------------------------------------------- model editors
class ModelEditor(Editor):
    """An editor that scores the model on calibration rows and changes it, at the start or at the end of training
    (then trains ``recovery_epochs`` more), with eval metrics just before and just after the change."""

    kind: type | None = None
    role = doing = ""

    def __init__(self, editor: Any, when: str = "start", recovery_epochs: float = 1.0, calibration_rows: int = 256,
                 evaluate: bool = True) -> None:
        self.editor, self.when, self.recovery_epochs = editor, when, recovery_epochs
        self.calibration_rows, self.evaluate = calibration_rows, evaluate

    def check(self, trainer: Trainer) -> None:
        from ..models import adapter_for

        if not isinstance(self.editor, self.kind):
            raise TypeError(f"{self.role} must be an {self.kind.__name__}, got {type(self.editor).__name__}")
        if self.when not in ("start", "end"):
            raise ValueError(f"prune_at must be 'start' or 'end', got {self.when!r}")
        if self.when == "end" and not self.recovery_epochs > 0:
            raise ValueError(f"recovery_epochs must be > 0 when {self.doing} at the end, got {self.recovery_epochs}")
        adapter_for(trainer.model, what=self.doing)
        self.editor.check_params()
        if not isinstance(trainer.train_dataset, Dataset) or "input_ids" not in trainer.train_dataset.column_names:
            raise ValueError(f"{self.role}= scores units on the tokenized train_dataset: it needs an 'input_ids' column")

    def calibration(self, trainer: Trainer) -> Dataset:
        return trainer.train_dataset.select(range(min(self.calibration_rows, len(trainer.train_dataset))))

    def metrics(self, trainer: Trainer, when: str) -> dict[str, float]:
        """Eval metrics right before or after the change (``{}`` without an eval_dataset or with ``evaluate=False``),
        so the card separates what the change costs from what recovery buys back."""
        if not self.evaluate or trainer.eval_dataset is None:
            return {}
        metrics = trainer.evaluate(metric_key_prefix=f"pruning_{when}")
        return {k.removeprefix(f"pruning_{when}_"): float(v) for k, v in metrics.items() if isinstance(v, (int, float))}

    def card(self, trainer: Trainer) -> dict[str, Any]:
        if not hasattr(self.editor, "report_"):
            return {}
        return {self.card_key: {**self.editor.report_.to_dict(), "when": self.when, "recovery_epochs": self.recovery_epochs}}

    def change(self, trainer: Trainer) -> dict[str, Any]:
        """Fit the editor on the calibration rows, change the model, and return the log record."""
        raise NotImplementedError

    def before_training(self, trainer: Trainer) -> None:
        if self.when == "start":
            trainer.queue_log(self.change(trainer))

    def after_training(self, trainer: Trainer, result: Any) -> Any:
        if self.when == "end":
            record = {**self.change(trainer), f"{self.card_key}/recovery_epochs": self.recovery_epochs}
            return trainer.recover(record, self.recovery_epochs)
        return result

    def write_files(self, trainer: Trainer, output_dir: Path) -> None:
        if hasattr(self.editor, "report_"):
            self.editor.plot(output_dir / f"{self.card_key}.png")
            self.editor.report_.to_json(str(output_dir / f"{self.card_key}_report.json"))


class PruningEditor(ModelEditor):
    """An :class:`~hf_qselect.pruning.AnnealingPruner` run on the training rows."""

    card_key, role, doing = "pruning", "pruner", "pruning"

    @property
    def kind(self) -> type:
        from ..pruning import AnnealingPruner

        return AnnealingPruner

    def change(self, trainer: Trainer) -> dict[str, Any]:
        """Fit the pruner on the calibration rows, remove the units, and return the log record."""
        self.editor.fit(trainer.model, self.calibration(trainer))
        before = self.metrics(trainer, "before")
        self.editor.apply(trainer.model)
        trainer.model_changed()
        report = self.editor.report_
        report.metrics_before, report.metrics_after = before, self.metrics(trainer, "after")
        return {"pruning/params_before": report.params_before, "pruning/params_after": report.params_after,
                "pruning/heads_after": report.heads_after, "pruning/ffn_width_after": report.ffn_width_after,
                "pruning/layers_after": len(report.layers_kept), "pruning/method": report.method}


class CompressionEditor(ModelEditor):
    """An :class:`~hf_qselect.compression.AnnealingCompressor`: its drops at the start or the end, its int8 modules
    quantized once training is over."""

    card_key, role, doing = "compression", "compressor", "compressing"

    @property
    def kind(self) -> type:
        from ..compression import AnnealingCompressor

        return AnnealingCompressor

    def change(self, trainer: Trainer) -> dict[str, Any]:
        """Fit the compressor on the calibration rows, remove the dropped units, and return the log record."""
        rows = self.calibration(trainer)
        if self.editor.latency_ms is not None:
            trainer.model.to("cpu")
        self.editor.fit(trainer.model, rows)
        report = self.editor.report_
        report.metrics_before = self.metrics(trainer, "before")
        self.editor.prune(trainer.model.to(trainer.args.device))
        trainer.model_changed()
        return {"compression/heads_after": sum(report.heads_after), "compression/ffn_after": sum(report.ffn_after),
                "compression/int8_modules": report.int8_modules, "compression/when": self.when}

    def after_training(self, trainer: Trainer, result: Any) -> Any:
        result = super().after_training(trainer, result)
        trainer.model.to("cpu")  # int8 dynamic quantization runs on the CPU
        self.editor.quantize(trainer.model)
        trainer.model_wrapped = trainer.model
        self.editor.report_.metrics_after = self.metrics(trainer, "after")
        return result


class SparsityEditor(Editor):
    """Zero the ``sparsity`` fraction of smallest Linear weights before training and hold them at zero after every
    optimizer step (the classical half of Liu et al.'s sparse-training scheme)."""

    card_key = "sparsity"

    def __init__(self, sparsity: float) -> None:
        self.sparsity, self.record_ = sparsity, None

    def check(self, trainer: Trainer) -> None:
        from ..diagnostics import check_sparsity

        check_sparsity("sparsity", self.sparsity)

    def before_training(self, trainer: Trainer) -> None:
        if not self.sparsity or self.record_ is not None:
            return
        from ..diagnostics import emptied, fixed_mask_callback, magnitude_masks

        masks = magnitude_masks(trainer.model, self.sparsity)
        cut = emptied(masks)
        if cut:
            logger.warning("sparsity=%s removes every weight of %s: nothing before them can learn", self.sparsity, ", ".join(cut[:3]))
        trainer.add_callback(fixed_mask_callback(masks))
        weights = sum(m.numel() for m in masks.values())
        self.record_ = {"target": self.sparsity, "weights": weights, "zeros": weights - sum(int(m.sum()) for m in masks.values())}

    def card(self, trainer: Trainer) -> dict[str, Any]:
        return {"sparsity": self.record_}


# ---------------------------------------------------------------------------------------------- LoRA adapters
class LoraEditor(Editor):
    """Train LoRA adapters instead of every weight: the model is wrapped just before training, after the editors
    before it acted (a pruner at the start), and with ``merge`` the adapters are merged back once training is over,
    so the saved model is a plain model of the edited shape (a pruned model cannot take adapters made for the
    unpruned one). Without ``merge`` the adapters are saved on their own, as PEFT does."""

    card_key = "lora"

    def __init__(self, config: Any, merge: bool = True) -> None:
        self.config, self.merge = config, merge
        self.trainable_, self.total_ = None, None

    def check(self, trainer: Trainer) -> None:
        from ..models import is_peft

        try:
            from peft import PeftConfig
        except ImportError:
            raise ImportError("lora= needs PEFT: pip install 'hf-qselect[peft]'") from None
        if not isinstance(self.config, PeftConfig):
            raise TypeError(f"lora must be a peft.LoraConfig, got {type(self.config).__name__}")
        if is_peft(trainer.model):
            raise ValueError("lora= wraps the model in adapters, but it has adapters already: give the plain model")
        ends = [e for e in trainer.editors if isinstance(e, ModelEditor) and e.when == "end"]
        if ends:
            raise ValueError(f"lora= with prune_at='end': the {ends[0].role} would edit a model under adapters; prune at the start")

    def before_training(self, trainer: Trainer) -> None:
        from peft import get_peft_model

        from ..models import is_peft

        if is_peft(trainer.model):
            return
        trainer.model = get_peft_model(trainer.model, self.config)
        trainer.model_changed()
        self.trainable_ = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        self.total_ = sum(p.numel() for p in trainer.model.parameters())
        trainer.queue_log({"lora/trainable_params": self.trainable_, "lora/params": self.total_})

    def training_rows(self, trainer: Trainer) -> dict[str, Any]:
        if self.trainable_ is None:
            return {}
        targets = self.config.target_modules
        targets = targets if isinstance(targets, str) else ", ".join(sorted(targets or []))
        return {"LoRA": f"r={self.config.r}, alpha {self.config.lora_alpha}, on {targets}; "
                        + ("merged into the model after training" if self.merge else "adapters saved alone"),
                "trainable parameters": f"{self.trainable_:,} of {self.total_:,}"}

    def after_training(self, trainer: Trainer, result: Any) -> Any:
        from ..models import is_peft

        if self.merge and is_peft(trainer.model):
            trainer.model = trainer.model.merge_and_unload()
            trainer.model_changed()
        return result
