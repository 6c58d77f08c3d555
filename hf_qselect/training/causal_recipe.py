"""``task: causal-lm`` recipes: select instruction or chat rows without labels, fine-tune a causal LM (fully or with
LoRA) on the responses, evaluate held-out loss and perplexity before and after, save the model (or adapters) and its
card. What ``hf-qselect train recipes/sft_alpaca_smollm2.yaml`` runs."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from transformers.utils import logging

from .config import QSelectConfig
from .arguments import DataArguments, ModelArguments, prepare_splits
from .runs import checked_inputs, train_and_save

logger = logging.get_logger(__name__)


def check_causal_model(model_args: ModelArguments) -> tuple[Path, str | None]:
    """``(folder, GGUF file or None)`` of a causal LM, from its config alone (no weight is read), or a one-line error."""
    from transformers import AutoConfig

    from ..models import gguf_location, is_causal_lm

    if not model_args.model_name_or_path:
        raise ValueError("task: causal-lm needs model_name_or_path (a causal LM folder, or a folder with gguf_file)")
    folder, gguf = gguf_location(model_args.model_name_or_path, model_args.gguf_file or None)
    if gguf is None:
        config = AutoConfig.from_pretrained(folder)
        if not is_causal_lm(config):
            names = getattr(config, "architectures", None) or [type(config).__name__]
            raise ValueError(f"task: causal-lm needs a causal LM (*ForCausalLM); {model_args.model_name_or_path} is {', '.join(names)}")
    if model_args.max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {model_args.max_length}")
    if model_args.lora_r < 0:
        raise ValueError(f"lora_r must be 0 (full fine-tuning) or a positive rank, got {model_args.lora_r}")
    return folder, gguf


def with_lora(model: Any, model_args: ModelArguments) -> Any:
    """``model`` with LoRA adapters on every Linear of its blocks (``lora_r > 0``), else as it is."""
    if not model_args.lora_r:
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ImportError("lora_r > 0 needs PEFT: pip install 'hf-qselect[peft]'") from None
    return get_peft_model(model, LoraConfig(r=model_args.lora_r, lora_alpha=model_args.lora_alpha, lora_dropout=model_args.lora_dropout,
                                            target_modules="all-linear", task_type="CAUSAL_LM"))


def run_causal_recipe(model_args: ModelArguments, data_args: DataArguments, config: QSelectConfig) -> dict[str, Any]:
    """Every input checked first (model config, output folder, text columns); then load, select, train, save."""
    from transformers import DataCollatorForSeq2Seq

    from ..models import load_causal_lm
    from ..text_formats import detect_format, tokenize_causal, without_empty_responses
    from .trainer import QSelectTrainer

    start = time.perf_counter()
    if config.prunes or config.compresses:  # not wired into this recipe: refused rather than silently ignored
        raise ValueError("task: causal-lm recipes do not prune or compress (prune_* / compress_* / quantize given); prune the "
                         "model first with hf-qselect prune MODEL --data ... --out DIR and train DIR, or use "
                         "QSelectTrainer(pruner=..., lora=...) in Python")
    folder, gguf = check_causal_model(model_args)
    target, data = checked_inputs(str(folder), data_args, config)
    if isinstance(data, DatasetDict) and data_args.eval_split not in data:
        data = data["train"]
    columns = (data["train"] if isinstance(data, DatasetDict) else data).column_names
    detect_format(columns, data_args.text_column)  # a one-line error before the model loads
    train, evaluation = prepare_splits(data, data_args)
    if data_args.drop_empty_responses:
        (train, dropped), (evaluation, held) = (without_empty_responses(part, data_args.text_column) for part in (train, evaluation))
        if dropped + held:
            logger.warning(f"dropped {dropped} training and {held} held-out rows with an empty response (drop_empty_responses)")
    model, tokenizer = load_causal_lm(folder, gguf)
    if model_args.base_model:  # what the card names (PEFT records it for adapters)
        model.config._name_or_path = model.name_or_path = model_args.base_model
    model = with_lora(model, model_args)
    tokens = tokenize_causal(train, tokenizer, model_args.max_length, data_args.text_column)
    held_out = tokenize_causal(evaluation, tokenizer, model_args.max_length, data_args.text_column)
    selector = config.make_selector(text_column=data_args.text_column, label_column=None)
    trainer = QSelectTrainer(model=model, args=config, train_dataset=tokens, eval_dataset=held_out, selection_dataset=train,
                             processing_class=tokenizer, instance_selector=selector,
                             data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
    before = trainer.evaluate()  # the held-out loss before fine-tuning, in the log and the summary
    return train_and_save(trainer, target, config, data_args.dataset, rows_full=len(train), start=start, before=before)
