"""Joint pruning + int8 compression (seed 001): real gradients, real annealing, real removal and quantization,
real files and a real onnxruntime session."""
import copy
import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, GPT2Config, GPT2ForSequenceClassification

from hf_qselect.compression import (AnnealingCompressor, export_onnx, load_compressed, prune_vocabulary, quantized_modules,
                                    save_compressed, weight_bytes)
from hf_qselect.compression.formulation import Formulation
from hf_qselect.compression.layout import Choice
from hf_qselect.qubo import AnnealSettings, anneal
from hf_qselect.selection.embeddings import default_embedder

from .conftest import fit_within_latency


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(default_embedder())


def tiny_bert(tokenizer, seed=0, layers=2, heads=4, hidden=32, ffn=64):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config).eval()


@pytest.fixture
def calibration(sentences, tokenizer):
    return sentences.map(lambda b: tokenizer(b["text"], truncation=True, max_length=16), batched=True)


def compressor(**kw):
    return AnnealingCompressor(**{"budget": "30%", "ffn_block": 8, "num_reads": 4, "num_sweeps": 300, "show_progress": False, **kw})


def inputs(tokenizer, sentences):
    return tokenizer(list(sentences["text"][:6]), padding=True, return_tensors="pt")


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_one_hot_group_holds_one_option_after_annealing(tokenizer, calibration):
    c = compressor().fit(tiny_bert(tokenizer), calibration)
    form = Formulation(c.layout_, c.sensitivity_, c.cost_, c.beta, c.options)
    blocks = form.reward_blocks(3.0)
    x = np.zeros(form.vars.size, dtype=np.int8)
    for q, s in zip(blocks, anneal(blocks, AnnealSettings(seed=0, num_reads=2, num_sweeps=2, n_jobs=1, show_progress=False))):
        assert q.feasible(s.x)
        x[q.index] = s.x
    assert np.all(np.bincount(form.vars.group, weights=x) == 1)  # one option per unit and per module


def test_qubo_energy_equals_the_loss_and_cost_recomputed(tokenizer, calibration):
    c = compressor().fit(tiny_bert(tokenizer), calibration)
    layout, sens, cost = c.layout_, c.sensitivity_, c.cost_
    form = Formulation(layout, sens, cost, 0.7, c.options)
    gamma = 2.5
    blocks = form.reward_blocks(gamma)
    rng = np.random.default_rng(0)
    droppable = np.array([u.droppable for u in layout.units])
    for _ in range(10):
        choice = Choice(keep=~droppable | (rng.random(len(layout.units)) < 0.6), int8=rng.random(len(layout.modules)) < 0.5)
        x = form.encode(choice)
        energy = sum(q.energy(x[q.index]) for q in blocks)
        drop = sum(sens.drop[i] for i in range(len(layout.units)) if not choice.keep[i])
        quant = sum(sens.quant[m][j] for m, mod in enumerate(layout.modules) if choice.int8[m]
                    for j, u in enumerate(mod.units) if choice.keep[u])
        quant += sum(sens.quant_fixed[m] for m in range(len(layout.modules)) if choice.int8[m])  # the pooler's own error
        expected = (drop + 0.7 * quant) / form.loss_scale + gamma * (cost.evaluate(layout, choice) - cost.base) / form.full_cost
        assert energy == pytest.approx(expected, rel=1e-9)
        assert form.decode(x).keep.tolist() == choice.keep.tolist() and form.decode(x).int8.tolist() == choice.int8.tolist()
        linear, const = form.linear_cost(choice)  # the penalty form's linearisation is exact at its own point
        assert const + linear @ x == pytest.approx(cost.evaluate(layout, choice), rel=1e-9)


@pytest.mark.parametrize("form, qscheme", [("reward", "auto"), ("penalty", "auto"), ("reward", "per_channel")])
def test_size_budget_holds_and_the_size_model_is_the_measured_size(tokenizer, calibration, form, qscheme):
    model = tiny_bert(tokenizer)
    before = weight_bytes(model)[0]
    c = compressor(budget="30%", budget_form=form, qscheme=qscheme).fit(model, calibration)
    assert c.report_.qscheme == ("per_channel" if qscheme == "per_channel" else "per_tensor")  # auto: per tensor for a classifier
    assert c.report_.predicted_bytes_before == before
    c.apply(model)
    after = weight_bytes(model)[0]
    assert after == c.report_.predicted_bytes_after == c.report_.bytes_after["non_embedding"]
    assert after <= 0.30 * before
    expected = sum(map(sum, c.report_.int8)) + 2 * sum(row[0] for row in c.report_.int8) + sum(c.report_.int8_other.values())  # qkv: 3
    assert len(quantized_modules(model)) == expected
    assert [l.attention.self.query.out_features // 8 for l in model.bert.encoder.layer] == c.report_.heads_after
    assert [l.intermediate.dense.out_features for l in model.bert.encoder.layer] == c.report_.ffn_after


def test_fallback_fits_the_budget_and_options_restrict_the_choice(tokenizer, calibration):
    model = tiny_bert(tokenizer)
    with pytest.warns(FutureWarning, match="the same method is now method='fallback'"):
        old_name = compressor(method="greedy", budget="35%").fit(model, calibration)
    fell_back = compressor(method="fallback", budget="35%").fit(model, calibration)
    assert fell_back.report_.cost_after <= fell_back.report_.limit and fell_back.report_.method == old_name.report_.method == "fallback"
    assert np.array_equal(old_name.choice_.keep, fell_back.choice_.keep)
    quant_only = compressor(options=("int8", "fp32"), budget="40%").fit(model, calibration)
    assert sum(quant_only.report_.heads_after) == sum(quant_only.report_.heads_before)
    assert sum(quant_only.report_.ffn_after) == sum(quant_only.report_.ffn_before)
    prune_only = compressor(options=("drop", "fp32"), budget="60%").fit(model, calibration)
    assert not any(map(any, prune_only.report_.int8)) and prune_only.report_.cost_after <= prune_only.report_.limit
    assert all(h >= 1 for h in prune_only.report_.heads_after) and all(f >= 1 for f in prune_only.report_.ffn_after)


def test_latency_budget_fits_the_measured_table(tokenizer, calibration):
    model = tiny_bert(tokenizer)
    probe = compressor(budget=None, latency_ms=1e6, latency_batch=2, latency_length=16).fit(model, calibration)
    full = probe.report_.cost_before
    fit_within_latency(compressor(budget=None, latency_ms=0.8 * full, latency_batch=2, latency_length=16), model, calibration)


@pytest.mark.parametrize("qscheme", ["per_tensor", "per_channel"])
def test_save_and_load_give_identical_logits(tokenizer, sentences, calibration, tmp_path, qscheme):
    from safetensors import safe_open

    model = tiny_bert(tokenizer)
    c = compressor(budget="28%", qscheme=qscheme).fit(model, calibration)
    c.apply(model)
    assert len(set(c.report_.ffn_after)) >= 1
    save_compressed(model, tmp_path / "c", tokenizer)
    name = quantized_modules(model)[0]
    with safe_open(str(tmp_path / "c" / "model.safetensors"), "pt") as f:  # one fp32 scale per Linear, or per output row
        scales = f.get_tensor(name + ".weight_scale")
        assert scales.dtype == torch.float32 and scales.numel() == (model.get_submodule(name).out_features if qscheme == "per_channel" else 1)
        assert (name + ".weight_axis" in f.keys()) == (qscheme == "per_channel")
    assert json.loads((tmp_path / "c" / "config.json").read_text())["hf_qselect_compression"]["qscheme"] == qscheme + "_symmetric"
    loaded = load_compressed(tmp_path / "c")
    x = inputs(tokenizer, sentences)
    with torch.no_grad():
        assert torch.equal(model(**x).logits, loaded(**x).logits)
    assert sorted(quantized_modules(loaded)) == sorted(quantized_modules(model))
    with pytest.raises(FileExistsError, match="not empty"):
        save_compressed(model, tmp_path / "c", tokenizer)
    assert load_compressed(tmp_path / "c") is not None  # the refusal left the folder whole


def test_an_interrupted_overwrite_leaves_the_old_compressed_folder_whole(tokenizer, sentences, calibration, tmp_path, monkeypatch):
    model = tiny_bert(tokenizer)
    compressor(budget="30%").fit(model, calibration).apply(model)
    save_compressed(model, tmp_path / "c", tokenizer)
    before = {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("safetensors.torch.save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_compressed(tiny_bert(tokenizer, seed=1), tmp_path / "c", tokenizer, overwrite=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no staging folder left behind
    x = inputs(tokenizer, sentences)
    with torch.no_grad():
        assert torch.equal(load_compressed(tmp_path / "c")(**x).logits, model(**x).logits)


def test_uneven_ffn_widths_round_trip_through_load_pruned(tokenizer, sentences, tmp_path):
    from hf_qselect.models import remove_units, load_pruned

    model = tiny_bert(tokenizer)
    remove_units(model, [0, 1], {0: [0, 2]}, {0: list(range(10)), 1: list(range(30))})
    model.save_pretrained(tmp_path / "m")
    loaded = load_pruned(tmp_path / "m")
    x = inputs(tokenizer, sentences)
    with torch.no_grad():
        assert torch.equal(model(**x).logits, loaded(**x).logits)
    assert [l.intermediate.dense.out_features for l in loaded.bert.encoder.layer] == [10, 30]


def test_onnx_export_matches_torch(tokenizer, sentences, calibration, tmp_path):
    from hf_qselect.compression.onnx_export import onnx_session

    x = inputs(tokenizer, sentences)
    pruned = tiny_bert(tokenizer)
    compressor(options=("drop", "fp32"), budget="70%").fit(pruned, calibration).apply(pruned)
    export_onnx(pruned, tmp_path / "fp32", tokenizer)
    session = onnx_session(tmp_path / "fp32")
    feeds = {k: v.numpy() for k, v in x.items() if k in {i.name for i in session.get_inputs()}}
    with torch.no_grad():
        assert np.abs(session.run(None, feeds)[0] - pruned(**x).logits.numpy()).max() < 1e-4  # fp32 parts
    both = tiny_bert(tokenizer)
    compressor(budget="30%").fit(both, calibration).apply(both)
    export_onnx(both, tmp_path / "int8", tokenizer)
    session = onnx_session(tmp_path / "int8")
    with torch.no_grad():
        reference = both(**x).logits.numpy()
    # int8 parts: onnxruntime quantizes activations asymmetrically (uint8), torch symmetrically; stated tolerance 5e-3
    assert np.abs(session.run(None, feeds)[0] - reference).max() < 5e-3
    config = json.loads((tmp_path / "int8" / "config.json").read_text())
    assert config["hf_qselect_compression"]["int8"] and (tmp_path / "int8" / "tokenizer.json").exists()
    channels = tiny_bert(tokenizer)
    compressor(budget="30%", qscheme="per_channel").fit(channels, calibration).apply(channels)
    export_onnx(channels, tmp_path / "channels", tokenizer)
    session = onnx_session(tmp_path / "channels")
    with torch.no_grad():
        assert np.abs(session.run(None, feeds)[0] - channels(**x).logits.numpy()).max() < 5e-3


@pytest.mark.parametrize("per_channel", [False, True])
def test_the_modelled_int8_rounding_is_what_quantize_dynamic_stores(per_channel):
    from hf_qselect.compression.quantize import quantize_linears
    from hf_qselect.compression.sensitivity import int8_rounding

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(24, 16))
    with torch.no_grad():
        net[0].weight[3] *= 40  # one row with outliers: a per-tensor scale rounds the other rows coarsely
    modelled = int8_rounding(net[0].weight, per_channel)
    quantize_linears(net, ["0"], per_channel=per_channel)
    stored = net[0]._packed_params._weight_bias()[0].dequantize()
    assert torch.allclose(modelled, stored, atol=1e-7, rtol=0)


def test_vocabulary_pruning_keeps_the_training_tokenisation(tokenizer, sentences):
    model = tiny_bert(tokenizer)
    reference = copy.deepcopy(model)
    texts = list(sentences["text"])
    model, small, kept = prune_vocabulary(model, tokenizer, texts)
    assert model.config.vocab_size == len(kept) == len(small) < 400
    old, new = tokenizer(texts)["input_ids"], small(texts)["input_ids"]
    assert [[kept[i] for i in row] for row in new] == old  # every training text tokenizes to the same tokens
    x_old, x_new = tokenizer(texts, padding=True, return_tensors="pt"), small(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(reference(**x_old).logits, model(**x_new).logits, atol=1e-6)
    assert small.tokenize("zebra") == ["[UNK]"]


def test_compressor_follows_scikit_learn_conventions():
    c = AnnealingCompressor(budget="20%", beta=0.5, seed=3)
    other = clone(c)
    assert other.get_params() == c.get_params() and other is not c
    assert not hasattr(other, "report_")


@pytest.mark.parametrize("kw, match", [
    ({"budget": "25"}, "budget must be a size"),
    ({"budget": "120%"}, "budget must be a size"),
    ({"budget": "20%", "latency_ms": 5.0}, "give one budget"),
    ({"options": ("drop", "int8")}, "options must be fp32"),
    ({"options": ("fp32",)}, "options must be fp32"),
    ({"method": "genetic"}, "method"),
    ({"latency_ms": -1.0}, "latency_ms"),
    ({"qscheme": "per_row"}, "qscheme"),
])
def test_bad_parameters_are_refused_before_work(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AnnealingCompressor(**kw).check_params()


def test_bad_inputs_leave_the_model_untouched(tokenizer, calibration):
    model = tiny_bert(tokenizer)
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"cannot be met .* smallest reachable is"):
        compressor(budget="1%").fit(model, calibration)
    with pytest.raises(ValueError, match="cannot be met"):
        compressor(budget="50%", options=("drop", "fp32"), ffn_block=64).fit(model, calibration)
    assert same_state(state, model.state_dict())
    gpt2 = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, num_labels=2))
    with pytest.raises(TypeError, match="BERT family"):
        compressor().fit(gpt2, calibration)
    c = compressor().fit(model, calibration)
    c.apply(model)
    with pytest.raises(ValueError, match="already quantized"):
        compressor().fit(model, calibration)
    with pytest.raises(KeyError, match="labels"):
        compressor().fit(tiny_bert(tokenizer), calibration.remove_columns("label"))
    with pytest.raises(RuntimeError, match="not fitted"):
        compressor().prune(tiny_bert(tokenizer))


def test_cli_compress_writes_a_loadable_model_and_onnx(tokenizer, sentences, tmp_path):
    from hf_qselect.cli import main
    from hf_qselect.compression.onnx_export import onnx_session

    tiny_bert(tokenizer).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    csv = tmp_path / "cal.csv"
    sentences.to_csv(str(csv))
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    out = tmp_path / "small"
    assert main(["compress", str(tmp_path / "model"), "--data", str(csv), "--budget", "30%", "--ffn-block", "8", "--no-show-progress",
                 "--onnx", "--vocab", "--out", str(out)]) == 0
    model = load_compressed(out)
    small = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(small) < 400 and quantized_modules(model)
    assert (out / "compression.png").exists() and json.loads((out / "compression_report.json").read_text())["method"] == "qubo"
    session = onnx_session(out / "onnx")
    x = small(list(sentences["text"][:3]), padding=True, return_tensors="pt")
    feeds = {k: v.numpy() for k, v in x.items() if k in {i.name for i in session.get_inputs()}}
    with torch.no_grad():
        assert np.abs(session.run(None, feeds)[0] - model(**x).logits.numpy()).max() < 5e-3
    assert main(["compress", str(tmp_path / "model"), "--data", str(csv), "--budget", "1%", "--out", str(tmp_path / "x")]) == 2
    assert main(["compress", str(out), "--data", str(csv), "--out", str(tmp_path / "y")]) == 2  # already quantized
    assert main(["compress", str(tmp_path / "model"), "--data", str(csv), "--budget", "25", "--out", str(tmp_path / "z")]) == 2
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == files
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_trainer_compresses_after_training_and_saves_int8(tokenizer, sentences, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import TrainingArguments

    from hf_qselect import QSelectTrainer

    tokenized = sentences.map(lambda b: tokenizer(b["text"], truncation=True, max_length=16, padding="max_length"), batched=True)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, num_train_epochs=1, report_to=[],
                             save_strategy="no", logging_steps=1, disable_tqdm=True, use_cpu=True, seed=0)
    trainer = QSelectTrainer(model=tiny_bert(tokenizer), args=args, train_dataset=tokenized, eval_dataset=tokenized,
                             processing_class=tokenizer, compressor=compressor(budget="30%"))
    trainer.train()
    assert quantized_modules(trainer.model)
    report = trainer.compressor.report_
    assert report.metrics_before and report.metrics_after and report.bytes_after["non_embedding"] <= 0.3 * report.bytes_before["non_embedding"]
    assert any("compression/int8_modules" in entry for entry in trainer.state.log_history)
    trainer.save_model(str(tmp_path / "out"))
    loaded = load_compressed(tmp_path / "out")
    x = inputs(tokenizer, sentences)
    with torch.no_grad():
        assert torch.equal(trainer.model(**x).logits, loaded(**x).logits)
    card = ModelCard.load(tmp_path / "out" / "README.md").text
    assert "## Compression" in card and "int8 Linear modules" in card and (tmp_path / "out" / "compression.png").exists()
    with pytest.raises(ValueError, match="not both"):
        from hf_qselect.pruning import AnnealingPruner

        QSelectTrainer(model=tiny_bert(tokenizer), args=args, train_dataset=tokenized, pruner=AnnealingPruner(remove_heads=0.5),
                       compressor=compressor())


def test_compression_recipe_builds_its_compressor():
    from pathlib import Path

    from hf_qselect.training.recipes import parse_recipe

    _, _, config = parse_recipe(Path(__file__).parents[1] / "recipes" / "vader_nyt_compressed.yaml")
    made = config.make_compressor()
    assert config.compresses and made.budget == "25%" and made.target().value == 0.25 and made.seed == config.compress_seed
    assert config.prune_at == "end" and config.make_pruner() is None
    _, _, plain = parse_recipe(Path(__file__).parents[1] / "recipes" / "vader_nyt.yaml")
    assert plain.make_compressor() is None
