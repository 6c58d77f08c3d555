"""A short fine-tune of a sequence classifier on given rows, scored on others: what ``compare --eval finetune`` runs."""
from __future__ import annotations

import tempfile

import numpy as np


def short_finetune(train_texts: list[str], train_labels: np.ndarray, test_texts: list[str], test_labels: np.ndarray, *,
                   model: str | None = None, steps: int = 60, seed: int = 0, max_length: int = 64, batch_size: int = 32) -> float:
    """Fine-tune ``model`` (default: the packaged MiniLM) for ``steps`` steps with ``transformers.Trainer``;
    return macro-F1 on the test rows."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from ..selection import default_embedder
    from .recipes import macro_f1_metrics

    path = model or default_embedder()
    tokenizer = AutoTokenizer.from_pretrained(path)
    n_labels = int(max(np.max(train_labels), np.max(test_labels))) + 1
    network = AutoModelForSequenceClassification.from_pretrained(path, num_labels=n_labels)

    def prepare(texts: list[str], labels: np.ndarray) -> Dataset:
        data = Dataset.from_dict({"text": list(texts), "labels": np.asarray(labels).tolist()})
        return data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True, remove_columns=["text"])

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch_size, per_device_eval_batch_size=128,
                                 learning_rate=5e-5, warmup_steps=0.06, save_strategy="no", logging_strategy="no", report_to=[],
                                 seed=seed, disable_tqdm=True)
        trainer = Trainer(model=network, args=args, train_dataset=prepare(train_texts, train_labels), processing_class=tokenizer,
                          compute_metrics=macro_f1_metrics)
        trainer.train()
        return float(trainer.evaluate(prepare(test_texts, test_labels))["eval_macro_f1"])
