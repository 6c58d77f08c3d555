"""``embedder_backend="auto"``: the fastest installed CPU backend whose vectors match torch float32's.

On a GPU (or with a half-precision ``precision``) torch runs. On the CPU the candidates are tried in the order of
their measured speed on this project's data (``docs/sft.md``: OpenVINO, then onnxruntime, then torch); the first
one that is installed, serves the embedder and gives, on a sample of the rows (the longest included), vectors
within ``MIN_COSINE`` of torch float32's on every sampled row is used. The choice is remembered for the process.
Below ``MIN_ROWS`` rows torch runs: exporting and compiling the model takes seconds (about 6 here), more than a
faster backend saves on a few hundred rows. The choice depends only on the device, the dtype asked for, the number of
rows and what is installed (never on what a cache holds), so a run repeats the same way.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Sequence

import numpy as np

logger = logging.getLogger(__name__)

AUTO = "auto"
CPU_ORDER = ("openvino", "onnx")  # fastest first (docs/sft.md: 2.9x and 1.0-1.8x torch fp32 on 2 threads)
MIN_COSINE = 0.999
CHECK_ROWS = 16
MIN_ROWS = 2_000  # break-even of the one-off export (~6 s) at ~4 ms saved per row
_chosen: dict[tuple, str] = {}


def on_gpu(device: str | None) -> bool:
    """Whether the embedder would run on CUDA."""
    if device is not None:
        return device.strip().startswith("cuda")
    import torch

    return torch.cuda.is_available()


def installed(backend: str) -> bool:
    """Whether the packages a CPU backend needs import."""
    import importlib.util

    needs = ["onnx", "onnxruntime"] + (["openvino"] if backend == "openvino" else [])
    try:
        return all(importlib.util.find_spec(name) is not None for name in needs)
    except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken install
        return False


def check_sample(texts: Sequence[str], rows: int = CHECK_ROWS) -> list[str]:
    """Up to ``rows`` texts spread over the length range, the longest included (truncation is checked too)."""
    if not texts:
        return []
    order = np.argsort([len(t) for t in texts], kind="stable")
    picks = np.unique(np.linspace(0, len(order) - 1, min(rows, len(order))).round().astype(int))
    return [texts[i] for i in order[picks]]


def choose_backend(embedder: Any, texts: Sequence[str], *, device: str | None = None, precision: str = "auto",
                   cache_dir: str | os.PathLike | None | bool = None, identity: str | None = None) -> str:
    """The backend ``"auto"`` stands for here: ``"torch"``, ``"openvino"`` or ``"onnx"``."""
    if on_gpu(device) or precision not in ("auto", "float32"):
        return "torch"
    candidates = [b for b in CPU_ORDER if installed(b)]
    if not candidates or len(texts) < MIN_ROWS:
        return "torch"
    key = (identity or id(embedder), tuple(candidates))
    if key in _chosen:
        return _chosen[key]
    from .embeddings import embed_texts

    sample = check_sample(texts)
    reference = embed_texts(sample, embedder, show_progress=False, precision="float32", cache_dir=cache_dir)
    chosen = "torch"
    for backend in candidates:
        try:
            vectors = embed_texts(sample, embedder, show_progress=False, precision=backend, cache_dir=cache_dir)
        except (ValueError, ImportError, RuntimeError) as err:  # e.g. a model that does not mean-pool
            logger.info("embedder_backend=auto: %s not usable (%s)", backend, err)
            continue
        cosine = float(np.min(np.sum(vectors * reference, axis=1)))
        if cosine >= MIN_COSINE:
            chosen = backend
            break
        logger.info("embedder_backend=auto: %s differs from torch float32 (cosine %.4f < %s)", backend, cosine, MIN_COSINE)
    if identity is not None:
        _chosen[key] = chosen
    logger.info("embedder_backend=auto chose %s", chosen)
    return chosen


def backend_precision(embedder: Any, texts: Sequence[str], backend: str = AUTO, *, precision: str = "auto", device: str | None = None,
                      cache_dir: str | os.PathLike | None | bool = None) -> str:
    """The precision tag :func:`~hf_qselect.selection.embeddings.embed_texts` runs with for ``backend`` (``"auto"``
    resolved on a sample of ``texts``)."""
    from .embeddings import _cache_identity, effective_precision

    if backend == AUTO:
        backend = choose_backend(embedder, texts, device=device, precision=precision, cache_dir=cache_dir,
                                 identity=_cache_identity(embedder))
    return effective_precision(embedder, precision, device, backend)
