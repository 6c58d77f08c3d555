"""``QSelectTrainer``: a ``transformers.Trainer`` that selects its own training rows before it trains.

Keep the text column when you tokenize (``Trainer`` drops unused columns from its batches by
itself), or pass ``selection_dataset=`` holding the raw rows in the same order.
"""
from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

from datasets import Dataset, IterableDataset
from transformers import Trainer, TrainerCallback
from transformers.utils import logging

from ..selection import InstanceSelector, embedder_name, keep_count
from ..validation import check_keep
from .config import QSelectConfig

logger = logging.get_logger(__name__)

PRUNING_PNG = "pruning.png"
COMPRESSION_PNG = "compression.png"


class PendingLogCallback(TrainerCallback):
    """Logs queued records when training begins, so they reach ``log_history`` and every ``report_to``."""

    def __init__(self, trainer: "QSelectTrainer"):
        self.trainer, self.pending = trainer, []

    def on_train_begin(self, args, state, control, **kwargs):
        while self.pending:
            self.trainer.log(self.pending.pop(0))


class QSelectTrainer(Trainer):
    """``Trainer`` plus ``instance_selector`` (select once before training) and a ``pruner`` hook.

    ``args`` may be a :class:`QSelectConfig`: its selection and pruning options then build the selector and the
    pruner (text column ``text``; label column ``label``, else ``labels``) unless they are given here.

    Extra keyword arguments:
        instance_selector: an unfitted :class:`InstanceSelector`; ``None`` trains on every row.
        selection_dataset: raw rows (with the text column) matching ``train_dataset`` row for row, for a
            train dataset that was tokenized without its text column.
        pruner: an unfitted :class:`~hf_qselect.pruning.AnnealingPruner`, scored on the (selected) training rows.
        sparsity: zero this fraction of the smallest Linear weights (global magnitude) before training and keep
            them at zero after every optimizer step (the classical half of Liu et al.'s sparse-training scheme).
        prune_at: ``"start"`` prunes then fine-tunes; ``"end"`` fine-tunes, prunes, then trains ``recovery_epochs`` more.
            The same holds for a ``compressor``, whose int8 modules are quantized once training is over.
        compressor: an unfitted :class:`~hf_qselect.compression.AnnealingCompressor` (instead of ``pruner``).
        calibration_rows: how many training rows the pruner scores units on.
        evaluate_pruning: with an ``eval_dataset``, evaluate just before and just after pruning (two eval passes);
            the metrics go to ``pruner.report_`` and the model card.
    After training: ``selection_report_``, ``selection_seconds_``, ``pruner.report_``.
    """

    def __init__(self, *args, instance_selector: InstanceSelector | None = None, selection_dataset: Dataset | None = None,
                 pruner: Any = None, prune_at: str | None = None, recovery_epochs: float | None = None, calibration_rows: int | None = None,
                 evaluate_pruning: bool = True, sparsity: float | None = None, compressor: Any = None, **kwargs):
        given = inspect.signature(Trainer.__init__).bind_partial(self, *args, **kwargs).arguments
        if instance_selector is not None and isinstance(given.get("train_dataset"), IterableDataset):
            raise TypeError("instance_selector needs a map-style datasets.Dataset; an IterableDataset cannot be selected from")
        super().__init__(*args, **kwargs)
        config = self.args if isinstance(self.args, QSelectConfig) else None
        if config is not None:  # a QSelectConfig describes the selector and the pruner unless they are given
            if instance_selector is None and isinstance(self.train_dataset, Dataset):
                source = selection_dataset if selection_dataset is not None else self.train_dataset
                label = "label" if "label" in source.column_names else "labels"
                instance_selector = config.make_selector(text_column="text", label_column=label)
            pruner = pruner if pruner is not None else config.make_pruner()
            compressor = compressor if compressor is not None else config.make_compressor()
        self.compressor = compressor
        self.instance_selector = instance_selector
        self.selection_dataset = selection_dataset
        self.pruner = pruner
        self.prune_at = prune_at or (config.prune_at if config else "start")
        self.recovery_epochs = recovery_epochs if recovery_epochs is not None else (config.recovery_epochs if config else 1.0)
        self.calibration_rows = calibration_rows if calibration_rows is not None else (config.calibration_rows if config else 256)
        self.evaluate_pruning = evaluate_pruning
        self.sparsity = sparsity
        self.sparsity_record_ = None
        if sparsity is not None:
            from ..diagnostics import check_sparsity

            check_sparsity("sparsity", sparsity)
        self.selection_report_ = None
        self.selection_seconds_ = 0.0
        self.rows_before_selection_ = len(self.train_dataset) if isinstance(self.train_dataset, Dataset) else None
        self._check_selection_inputs()
        self._check_pruner()
        self._check_compressor()
        self._pending_logs = PendingLogCallback(self)
        self.add_callback(self._pending_logs)

    def _check_pruner(self) -> None:
        from ..pruning import AnnealingPruner

        self._check_model_edit(self.pruner, AnnealingPruner, "pruner", "pruning")

    def _check_compressor(self) -> None:
        if self.compressor is not None and self.pruner is not None:
            raise ValueError("give pruner= or compressor=, not both: the compressor prunes as well (options drop,int8,fp32)")
        from ..compression import AnnealingCompressor

        self._check_model_edit(self.compressor, AnnealingCompressor, "compressor", "compressing")

    def _check_model_edit(self, editor: Any, cls: type, role: str, doing: str) -> None:
        """What a pruner or a compressor needs before training starts: its type and parameters, ``prune_at``,
        ``recovery_epochs``, a supported model and a tokenized train_dataset."""
        if editor is None:
            return
        from ..models import adapter_for

        if not isinstance(editor, cls):
            raise TypeError(f"{role} must be an {cls.__name__}, got {type(editor).__name__}")
        if self.prune_at not in ("start", "end"):
            raise ValueError(f"prune_at must be 'start' or 'end', got {self.prune_at!r}")
        if self.prune_at == "end" and not self.recovery_epochs > 0:
            raise ValueError(f"recovery_epochs must be > 0 when {doing} at the end, got {self.recovery_epochs}")
        adapter_for(self.model, what=doing)
        editor.check_params()
        if not isinstance(self.train_dataset, Dataset) or "input_ids" not in self.train_dataset.column_names:
            raise ValueError(f"{role}= scores units on the tokenized train_dataset: it needs an 'input_ids' column")

    def _selection_source(self) -> Dataset:
        return self.selection_dataset if self.selection_dataset is not None else self.train_dataset

    def _check_selection_inputs(self) -> None:
        """Every problem a selection could hit, raised before any training starts."""
        selector = self.instance_selector
        if selector is None:
            return
        if not isinstance(selector, InstanceSelector):
            raise TypeError(f"instance_selector must be an InstanceSelector, got {type(selector).__name__}")
        if isinstance(self.train_dataset, IterableDataset) or isinstance(self.selection_dataset, IterableDataset):
            raise TypeError("instance_selector needs a map-style datasets.Dataset; an IterableDataset cannot be selected from")
        if not isinstance(self.train_dataset, Dataset):
            raise TypeError(f"instance_selector needs train_dataset to be a datasets.Dataset, got {type(self.train_dataset).__name__}")
        source = self._selection_source()
        if self.selection_dataset is not None and len(self.selection_dataset) != len(self.train_dataset):
            raise ValueError(f"selection_dataset has {len(self.selection_dataset)} rows but train_dataset has {len(self.train_dataset)}; they must match row for row")
        for role, column in (("text_column", selector.text_column), ("label_column", selector.label_column)):
            if column not in source.column_names:
                where = "selection_dataset" if self.selection_dataset is not None else "train_dataset"
                hint = "" if self.selection_dataset is not None else (
                    "; keep the raw text column when tokenizing (Trainer drops unused columns itself) "
                    "or pass selection_dataset=<the raw dataset>"
                )
                raise KeyError(f"the selector's {role}={column!r} is not in {where} (columns: {source.column_names}){hint}")
        n_keep = keep_count(check_keep(selector.keep), len(source))
        batch = self.args.train_batch_size
        if n_keep < batch:
            raise ValueError(f"keep={selector.keep} leaves {n_keep} rows, fewer than one training batch ({batch}); raise keep or lower the batch size")

    def select_training_data(self) -> None:
        """Fit the selector on the raw rows and keep only the chosen ones (once).

        Under several processes (``torchrun``, ``accelerate launch``) only the main process selects; the kept
        indices and the report are broadcast, so every rank trains on the same rows and no rank repeats the work.
        """
        selector = self.instance_selector
        if selector is None or self.selection_report_ is not None:
            return
        start = time.perf_counter()
        state = self.accelerator.state
        if state.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            payload = [None, None]
            if state.is_main_process:
                selector.fit(self._selection_source())
                payload = [selector.indices_, selector.report_]
            broadcast_object_list(payload, from_process=0)
            indices, report = payload
        else:
            selector.fit(self._selection_source())
            indices, report = selector.indices_, selector.report_
        self.train_dataset = self.train_dataset.select(indices)
        self.selection_seconds_ = time.perf_counter() - start
        self.selection_report_ = report
        self.selected_indices_ = indices
        self._pending_logs.pending.append(self.selection_record())

    def selection_record(self) -> dict[str, Any]:
        """What goes into the log history: numbers for every logger, plus method and solver names."""
        report = self.selection_report_
        record = {
            "selection/seconds": round(self.selection_seconds_, 3),
            "selection/rows_before": report.n_rows,
            "selection/rows_kept": report.n_kept,
            "selection/reduction": round(report.reduction, 4),
            "selection/method": report.method,
            "selection/solver": report.solver or "none",
        }
        if report.energy is not None:
            record["selection/energy"] = report.energy
        for name, counts in report.kept_per_class.items():
            record[f"selection/kept_{name}"] = counts["after"]
        return record

    def prune_model(self) -> None:
        """Fit the pruner on up to ``calibration_rows`` training rows and remove the units from ``self.model``."""
        rows = self.train_dataset.select(range(min(self.calibration_rows, len(self.train_dataset))))
        self.pruner.fit(self.model, rows)
        before = self._pruning_metrics("before")
        self.pruner.apply(self.model)
        self.model_wrapped = self.model
        self.optimizer, self.lr_scheduler = None, None  # the parameters changed: build new ones (prune_at="start" too)
        report = self.pruner.report_
        report.metrics_before, report.metrics_after = before, self._pruning_metrics("after")
        self.pruning_record_ = {
            "pruning/params_before": report.params_before, "pruning/params_after": report.params_after,
            "pruning/heads_after": report.heads_after, "pruning/ffn_width_after": report.ffn_width_after,
            "pruning/layers_after": len(report.layers_kept), "pruning/method": report.method,
        }

    def _pruning_metrics(self, when: str) -> dict[str, float]:
        """Eval metrics right before or after the units are removed (``{}`` without an eval_dataset or with
        ``evaluate_pruning=False``), so the card separates what pruning costs from what recovery buys back."""
        if not self.evaluate_pruning or self.eval_dataset is None:
            return {}
        metrics = self.evaluate(metric_key_prefix=f"pruning_{when}")
        return {k.removeprefix(f"pruning_{when}_"): float(v) for k, v in metrics.items() if isinstance(v, (int, float))}

    def train(self, *args, **kwargs):
        self.select_training_data()
        if self.pruner is not None and self.prune_at == "start":
            self.prune_model()
            self._pending_logs.pending.append(self.pruning_record_)
        if self.compressor is not None and self.prune_at == "start":
            self.compress_model(recover=False)
        self.fix_sparsity()
        result = super().train(*args, **kwargs)
        if self.pruner is not None and self.prune_at == "end":
            self.prune_model()
            result = self._recover({**self.pruning_record_, "pruning/recovery_epochs": self.recovery_epochs})
        if self.compressor is not None and self.prune_at == "end":
            result = self.compress_model()
        if self.compressor is not None:
            self.quantize_model()
        return result

    def _recover(self, record: dict[str, Any]):
        """Train ``recovery_epochs`` more on the changed model, keeping the earlier log history."""
        self.model_wrapped = self.model
        self.optimizer, self.lr_scheduler = None, None  # the parameters changed: build new ones
        history = list(self.state.log_history)
        epochs = self.args.num_train_epochs
        self.args.num_train_epochs = self.recovery_epochs  # not dataclasses.replace: that resets accelerate's state
        try:
            self._pending_logs.pending.append(record)
            result = super().train()
        finally:
            self.args.num_train_epochs = epochs
        self.state.log_history = history + self.state.log_history
        return result

    def compress_model(self, recover: bool = True):
        """Fit the compressor on ``calibration_rows`` training rows and remove the dropped units; at the end of
        training (``prune_at="end"``) also train ``recovery_epochs`` more. :meth:`quantize_model` follows training."""
        rows = self.train_dataset.select(range(min(self.calibration_rows, len(self.train_dataset))))
        if self.compressor.latency_ms is not None:
            self.model.to("cpu")
        self.compressor.fit(self.model, rows)
        report = self.compressor.report_
        report.metrics_before = self._pruning_metrics("before")
        self.compressor.prune(self.model.to(self.args.device))
        self.model_wrapped = self.model
        self.optimizer, self.lr_scheduler = None, None  # the parameters changed: build new ones
        record = {"compression/heads_after": sum(report.heads_after), "compression/ffn_after": sum(report.ffn_after),
                  "compression/int8_modules": report.int8_modules, "compression/when": self.prune_at}
        if not recover:
            self._pending_logs.pending.append(record)
            return None
        return self._recover({**record, "compression/recovery_epochs": self.recovery_epochs})

    def quantize_model(self) -> None:
        """After training: quantize the modules the compressor chose int8 (the model then runs on the CPU)."""
        self.model.to("cpu")
        self.compressor.quantize(self.model)
        self.model_wrapped = self.model
        self.compressor.report_.metrics_after = self._pruning_metrics("after")

    def fix_sparsity(self) -> None:
        """Zero the ``sparsity`` fraction of smallest Linear weights and hold them at zero through training (once)."""
        if not self.sparsity or self.sparsity_record_ is not None:
            return
        from ..diagnostics import emptied, fixed_mask_callback, magnitude_masks

        masks = magnitude_masks(self.model, self.sparsity)
        cut = emptied(masks)
        if cut:
            logger.warning("sparsity=%s removes every weight of %s: nothing before them can learn", self.sparsity, ", ".join(cut[:3]))
        self.add_callback(fixed_mask_callback(masks))
        weights = sum(m.numel() for m in masks.values())
        self.sparsity_record_ = {"target": self.sparsity, "weights": weights, "zeros": weights - sum(int(m.sum()) for m in masks.values())}

    def create_model_card(self, *args, **kwargs) -> None:
        """Write hf_qselect's model card (with the selection provenance) as ``output_dir/README.md`` (``push_to_hub`` calls it)."""
        if self.is_world_process_zero():
            self.write_model_card(self.args.output_dir, model_name=kwargs.get("model_name"))

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the model; the card and the pruning heat-map are written on a final save, not on every checkpoint.
        A quantized model is written as :func:`hf_qselect.compression.save_compressed` stores it (int8 as int8)."""
        from ..compression import quantized_modules, write_compressed

        if quantized_modules(self.model):
            if self.is_world_process_zero():
                write_compressed(self.model, output_dir or self.args.output_dir, self.processing_class)
        else:
            super().save_model(output_dir, _internal_call=_internal_call)
        if self.is_world_process_zero() and not _internal_call:
            self.write_model_card(output_dir or self.args.output_dir)

    def model_card_values(self, model_name: str | None = None) -> dict[str, Any]:
        """The plain values the card is rendered from."""
        name_or_path = getattr(self.model.config, "_name_or_path", "") or ""
        pruning = None
        if self.pruner is not None and hasattr(self.pruner, "report_"):
            pruning = {**self.pruner.report_.to_dict(), "when": self.prune_at, "recovery_epochs": self.recovery_epochs}
        return {
            "model_name": model_name or Path(self.args.output_dir).name,
            "base_model": embedder_name(name_or_path) if name_or_path else None,
            "log_history": self.state.log_history,
            "selection": self.selection_report_.to_dict() if self.selection_report_ is not None else None,
            "selection_seconds": self.selection_seconds_,
            "rows_before": self.rows_before_selection_,
            "pruning": pruning,
            "sparsity": self.sparsity_record_,
            "compression": ({**self.compressor.report_.to_dict(), "when": self.prune_at, "recovery_epochs": self.recovery_epochs}
                            if self.compressor is not None and hasattr(self.compressor, "report_") else None),
            "training": {
                "training rows": len(self.train_dataset) if self.train_dataset is not None else None,
                "epochs": self.args.num_train_epochs, "learning rate": self.args.learning_rate,
                "batch size": self.args.per_device_train_batch_size, "seed": self.args.seed,
            },
        }

    def write_model_card(self, output_dir: str | Path, model_name: str | None = None) -> Path:
        from ..hub import render_model_card

        path = Path(output_dir) / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.pruner is not None and hasattr(self.pruner, "report_"):
            self.pruner.plot(Path(output_dir) / PRUNING_PNG)
            self.pruner.report_.to_json(str(Path(output_dir) / "pruning_report.json"))
        if self.compressor is not None and hasattr(self.compressor, "report_"):
            self.compressor.plot(Path(output_dir) / COMPRESSION_PNG)
            self.compressor.report_.to_json(str(Path(output_dir) / "compression_report.json"))
        render_model_card(**self.model_card_values(model_name)).save(str(path))
        return path
