"""QSelectTrainer with causal LMs (issue 28, first part): label-free selection on the raw instruction rows, training
on exactly the kept rows (full fine-tuning and LoRA), perplexity, and cards that say text-generation."""
import math

import pytest
import torch
from datasets import Dataset
from huggingface_hub import ModelCard
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, LlamaConfig, LlamaForCausalLM

from hf_qselect import QSelectConfig, QSelectTrainer
from hf_qselect.selection.embeddings import default_embedder
from hf_qselect.text_formats import tokenize_causal

BASE = "org/tiny-llama"  # stands for a Hub id: the card's base_model


@pytest.fixture(scope="module")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(default_embedder())
    tok.eos_token = tok.sep_token
    return tok


def tiny_llama(tokenizer, seed=0):
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    model.config._name_or_path = BASE
    return model


@pytest.fixture(scope="module")
def rows():
    topics = ["cooking", "taxes", "football", "poetry"]
    return Dataset.from_dict({
        "instruction": [f"Write a line about {topics[i % 4]} number {i}" for i in range(48)],
        "input": ["" if i % 3 else f"context {i}" for i in range(48)],
        "output": [f"A short answer about {topics[i % 4]}, item {i}." for i in range(48)],
    })


def config(tmp_path, **kw):
    return QSelectConfig(output_dir=str(tmp_path / "run"), selection_keep=0.25, selection_n_jobs=1, selection_show_progress=False,
                         selection_cache_dir=str(tmp_path / "cache"), per_device_train_batch_size=4, num_train_epochs=1,
                         learning_rate=1e-3, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, **kw)


def trained(model, rows, tokenizer, tmp_path):
    tokens = tokenize_causal(rows, tokenizer, 48)
    trainer = QSelectTrainer(model=model, args=config(tmp_path), train_dataset=tokens, eval_dataset=tokens.select(range(8)),
                             selection_dataset=rows, processing_class=tokenizer,
                             data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
    trainer.train()
    return trainer, tokens


def check_kept_rows(trainer, tokens):
    selector = trainer.instance_selector
    assert selector.label_column is None and selector.report_.text_format == "alpaca"
    kept = selector.indices_
    assert len(kept) == 12 and trainer.train_dataset["input_ids"] == tokens.select(kept)["input_ids"]  # exactly the kept rows
    assert trainer.state.global_step == 3  # 12 rows, batch 4, one epoch


def test_full_fine_tuning_of_a_tiny_llama_on_the_kept_rows(rows, tokenizer, tmp_path):
    model = tiny_llama(tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer, tokens = trained(model, rows, tokenizer, tmp_path)
    check_kept_rows(trainer, tokens)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    metrics = trainer.evaluate()
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    trainer.save_model(str(tmp_path / "saved"))
    card = ModelCard.load(tmp_path / "saved" / "README.md")
    assert card.data.pipeline_tag == "text-generation" and card.data.base_model == BASE and card.data.library_name == "transformers"
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["loss"] == pytest.approx(metrics["eval_loss"]) and results["perplexity"] == pytest.approx(metrics["eval_perplexity"])
    assert "text-generation" in card.data.tags and "| rows kept | 12 |" in card.text


def test_lora_fine_tuning_saves_adapters_and_names_the_base_model(rows, tokenizer, tmp_path):
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(tiny_llama(tokenizer), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                        task_type="CAUSAL_LM"))
    frozen = {k: v.clone() for k, v in model.named_parameters() if "lora_" not in k}
    trainer, tokens = trained(model, rows, tokenizer, tmp_path)
    check_kept_rows(trainer, tokens)
    assert all(torch.equal(frozen[k], v) for k, v in model.named_parameters() if "lora_" not in k)  # only adapters trained
    trainer.evaluate()
    trainer.save_model(str(tmp_path / "adapters"))
    saved = sorted(p.name for p in (tmp_path / "adapters").iterdir())
    assert "adapter_config.json" in saved and "adapter_model.safetensors" in saved and "model.safetensors" not in saved
    card = ModelCard.load(tmp_path / "adapters" / "README.md")
    assert (card.data.pipeline_tag, card.data.library_name, card.data.base_model) == ("text-generation", "peft", BASE)
    assert {"peft", "lora"} <= set(card.data.tags) and any(r.metric_type == "perplexity" for r in card.data.eval_results)


def test_a_causal_trainer_needs_text_it_can_select_on(rows, tokenizer, tmp_path):
    tokens = tokenize_causal(rows, tokenizer, 48)
    with pytest.raises(KeyError, match="text_column='text' is not in train_dataset"):
        QSelectTrainer(model=tiny_llama(tokenizer), args=config(tmp_path), train_dataset=tokens, processing_class=tokenizer)


def test_trl_sft_trainer_selects_then_trains_on_the_kept_rows_only(rows, tokenizer, tmp_path):
    """QSelectSFTTrainer: TRL's SFTTrainer on prompt/completion rows, selected first (issue 28)."""
    pytest.importorskip("trl")
    from hf_qselect.training import QSelectSFTConfig, QSelectSFTTrainer

    data = Dataset.from_dict({"prompt": [f"{i} {p}\n\n{x}" for i, (p, x) in enumerate(zip(rows["instruction"], rows["input"]))],
                              "completion": rows["output"]})
    args = QSelectSFTConfig(output_dir=str(tmp_path / "sft"), selection_keep=0.25, selection_n_jobs=1, selection_show_progress=False,
                            selection_cache_dir=str(tmp_path / "cache"), per_device_train_batch_size=4, num_train_epochs=1,
                            max_length=48, learning_rate=1e-3, report_to=[], save_strategy="no", use_cpu=True, bf16=False,
                            disable_tqdm=True)
    model = tiny_llama(tokenizer)
    trainer = QSelectSFTTrainer(model=model, args=args, train_dataset=data, eval_dataset=data.select(range(8)), processing_class=tokenizer)
    trainer.train()
    kept = trainer.instance_selector.indices_
    assert trainer.instance_selector.report_.text_format == "prompt_completion" and len(kept) == 12
    assert len(trainer.train_dataset) == 12 and trainer.state.global_step == 3
    starts = [tokenizer.decode(ids, skip_special_tokens=True).split()[0] for ids in trainer.train_dataset["input_ids"]]
    assert starts == [str(i) for i in kept]  # each trained row is the kept row of the same index
    trainer.evaluate()
    trainer.save_model(str(tmp_path / "saved"))
    card = ModelCard.load(tmp_path / "saved" / "README.md")
    assert card.data.pipeline_tag == "text-generation" and card.data.base_model == BASE
    assert any(r.metric_type == "perplexity" for r in card.data.eval_results)
    with pytest.raises(ValueError, match="set packing=False"):
        QSelectSFTTrainer(model=model, args=QSelectSFTConfig(output_dir=str(tmp_path / "p"), packing=True, use_cpu=True, bf16=False,
                                                             report_to=[]), train_dataset=data, processing_class=tokenizer)
