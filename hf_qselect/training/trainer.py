"""``QSelectTrainer``: a ``transformers.Trainer`` that selects its own training rows before it trains.

Keep the text column when you tokenize (``Trainer`` drops unused columns from its batches by
itself), or pass ``selection_dataset=`` holding the raw rows in the same order.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from datasets import Dataset, IterableDataset
from transformers import Trainer, TrainerCallback
from transformers.utils import logging

from ..provenance import public_path
from ..validation import MATERIALISE
from ..selection import InstanceSelector, embedder_name
from .config import QSelectConfig
from .editors import CompressionEditor, Editor, LoraEditor, PruningEditor, SelectionEditor, SparsityEditor

logger = logging.get_logger(__name__)


class PendingLogCallback(TrainerCallback):
    """Logs queued records when training begins, so they reach ``log_history`` and every ``report_to``."""

    def __init__(self, trainer: "QSelectTrainer"):
        self.trainer, self.pending = trainer, []

    def on_train_begin(self, args, state, control, **kwargs):
        while self.pending:
            self.trainer.log(self.pending.pop(0))


def plain_model(model: Any) -> Any:
    """The model under a PEFT wrapper (the model itself when there is none)."""
    from ..models import is_peft

    return model.get_base_model() if is_peft(model) else model


def is_causal(model: Any) -> bool:
    """Whether ``model`` (possibly PEFT-wrapped) is a causal LM: selection then needs no class labels, evaluation
    reports perplexity and the card says ``text-generation``."""
    from ..models import is_causal_lm

    inner = plain_model(model)
    return type(inner).__name__.endswith("ForCausalLM") or is_causal_lm(getattr(inner, "config", None))


class QSelectTrainer(Trainer):
    """``Trainer`` plus editors that change the data or the model around training (:mod:`.editors`): an
    ``instance_selector`` (select once before training), a ``pruner`` or a ``compressor``, a fixed ``sparsity`` mask.

    ``args`` may be a :class:`QSelectConfig`: its selection and pruning options then build the selector and the
    pruner (text column ``text``; label column ``label``, else ``labels``) unless they are given here.

    A causal LM (``*ForCausalLM``, plain or PEFT-wrapped) selects without class labels: on the text column, or on
    ``messages``, ``prompt``/``completion`` or Alpaca rows embedded whole (keep those columns, or pass the raw rows
    as ``selection_dataset``); evaluation adds ``eval_perplexity`` (``exp(eval_loss)``); the card says
    ``text-generation``, and for a PEFT model ``library_name: peft`` with the base model.

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
        lora: a ``peft.LoraConfig``: train adapters instead of every weight; the model is wrapped after a pruner at the
            start acted, and (``merge_lora=True``, the default) the adapters are merged back after training, so the
            saved model is a plain model of the pruned shape. ``merge_lora=False`` saves the adapters alone.
        editors: further :class:`~hf_qselect.training.editors.Editor` objects, run after the ones above.
    ``trainer.editors`` lists them in the order they act; ``train()`` and the card iterate over it.
    After training: ``selection_report_``, ``selection_seconds_``, ``pruner.report_``.
    """

    def __init__(self, *args, instance_selector: InstanceSelector | None = None, selection_dataset: Dataset | None = None,
                 pruner: Any = None, prune_at: str | None = None, recovery_epochs: float | None = None, calibration_rows: int | None = None,
                 evaluate_pruning: bool = True, sparsity: float | None = None, compressor: Any = None, editors: list[Editor] | None = None,
                 lora: Any = None, merge_lora: bool = True, **kwargs):
        given = inspect.signature(super().__init__).bind_partial(*args, **kwargs).arguments  # Trainer's, or TRL's
        selects = instance_selector is not None or (isinstance(given.get("args"), QSelectConfig) and given["args"].selects)
        if selects and isinstance(given.get("train_dataset"), IterableDataset):
            raise TypeError(f"train_dataset is an IterableDataset; {MATERIALISE} (or selection_keep=1.0 to train on the stream)")
        super().__init__(*args, **kwargs)
        config = self.args if isinstance(self.args, QSelectConfig) else None
        if config is not None:  # a QSelectConfig describes the selector and the pruner unless they are given
            if instance_selector is None and isinstance(self.train_dataset, Dataset):
                source = selection_dataset if selection_dataset is not None else self.train_dataset
                label = None if is_causal(self.model) else "label" if "label" in source.column_names else "labels"
                instance_selector = config.make_selector(text_column=self.selection_text_column(), label_column=label)
            pruner = pruner if pruner is not None else config.make_pruner()
            compressor = compressor if compressor is not None else config.make_compressor()
        if compressor is not None and pruner is not None:
            raise ValueError("give pruner= or compressor=, not both: the compressor prunes as well (options drop,int8,fp32)")
        self.instance_selector, self.selection_dataset, self.pruner, self.compressor = instance_selector, selection_dataset, pruner, compressor
        self.prune_at = prune_at or (config.prune_at if config else "start")
        self.recovery_epochs = recovery_epochs if recovery_epochs is not None else (config.recovery_epochs if config else 1.0)
        self.calibration_rows = calibration_rows if calibration_rows is not None else (config.calibration_rows if config else 256)
        self.evaluate_pruning = evaluate_pruning
        self.sparsity = sparsity
        model_edit = dict(when=self.prune_at, recovery_epochs=self.recovery_epochs, calibration_rows=self.calibration_rows,
                          evaluate=evaluate_pruning)
        self.editors: list[Editor] = [
            *([SelectionEditor(instance_selector, selection_dataset)] if instance_selector is not None else []),
            *([PruningEditor(pruner, **model_edit)] if pruner is not None else []),
            *([CompressionEditor(compressor, **model_edit)] if compressor is not None else []),
            *([SparsityEditor(sparsity)] if sparsity is not None else []),
            *([LoraEditor(lora, merge_lora)] if lora is not None else []),
            *(editors or []),
        ]
        self.rows_before_selection_ = len(self.train_dataset) if isinstance(self.train_dataset, Dataset) else None
        for editor in self.editors:
            editor.check(self)
        self._pending_logs = PendingLogCallback(self)
        self.add_callback(self._pending_logs)

    def selection_text_column(self) -> str:
        """The text column a selector built from the config reads."""
        return "text"

    # ------------------------------------------------------------------ what the editors did
    def _editor(self, kind: type) -> Any:
        return next((e for e in self.editors if isinstance(e, kind)), None)

    @property
    def selection_report_(self):
        editor = self._editor(SelectionEditor)
        return editor.report_ if editor else None

    @property
    def selection_seconds_(self) -> float:
        editor = self._editor(SelectionEditor)
        return editor.seconds_ if editor else 0.0

    @property
    def selected_indices_(self):
        editor = self._editor(SelectionEditor)
        return editor.indices_ if editor else None

    def select_training_data(self) -> None:
        """Fit the selector on the raw rows and keep only the chosen ones (once)."""
        editor = self._editor(SelectionEditor)
        if editor is not None:
            editor.before_training(self)

    # ------------------------------------------------------------------ what editors call
    def queue_log(self, record: dict[str, Any]) -> None:
        """Log ``record`` when training begins, so it reaches ``log_history`` and every ``report_to``."""
        self._pending_logs.pending.append(record)

    def model_changed(self) -> None:
        """The model's parameters changed (units removed): the optimizer and scheduler are built anew."""
        self.model_wrapped = self.model
        self.optimizer, self.lr_scheduler = None, None

    def recover(self, record: dict[str, Any], epochs: float):
        """Train ``epochs`` more on the changed model, keeping the earlier log history; ``record`` is logged first."""
        self.model_changed()
        history = list(self.state.log_history)
        planned = self.args.num_train_epochs
        self.args.num_train_epochs = epochs  # not dataclasses.replace: that resets accelerate's state
        try:
            self.queue_log(record)
            result = super().train()
        finally:
            self.args.num_train_epochs = planned
        self.state.log_history = history + self.state.log_history
        return result

    def train(self, *args, **kwargs):
        for editor in self.editors:
            editor.before_training(self)
        result = super().train(*args, **kwargs)
        for editor in self.editors:
            result = editor.after_training(self, result)
        return result

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """``Trainer.log``; for a causal LM every evaluation loss gets its perplexity (``eval_perplexity``: ``exp`` of
        the mean token loss), in the returned metrics, every logger and the card."""
        import math

        if is_causal(self.model):
            for key in [k for k in logs if k.endswith("_loss") and k.startswith(("eval", "test"))]:
                logs[key.removesuffix("_loss") + "_perplexity"] = math.exp(min(float(logs[key]), 700.0))
        super().log(logs, *args, **kwargs)

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
        """The plain values the card is rendered from: the run, then one section per editor."""
        from ..models import is_peft

        peft = is_peft(self.model)
        name_or_path = getattr(plain_model(self.model).config, "_name_or_path", "") or ""
        if peft:  # the adapters' base model, as PEFT recorded it
            name_or_path = getattr(next(iter(self.model.peft_config.values())), "base_model_name_or_path", None) or name_or_path
        values = {
            "model_name": model_name or Path(self.args.output_dir).name,
            "base_model": public_path(embedder_name(name_or_path)) if name_or_path else None,
            "pipeline_tag": "text-generation" if is_causal(self.model) else "text-classification",
            "library_name": "peft" if peft else "transformers",  # a local folder by its name
            "log_history": self.state.log_history,
            "selection": None, "selection_seconds": 0.0, "rows_before": self.rows_before_selection_,
            "pruning": None, "sparsity": None, "compression": None,
            "training": {
                "training rows": len(self.train_dataset) if self.train_dataset is not None else None,
                "epochs": self.args.num_train_epochs, "learning rate": self.args.learning_rate,
                "batch size": self.args.per_device_train_batch_size, "seed": self.args.seed,
            },
        }
        for editor in self.editors:
            values.update(editor.card(self))
            values["training"].update(editor.training_rows(self))
        return values

    def write_model_card(self, output_dir: str | Path, model_name: str | None = None) -> Path:
        from ..hub import render_model_card

        path = Path(output_dir) / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        for editor in self.editors:
            editor.write_files(self, Path(output_dir))
        render_model_card(**self.model_card_values(model_name)).save(str(path))
        return path
