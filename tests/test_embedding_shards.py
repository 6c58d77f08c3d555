"""Large inputs are embedded in shards that survive a crash: a rerun embeds only the shards that are missing."""
import numpy as np
import pytest

from hf_qselect.selection import embedding_cache, embeddings
from hf_qselect.selection.embeddings import cache_path, embed_dataset, embed_texts, texts_digest


@pytest.fixture
def shards(monkeypatch):
    monkeypatch.setattr(embedding_cache, "SHARD_ROWS", 7)  # 24 sentences: shards of 7, 7, 7, 3


def counting(monkeypatch, fail_at=None):
    calls = []
    real = embeddings.embed_texts

    def embed(texts, *args, **kwargs):
        calls.append(len(texts))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt("stopped mid-way")
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(embeddings, "embed_texts", embed)
    return calls


def test_a_crash_resumes_at_the_missing_shard(sentences, tmp_path, shards, monkeypatch):
    texts = list(sentences["text"])
    entry = cache_path(None, texts_digest(texts), "text", len(texts), tmp_path)
    calls = counting(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    assert calls == [7, 7, 7] and not entry.exists()
    assert sorted(p.name for p in embedding_cache.shard_folder(entry).iterdir()) == ["000000.npy", "000001.npy"]
    monkeypatch.undo()
    monkeypatch.setattr(embedding_cache, "SHARD_ROWS", 7)
    calls = counting(monkeypatch)
    vectors, cached = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    assert calls == [7, 3] and not cached  # shards 3 and 4 only
    assert entry.exists() and not embedding_cache.shard_folder(entry).exists()  # joined, then the shards removed
    assert np.allclose(vectors, embed_texts(texts, show_progress=False), atol=1e-5)  # row for row
    again, cached = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    assert cached and calls == [7, 3] and np.array_equal(again, vectors)


def test_a_corrupt_shard_is_embedded_again(sentences, tmp_path, shards, monkeypatch):
    texts = list(sentences["text"])
    entry = cache_path(None, texts_digest(texts), "text", len(texts), tmp_path)
    folder = embedding_cache.shard_folder(entry)
    folder.mkdir(parents=True)
    (folder / "000001.npy").write_bytes(b"not an array")
    calls = counting(monkeypatch)
    with pytest.warns(UserWarning, match="000001.npy"):
        embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    assert calls == [7, 7, 7, 3]


def test_a_large_entry_is_read_memory_mapped(tmp_path, monkeypatch):
    monkeypatch.setattr(embedding_cache, "MMAP_BYTES", 1000)
    rows = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    embedding_cache.write_cached(tmp_path / "e.npy", rows)
    read = embedding_cache.read_cached(tmp_path / "e.npy", 50)
    assert isinstance(read, np.memmap) and np.array_equal(read, rows)


def test_an_interrupted_join_keeps_every_shard_and_leaves_no_entry(sentences, tmp_path, shards, monkeypatch):
    """The rename into the cache entry is the last step: stopped there, the shards stay whole and nothing else is left."""
    import os

    texts = list(sentences["text"])
    entry = cache_path(None, texts_digest(texts), "text", len(texts), tmp_path)
    calls = counting(monkeypatch)

    def stopped(src, dst):
        raise KeyboardInterrupt("stopped while joining")

    real_replace = os.replace
    monkeypatch.setattr(embedding_cache.os, "replace", lambda src, dst: stopped(src, dst) if str(dst) == str(entry) else real_replace(src, dst))
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    assert not entry.exists() and calls == [7, 7, 7, 3]
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.stem + ".shards"]  # no temporary file left
    assert len(list(embedding_cache.shard_folder(entry).iterdir())) == 4
    monkeypatch.setattr(embedding_cache.os, "replace", real_replace)
    vectors, cached = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    assert calls == [7, 7, 7, 3] and not cached  # joined from the shards, nothing embedded again
    assert entry.exists() and np.allclose(vectors, embed_texts(texts, show_progress=False), atol=1e-5)
