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
    return QSelectConfig(**{"output_dir": str(tmp_path / "run"), "selection_keep": 0.25, "selection_n_jobs": 1, "selection_show_progress": False,
                            "selection_cache_dir": str(tmp_path / "cache"), "per_device_train_batch_size": 4, "num_train_epochs": 1,
                            "learning_rate": 1e-3, "report_to": [], "save_strategy": "no", "use_cpu": True, "disable_tqdm": True, **kw})


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
    assert {"peft", "lora"} <= set(card.data.tags) and {"loss", "perplexity"} <= {r.metric_type for r in card.data.eval_results}


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
    assert {"loss", "perplexity"} <= {r.metric_type for r in card.data.eval_results}
    with pytest.raises(ValueError, match="set packing=False"):
        QSelectSFTTrainer(model=model, args=QSelectSFTConfig(output_dir=str(tmp_path / "p"), packing=True, use_cpu=True, bf16=False,
                                                             report_to=[]), train_dataset=data, processing_class=tokenizer)


@pytest.fixture
def recipe_inputs(rows, tokenizer, tmp_path):
    """A saved tiny Llama, an Alpaca-style JSON file and a recipe of task causal-lm."""
    import json

    import yaml

    tiny_llama(tokenizer).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    (tmp_path / "alpaca.json").write_text(json.dumps(rows.to_list()))
    recipe = {"task": "causal-lm", "model_name_or_path": str(tmp_path / "llama"), "max_length": 48, "lora_r": 4,
              "dataset": str(tmp_path / "alpaca.json"), "eval_size": 8, "selection_keep": 0.25, "selection_n_jobs": 1,
              "selection_show_progress": False, "selection_cache_dir": str(tmp_path / "cache"), "output_dir": str(tmp_path / "out"),
              "num_train_epochs": 1, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "report_to": "none",
              "save_strategy": "no", "use_cpu": True, "disable_tqdm": True}
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path


def test_a_causal_lm_recipe_runs_end_to_end(recipe_inputs, capsys):
    import json

    from hf_qselect.cli import main

    root = recipe_inputs
    assert main(["train", str(root / "sft.yaml")]) == 0
    out = capsys.readouterr().out
    assert "trained on 10/40 rows, held-out loss" in out and "perplexity" in out
    summary = json.loads((root / "out" / "run_summary.json").read_text())
    assert summary["rows_kept"] == 10 and summary["eval_before"]["loss"] > 0 and summary["eval_after"]["loss"] > 0
    assert summary["eval_after"]["perplexity"] == pytest.approx(math.exp(summary["eval_after"]["loss"]))
    saved = {p.name for p in (root / "out").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "run_summary.json"} <= saved
    card = ModelCard.load(root / "out" / "README.md")
    assert card.data.pipeline_tag == "text-generation" and card.data.library_name == "peft"
    assert "| rows kept | 10 |" in card.text


@pytest.mark.parametrize("change, expected", [
    ({"task": "causal-lm", "model_name_or_path": "BERT"}, "task: causal-lm needs a causal LM (*ForCausalLM); "),
    ({"dataset": "NOTEXT"}, "no usable text: the columns"),
    ({"lora_rank": 8}, "lora_rank"),
    ({"task": "translation"}, "invalid choice: 'translation'"),
    ({"dataset": "EMPTY"}, "the response is empty; drop such rows first"),
    ({"prune_remove_layers": 0.25}, "task: causal-lm recipes do not prune or compress"),
    ({"quantize": True}, "task: causal-lm recipes do not prune or compress"),
])
def test_bad_causal_recipes_are_one_line_errors(recipe_inputs, tokenizer, capsys, change, expected):
    import yaml
    from transformers import BertConfig, BertForSequenceClassification

    from hf_qselect.cli import main

    root = recipe_inputs
    BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=32)).save_pretrained(root / "bert")
    Dataset.from_dict({"question": ["a", "b"] * 10, "answer": ["c", "d"] * 10}).to_json(str(root / "qa.jsonl"))
    recipe = yaml.safe_load((root / "sft.yaml").read_text())
    holes = Dataset.from_dict({"instruction": ["a", "b"] * 10, "output": ["c", " "] * 10})
    holes.to_json(str(root / "holes.jsonl"))
    recipe.update({k: {"BERT": str(root / "bert"), "NOTEXT": str(root / "qa.jsonl"), "EMPTY": str(root / "holes.jsonl")}.get(v, v)
                   for k, v in change.items()})
    (root / "bad.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(root / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("hf-qselect")]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in err, err[-800:]
    assert not (root / "out").exists()


def doc_snippets() -> dict[str, str]:
    """The ``<!-- tested: NAME -->`` Python blocks of docs/training.md."""
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "training.md").read_text()
    return dict(re.findall(r"<!-- tested: (\w+) -->\n```python\n(.*?)```", text, flags=re.S))


@pytest.mark.parametrize("name", ["full", "lora", "trl"])
def test_the_docs_snippets_run(name, rows, tokenizer, tmp_path, monkeypatch):
    """docs/training.md's causal-LM snippets, as written, on a tiny Llama and prompt/completion rows."""
    snippets = doc_snippets()
    assert set(snippets) == {"full", "lora", "trl"}
    if name in ("lora", "trl"):
        pytest.importorskip("peft" if name == "lora" else "trl")
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    pairs = Dataset.from_dict({"prompt": rows["instruction"], "completion": rows["output"]})
    namespace = {"model": tiny_llama(tokenizer), "tokenizer": tokenizer, "raw_train": pairs.select(range(40)),
                 "raw_eval": pairs.select(range(40, 48)), "out": str(tmp_path / "out")}
    exec(compile(snippets[name], f"docs/training.md:{name}", "exec"), namespace)
    trainer = namespace["trainer"]
    assert len(trainer.train_dataset) == 10 and trainer.instance_selector.report_.text_format == "prompt_completion"


def test_drop_empty_responses_trains_on_the_rest(recipe_inputs):
    import json

    import yaml

    from hf_qselect.cli import main
    from hf_qselect.text_formats import without_empty_responses

    root = recipe_inputs
    rows = json.loads((root / "alpaca.json").read_text())
    for i in (3, 17, 29):
        rows[i]["output"] = "  "
    (root / "alpaca.json").write_text(json.dumps(rows))
    kept, dropped = without_empty_responses(Dataset.from_list(rows))
    assert dropped == 3 and len(kept) == 45 and all(r["output"].strip() for r in kept)
    recipe = {**yaml.safe_load((root / "sft.yaml").read_text()), "drop_empty_responses": True}
    (root / "sft.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(root / "sft.yaml")]) == 0
    from hf_qselect.training.recipes import DataArguments, prepare_splits

    train, _ = prepare_splits(Dataset.from_list(rows), DataArguments(dataset="x", eval_size=8))
    empty_in_train = sum(not r["output"].strip() for r in train)
    summary = json.loads((root / "out" / "run_summary.json").read_text())
    assert summary["rows_full"] == 40 - empty_in_train  # the training split without its empty rows


def test_a_stream_is_refused_with_how_to_materialise_a_sample(rows, tokenizer, tmp_path):
    """Issue 28 item 5: an IterableDataset is refused (with a QSelectConfig that selects, too), naming the fix."""
    tokens = tokenize_causal(rows, tokenizer, 48)
    with pytest.raises(TypeError, match=r"Dataset.from_list\(list\(stream.take\(N\)\)\)"):
        QSelectTrainer(model=tiny_llama(tokenizer), args=config(tmp_path), train_dataset=tokens.to_iterable_dataset(),
                       processing_class=tokenizer)
    sample = Dataset.from_list(list(rows.to_iterable_dataset().take(40)))  # what the message says to do
    trainer = QSelectTrainer(model=tiny_llama(tokenizer), args=config(tmp_path), train_dataset=tokenize_causal(sample, tokenizer, 48),
                             selection_dataset=sample, processing_class=tokenizer,
                             data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
    trainer.train()
    assert len(trainer.train_dataset) == 10
    no_selection = QSelectTrainer(model=tiny_llama(tokenizer), args=config(tmp_path, selection_keep=1.0, max_steps=2),
                                  train_dataset=tokens.to_iterable_dataset(), processing_class=tokenizer)
    assert no_selection.instance_selector is None  # keep 1.0: the stream trains as it is


def test_a_decoder_pruned_at_the_start_then_fine_tuned(rows, tokenizer, tmp_path):
    """The model editors with a causal LM: pruned on the kept rows (uniform shape), then trained; the card records it."""
    from hf_qselect.pruning import AnnealingPruner

    tokens = tokenize_causal(rows, tokenizer, 48)
    model = tiny_llama(tokenizer)
    trainer = QSelectTrainer(model=model, args=config(tmp_path), train_dataset=tokens, selection_dataset=rows, processing_class=tokenizer,
                             pruner=AnnealingPruner(remove_heads=0.5, remove_ffn=0.5, uniform=True, ffn_multiple=1, show_progress=False),
                             data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
    trainer.train()
    assert model.config.num_key_value_heads == 1 and model.config.intermediate_size == 32 and len(trainer.train_dataset) == 12
    trainer.save_model(str(tmp_path / "pruned"))
    reloaded = LlamaForCausalLM.from_pretrained(tmp_path / "pruned")  # uniform: plain from_pretrained
    x = torch.randint(1, 100, (2, 7))
    with torch.no_grad():
        assert torch.allclose(reloaded(x).logits, model.eval()(x).logits, atol=1e-5)
    card = ModelCard.load(tmp_path / "pruned" / "README.md")
    assert card.data.pipeline_tag == "text-generation" and "attention heads" in card.text


def test_a_decoder_pruned_at_the_start_and_recovered_by_lora(rows, tokenizer, tmp_path):
    """Issue 28 / 26: pruner= and lora= together: pruned on the kept rows, adapters trained, merged back, so the saved
    model is a plain pruned Llama that from_pretrained reloads with the same logits."""
    peft = pytest.importorskip("peft")
    from hf_qselect.pruning import AnnealingPruner

    tokens = tokenize_causal(rows, tokenizer, 48)
    trainer = QSelectTrainer(model=tiny_llama(tokenizer), args=config(tmp_path), train_dataset=tokens, selection_dataset=rows,
                             processing_class=tokenizer, data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100),
                             pruner=AnnealingPruner(remove_heads=0.5, uniform=True, show_progress=False),
                             lora=peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainer.train()
    lora = next(e for e in trainer.editors if type(e).__name__ == "LoraEditor")
    assert lora.trainable_ < lora.total_ / 10  # only the adapters trained
    model = trainer.model
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_key_value_heads == 1  # merged, pruned
    trainer.save_model(str(tmp_path / "merged"))
    reloaded = LlamaForCausalLM.from_pretrained(tmp_path / "merged")
    x = torch.randint(1, 100, (2, 7))
    with torch.no_grad():
        assert torch.allclose(reloaded(x).logits, model.eval()(x).logits, atol=1e-5)
    card = (tmp_path / "merged" / "README.md").read_text()
    assert "merged into the model after training" in card and "attention heads" in card
    with pytest.raises(ValueError, match="prune at the start"):
        QSelectTrainer(model=tiny_llama(tokenizer), args=config(tmp_path), train_dataset=tokens, selection_dataset=rows,
                       processing_class=tokenizer, pruner=AnnealingPruner(remove_heads=0.5, uniform=True), prune_at="end",
                       lora=peft.LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
