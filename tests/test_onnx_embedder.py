"""The ONNX embedder backends: a real export of the packaged MiniLM, run by a real onnxruntime session."""
import numpy as np
import pytest

from hf_qselect import InstanceSelector
from hf_qselect.selection.embeddings import default_embedder, embed_texts


def test_onnx_backends_agree_with_torch_and_export_once(sentences, tmp_path):
    texts = list(sentences["text"])
    reference = embed_texts(texts, precision="float32", show_progress=False)
    fp32 = embed_texts(texts, precision="onnx", cache_dir=tmp_path, show_progress=False)
    assert fp32.shape == reference.shape and np.allclose(np.linalg.norm(fp32, axis=1), 1.0, atol=1e-5)
    assert (fp32 * reference).sum(axis=1).min() > 0.9999  # the same function, traced
    int8 = embed_texts(texts, precision="onnx-int8", cache_dir=tmp_path, show_progress=False)
    assert (int8 * reference).sum(axis=1).min() > 0.95  # stated tolerance of per-channel int8 weights
    exports = sorted((tmp_path / "onnx").rglob("*.onnx"))
    assert [p.name for p in exports] == ["model-int8.onnx", "model.onnx"]
    stamp = [p.stat().st_mtime_ns for p in exports]
    embed_texts(texts[:3], precision="onnx-int8", cache_dir=tmp_path, show_progress=False)
    assert [p.stat().st_mtime_ns for p in exports] == stamp  # cached: not exported again
    again = embed_texts(texts[:3], precision="onnx", cache_dir=tmp_path, show_progress=False)
    assert np.allclose(again, fp32[:3], atol=1e-5)  # other batches and padding do not change an fp32 row
    # (int8 rows do depend on their batch: dynamic quantization scales activations per batch)


def test_selector_with_an_onnx_backend_records_it(small, tmp_path):
    ds, _ = small
    sel = InstanceSelector(keep=0.5, seed=0, embedder_backend="onnx", cache_dir=tmp_path, show_progress=False, n_jobs=1).fit(ds)
    assert len(sel.indices_) == 120 and sel.report_.embedding_precision == "onnx"
    torch_sel = InstanceSelector(keep=0.5, seed=0, embedder_backend="torch", cache_dir=tmp_path, show_progress=False, n_jobs=1).fit(ds)
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 2  # separate cache entries per backend
    assert np.abs(sel.embeddings_ - torch_sel.embeddings_).max() < 1e-4
    provenance = sel.provenance("onnx")  # what the card's reproduce command is built from: valid flags only
    assert provenance["embedder_backend"] == "onnx" and provenance.get("precision") != "onnx"


def test_bad_backends_are_refused(tmp_path):
    from sentence_transformers import SentenceTransformer, models

    with pytest.raises(ValueError, match="embedder_backend"):
        InstanceSelector(embedder_backend="tensorrt").check_params()
    word = models.Transformer(default_embedder())
    cls = SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension(), pooling_mode="cls")], device="cpu")
    with pytest.raises(ValueError, match="mean-pooling"):
        embed_texts(["a text"], cls, precision="onnx", cache_dir=tmp_path, show_progress=False)


def test_openvino_runs_the_same_export(sentences, tmp_path):
    """``openvino`` compiles the fp32 ONNX export with OpenVINO for the CPU: the same vectors, the same cached file."""
    texts = list(sentences["text"])
    reference = embed_texts(texts, precision="float32", show_progress=False)
    vino = embed_texts(texts, precision="openvino", cache_dir=tmp_path, show_progress=False)
    assert vino.shape == reference.shape and (vino * reference).sum(axis=1).min() > 0.9999
    assert [p.name for p in (tmp_path / "onnx").rglob("*.onnx")] == ["model.onnx"]  # the onnx backend's export, reused


def test_a_missing_openvino_is_named_and_auto_moves_on(sentences, tmp_path, monkeypatch):
    import sys

    from hf_qselect.selection import backend_choice

    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ImportError, match=r"needs OpenVINO: pip install openvino"):
        embed_texts(list(sentences["text"])[:2], precision="openvino", cache_dir=tmp_path, show_progress=False)
    monkeypatch.setattr(backend_choice, "MIN_ROWS", 1)
    backend_choice._chosen.clear()
    assert not backend_choice.installed("openvino")
    assert backend_choice.choose_backend(default_embedder(), list(sentences["text"])[:8], cache_dir=tmp_path) == "onnx"
