"""Selection without class labels (issue 27, first part): plain text, chat ``messages``, prompt/completion and Alpaca
rows; one group, a strata column or k-means strata; exact counts; one-line errors for bad rows."""
import json

import numpy as np
import pytest
from datasets import Dataset, load_from_disk

from hf_qselect import InstanceSelector
from hf_qselect.cli import main
from hf_qselect.text_formats import row_texts

from .conftest import clustered


def fit(ds, emb=None, **kw):
    return InstanceSelector(**{"show_progress": False, "n_jobs": 1, "seed": 0, "label_column": None, **kw}).fit(ds, embeddings=emb)


def chat(i: int) -> list[dict]:
    return [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i % 7}"}]


def test_text_only_rows_keep_exactly_k_in_one_group():
    emb, _ = clustered(90, classes=3)
    ds = Dataset.from_dict({"text": [f"line {i}" for i in range(90)]})
    selector = fit(ds, emb, keep=0.3)
    assert selector.mask_.sum() == 27 and len(selector.select(ds)) == 27
    report = selector.report_
    assert report.kept_per_class == {"all": {"before": 90, "after": 27}} and report.grouping == "one group (no class labels)"
    assert report.likely_mislabelled == 0 and report.params["label_column"] is None and report.text_format == "text"
    scores = selector.row_scores_
    assert scores["label_proba"].isna().all() and int(scores["kept"].sum()) == 27


@pytest.mark.parametrize("method", ["qubo", "random", "facility", "semdedup"])
def test_a_strata_column_keeps_each_stratum_its_share(method):
    emb, _ = clustered(80, classes=2, seed=4)
    source = ["web"] * 60 + ["books"] * 20
    ds = Dataset.from_dict({"messages": [chat(i) for i in range(80)], "source": source})
    selector = fit(ds, emb, keep=0.25, strata="source", method=method)
    kept = np.asarray(source)[selector.mask_]
    assert (int((kept == "web").sum()), int((kept == "books").sum())) == (15, 5)  # 25% of each, exactly
    assert selector.report_.kept_per_class == {"books": {"before": 20, "after": 5}, "web": {"before": 60, "after": 15}}
    assert selector.report_.text_format == "messages" and selector.report_.class_balance == 0.0


def test_kmeans_strata_are_clusters_of_the_embeddings():
    emb, truth = clustered(120, classes=3, seed=2)
    ds = Dataset.from_dict({"text": [f"row {i}" for i in range(120)]})
    selector = fit(ds, emb, keep=0.5, strata="kmeans", strata_clusters=3)
    groups = selector.codes_
    assert len(np.unique(groups)) == 3 and selector.mask_.sum() == 60
    for g in range(3):  # every cluster keeps half of its rows (the apportioned quota)
        assert abs(int(selector.mask_[groups == g].sum()) - (groups == g).sum() / 2) <= 1
    assert selector.report_.grouping == "strata: 3 k-means clusters of the embeddings"


def test_instruction_and_chat_rows_are_embedded_whole():
    alpaca = Dataset.from_dict({"instruction": ["Add", "Name a colour"], "input": ["1 + 1", ""], "output": ["2", "blue"]})
    assert row_texts(alpaca) == (["Add\n\n1 + 1\n\n2", "Name a colour\n\nblue"], "alpaca")
    pc = Dataset.from_dict({"prompt": ["Say hi"], "completion": ["hi"]})
    assert row_texts(pc) == (["Say hi\n\nhi"], "prompt_completion")
    messages = Dataset.from_dict({"messages": [chat(3)]})
    assert row_texts(messages) == (["user: question 3\nassistant: answer 3"], "messages")
    both = Dataset.from_dict({"text": ["the text column wins"], "messages": [chat(1)]})
    assert row_texts(both) == (["the text column wins"], "text")


@pytest.mark.parametrize("rows, match", [
    ({"messages": [chat(0), []]}, r"row 1: 'messages' must be a non-empty list of \{'role': str, 'content': str\} turns"),
    ({"messages": [chat(0), [{"role": "user", "content": None}]]}, "row 1: 'messages' must be"),
    ({"instruction": ["a", "b"], "output": ["x", "  "]}, "row 1: the response is empty"),
    ({"prompt": ["a"], "completion": [""]}, "row 0: the response is empty"),
    ({"question": ["a"], "answer": ["b"]}, "no usable text"),
])
def test_bad_rows_are_named_before_any_work(rows, match):
    with pytest.raises((ValueError, KeyError, TypeError), match=match):
        fit(Dataset.from_dict(rows))


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="pasin2024"), "method='pasin2024' needs class labels; with label_column=None use one of"),
    (dict(method="auto"), "method='auto' compares methods by macro-F1 on class labels"),
    (dict(strata="topic"), r"strata='topic'"),
    (dict(label_column="label", strata="source"), "applies with label_column=None"),
])
def test_label_free_settings_are_checked(kwargs, match):
    emb, labels = clustered(40, classes=2)
    ds = Dataset.from_dict({"text": [f"r {i}" for i in range(40)], "label": labels.tolist(), "source": ["a", "b"] * 20})
    with pytest.raises((ValueError, KeyError), match=match):
        fit(ds, emb, **kwargs)


def test_a_missing_label_column_says_how_to_select_without_labels():
    with pytest.raises(KeyError, match="pass label_column=None"):
        InstanceSelector(show_progress=False).fit(Dataset.from_dict({"text": ["a", "b"]}), embeddings=np.eye(2))


def test_cli_selects_an_alpaca_file_and_a_chat_file_without_labels(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    rows = [{"instruction": f"Task {i}", "input": "" if i % 3 else f"ctx {i}", "output": f"out {i % 4}"} for i in range(40)]
    (tmp_path / "alpaca.json").write_text(json.dumps(rows))
    assert main(["select", "--data", "alpaca.json", "--label-column", "none", "--keep", "0.25", "--n-jobs", "1", "--out", "a"]) == 0
    kept = load_from_disk("a")
    assert len(kept) == 10 and set(kept.column_names) >= {"instruction", "input", "output", "source_index"}
    report = json.loads((tmp_path / "a" / "selection_report.json").read_text())
    assert report["text_format"] == "alpaca" and report["kept_per_class"] == {"all": {"before": 40, "after": 10}}
    with open(tmp_path / "chat.jsonl", "w") as handle:
        for i in range(30):
            handle.write(json.dumps({"messages": chat(i), "source": "xy"[i % 3 == 0]}) + "\n")
    assert main(["select", "--data", "chat.jsonl", "--label-column", "none", "--strata", "source", "--keep", "0.5", "--n-jobs", "1",
                 "--publish", "--out", "c"]) == 0
    card = (tmp_path / "c" / "README.md").read_text()
    assert "- text-generation" in card and "| x | 20 | 10 |" in card and "| y | 10 | 5 |" in card
    assert "--label-column none" in card and "--strata source" in card  # the reproduce command
    with open(tmp_path / "bad.jsonl", "w") as handle:
        handle.write(json.dumps({"messages": chat(0)}) + "\n" + json.dumps({"messages": [{"role": "user", "text": "x"}]}) + "\n")
    capsys.readouterr()
    assert main(["select", "--data", "bad.jsonl", "--label-column", "none", "--out", "b"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("hf-qselect")]  # progress bars may come before it
    assert len(lines) == 1 and "row 1: 'messages' must be a non-empty list" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------- the quality term and the quality baselines
def test_the_quality_term_is_the_energy_recomputed_on_every_subset():
    """On one block: energy(x) = k² MMD²(S, P) − w · sd(h₀) · Σ_S q, for every subset of the right size."""
    from itertools import combinations

    from hf_qselect.selection.formulations import mmd_block, rbf_kernel

    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 5))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.normal(size=9)
    k, w = 3, 2.0
    plain = mmd_block(np.arange(9), x, k)
    with_quality = mmd_block(np.arange(9), x, k, quality=q, quality_weight=w)
    K = rbf_kernel(x)
    scale = float(np.std(plain.h))
    for kept in combinations(range(9), k):
        s = np.zeros(9)
        s[list(kept)] = 1
        mmd2 = K[np.ix_(kept, kept)].mean() - 2 * K[list(kept)].mean() + K.mean()
        assert with_quality.energy(s) == pytest.approx(k * k * mmd2 - w * scale * q[list(kept)].sum(), abs=1e-9)


def quality_rows(n=120, seed=0):
    emb, _ = clustered(n, classes=4, seed=seed)
    score = np.random.default_rng(seed).normal(size=n)
    return Dataset.from_dict({"text": [f"row {i}" for i in range(n)], "score": score.tolist(), "source": ["a", "b", "c"] * (n // 3)}), emb, score


@pytest.mark.parametrize("method", ["qubo", "quality", "deita", "kcenter"])
def test_quality_methods_keep_exact_counts_per_stratum(method):
    ds, emb, score = quality_rows()
    selector = fit(ds, emb, keep=0.25, method=method, strata="source", quality="score")
    kept = np.asarray(ds["source"])[selector.mask_]
    assert [int((kept == s).sum()) for s in "abc"] == [10, 10, 10]
    if method == "quality":  # exactly the ten best of each source
        for s in "abc":
            rows = np.flatnonzero(np.asarray(ds["source"]) == s)
            assert set(np.flatnonzero(selector.mask_)) & set(rows) == set(rows[np.argsort(-score[rows])[:10]])


def test_a_heavier_quality_weight_keeps_better_rows():
    ds, emb, score = quality_rows(seed=3)
    means = [score[fit(ds, emb, keep=0.25, quality="score", quality_weight=w).mask_].mean() for w in (0.0, 1.0, 4.0)]
    assert means[0] < means[1] < means[2]
    report = fit(ds, emb, keep=0.25, quality="score", quality_weight=4.0).report_
    assert report.objective == "kernel herding: coverage + redundancy + quality 'score' x 4" and report.params["quality"] == "score"


def test_deita_skips_near_duplicates_and_kcenter_covers_every_cluster():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(10, 16))
    emb = np.repeat(base, 3, axis=0) + rng.normal(scale=1e-3, size=(30, 16))  # ten rows, each three times
    score = np.arange(30, dtype=float)[::-1]  # the duplicates of a row have neighbouring scores
    ds = Dataset.from_dict({"text": [f"r {i}" for i in range(30)], "score": score.tolist()})
    deita = fit(ds, emb, keep=1 / 3, method="deita", quality="score")
    assert sorted(np.flatnonzero(deita.mask_) // 3) == list(range(10))  # one copy of each row, not the three best copies
    kcenter = fit(ds, emb, keep=1 / 3, method="kcenter")
    assert sorted(np.flatnonzero(kcenter.mask_) // 3) == list(range(10))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(method="deita"), ValueError, "method='deita' ranks rows by quality: give quality="),
    (dict(quality="nope"), KeyError, "quality='nope'"),
    (dict(quality="text"), TypeError, "quality column 'text' must hold one number per row"),
    (dict(quality="holes"), ValueError, r"quality column 'holes' has missing or infinite values at rows \[4\]"),
])
def test_bad_quality_settings_are_named(kwargs, error, match):
    ds, emb, _ = quality_rows()
    ds = ds.add_column("holes", [None if i == 4 else 1.0 for i in range(len(ds))])
    with pytest.raises(error, match=match):
        fit(ds, emb, **kwargs)


def test_cli_quality(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    rows = [{"instruction": f"Task {i}", "output": f"out {i}", "score": float(i % 10)} for i in range(40)]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    assert main(["select", "--data", "a.json", "--label-column", "none", "--method", "quality", "--quality", "score",
                 "--keep", "0.25", "--out", "q"]) == 0
    assert sorted(load_from_disk("q")["score"]) == [7.0] * 2 + [8.0] * 4 + [9.0] * 4  # the ten best of forty


@pytest.fixture(scope="module")
def scorer_model(tmp_path_factory):
    """A saved tiny Llama with the MiniLM tokenizer: a causal LM to score rows with."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from hf_qselect.selection.embeddings import default_embedder

    folder = tmp_path_factory.mktemp("scorer") / "llama"
    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    tokenizer.eos_token = tokenizer.sep_token
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                 pad_token_id=tokenizer.pad_token_id)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_ifd_and_loss_are_the_models_losses_recomputed(scorer_model, tmp_path, monkeypatch):
    import torch

    from hf_qselect.models import load_causal_lm
    from hf_qselect.selection import quality_scores
    from hf_qselect.text_formats import prompt_and_answer

    rows = Dataset.from_dict({"prompt": [f"question {i} about item {i % 3}" for i in range(10)],
                              "completion": [f"answer {i} is {'yes' if i % 2 else 'no'}" for i in range(10)]})
    loss = quality_scores.causal_quality(rows, "loss", str(scorer_model), cache_dir=tmp_path, show_progress=False)
    ifd = quality_scores.causal_quality(rows, "ifd", str(scorer_model), cache_dir=tmp_path, show_progress=False)
    model, tokenizer = load_causal_lm(scorer_model)
    for i in (0, 7):  # one row at a time, through the model's own loss
        prompt, answer = prompt_and_answer(rows[i], "prompt_completion", tokenizer, i)
        head, tail = tokenizer(prompt, add_special_tokens=False)["input_ids"], tokenizer(answer, add_special_tokens=False)["input_ids"]
        head = ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []) + head
        with torch.no_grad():
            given = model(input_ids=torch.tensor([head + tail]), labels=torch.tensor([[-100] * len(head) + tail])).loss.item()
            start = head[:1] if tokenizer.bos_token_id is not None else []
            alone = model(input_ids=torch.tensor([start + tail]), labels=torch.tensor([[-100] * len(start) + tail])).loss.item()
        assert loss[i] == pytest.approx(given, rel=1e-4)
        assert ifd[i] == pytest.approx(given / alone, rel=1e-4) or (given / alone >= 1 and ifd[i] < 1)
    monkeypatch.setattr("hf_qselect.models.load_causal_lm", lambda *a, **k: (_ for _ in ()).throw(AssertionError("not cached")))
    assert np.array_equal(quality_scores.causal_quality(rows, "loss", str(scorer_model), cache_dir=tmp_path, show_progress=False), loss)
    emb, _ = clustered(10, classes=2)
    selector = fit(rows, emb, keep=0.3, method="quality", quality="loss", quality_model=str(scorer_model), cache_dir=tmp_path)
    assert set(np.flatnonzero(selector.mask_)) == set(np.argsort(-loss)[:3])  # the three hardest rows


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(quality="ifd"), ValueError, "quality='ifd' scores rows with a causal LM: give quality_model="),
    (dict(quality="perplexity"), KeyError, r"quality='perplexity' is neither a column of the dataset .* nor a scorer \(ifd, loss\)"),
    (dict(quality="ifd", quality_model="MODEL", text="plain"), ValueError, "needs prompt/completion or Alpaca"),
])
def test_bad_scorer_settings_are_named(scorer_model, kwargs, error, match):
    kwargs = {k: str(scorer_model) if v == "MODEL" else v for k, v in kwargs.items()}
    plain = kwargs.pop("text", None)
    data = {"text": ["a", "b", "c", "d"]} if plain else {"instruction": ["a", "b", "c", "d"], "output": ["w", "x", "y", "z"]}
    with pytest.raises(error, match=match):
        fit(Dataset.from_dict(data), np.eye(4, dtype=np.float32), keep=0.5, **kwargs)
