"""A static embedder distilled from a sentence-transformers model: one vector per vocabulary token, no network at
encoding time, for users who need the throughput and accept lower quality.

The recipe is Model2Vec's (Tulkens & van Dongen, 2024): every vocabulary token goes through the transformer on
its own (``[CLS] token [SEP]``, mean-pooled as the model pools), the token vectors are reduced by PCA, and each is
weighted by ``a / (a + p)`` (SIF, ``a = 1e-4``), ``p`` a Zipf estimate of the token's frequency from its rank in
the vocabulary. A text's embedding is the mean of its tokens' vectors, L2-normalised. The ``model2vec`` package's
own distiller pins ``transformers < 5.4``, so the distillation is done here with the model already loaded; the
table is cached once per model under ``cache_dir/static``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

STATIC_BACKEND = "static"
PCA_DIMS = 256
SIF = 1e-4
DISTILL_BATCH = 512


def table_path(identity: str, cache_dir: str | os.PathLike) -> Path:
    key = hashlib.sha256(f"{identity}|pca{PCA_DIMS}|sif{SIF}".encode()).hexdigest()[:24]
    return Path(cache_dir) / "static" / f"{key}.npy"


def distill(model: Any, show_progress: bool = True) -> np.ndarray:
    """``(vocabulary, dims)`` float32 token table of a ``SentenceTransformer`` (rows of special and unused tokens are zero)."""
    import torch
    from tqdm.auto import tqdm

    from .onnx_embedder import check_mean_pooling

    check_mean_pooling(model)
    transformer, tokenizer = model[0].auto_model, model.tokenizer
    vocab = tokenizer.get_vocab()
    special = set(tokenizer.all_special_ids)
    ids = np.array(sorted(i for t, i in vocab.items() if i not in special and not (t.startswith("[unused") and t.endswith("]"))))
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    vectors = np.zeros((len(ids), transformer.config.hidden_size), dtype=np.float32)
    transformer.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, len(ids), DISTILL_BATCH), desc="distilling static embedder", disable=not show_progress):
            batch = torch.as_tensor(ids[start:start + DISTILL_BATCH])
            inputs = torch.stack([torch.full_like(batch, cls), batch, torch.full_like(batch, sep)], dim=1)
            states = transformer(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
            vectors[start:start + len(batch)] = states.float().mean(dim=1).numpy()
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[: min(PCA_DIMS, components.shape[0])].T
    rank = np.arange(1, len(ids) + 1, dtype=np.float64)
    frequency = 1.0 / (rank * np.sum(1.0 / rank))  # Zipf's law over the vocabulary order
    reduced *= (SIF / (SIF + frequency))[:, None]
    table = np.zeros((len(tokenizer), reduced.shape[1]), dtype=np.float32)
    table[ids] = reduced
    return table


def static_table(model: Any, identity: str | None, cache_dir: str | os.PathLike, show_progress: bool = True) -> np.ndarray:
    """The token table, from the cache or distilled now (and cached, atomically, unless the model has no identity)."""
    if identity is None:
        return distill(model, show_progress)
    path = table_path(identity, cache_dir)
    if path.exists():
        return np.load(path)
    table = distill(model, show_progress)
    from ..output_dir import replace_file

    path.parent.mkdir(parents=True, exist_ok=True)
    def write(target: Path) -> None:
        with open(target, "wb") as handle:  # a file object: np.save would add ".npy" to the temporary name
            np.save(handle, table)

    replace_file(path, write, ours=lambda p: p.suffix == ".npy", what="static embedder table")
    return table


def static_embed(texts: Sequence[str], model: Any, identity: str | None, cache_dir: str | os.PathLike, *,
                 show_progress: bool = True, batch_size: int = 8192) -> np.ndarray:
    """Embed ``texts`` as the normalised mean of their tokens' static vectors, ``batch_size`` texts at a time (a text
    with no known token gets the mean of all token vectors, so no row is zero)."""
    from tqdm.auto import tqdm

    table = static_table(model, identity, cache_dir, show_progress)
    known = np.abs(table).sum(axis=1) > 0
    fallback = table[known].mean(axis=0)
    out = np.empty((len(texts), table.shape[1]), dtype=np.float32)
    for start in tqdm(range(0, len(texts), batch_size), desc="embedding (static)", disable=not show_progress):
        batch = list(texts[start:start + batch_size])
        ids = model.tokenizer(batch, add_special_tokens=False, truncation=True, max_length=model.max_seq_length)["input_ids"]
        flat = np.fromiter((t for row in ids for t in row), dtype=np.int64, count=sum(len(row) for row in ids))
        rows = np.repeat(np.arange(len(ids)), [len(row) for row in ids])
        flat, rows = flat[known[flat]], rows[known[flat]]
        sums = np.tile(fallback, (len(ids), 1)).astype(np.float64)
        if len(flat):
            present, first = np.unique(rows, return_index=True)  # rows are sorted: one run per text
            sums[present] = np.add.reduceat(table[flat].astype(np.float64), first)
        out[start:start + len(ids)] = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return out
