"""QSelectTrainer with a real transformers.Trainer on a tiny random BERT, recipes and the train command."""
import json

import numpy as np
import torch
import pytest
import yaml
from datasets import Dataset
from huggingface_hub import ModelCard
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, TrainerCallback, TrainingArguments

from hf_qselect import InstanceSelector, QSelectTrainer
from hf_qselect.cli import main
from hf_qselect.selection.embeddings import default_embedder
from hf_qselect.training.recipes import RECIPE_DATACLASSES, parse_recipe


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(default_embedder())


def tiny_bert(tokenizer, labels=2):
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=labels)
    return BertForSequenceClassification(config)


@pytest.fixture
def tokenized(sentences, tokenizer):
    return sentences.map(lambda b: tokenizer(b["text"], truncation=True, max_length=16, padding="max_length"), batched=True)


def args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, num_train_epochs=1, report_to=[],
                save_strategy="no", logging_steps=1, disable_tqdm=True, use_cpu=True, seed=0)
    return TrainingArguments(**{**base, **kw})


class RowsSeen(TrainerCallback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kw):
        self.steps += 1


def selector(**kw):
    return InstanceSelector(**{"keep": 0.5, "seed": 0, "block_size": 12, "n_jobs": 1, "show_progress": False, **kw})


def test_trains_on_exactly_the_selected_rows_and_logs_it(tokenized, tokenizer, tmp_path):
    seen = RowsSeen()
    trainer = QSelectTrainer(model=tiny_bert(tokenizer), args=args(tmp_path), train_dataset=tokenized,
                             processing_class=tokenizer, instance_selector=selector(), callbacks=[seen])
    trainer.train()
    assert len(trainer.train_dataset) == 12
    assert list(trainer.train_dataset["text"]) == [list(tokenized["text"])[i] for i in trainer.instance_selector.indices_]
    assert len(trainer.get_train_dataloader()) == 3 and seen.steps == 3  # 12 rows / batch 4
    record = next(e for e in trainer.state.log_history if "selection/rows_kept" in e)
    assert record["selection/rows_kept"] == 12 and record["selection/rows_before"] == 24
    assert record["selection/solver"] == "sa" and record["selection/reduction"] == 0.5
    assert record["selection/kept_0"] == 6 and record["selection/kept_1"] == 6
    assert np.isclose(record["selection/energy"], trainer.selection_report_.energy)


def test_selection_dataset_for_a_tokenized_only_train_set(tokenized, sentences, tokenizer, tmp_path):
    bare = tokenized.remove_columns(["text"])
    with pytest.raises(KeyError, match="selection_dataset"):
        QSelectTrainer(model=tiny_bert(tokenizer), args=args(tmp_path), train_dataset=bare, instance_selector=selector())
    trainer = QSelectTrainer(model=tiny_bert(tokenizer), args=args(tmp_path), train_dataset=bare, selection_dataset=sentences,
                             processing_class=tokenizer, instance_selector=selector())
    trainer.train()
    assert list(trainer.train_dataset["input_ids"]) == [list(bare["input_ids"])[i] for i in trainer.instance_selector.indices_]


def test_bad_input_fails_before_training(tokenized, tokenizer, tmp_path):
    model = tiny_bert(tokenizer)
    with pytest.raises(KeyError, match="text_column='review'"):
        QSelectTrainer(model=model, args=args(tmp_path), train_dataset=tokenized, instance_selector=selector(text_column="review"))
    with pytest.raises(ValueError, match="fewer than one training batch"):
        QSelectTrainer(model=model, args=args(tmp_path, per_device_train_batch_size=16), train_dataset=tokenized, instance_selector=selector(keep=0.5))
    with pytest.raises(TypeError, match="IterableDataset"):
        QSelectTrainer(model=model, args=args(tmp_path), train_dataset=tokenized.to_iterable_dataset(), instance_selector=selector())
    with pytest.raises(ValueError, match="row for row"):
        QSelectTrainer(model=model, args=args(tmp_path), train_dataset=tokenized, selection_dataset=tokenized.select(range(5)), instance_selector=selector())


def test_model_card_has_the_runs_real_numbers(tokenized, tokenizer, tmp_path):
    trainer = QSelectTrainer(model=tiny_bert(tokenizer), args=args(tmp_path), train_dataset=tokenized, eval_dataset=tokenized,
                             processing_class=tokenizer, instance_selector=selector(),
                             compute_metrics=lambda p: {"macro_f1": 0.5 + 0.0 * float(np.mean(p.predictions))})
    trainer.train()
    trainer.evaluate()
    out = tmp_path / "saved"
    trainer.save_model(str(out))
    card = ModelCard.load(out / "README.md")
    assert {"instance-selection", "qubo", "quantum-annealing"} <= set(card.data.tags)
    assert card.data.pipeline_tag == "text-classification" and "macro_f1" in card.data.metrics
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}  # the model-index
    final = [e for e in trainer.state.log_history if "eval_macro_f1" in e][-1]
    assert results["macro_f1"] == final["eval_macro_f1"] and results["loss"] == final["eval_loss"]
    assert {r.task_type for r in card.data.eval_results} == {"text-classification"}
    report = trainer.selection_report_
    text = card.text
    assert f"| rows kept | {report.n_kept} |" in text and f"| rows before | {report.n_rows} |" in text
    assert "| 0 | 12 | 6 |" in text and "| solver | sa |" in text and "| seed | 0 |" in text
    runtime = next(e for e in trainer.state.log_history if "train_runtime" in e)["train_runtime"]
    assert f"| training time (s) | {runtime:.4g} |" in text
    assert "{" not in text.split("## Framework")[0]  # no unrendered placeholder
    reloaded = BertForSequenceClassification.from_pretrained(out)
    assert reloaded.config.num_labels == 2


def test_recipe_round_trips_through_hfargumentparser(tmp_path):
    recipe = {"dataset": "data.csv", "selection_keep": 0.3, "selection_method": "random", "output_dir": str(tmp_path / "o"),
              "num_train_epochs": 2, "report_to": "none", "selection_class_balance": 0.5, "seed": 42}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    model, data, config = parse_recipe(path, ["--selection_keep", "0.4", "--prune_remove_heads", "0.25", "--prune_seed", "3"])
    assert config.prune_remove_heads == 0.25 and config.prune_remove_ffn == 0.0 and config.prune_at == "start"
    assert data.dataset == "data.csv" and config.selection_method == "random" and config.selection_class_balance == 0.5
    assert config.selection_keep == 0.4 and config.num_train_epochs == 2 and config.report_to == []
    assert [type(x) for x in (model, data, config)] == list(RECIPE_DATACLASSES)
    selector, pruner = config.make_selector(), config.make_pruner()
    assert (selector.keep, selector.method, selector.class_balance, selector.seed) == (0.4, "random", 0.5, 0)
    assert (pruner.remove_heads, pruner.method, pruner.seed) == (0.25, "qubo", 3)  # each application's own seed, not the training seed
    path.write_text(yaml.safe_dump({**recipe, "kep": 0.3}))
    with pytest.raises(ValueError, match="kep"):
        parse_recipe(path)
    path.write_text(yaml.safe_dump({**recipe, "selection_keep": "lots"}))
    with pytest.raises(ValueError, match="--selection_keep"):
        parse_recipe(path)


def test_old_recipe_keys_still_work_with_a_warning_naming_the_new_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"dataset": "data.csv", "keep": 0.3, "size_budget": "20%", "output_dir": str(tmp_path / "o")}))
    with pytest.warns(FutureWarning, match="'keep' is deprecated: use 'selection_keep'"):
        _, _, config = parse_recipe(path, ["--heads", "0.25", "--prune_ffn", "0.5"])  # the bare key, then the prefixed one
    assert (config.selection_keep, config.compress_budget, config.prune_remove_heads, config.prune_remove_ffn) == (0.3, "20%", 0.25, 0.5)
    from hf_qselect import QSelectConfig

    with pytest.warns(FutureWarning, match="'ffn' is deprecated: use 'prune_remove_ffn'"):
        assert QSelectConfig(output_dir=str(tmp_path / "p"), ffn=0.5, report_to=[]).prune_remove_ffn == 0.5
    path.write_text(yaml.safe_dump({"keep": 0.3, "selection_keep": 0.5, "output_dir": str(tmp_path / "o")}))
    with pytest.raises(ValueError, match="gives both 'keep' and 'selection_keep'"):
        parse_recipe(path)


def test_train_command_on_a_tiny_recipe(sentences, tokenizer, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    model_dir = tmp_path / "tiny"
    tiny_bert(tokenizer).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data = tmp_path / "reviews.csv"
    Dataset.from_dict({"text": list(sentences["text"]) * 2, "label": list(sentences["label"]) * 2}).to_csv(str(data))
    recipe = {"model_name_or_path": str(model_dir), "max_length": 16, "dataset": str(data), "selection_keep": 0.5, "selection_block_size": 12,
              "output_dir": str(tmp_path / "out"), "num_train_epochs": 1, "per_device_train_batch_size": 4,
              "report_to": "none", "save_strategy": "no", "use_cpu": True, "disable_tqdm": True}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), "--selection_seed", "1", "--prune_remove_heads", "0.5", "--prune_remove_ffn", "0.5"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary["rows_full"] == 38 and summary["rows_kept"] == 19
    assert (tmp_path / "out" / "README.md").exists() and (tmp_path / "out" / "config.json").exists()
    assert "trained on 19/38 rows" in out
    assert summary["params"] < sum(p.numel() for p in tiny_bert(tokenizer).parameters()) and "heads 4 -> 2" in summary["pruning"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**recipe, "learning_rat": 0.1}))
    assert main(["train", str(bad)]) == 2


@pytest.mark.parametrize("prune_at", ["start", "end"])
def test_pruning_with_the_trainer(tokenized, tokenizer, tmp_path, prune_at):
    from hf_qselect.pruning import AnnealingPruner, load_pruned

    model = tiny_bert(tokenizer)
    pruner = AnnealingPruner(remove_heads=0.5, remove_ffn=0.25, seed=0, show_progress=False)
    evaluation = tokenized.select(range(16)) if prune_at == "end" else None  # "start": no eval set, nothing evaluated
    trainer = QSelectTrainer(model=model, args=args(tmp_path), train_dataset=tokenized, processing_class=tokenizer, eval_dataset=evaluation,
                             instance_selector=selector(), pruner=pruner, prune_at=prune_at, recovery_epochs=1)
    trainer.train()
    assert sum(p.numel() for p in trainer.model.parameters()) == pruner.report_.params_after < pruner.report_.params_before
    before, after = pruner.report_.metrics_before, pruner.report_.metrics_after
    if prune_at == "end":
        assert before["loss"] != after["loss"]  # evaluated on the model before and after the units went
    else:
        assert before == after == {}
    assert trainer.model.bert.encoder.layer[0].intermediate.dense.out_features == 48
    history = trainer.state.log_history
    assert any("pruning/params_after" in e for e in history) and any("selection/rows_kept" in e for e in history)
    assert sum("train_runtime" in e for e in history) == (2 if prune_at == "end" else 1)
    out = tmp_path / "saved"
    trainer.save_model(str(out))
    card = (out / "README.md").read_text()
    assert f"{pruner.report_.params_after:,}" in card and "pruning.png" in card and (out / "pruning.png").exists()
    assert ("eval loss: before -> just after pruning" in card) == (prune_at == "end")
    x = torch.randint(1, 100, (2, 9))
    with torch.no_grad():
        assert torch.equal(load_pruned(out)(x).logits, trainer.model.eval()(x).logits)


def test_pruner_bad_input_before_training(tokenized, tokenizer, tmp_path):
    from hf_qselect.pruning import AnnealingPruner

    with pytest.raises(ValueError, match="prune_at"):
        QSelectTrainer(model=tiny_bert(tokenizer), args=args(tmp_path), train_dataset=tokenized, pruner=AnnealingPruner(remove_heads=0.5), prune_at="middle")
    with pytest.raises(ValueError, match="heads"):
        QSelectTrainer(model=tiny_bert(tokenizer), args=args(tmp_path), train_dataset=tokenized, pruner=AnnealingPruner(remove_heads=1.5))
    with pytest.raises(ValueError, match="input_ids"):
        QSelectTrainer(model=tiny_bert(tokenizer), args=args(tmp_path), train_dataset=tokenized.remove_columns("input_ids"), pruner=AnnealingPruner(remove_heads=0.5))


@pytest.mark.parametrize("recipe", ["recipes/demo_rotten_tomatoes.yaml", "recipes/vader_nyt.yaml"])
def test_shipped_recipes_parse(recipe):
    from pathlib import Path

    model, data, config = parse_recipe(Path(__file__).parents[1] / recipe)
    assert data.dataset.startswith("builtin:") and config.selection_keep == 0.5 and config.warmup_steps == 0.06


def test_model_card_is_written_once_at_the_end_not_per_checkpoint(tokenized, tokenizer, tmp_path):
    from hf_qselect import QSelectConfig

    config = QSelectConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, num_train_epochs=1, report_to=[],
                           save_strategy="steps", save_steps=1, disable_tqdm=True, use_cpu=True, selection_keep=0.5,
                           selection_block_size=12, selection_n_jobs=1, selection_show_progress=False, prune_remove_heads=0.5)
    trainer = QSelectTrainer(model=tiny_bert(tokenizer), args=config, train_dataset=tokenized, processing_class=tokenizer)
    assert trainer.instance_selector.keep == 0.5 and trainer.pruner.remove_heads == 0.5  # built from the config
    trainer.train()
    checkpoints = sorted((tmp_path / "run").glob("checkpoint-*"))
    assert len(checkpoints) == 3
    assert not any((c / "README.md").exists() or (c / "pruning.png").exists() for c in checkpoints)
    trainer.save_model()
    assert (tmp_path / "run" / "README.md").exists() and (tmp_path / "run" / "pruning.png").exists()


def test_a_new_editor_plugs_in_without_touching_the_trainer(tokenized, tokenizer, tmp_path):
    """An ``Editor`` subclass given as ``editors=[...]`` is checked at construction, acts before and after training
    in order, logs through ``queue_log`` and writes its files on the final save."""
    from transformers import TrainingArguments

    from hf_qselect.training import Editor

    class Recorder(Editor):
        def __init__(self):
            self.calls = []

        def check(self, trainer):
            self.calls.append("check")

        def before_training(self, trainer):
            self.calls.append("before")
            trainer.queue_log({"recorder/rows": len(trainer.train_dataset)})

        def after_training(self, trainer, result):
            self.calls.append("after")
            return result

        def write_files(self, trainer, output_dir):
            (output_dir / "recorder.txt").write_text(",".join(self.calls))

    recorder = Recorder()
    args = TrainingArguments(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, num_train_epochs=1, report_to=[],
                             save_strategy="no", disable_tqdm=True, use_cpu=True)
    trainer = QSelectTrainer(model=tiny_bert(tokenizer), args=args, train_dataset=tokenized, processing_class=tokenizer, editors=[recorder])
    assert recorder.calls == ["check"] and trainer.editors == [recorder]
    trainer.train()
    assert recorder.calls == ["check", "before", "after"]
    assert any(h.get("recorder/rows") == len(tokenized) for h in trainer.state.log_history)
    trainer.save_model()
    assert (tmp_path / "run" / "recorder.txt").read_text() == "check,before,after"
