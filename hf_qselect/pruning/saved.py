"""Prune a saved model folder with calibration rows from a dataset: what ``hf-qselect prune`` runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import ClassLabel, DatasetDict

from ..data import load_data
from ..validation import check_labels, text_values
from ..models import check_model_dir, load_pruned
from .pruner import AnnealingPruner


def calibration_labels(rows, label_column: str, label2id: dict[str, int], num_labels: int, source: str) -> list[int]:
    """The rows' labels as the model's class ids; refuses regression targets and classes the model lacks."""
    values = check_labels(rows[label_column], label_column)
    feature = rows.features[label_column]
    if isinstance(feature, ClassLabel) or all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        ids = [int(v) for v in values]
        outside = sorted({i for i in ids if not 0 <= i < num_labels})
        if outside:
            raise ValueError(f"label column {label_column!r} of {source} has class ids {outside[:5]} but the model has "
                             f"{num_labels} labels (0..{num_labels - 1}); prune a model trained on this data")
        return ids
    unknown = sorted({str(v) for v in values} - set(label2id))
    if unknown:
        raise ValueError(f"labels {unknown[:5]} of {label_column!r} in {source} are not in the model's label2id {label2id}")
    return [label2id[str(v)] for v in values]


def training_split(data: str, calibration_rows: int, max_length: int):
    """The training split of ``data``, once the counts are checked (before anything loads)."""
    if calibration_rows < 1:
        raise ValueError(f"calibration_rows must be at least 1, got {calibration_rows}")
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    dataset = load_data(data)
    return dataset["train"] if isinstance(dataset, DatasetDict) else dataset


def shuffled_sample(dataset, count: int, seed: int):
    """``dataset.shuffle(seed=seed)``'s first ``count`` rows, and their positions in ``dataset`` (errors name those)."""
    from datasets import Dataset

    order = Dataset.from_dict({"i": list(range(len(dataset)))}).shuffle(seed=seed)
    positions = order.select(range(min(count, len(dataset))))["i"]
    return dataset.select(positions), positions


def calibration_rows_of(model_dir: str | Path, data: str, *, text_column: str = "text", label_column: str = "label",
                        calibration_rows: int = 256, max_length: int = 64, seed: int = 0):
    """Load ``model_dir`` and ``calibration_rows`` shuffled, tokenized training rows of ``data`` with the model's class ids.

    Every input is checked before the model is loaded. Returns ``(model, tokenizer, rows)``.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    check_model_dir(model_dir)
    dataset = training_split(data, calibration_rows, max_length)
    for role, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in dataset.column_names:
            raise KeyError(f"{role}={column!r} is not in {data} (columns: {dataset.column_names})")
    rows, positions = shuffled_sample(dataset, calibration_rows, seed)
    text_values(rows, text_column, positions)
    config = AutoConfig.from_pretrained(model_dir)
    label2id = {str(k): int(v) for k, v in (config.label2id or {}).items()}
    ids = calibration_labels(rows, label_column, label2id, config.num_labels, str(data))
    rows = rows.remove_columns(label_column).add_column(label_column, ids)
    model = load_pruned(model_dir, AutoModelForSequenceClassification)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = rows.map(lambda b: tokenizer(b[text_column], truncation=True, max_length=max_length), batched=True)
    return model, tokenizer, rows


def causal_calibration_rows(model_dir: str | Path, data: str, *, gguf_file: str | None = None, text_column: str = "text",
                            calibration_rows: int = 256, max_length: int = 256, seed: int = 0):
    """Load a causal LM (folder or GGUF) and ``calibration_rows`` shuffled training rows of ``data`` in any of
    :mod:`~hf_qselect.text_formats`' formats, tokenized with their loss masks. Returns ``(model, tokenizer, rows)``."""
    from ..models import load_causal_lm
    from ..text_formats import detect_format, tokenize_causal

    dataset = training_split(data, calibration_rows, max_length)
    detect_format(dataset.column_names, text_column)  # a one-line error before the model loads
    rows, _ = shuffled_sample(dataset, calibration_rows, seed)
    model, tokenizer = load_causal_lm(model_dir, gguf_file)
    return model, tokenizer, tokenize_causal(rows, tokenizer, max_length, text_column)


def check_recovery(recover_steps: int, recover_batch: int, recover_lr: float, causal: bool) -> None:
    """The LoRA recovery settings, before any weight loads: counts, a causal LM, and PEFT installed."""
    if isinstance(recover_steps, bool) or not isinstance(recover_steps, int) or recover_steps < 0:
        raise ValueError(f"recover_steps must be an integer >= 0 (0: no recovery), got {recover_steps!r}")
    if not recover_steps:
        return
    if isinstance(recover_batch, bool) or not isinstance(recover_batch, int) or recover_batch < 1:
        raise ValueError(f"recover_batch must be an integer >= 1, got {recover_batch!r}")
    if not recover_lr > 0:
        raise ValueError(f"recover_lr must be > 0, got {recover_lr}")
    if not causal:
        raise ValueError("LoRA recovery (recover_steps) is for causal LMs; fine-tune a pruned classifier with hf-qselect train")
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise ImportError("LoRA recovery needs peft: pip install 'hf-qselect[peft]'")


def prune_saved_model(model_dir: str | Path, data: str, pruner: AnnealingPruner, *, text_column: str = "text",
                      label_column: str = "label", calibration_rows: int = 256, max_length: int = 64, seed: int = 0,
                      gguf_file: str | None = None, recover_steps: int = 0, recover_batch: int = 4, recover_lr: float = 2e-4):
    """Load ``model_dir`` (a classifier, or a causal LM folder or GGUF file), score units on ``calibration_rows``
    shuffled training rows of ``data`` and prune; with ``recover_steps``, a causal LM is then recovered by LoRA
    (:func:`~hf_qselect.pruning.lora_recover`) on ``recover_steps x recover_batch`` other shuffled rows of ``data``
    (another draw than the calibration rows'), and the report records it.

    Every input is checked before the model is touched. Returns ``(model, tokenizer)``; nothing is written
    (see :func:`save_pruned`).
    """
    from transformers import AutoConfig

    from ..models import adapter_for, gguf_location, is_causal_lm

    folder, gguf = gguf_location(model_dir, gguf_file)
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf) if gguf else AutoConfig.from_pretrained(folder)
    pruner.check_shape(adapter_for(config, what="structured pruning").config_shape(config))  # budgets, before any weight loads
    causal = gguf is not None or is_causal_lm(config)
    check_recovery(recover_steps, recover_batch, recover_lr, causal)
    if causal:
        model, tokenizer, rows = causal_calibration_rows(model_dir, data, gguf_file=gguf_file, text_column=text_column,
                                                         calibration_rows=calibration_rows, max_length=max_length, seed=seed)
    else:
        model, tokenizer, rows = calibration_rows_of(model_dir, data, text_column=text_column, label_column=label_column,
                                                     calibration_rows=calibration_rows, max_length=max_length, seed=seed)
    pruner.fit(model, rows).apply(model)
    if recover_steps:
        from ..text_formats import tokenize_causal
        from .recovery import lora_recover

        dataset = training_split(data, calibration_rows, max_length)
        recovery, _ = shuffled_sample(dataset, recover_steps * recover_batch, seed + 1)
        tokens = tokenize_causal(recovery, tokenizer, max_length, text_column)
        model, record = lora_recover(model, tokens, steps=recover_steps, batch_size=recover_batch, learning_rate=recover_lr, seed=seed,
                                     show_progress=pruner.show_progress)
        pruner.report_.recovery = {**record, "rows_drawn": len(recovery), "data": Path(str(data)).name}
    return model, tokenizer


def save_pruned(model, tokenizer, pruner: AnnealingPruner, out: str | Path) -> Path:
    """Write the pruned model, its tokenizer, ``pruning_report.json`` and ``pruning.png`` to ``out``."""
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    pruner.report_.to_json(str(out / "pruning_report.json"))
    pruner.plot(out / "pruning.png")
    return out
