"""Issue 27, second part: held-out loss of a causal LM, ``compare`` on unlabelled rows with a causal-LM evaluation,
SemDeDup's k-means rule, and ``embedder_backend="auto"``."""
import json

import numpy as np
import pytest
import torch
from datasets import Dataset
from sklearn.model_selection import RepeatedStratifiedKFold

from hf_qselect import InstanceSelector, compare
from hf_qselect.cli import main
from hf_qselect.selection import backend_choice
from hf_qselect.selection.baselines import semdedup_scores
from hf_qselect.selection.embeddings import default_embedder, embed_texts
from hf_qselect.text_formats import tokenize_causal
from hf_qselect.training.causal_eval import held_out_loss, lora_epochs_score

from .conftest import clustered
from .test_causal_trainer import rows, tiny_llama, tokenizer  # noqa: F401  (fixtures)


def test_held_out_loss_is_the_token_weighted_mean_of_the_models_own_losses(rows, tokenizer):  # noqa: F811
    model = tiny_llama(tokenizer).eval()
    tokens = tokenize_causal(rows.select(range(5)), tokenizer, 40)
    total = count = 0.0
    with torch.inference_mode():
        for row in tokens:
            ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n  # transformers' mean over the row's response tokens
            count += n
    assert held_out_loss(model, tokens, batch_size=2) == pytest.approx(total / count, rel=1e-5)


def test_a_prompt_that_fills_max_length_leaves_nothing_to_score(rows, tokenizer):  # noqa: F811
    tokens = tokenize_causal(rows.select(range(2)), tokenizer, 3)  # the prompt alone is longer than 3 tokens
    with pytest.raises(ValueError, match="no response tokens to score"):
        held_out_loss(tiny_llama(tokenizer), tokens)


def test_lora_epochs_score_trains_a_copy_and_leaves_the_model_alone(rows, tokenizer):  # noqa: F811
    model = tiny_llama(tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens = tokenize_causal(rows, tokenizer, 40)
    evals = {"a": tokens.select(range(8)), "b": tokens.select(range(8, 16))}
    base = {k: held_out_loss(model, v) for k, v in evals.items()}
    scores = lora_epochs_score(model, tokens.select(range(16, 48)), evals, epochs=2, batch_size=4, learning_rate=5e-3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(scores) == {"a", "b"} and all(np.isfinite(v) and v != base[k] for k, v in scores.items())
    with pytest.raises(ValueError, match="epochs must be > 0"):
        lora_epochs_score(model, tokens, evals, epochs=0)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory, tokenizer):  # noqa: F811
    path = tmp_path_factory.mktemp("llama")
    tiny_llama(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_compare_without_labels_scores_each_subset_by_held_out_loss(rows, tokenizer, llama_dir, tmp_path):  # noqa: F811
    ds = rows.add_column("score", [float(i % 5) for i in range(len(rows))])
    result = compare(ds, ["random", "qubo", "kcenter"], [0.5, 0.25], evaluation="causal-lm", label_column=None, model=str(llama_dir),
                     folds=2, repeats=1, max_length=40, epochs=1.0, tolerance=50.0, cache_dir=tmp_path / "cache", show_progress=False,
                     selector_options={"quality": "score"})
    assert result.metric == "loss" and result.evaluation == "causal-lm" and len(result.full) == 2
    assert {(r["method"], r["keep"]) for r in result.table} == {(m, k) for m in ("random", "qubo", "kcenter") for k in (0.5, 0.25)}
    # the full-data score of the first split, recomputed independently: the same split, the same LoRA run
    train, test = next(RepeatedStratifiedKFold(n_splits=2, n_repeats=1, random_state=0).split(np.zeros(len(ds)), np.zeros(len(ds))))
    lm = tiny_llama(tokenizer)
    tokens = tokenize_causal(rows, tokenizer, 40)
    again = lora_epochs_score(lm, tokens.select(train), {"t": tokens.select(test)}, epochs=1.0, seed=0)["t"]
    assert result.full[0] == pytest.approx(again, rel=1e-4)
    row = next(r for r in result.table if r["method"] == "qubo" and r["keep"] == 0.5)
    assert row["mean"] == pytest.approx(np.mean(result.scores["qubo"]["0.5"]))
    assert row["vs_random"]["mean"] == pytest.approx(np.mean(np.array(result.scores["qubo"]["0.5"]) - result.scores["random"]["0.5"]))
    rec = result.recommendation  # a 50% tolerance: some cell passes
    assert rec is not None and "--label-column none" in rec["command"] and "--quality score" in rec["command"]
    assert rec["vs_full"]["ci95"][1] < 0.5 * np.mean(result.full)
    text = result.markdown()
    assert "held-out loss" in text and "lower is better" in text and "mislabelled" not in text
    out = result.save(tmp_path / "cmp")
    assert json.loads((out / "compare.json").read_text())["metric"] == "loss" and (out / "compare.png").stat().st_size > 0


def test_compare_cli_on_an_alpaca_file(rows, llama_dir, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "alpaca.json").write_text(json.dumps(rows.select(range(24)).to_list()))
    argv = ["compare", "--data", str(tmp_path / "alpaca.json"), "--label-column", "none", "--eval", "causal-lm", "--model", str(llama_dir),
            "--methods", "random,semdedup", "--keep", "0.5", "--folds", "2", "--repeats", "1", "--max-length", "40", "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "o" / "compare.json").read_text())
    assert saved["n_rows"] == 24 and set(saved["scores"]) == {"random", "semdedup"} and len(saved["scores"]["semdedup"]["0.5"]) == 2
    assert "held-out loss" in capsys.readouterr().out


def brute_semdedup(x: np.ndarray) -> np.ndarray:
    """One cluster: rank by cosine to the normalised mean (lowest first), score = max cosine to an earlier row."""
    centre = x.mean(axis=0)
    centre /= np.linalg.norm(centre)
    ranked = np.argsort(x @ centre, kind="stable")
    sims = x @ x.T
    scores = np.zeros(len(x))
    for j in range(1, len(ranked)):
        scores[ranked[j]] = max(sims[ranked[j], ranked[i]] for i in range(j))
    return scores


def test_semdedup_scores_match_a_brute_force_recomputation():
    emb, _ = clustered(40, dim=8, seed=6)
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    assert np.allclose(semdedup_scores(x, 1, seed=0, chunk=7), brute_semdedup(x), atol=1e-5)  # chunked as a large cluster is


def test_semdedup_keeps_the_quota_and_drops_near_duplicates_first():
    emb, _ = clustered(50, dim=8, seed=7)
    emb = np.concatenate([emb, emb[:10] + 1e-4])  # ten twins
    ds = Dataset.from_dict({"text": [f"r{i}" for i in range(60)]})
    selector = InstanceSelector(keep=50 / 60, method="semdedup", label_column=None, show_progress=False, seed=0).fit(ds, embeddings=emb)
    assert selector.mask_.sum() == 50
    assert all(selector.mask_[i] != selector.mask_[50 + i] for i in range(10))  # one of each twin pair goes


def test_auto_backend_picks_a_matching_cpu_backend(tmp_path, monkeypatch):
    texts = [f"sentence number {i} about {'cats' if i % 2 else 'the weather'}" + " and more" * (i % 9) for i in range(40)]
    installed = [b for b in backend_choice.CPU_ORDER if backend_choice.installed(b)]
    backend_choice._chosen.clear()
    assert backend_choice.choose_backend(default_embedder(), texts, cache_dir=tmp_path) == "torch"  # 40 rows: not worth an export
    monkeypatch.setattr(backend_choice, "MIN_ROWS", 10)
    chosen = backend_choice.choose_backend(default_embedder(), texts, cache_dir=tmp_path)
    assert chosen == (installed[0] if installed else "torch")
    reference = embed_texts(texts, precision="float32", show_progress=False)
    vectors = embed_texts(texts, precision="float32" if chosen == "torch" else chosen, cache_dir=tmp_path, show_progress=False)
    assert np.min(np.sum(reference * vectors, axis=1)) >= backend_choice.MIN_COSINE  # the check it made holds on every row
    assert backend_choice.choose_backend(default_embedder(), texts, precision="bfloat16") == "torch"  # a dtype asked for: torch
    assert backend_choice.choose_backend(default_embedder(), texts, device="cuda:0") == "torch"


def test_auto_backend_falls_back_to_torch_when_no_candidate_serves_the_model(tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer, models

    monkeypatch.setattr(backend_choice, "MIN_ROWS", 1)
    word = models.Transformer(default_embedder())
    cls = SentenceTransformer(modules=[word, models.Pooling(word.get_embedding_dimension(), pooling_mode="cls")])
    assert backend_choice.choose_backend(cls, ["a first row", "a second one"], cache_dir=tmp_path) == "torch"


def test_the_default_selector_records_the_backend_that_ran(tmp_path, monkeypatch):
    ds = Dataset.from_dict({"text": [f"row {i} says {'yes' if i % 3 else 'no'}" for i in range(30)]})
    small = InstanceSelector(keep=0.5, label_column=None, cache_dir=tmp_path, show_progress=False, seed=0).fit(ds)
    assert small.report_.embedding_precision == "float32"  # 30 rows: torch, an export would cost more than it saves
    monkeypatch.setattr(backend_choice, "MIN_ROWS", 10)
    backend_choice._chosen.clear()
    installed = [b for b in backend_choice.CPU_ORDER if backend_choice.installed(b)]
    selector = InstanceSelector(keep=0.5, label_column=None, cache_dir=tmp_path, show_progress=False, seed=0).fit(ds)
    assert selector.embedder_backend == "auto" and selector.report_.embedding_precision == (installed[0] if installed else "float32")
    assert selector.report_.params["embedder_backend"] == "auto"
    assert np.min(np.sum(selector.embeddings_ * small.embeddings_, axis=1)) >= backend_choice.MIN_COSINE
