"""YAML recipes: model, data, selection and ``TrainingArguments`` dataclasses parsed by ``HfArgumentParser``.

``hf-qselect train RECIPE.yaml [--key value ...]`` loads the recipe, applies the overrides, selects,
fine-tunes, evaluates and saves the model with its card.
"""
from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from datasets import ClassLabel, Dataset, DatasetDict
from transformers import HfArgumentParser, TrainingArguments

from .data import input_paths, load_data
from .embeddings import default_embedder
from .output_dir import check_output_dir, staged_output
from .report import public_path
from .validation import check_keep, check_labels


@dataclass
class ModelArguments:
    """The model to fine-tune."""

    model_name_or_path: str = field(default="", metadata={"help": "path or hub id; empty = the packaged all-MiniLM-L6-v2"})
    max_length: int = field(default=64, metadata={"help": "tokenizer truncation length"})


@dataclass
class DataArguments:
    """Where the labelled text comes from and how it is split."""

    dataset: str = field(default="builtin:rotten_tomatoes", metadata={"help": "hub id, CSV/JSON/Parquet file, save_to_disk folder, or builtin:NAME"})
    text_column: str = field(default="text")
    label_column: str = field(default="label")
    eval_split: str = field(default="test", metadata={"help": "split to evaluate on; made from train when absent"})
    eval_size: float = field(default=0.2, metadata={"help": "held-out fraction when the data has no eval split"})
    split_seed: int = field(default=0)


@dataclass
class SelectionArguments:
    """The instance selector; ``keep=1.0`` or ``method='none'`` trains on everything."""

    keep: float = field(default=0.5)
    method: str = field(default="qubo", metadata={"help": "qubo, pasin2024, random, or none"})
    solver: str = field(default="sa")
    selection_seed: int = field(default=0)
    block_size: int = field(default=100)
    num_reads: int = field(default=4)
    class_balance: float | None = field(default=None)
    denoise: bool = field(default=True)
    embedder: str | None = field(default=None)
    embedding_precision: str = field(default="auto", metadata={"help": "auto, float32, bfloat16 or float16"})


SUMMARY_FILE = "run_summary.json"
@dataclass
class PruningArguments:
    """Structured pruning; all budgets 0 = no pruning."""

    heads: float = field(default=0.0, metadata={"help": "fraction of attention heads to remove"})
    ffn: float = field(default=0.0, metadata={"help": "fraction of FFN neurons to remove (same in every layer)"})
    layers: float = field(default=0.0, metadata={"help": "fraction of encoder layers to remove"})
    prune_method: str = field(default="qubo", metadata={"help": "qubo or greedy"})
    prune_at: str = field(default="start", metadata={"help": "start: prune then train; end: train, prune, recover"})
    recovery_epochs: float = field(default=1.0)
    calibration_rows: int = field(default=256)
    ffn_multiple: int = field(default=64, metadata={"help": "round the kept FFN width down to a multiple of this (1: exact budget)"})


@dataclass
class QSelectTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus ``overwrite_output_dir`` (which transformers 5 dropped): ``hf-qselect train``
    refuses a non-empty ``output_dir`` without it, like the other commands, and replaces it atomically."""

    overwrite_output_dir: bool = field(default=False, metadata={"help": "replace a non-empty output_dir (atomically, once training succeeded)"})


RECIPE_DATACLASSES = (ModelArguments, DataArguments, SelectionArguments, PruningArguments, QSelectTrainingArguments)


def field_types() -> dict[str, str]:
    """Every recipe key and its declared type, as text (``"str"``, ``"float | None"``, ``"dict | str | None"``)."""
    import dataclasses

    return {f.name: str(f.type) for cls in RECIPE_DATACLASSES for f in dataclasses.fields(cls)}


def recipe_to_argv(recipe: dict[str, Any]) -> list[str]:
    """``{key: value}`` -> ``["--key", "value", ...]`` so argparse checks every type and name.

    A mapping or list given for a key that takes a plain value is refused, naming the key.
    """
    types = field_types()
    argv: list[str] = []
    for key, value in recipe.items():
        if value is None:
            continue
        declared = types.get(key, "")
        if isinstance(value, dict) and "dict" not in declared:
            raise ValueError(f"recipe key {key!r} must be a single value ({declared or 'unknown key'}), got a mapping {value!r}")
        if isinstance(value, (list, tuple)) and not any(t in declared for t in ("list", "dict")):
            raise ValueError(f"recipe key {key!r} must be a single value ({declared or 'unknown key'}), got a list {value!r}")
        if isinstance(value, (list, tuple)):
            argv += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe's YAML mapping; ``safe_load`` only, and a Python tag is refused by name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such recipe file: {path}")
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.constructor.ConstructorError as err:
        raise ValueError(f"recipe {path}: unsafe YAML tag refused ({err.problem}, line {err.problem_mark.line + 1 if err.problem_mark else '?'})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"recipe {path} is not valid YAML: {' '.join(str(err).split())}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"recipe {path} is not UTF-8 text (byte offset {err.start})") from None
    if not isinstance(recipe, dict):
        raise ValueError(f"recipe {path} must be a YAML mapping of key: value")
    return recipe


def parse_recipe(path: str | Path, overrides: list[str] | None = None):
    """Parse a YAML recipe (plus ``--key value`` overrides) into the five dataclasses.

    Unknown keys and wrong types fail with ``HfArgumentParser``'s error, which names the key; so do values
    out of range (``keep`` outside (0, 1]).
    """
    recipe = read_recipe(path)
    parser = HfArgumentParser(RECIPE_DATACLASSES, allow_abbrev=False)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            parsed = parser.parse_args_into_dataclasses(args=recipe_to_argv(recipe) + list(overrides or []))
    except SystemExit as err:  # argparse's type errors name the key: "argument --keep: invalid float value"
        message = captured.getvalue().strip().splitlines()
        raise ValueError(f"recipe {path}: {message[-1] if message else err}") from None
    try:
        check_keep(parsed[2].keep)
    except (TypeError, ValueError) as err:
        raise ValueError(f"recipe {path}: {err}") from None
    return parsed


def prepare_splits(data: Dataset | DatasetDict, args: DataArguments) -> tuple[Dataset, Dataset]:
    """``(train, eval)``; eval is carved from train (stratified) when the data has no eval split."""
    if isinstance(data, DatasetDict):
        if args.eval_split in data:
            return data["train"], data[args.eval_split]
        data = data["train"]
    stratify = args.label_column if isinstance(data.features.get(args.label_column), ClassLabel) else None
    parts = data.train_test_split(test_size=args.eval_size, seed=args.split_seed, stratify_by_column=stratify)
    return parts["train"], parts["test"]


def macro_f1_metrics(eval_pred) -> dict[str, float]:
    """Accuracy and macro-F1 (computed locally: no metric download)."""
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred
    predictions = np.asarray(logits).argmax(axis=-1)
    return {"accuracy": float(accuracy_score(labels, predictions)), "macro_f1": float(f1_score(labels, predictions, average="macro"))}


def run_recipe(model_args: ModelArguments, data_args: DataArguments, sel_args: SelectionArguments,
               prune_args: PruningArguments, training_args: TrainingArguments) -> dict[str, Any]:
    """Select, fine-tune, evaluate, save model + card; return a summary dict."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .pruning import AnnealingPruner, load_pruned
    from .selector import InstanceSelector
    from .trainer import QSelectTrainer

    start = time.perf_counter()
    check_keep(sel_args.keep)
    path = model_args.model_name_or_path or default_embedder()
    target = check_output_dir(training_args.output_dir, [path if Path(path).exists() else None, *input_paths(data_args.dataset)],
                              overwrite=getattr(training_args, "overwrite_output_dir", False), flag="--overwrite_output_dir",
                              what="output_dir")
    data = load_data(data_args.dataset)
    check_output_dir(target, input_paths(data_args.dataset, data), overwrite=getattr(training_args, "overwrite_output_dir", False),
                     flag="--overwrite_output_dir", what="output_dir")
    train, evaluation = prepare_splits(data, data_args)
    for column in (data_args.text_column, data_args.label_column):
        if column not in train.column_names:
            raise KeyError(f"column {column!r} is not in {data_args.dataset}; its columns are {train.column_names}")
    label_feature = train.features.get(data_args.label_column)
    if isinstance(label_feature, ClassLabel):
        names = label_feature.names
    else:
        check_labels(train[data_args.label_column], data_args.label_column)
        check_labels(evaluation[data_args.label_column], data_args.label_column)
        values = sorted(set(train[data_args.label_column]))
        names = [str(v) for v in values]
        mapping = {v: i for i, v in enumerate(values)}

        def encode(batch):
            return {data_args.label_column: [mapping[v] for v in batch[data_args.label_column]]}

        train, evaluation = train.map(encode, batched=True), evaluation.map(encode, batched=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = load_pruned(path, AutoModelForSequenceClassification, num_labels=len(names), id2label=dict(enumerate(names)),
                        label2id={n: i for i, n in enumerate(names)})

    def tokenize(batch):
        return tokenizer(batch[data_args.text_column], truncation=True, max_length=model_args.max_length)

    train = train.map(tokenize, batched=True)
    evaluation = evaluation.map(tokenize, batched=True)
    if data_args.label_column != "labels":
        train = train.rename_column(data_args.label_column, "labels")
        evaluation = evaluation.rename_column(data_args.label_column, "labels")
    selector = None
    if sel_args.method != "none" and check_keep(sel_args.keep) < 1.0:
        selector = InstanceSelector(
            keep=sel_args.keep, method=sel_args.method, text_column=data_args.text_column, label_column="labels",
            embedder=sel_args.embedder, solver=sel_args.solver, seed=sel_args.selection_seed,
            block_size=sel_args.block_size, num_reads=sel_args.num_reads, class_balance=sel_args.class_balance,
            denoise=sel_args.denoise, precision=sel_args.embedding_precision,
        )
    pruner = None
    if prune_args.heads or prune_args.ffn or prune_args.layers:
        pruner = AnnealingPruner(heads=prune_args.heads, ffn=prune_args.ffn, layers=prune_args.layers, method=prune_args.prune_method,
                                 seed=training_args.seed, ffn_multiple=prune_args.ffn_multiple)
    trainer = QSelectTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer,
        compute_metrics=macro_f1_metrics, instance_selector=selector, pruner=pruner, prune_at=prune_args.prune_at,
        recovery_epochs=prune_args.recovery_epochs, calibration_rows=prune_args.calibration_rows,
    )
    trainer.select_training_data()
    if trainer.selection_report_ is not None:
        trainer.selection_report_.source = public_path(data_args.dataset)
    with staged_output(target) as staging:
        training_args.output_dir = str(staging)  # checkpoints go to the staging folder; target is replaced at the end
        try:
            result = trainer.train()
            metrics = trainer.evaluate()
        finally:
            training_args.output_dir = str(target)
        trainer.save_model(str(staging))
        summary = run_summary(trainer, result, metrics, rows_full=len(train), output_dir=target, start=start)
        if pruner is not None:
            summary["pruning"] = pruner.report_.summary()
            summary["pruning_metrics"] = {"before": pruner.report_.metrics_before, "after": pruner.report_.metrics_after}
        if trainer.is_world_process_zero():
            (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")
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
