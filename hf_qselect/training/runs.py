"""The steps every recipe run shares: inputs and output folder checked first, then select, train, evaluate and save
the model, its card and ``run_summary.json`` as one staged folder."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

from ..data import input_paths, load_data
from ..output_dir import check_output_dir, staged_output
from ..provenance import public_path
from ..validation import check_keep
from .arguments import DataArguments
from .config import QSelectConfig

SUMMARY_FILE = "run_summary.json"


def checked_inputs(path: str, data_args: DataArguments, config: QSelectConfig) -> tuple[Path, Dataset | DatasetDict]:
    """``(output folder, loaded data)``: ``selection_keep`` and the output folder checked before and after loading the
    data (never the model, the data or their caches)."""
    check_keep(config.selection_keep, "selection_keep")
    target = check_output_dir(config.output_dir, [path if Path(path).exists() else None, *input_paths(data_args.dataset)],
                              overwrite=config.overwrite_output_dir, flag="--overwrite_output_dir", what="output_dir")
    data = load_data(data_args.dataset)
    check_output_dir(target, input_paths(data_args.dataset, data), overwrite=config.overwrite_output_dir,
                     flag="--overwrite_output_dir", what="output_dir")
    return target, data


def train_and_save(trainer, target: Path, config: QSelectConfig, source: str, *, rows_full: int, start: float,
                   before: dict | None = None) -> dict[str, Any]:
    """Select, train, evaluate, then save the model, its card and ``run_summary.json`` as the folder ``target``
    (staged: replaced only once everything succeeded). ``before``: the evaluation before training, if one was run."""
    trainer.select_training_data()
    if trainer.selection_report_ is not None:
        trainer.selection_report_.source = public_path(source)
    with staged_output(target) as staging:
        config.output_dir = str(staging)  # checkpoints go to the staging folder; target is replaced at the end
        try:
            result = trainer.train()
            metrics = trainer.evaluate()
        finally:
            config.output_dir = str(target)
        trainer.save_model(str(staging))
        summary = run_summary(trainer, result, metrics, rows_full=rows_full, output_dir=target, start=start)
        if before is not None:
            summary["eval_before"] = {k.removeprefix("eval_"): v for k, v in before.items() if k in ("eval_loss", "eval_perplexity")}
            summary["eval_after"] = {k.removeprefix("eval_"): v for k, v in metrics.items() if k in ("eval_loss", "eval_perplexity")}
        for name, editor in (("pruning", trainer.pruner), ("compression", trainer.compressor)):
            if editor is not None:
                summary[name] = editor.report_.summary()
                summary[f"{name}_metrics"] = {"before": editor.report_.metrics_before, "after": editor.report_.metrics_after}
        if trainer.is_world_process_zero():
            recorded = {**summary, "output_dir": public_path(target), "model_card": "README.md"}  # no local paths in the file
            (staging / SUMMARY_FILE).write_text(json.dumps(recorded, indent=1) + "\n")
    return summary


def run_summary(trainer, result, metrics: dict, *, rows_full: int, output_dir: Path, start: float) -> dict[str, Any]:
    """What ``hf-qselect train`` prints and writes to ``run_summary.json``."""
    rows_used = len(trainer.train_dataset)
    train_seconds = float(result.metrics.get("train_runtime", 0.0))
    full_estimate = train_seconds * rows_full / max(rows_used, 1)
    spent = trainer.selection_seconds_ + train_seconds
    return {
        "output_dir": str(output_dir),
        "model_card": str(Path(output_dir) / "README.md"),
        "rows_full": rows_full,
        "rows_kept": rows_used,
        "macro_f1": metrics.get("eval_macro_f1"),
        "accuracy": metrics.get("eval_accuracy"),
        "selection_seconds": round(trainer.selection_seconds_, 3),
        "train_seconds": round(train_seconds, 3),
        "full_train_seconds_estimated": round(full_estimate, 3),
        "time_saved_fraction": round(1 - spent / full_estimate, 3) if full_estimate else None,
        "total_seconds": round(time.perf_counter() - start, 1),
        "params": sum(p.numel() for p in trainer.model.parameters()),
    }
