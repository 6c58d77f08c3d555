"""The static embedder: a token table distilled from the packaged MiniLM (a real forward pass per token), cached,
and text embeddings that are the normalised mean of their tokens' rows."""
import numpy as np
import pytest

from hf_qselect import InstanceSelector
from hf_qselect.selection import static_embedder
from hf_qselect.selection.embeddings import embed_texts, load_embedder


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    embed_texts(["warm up"], precision="static", cache_dir=root, show_progress=False)  # distils once for the module
    return root


def test_table_is_distilled_once_and_texts_are_token_means(cache, sentences, monkeypatch):
    tables = list((cache / "static").glob("*.npy"))
    assert len(tables) == 1
    table = np.load(tables[0])
    model = load_embedder()
    assert table.shape == (len(model.tokenizer), static_embedder.PCA_DIMS)
    assert not table[model.tokenizer.cls_token_id].any()  # special tokens carry no vector
    monkeypatch.setattr(static_embedder, "distill", lambda *a, **k: pytest.fail("distilled again"))
    texts = list(sentences["text"])
    vectors = embed_texts(texts, precision="static", cache_dir=cache, show_progress=False)
    assert vectors.shape == (len(texts), static_embedder.PCA_DIMS) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    ids = model.tokenizer(texts[0], add_special_tokens=False)["input_ids"]  # written out for one text
    mean = table[ids].astype(np.float64).mean(axis=0)
    assert np.allclose(vectors[0], mean / np.linalg.norm(mean), atol=1e-6)


def test_static_vectors_keep_meaning_and_never_a_zero_row(cache):
    a, b, c, empty = embed_texts(["a wonderful, moving film", "a great and touching movie", "interest rates rose in March", ""],
                                 precision="static", cache_dir=cache, show_progress=False)
    assert a @ b > a @ c
    assert np.isclose(np.linalg.norm(empty), 1.0)  # no token: the mean token vector, not zeros


def test_selector_with_the_static_backend(small, cache):
    ds, _ = small
    sel = InstanceSelector(keep=0.5, seed=0, embedder_backend="static", cache_dir=cache, show_progress=False, n_jobs=1).fit(ds)
    assert len(sel.indices_) == 120 and sel.report_.embedding_precision == "static"
    assert sel.embeddings_.shape == (240, static_embedder.PCA_DIMS)
    assert sel.provenance("static")["embedder_backend"] == "static"
