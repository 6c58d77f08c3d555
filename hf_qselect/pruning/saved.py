"""Prune a saved model folder with calibration rows from a dataset: what ``hf-qselect prune`` runs."""
from __future__ import annotations

from pathlib import Path

from datasets import ClassLabel, DatasetDict

from ..data import load_data
from .architecture import load_pruned
from .pruner import AnnealingPruner


def prune_saved_model(model_dir: str | Path, data: str, pruner: AnnealingPruner, *, text_column: str = "text",
                      label_column: str = "label", calibration_rows: int = 256, max_length: int = 64, seed: int = 0):
    """Load ``model_dir``, score units on ``calibration_rows`` shuffled training rows of ``data`` and prune.

    Returns ``(model, tokenizer)``; nothing is written (see :func:`save_pruned`).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = load_pruned(model_dir, AutoModelForSequenceClassification)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = load_data(data)
    if isinstance(dataset, DatasetDict):
        dataset = dataset["train"]
    for role, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in dataset.column_names:
            raise KeyError(f"{role}={column!r} is not in {data} (columns: {dataset.column_names})")
    rows = dataset.shuffle(seed=seed).select(range(min(calibration_rows, len(dataset))))
    feature = rows.features[label_column]
    if not isinstance(feature, ClassLabel) and isinstance(rows[0][label_column], str):
        mapping = model.config.label2id
        unknown = sorted(set(rows[label_column]) - set(mapping))
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not in the model's label2id {mapping}")
        rows = rows.map(lambda b: {label_column: [mapping[v] for v in b[label_column]]}, batched=True)
    rows = rows.map(lambda b: tokenizer(b[text_column], truncation=True, max_length=max_length), batched=True)
    pruner.fit(model, rows).apply(model)
    return model, tokenizer


def save_pruned(model, tokenizer, pruner: AnnealingPruner, out: str | Path) -> Path:
    """Write the pruned model, its tokenizer, ``pruning_report.json`` and ``pruning.png`` to ``out``."""
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    pruner.report_.to_json(str(out / "pruning_report.json"))
    pruner.plot(out / "pruning.png")
    return out
