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

from .blocks import keep_count
from .selector import InstanceSelector
from .validation import check_keep


class SelectionLogCallback(TrainerCallback):
    """Logs the selection record once training begins, so it reaches ``log_history`` and every ``report_to``."""

    def __init__(self, trainer: "QSelectTrainer", record: dict[str, Any]):
        self.trainer, self.record, self.done = trainer, record, False

    def on_train_begin(self, args, state, control, **kwargs):
        if not self.done:
            self.done = True
            self.trainer.log(dict(self.record))


class QSelectTrainer(Trainer):
    """``Trainer`` plus ``instance_selector`` (select once before training) and a ``pruner`` hook.

    Extra keyword arguments:
        instance_selector: an unfitted :class:`InstanceSelector`; ``None`` trains on every row.
        selection_dataset: raw rows (with the text column) matching ``train_dataset`` row for row, for a
            train dataset that was tokenized without its text column.
        pruner: reserved for structured pruning; must be ``None`` until a pruner is configured.
    After training: ``selection_report_`` and ``selection_seconds_``.
    """

    def __init__(self, *args, instance_selector: InstanceSelector | None = None, selection_dataset: Dataset | None = None,
                 pruner: Any = None, **kwargs):
        given = inspect.signature(Trainer.__init__).bind_partial(self, *args, **kwargs).arguments
        if instance_selector is not None and isinstance(given.get("train_dataset"), IterableDataset):
            raise TypeError("instance_selector needs a map-style datasets.Dataset; an IterableDataset cannot be selected from")
        super().__init__(*args, **kwargs)
        self.instance_selector = instance_selector
        self.selection_dataset = selection_dataset
        self.pruner = pruner
        self.selection_report_ = None
        self.selection_seconds_ = 0.0
        self.rows_before_selection_ = len(self.train_dataset) if isinstance(self.train_dataset, Dataset) else None
        if pruner is not None:
            raise NotImplementedError("pruner= is not supported yet: structured pruning is not part of this release")
        self._check_selection_inputs()

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
        """Fit the selector on the raw rows and keep only the chosen ones (once)."""
        selector = self.instance_selector
        if selector is None or self.selection_report_ is not None:
            return
        start = time.perf_counter()
        selector.fit(self._selection_source())
        self.train_dataset = self.train_dataset.select(selector.indices_)
        self.selection_seconds_ = time.perf_counter() - start
        self.selection_report_ = selector.report_
        self.add_callback(SelectionLogCallback(self, self.selection_record()))

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

    def train(self, *args, **kwargs):
        self.select_training_data()
        return super().train(*args, **kwargs)

    def create_model_card(self, *args, **kwargs) -> None:
        """Write hf_qselect's model card (with the selection provenance) as ``output_dir/README.md``."""
        if self.is_world_process_zero():
            self.write_model_card(self.args.output_dir, model_name=kwargs.get("model_name"))

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call=_internal_call)
        if self.is_world_process_zero():
            self.write_model_card(output_dir or self.args.output_dir)

    def write_model_card(self, output_dir: str | Path, model_name: str | None = None) -> Path:
        from .model_card import render_model_card

        path = Path(output_dir) / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        render_model_card(self, model_name=model_name).save(str(path))
        return path
