"""Sparse-training diagnostics: Lanczos against the exact Hessian, magnitude masks, the sparse round trip, the report,
the trainer's fixed mask and the diagnose command. Real autograd, real training, real files."""
import copy
import json

import numpy as np
import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, TrainingArguments

from hf_qselect.diagnostics import (apply_masks, hutchinson_trace, hvp_fn, lanczos, load_sparse, magnitude_masks, save_sparse, sparse_training_report,
                                    sparsity_of)
from hf_qselect.selection.embeddings import default_embedder


def small_problem(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3))
    X, y = torch.randn(50, 6), torch.randint(0, 3, (50,))
    params = list(model.parameters())

    def loss_of_flat(flat):
        chunks, i = [], 0
        for p in params:
            chunks.append(flat[i:i + p.numel()].reshape(p.shape))
            i += p.numel()
        return nn.functional.cross_entropy(torch.tanh(X @ chunks[0].T + chunks[1]) @ chunks[2].T + chunks[3], y)

    flat = torch.cat([p.detach().flatten() for p in params])
    H = torch.autograd.functional.hessian(loss_of_flat, flat).double().numpy()
    return model, params, lambda: nn.functional.cross_entropy(model(X), y), H


@pytest.mark.parametrize("seed", [0, 1])
def test_lanczos_top5_within_2_percent_and_smallest_sign_of_the_exact_hessian(seed):
    model, params, loss, H = small_problem(seed)
    exact = np.linalg.eigvalsh(H)
    masks = [None] * len(params)
    lz = lanczos(hvp_fn(loss, params, masks), params, masks, steps=40, seed=seed)
    assert np.allclose(lz.values[::-1][:5], exact[::-1][:5], rtol=0.02)
    assert np.sign(lz.values[0]) == np.sign(exact[0]) and exact[0] < 0  # an indefinite Hessian: the sign matters
    assert lz.weights.sum() == pytest.approx(1.0)


def test_masked_lanczos_is_the_spectrum_of_the_restricted_hessian():
    model, params, loss, H = small_problem(0)
    generator = torch.Generator().manual_seed(3)
    masks = [(torch.rand(p.shape, generator=generator) < 0.5).float() for p in params]
    keep = np.concatenate([m.flatten().numpy() for m in masks]).astype(bool)
    restricted = np.linalg.eigvalsh(H[np.ix_(keep, keep)])
    lz = lanczos(hvp_fn(loss, params, masks), params, masks, steps=int(keep.sum()), seed=0)
    assert np.allclose(lz.values[::-1][:5], restricted[::-1][:5], rtol=0.02)
    assert lz.values[0] == pytest.approx(restricted[0], rel=0.02)


def test_hutchinson_trace_agrees_with_the_exact_trace():
    model, params, loss, H = small_problem(0)
    masks = [None] * len(params)
    mean, stderr = hutchinson_trace(hvp_fn(loss, params, masks), params, masks, samples=300, seed=0)
    assert abs(mean - np.trace(H)) < 4 * stderr


def test_magnitude_masks_are_global_and_exact():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    masks = magnitude_masks(model, 0.9)
    kept = torch.cat([w.detach().abs()[masks[n]] for n, w in [("0.weight", model[0].weight), ("2.weight", model[2].weight)]])
    dropped = torch.cat([w.detach().abs()[~masks[n]] for n, w in [("0.weight", model[0].weight), ("2.weight", model[2].weight)]])
    assert kept.min() > dropped.max()  # one threshold over every matrix
    apply_masks(model, masks)
    assert sparsity_of(model) == pytest.approx(0.9, abs=1 / 750)
    assert bool((model[0].bias != 0).all())  # biases stay dense


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(default_embedder())


def tiny_bert(tokenizer, seed=0):
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                    intermediate_size=64, max_position_embeddings=64, num_labels=2))


def test_download_upload_round_trip_gives_identical_logits(tokenizer, sentences, tmp_path):
    model = tiny_bert(tokenizer).eval()
    apply_masks(model, magnitude_masks(model, 0.8))
    path = save_sparse(model, tmp_path / "sparse.safetensors")
    fresh = tiny_bert(tokenizer, seed=5).eval()
    load_sparse(fresh, path)
    enc = tokenizer(list(sentences["text"]), padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, fresh(**enc).logits)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        values = handle.get_tensor("bert.encoder.layer.0.intermediate.dense.weight.values")
    assert values.numel() == int((model.bert.encoder.layer[0].intermediate.dense.weight != 0).sum())
    foreign = tmp_path / "notes.safetensors"
    foreign.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="not a sparse-weights file"):
        save_sparse(model, foreign)
    assert foreign.read_bytes() == b"mine"
    with pytest.raises(ValueError, match="not a sparse-weights file"):
        load_sparse(fresh, foreign)
    with pytest.raises(ValueError, match="does not match the model"):
        load_sparse(nn.Sequential(nn.Linear(2, 2)), path)


def test_report_holds_the_mask_and_leaves_the_model_alone(tokenizer, sentences, tmp_path):
    model = tiny_bert(tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = sparse_training_report(model, sentences, tokenizer, sparsity=0.7, steps=(0, 3, 6), lanczos_steps=6, trace_samples=2,
                                    hessian_rows=8, batch_size=4, show_progress=False, eval_dataset=sentences)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [c.step for c in report.checkpoints] == [0, 3, 6]
    assert all(c.weight_sparsity >= 0.7 - 1e-3 for c in report.checkpoints)  # pruned weights stayed at zero
    assert report.checkpoints[0].updated_share is None and report.checkpoints[1].updated_share > 0
    assert set(report.verdicts) == {"connected", "sparse weights", "dissipative", "small learning rate", "sparse updates"}
    assert report.verdicts["connected"]["ok"] and report.emptied == []
    assert not report.verdicts["sparse weights"]["ok"]  # 0.7 < 0.9
    top = report.checkpoints[-1].top_eigenvalues
    assert top == sorted(top, reverse=True) and report.eval_macro_f1 is not None
    assert "| dissipative |" in report.to_markdown()
    assert json.loads(report.to_json(tmp_path / "r.json").read_text())["checkpoints"][2]["step"] == 6
    assert report.plot(tmp_path / "s.png").stat().st_size > 1000


def test_bad_input_is_named(tokenizer, sentences):
    model = tiny_bert(tokenizer)
    for bad in (1.0, -0.1, 2, True):
        with pytest.raises(ValueError, match="sparsity must be a fraction"):
            sparse_training_report(model, sentences, tokenizer, sparsity=bad)
    with pytest.raises(ValueError, match="steps must be increasing"):
        sparse_training_report(model, sentences, tokenizer, steps=(50, 0))
    frozen = copy.deepcopy(model).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        sparse_training_report(frozen, sentences, tokenizer)
    with pytest.raises(KeyError, match="label_column='label'"):
        sparse_training_report(model, sentences.remove_columns("label"), tokenizer)


def test_trainer_holds_the_magnitude_mask_through_training(tokenizer, sentences, tmp_path):
    from huggingface_hub import ModelCard

    from hf_qselect import QSelectTrainer

    tokenized = sentences.map(lambda b: tokenizer(b["text"], truncation=True, max_length=16, padding="max_length"), batched=True)
    model = tiny_bert(tokenizer)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, num_train_epochs=2, report_to=[],
                             save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0, learning_rate=1e-3)
    trainer = QSelectTrainer(model=model, args=args, train_dataset=tokenized, processing_class=tokenizer, sparsity=0.6)
    masks = magnitude_masks(copy.deepcopy(model), 0.6)
    trainer.train()
    weights = dict(trainer.model.named_parameters())
    assert all(bool((weights[n][~m] == 0).all()) for n, m in masks.items())
    assert any(bool((weights[n][m] != 0).all()) for n, m in masks.items())
    trainer.save_model()
    card = ModelCard.load(tmp_path / "run" / "README.md").text
    assert "## Sparse training" in card and "held at zero" in card
    with pytest.raises(ValueError, match="sparsity must be a fraction"):
        QSelectTrainer(model=model, args=args, train_dataset=tokenized, sparsity=1.5)


def test_cli_diagnose(tokenizer, sentences, tmp_path):
    from hf_qselect.cli import main

    tiny_bert(tokenizer).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    csv = tmp_path / "data.csv"
    sentences.to_csv(str(csv))
    out = tmp_path / "diag"
    assert main(["diagnose", str(tmp_path / "model"), "--data", str(csv), "--steps", "0,2", "--lanczos-steps", "4", "--trace-samples", "2",
                 "--hessian-rows", "8", "--batch-size", "4", "--save-sparse", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"diagnostics.json", "diagnostics.md", "spectrum.png", "sparse_weights.safetensors"}
    assert main(["diagnose", str(tmp_path / "model"), "--data", str(csv), "--sparsity", "1", "--out", str(tmp_path / "x")]) == 2
    assert main(["diagnose", str(tmp_path / "model"), "--data", str(csv), "--steps", "5,1", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_the_task_head_stays_dense_unless_asked(tokenizer):
    model = tiny_bert(tokenizer)
    assert "classifier.weight" not in magnitude_masks(model, 0.9)
    masks = magnitude_masks(model, 0.9, include_head=True)
    assert "classifier.weight" in masks
    with torch.no_grad():
        model.classifier.weight.mul_(1e-3)  # a new head next to pretrained weights: far smaller than them
    masks = magnitude_masks(model, 0.9, include_head=True)
    assert not bool(masks["classifier.weight"].any())  # one threshold zeroes it whole
    from hf_qselect.diagnostics import emptied

    assert emptied(masks) == ["classifier.weight"]
    layerwise = magnitude_masks(model, 0.9, include_head=True, scope="layer")
    assert emptied(layerwise) == [] and all(abs(1 - float(m.float().mean()) - 0.9) < 0.02 for m in layerwise.values())
