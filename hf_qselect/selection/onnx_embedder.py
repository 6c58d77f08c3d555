"""Sentence embeddings through onnxruntime or OpenVINO: the embedder's transformer exported once to ONNX (optionally
int8), cached on disk, run on length-sorted batches.

sentence-transformers' own ``backend="onnx"`` needs optimum's ONNX Runtime package, whose only reachable
release pins transformers < 5; this path needs only ``onnx`` and ``onnxruntime`` (dependencies of hf-qselect). It
serves mean-pooled, normalised models such as all-MiniLM-L6-v2 and refuses any other pooling. With ``onnx-int8``
a row's embedding depends slightly on the other rows of its batch: dynamic quantization scales activations per
batch.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..onnx_io import check_onnx_available, check_openvino_available, cpu_session, openvino_session, quantize_int8, trace

ONNX_BACKENDS = ("onnx", "onnx-int8", "openvino")  # openvino runs the fp32 export under OpenVINO
PER_CHANNEL = True


class _MeanPooled:
    """``nn.Module`` factory: the transformer followed by the attention-masked mean of its token states."""

    @staticmethod
    def build(transformer):
        import torch

        class MeanPooled(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, token_type_ids):
                states = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(states.dtype)
                return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

        return MeanPooled(transformer).eval()


def check_mean_pooling(model: Any) -> None:
    """Refuse a sentence-transformers model that is not Transformer -> mean Pooling (-> Normalize)."""
    modules = list(model)
    pooling = getattr(modules[1], "pooling_mode", type(modules[1]).__name__) if len(modules) > 1 else None
    if pooling != "mean" or not hasattr(modules[0], "auto_model"):
        raise ValueError(f"the onnx, onnx-int8, openvino and static embedder backends serve transformer + mean-pooling models; this one pools by {pooling!r}: "
                         "use embedder_backend='torch'")


def export_path(identity: str, backend: str, cache_dir: str | os.PathLike) -> Path:
    key = hashlib.sha256(identity.encode()).hexdigest()[:24]
    return Path(cache_dir) / "onnx" / key / ("model-int8.onnx" if backend == "onnx-int8" else "model.onnx")


def export(model: Any, path: Path, backend: str) -> Path:
    """Write the ONNX graph (int8 MatMuls with ``onnx-int8``) atomically to ``path``."""
    from ..output_dir import replace_file

    check_mean_pooling(model)
    wrapped = _MeanPooled.build(model[0].auto_model)

    def write(target: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            fp32 = trace(wrapped, Path(scratch) / "fp32.onnx", ["input_ids", "attention_mask", "token_type_ids"], "embedding")
            if backend == "onnx-int8":
                quantize_int8(fp32, target, per_channel=PER_CHANNEL)
            else:
                os.replace(fp32, target)

    path.parent.mkdir(parents=True, exist_ok=True)
    return replace_file(path, write, ours=lambda p: p.suffix == ".onnx", what="ONNX embedder export")


def onnx_embed(texts: Sequence[str], model: Any, identity: str | None, backend: str, cache_dir: str | os.PathLike, *,
               batch_size: int = 64, show_progress: bool = True) -> np.ndarray:
    """Embed ``texts`` with an ONNX export of ``model`` (a ``SentenceTransformer``), exported once per identity into
    ``cache_dir/onnx``."""
    check_onnx_available(f"embedder_backend={backend!r}")
    if backend == "openvino":
        check_openvino_available()
    import torch
    from tqdm.auto import tqdm

    root = Path(cache_dir)
    if identity is None:  # an in-memory model: export to a scratch folder, used once
        scratch = tempfile.TemporaryDirectory()
        path = export(model, Path(scratch.name) / "model.onnx", backend)
    else:
        path = export_path(identity, backend, root)
        if not path.exists():
            export(model, path, backend)
    session = (openvino_session if backend == "openvino" else cpu_session)(path, torch.get_num_threads())
    tokenizer, max_length = model.tokenizer, model.max_seq_length
    lengths = np.array([len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]])
    order = np.argsort(-lengths, kind="stable")  # length-sorted batches pad little
    out = None
    for start in tqdm(range(0, len(texts), batch_size), desc=f"embedding ({backend})", disable=not show_progress):
        index = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in index], truncation=True, max_length=max_length, padding=True, return_tensors="np")
        feeds = {"input_ids": batch["input_ids"].astype(np.int64), "attention_mask": batch["attention_mask"].astype(np.int64),
                 "token_type_ids": batch.get("token_type_ids", np.zeros_like(batch["input_ids"])).astype(np.int64)}
        vectors = session.run(None, feeds)[0]
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[index] = vectors
    if out is None:
        raise ValueError("no texts to embed")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)
