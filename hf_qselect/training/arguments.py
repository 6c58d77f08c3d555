"""The recipe's model and data arguments (``HfArgumentParser`` dataclasses) and the train/eval split."""
from __future__ import annotations

from dataclasses import dataclass, field

from datasets import ClassLabel, Dataset, DatasetDict

TASKS = ("text-classification", "causal-lm")


@dataclass
class ModelArguments:
    """The model to fine-tune, and how."""

    model_name_or_path: str = field(default="", metadata={"help": "path or hub id; empty = the packaged all-MiniLM-L6-v2"})
    max_length: int = field(default=64, metadata={"help": "tokenizer truncation length"})
    task: str = field(default="text-classification", metadata={"help": "text-classification (a class label per row) or causal-lm "
                                                                        "(instruction, chat or plain text; loss on the responses)",
                                                                "choices": list(TASKS)})
    gguf_file: str = field(default="", metadata={"help": "causal-lm: a GGUF file inside model_name_or_path (dequantized to float32)"})
    base_model: str = field(default="", metadata={"help": "the Hub id the card names as base model, when the model is a local or "
                                                           "GGUF copy of it (empty: the model's own name)"})
    lora_r: int = field(default=0, metadata={"help": "causal-lm: LoRA rank on every Linear of the blocks (0: full fine-tuning)"})
    lora_alpha: int = field(default=16, metadata={"help": "causal-lm: LoRA scaling alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "causal-lm: LoRA dropout"})


@dataclass
class DataArguments:
    """Where the text comes from and how it is split."""

    dataset: str = field(default="builtin:rotten_tomatoes", metadata={"help": "hub id, CSV/JSON/Parquet file, save_to_disk folder, or builtin:NAME"})
    text_column: str = field(default="text")
    label_column: str = field(default="label")
    eval_split: str = field(default="test", metadata={"help": "split to evaluate on; made from train when absent"})
    eval_size: float = field(default=0.2, metadata={"help": "held-out fraction (below 1) or row count when the data has no eval split"})
    split_seed: int = field(default=0)
    max_rows: int = field(default=0, metadata={"help": "use a seeded sample of this many rows of the training split (0: all)"})
    drop_empty_responses: bool = field(default=False, metadata={"help": "causal-lm: drop prompt/completion or Alpaca rows whose "
                                                                         "response is empty (else they are an error)"})


def prepare_splits(data: Dataset | DatasetDict, args: DataArguments) -> tuple[Dataset, Dataset]:
    """``(train, eval)``; eval is carved from train (stratified) when the data has no eval split."""
    if isinstance(data, DatasetDict):
        if args.eval_split in data:
            return data["train"], data[args.eval_split]
        data = data["train"]
    if args.max_rows and len(data) > args.max_rows:
        data = data.shuffle(seed=args.split_seed).select(range(args.max_rows))
    stratify = args.label_column if isinstance(data.features.get(args.label_column), ClassLabel) else None
    size = int(args.eval_size) if args.eval_size >= 1 else args.eval_size
    parts = data.train_test_split(test_size=size, seed=args.split_seed, stratify_by_column=stratify)
    return parts["train"], parts["test"]
