"""YAML recipes: model, data, selection and ``TrainingArguments`` dataclasses parsed by ``HfArgumentParser``.

``hf-qselect train RECIPE.yaml [--key value ...]`` loads the recipe, applies the overrides, selects,
fine-tunes, evaluates and saves the model with its card.
"""
from __future__ import annotations

import contextlib
import io
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from datasets import ClassLabel
from transformers import HfArgumentParser

from ..params import check_recipe
from ..selection import default_embedder
from ..validation import check_keep, check_labels
from .arguments import DataArguments, ModelArguments, prepare_splits
from .config import PREFIXES, RENAMED_KEYS, QSelectConfig, renamed
from .runs import checked_inputs, train_and_save


RECIPE_DATACLASSES = (ModelArguments, DataArguments, QSelectConfig)


def field_types() -> dict[str, str]:
    """Every recipe key and its declared type, as text (``"str"``, ``"float | None"``, ``"dict | str | None"``)."""
    import dataclasses

    return {f.name: str(f.type) for cls in RECIPE_DATACLASSES for f in dataclasses.fields(cls)}


def recipe_to_argv(recipe: dict[str, Any]) -> list[str]:
    """``{key: value}`` -> ``["--key", "value", ...]`` so argparse checks every type and name.

    A mapping or list given for a key that takes a plain value is refused, naming the key.
    """
    types = field_types()
    json_keys = {"selection_sampler_params"}  # declared as JSON objects (a dict in YAML, a JSON string on the command line)
    argv: list[str] = []
    for key, value in recipe.items():
        if value is None:
            continue
        declared = types.get(key, "")
        if isinstance(value, dict) and "dict" not in declared and key not in json_keys:
            raise ValueError(f"recipe key {key!r} must be a single value ({declared or 'unknown key'}), got a mapping {value!r}")
        if isinstance(value, (list, tuple)) and not any(t in declared for t in ("list", "dict")):
            raise ValueError(f"recipe key {key!r} must be a single value ({declared or 'unknown key'}), got a list {value!r}")
        if isinstance(value, (list, tuple)):
            argv += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv.append(f"--{key}={value}")  # one token: a value such as "-5MB" is never read as a flag
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


def renamed_overrides(overrides: list[str], path: str | Path) -> list[str]:
    """``--old_key value`` (or ``--old_key=value``) overrides renamed to the new keys, with a ``FutureWarning`` each."""
    out = []
    for item in overrides:
        if item.startswith("--"):
            key, eq, value = item[2:].partition("=")
            if key in RENAMED_KEYS:
                warnings.warn(f"recipe override --{key} is deprecated: use --{RENAMED_KEYS[key]}", FutureWarning, stacklevel=3)
                item = f"--{RENAMED_KEYS[key]}{eq}{value}"
        out.append(item)
    return out


def parse_recipe(path: str | Path, overrides: list[str] | None = None):
    """Parse a YAML recipe (plus ``--key value`` overrides) into ``(ModelArguments, DataArguments, QSelectConfig)``.

    Unknown keys and wrong types fail with ``HfArgumentParser``'s error, which names the key; so do values
    out of range (``selection_keep`` outside (0, 1]). Old keys (:data:`~hf_qselect.training.config.RENAMED_KEYS`)
    are renamed with a ``FutureWarning``.
    """
    recipe = renamed(read_recipe(path), f"recipe {path}:")
    overrides = renamed_overrides(list(overrides or []), path)
    parser = HfArgumentParser(RECIPE_DATACLASSES, allow_abbrev=False)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            parsed = parser.parse_args_into_dataclasses(args=recipe_to_argv(recipe) + overrides)
    except SystemExit as err:  # argparse's type errors name the key: "argument --selection_keep: invalid float value"
        message = captured.getvalue().strip().splitlines()
        raise ValueError(f"recipe {path}: {message[-1] if message else err}") from None
    try:
        check_keep(parsed[-1].selection_keep, "selection_keep")
        for params in PREFIXES.values():
            check_recipe(params, parsed[-1])
        if parsed[-1].compress_budget is not None and parsed[-1].compress_latency_ms is not None:
            raise ValueError("give one of compress_budget (a size) and compress_latency_ms (a time), not both")
    except (TypeError, ValueError) as err:
        raise ValueError(f"recipe {path}: {err}") from None
    return parsed


def macro_f1_metrics(eval_pred) -> dict[str, float]:
    """Accuracy and macro-F1 (computed locally: no metric download)."""
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred
    predictions = np.asarray(logits).argmax(axis=-1)
    return {"accuracy": float(accuracy_score(labels, predictions)), "macro_f1": float(f1_score(labels, predictions, average="macro"))}


def run_recipe(model_args: ModelArguments, data_args: DataArguments, config: QSelectConfig) -> dict[str, Any]:
    """Select, fine-tune, evaluate, save model + card into ``config.output_dir`` (atomically); return a summary dict."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..models import load_pruned
    from .trainer import QSelectTrainer

    if model_args.task == "causal-lm":
        from .causal_recipe import run_causal_recipe

        return run_causal_recipe(model_args, data_args, config)
    start = time.perf_counter()
    path = model_args.model_name_or_path or default_embedder()
    target, data = checked_inputs(path, data_args, config)
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
    selector = config.make_selector(text_column=data_args.text_column, label_column="labels")
    pruner = config.make_pruner()
    compressor = config.make_compressor()
    trainer = QSelectTrainer(
        model=model, args=config, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer,
        compute_metrics=macro_f1_metrics, instance_selector=selector, pruner=pruner, compressor=compressor,
    )
    return train_and_save(trainer, target, config, data_args.dataset, rows_full=len(train), start=start)
