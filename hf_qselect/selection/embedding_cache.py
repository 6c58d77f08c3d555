"""The embedding cache on disk: one ``.npy`` per (embedder, texts, column), written atomically; large inputs are
embedded in shards that survive a crash, then joined and read memory-mapped.

Past ``SHARD_ROWS`` texts, each shard of that many rows is written to ``<entry>.shards/`` as soon as it is
embedded; a run that stops at shard 900 of 1,000 resumes at 900. When every shard is there they are copied into
the entry (a block at a time, through a temporary name) and the shard folder is removed last. An entry larger
than ``MMAP_BYTES`` is returned memory-mapped, so selection reads it from disk instead of holding it.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

logger = logging.getLogger(__name__)

SHARD_ROWS = 10_000
MMAP_BYTES = 256 * 2**20


def read_cached(path: Path, n_rows: int) -> np.ndarray | None:
    """The cached embeddings at ``path`` if they are a valid float32 ``(n_rows, d)`` array of finite unit rows.

    Anything else (truncated, empty, pickled, wrong shape, dtype or row count) is deleted with a warning
    that names the file, and ``None`` is returned so the embeddings are computed again. Checked a block at a
    time; an entry over ``MMAP_BYTES`` comes back memory-mapped.
    """
    from ..qubo import Vectors

    try:
        cached = np.load(path, allow_pickle=False, mmap_mode="r")
        problem = None
        if cached.dtype != np.float32:
            problem = f"dtype {cached.dtype}, not float32"
        elif cached.ndim != 2 or cached.shape[0] != n_rows or cached.shape[1] == 0:
            problem = f"shape {cached.shape}, not ({n_rows}, d)"
        else:
            for _, block in Vectors(cached).blocks():
                if not np.isfinite(block).all():
                    problem = "non-finite values"
                elif not np.allclose(np.linalg.norm(block, axis=1), 1.0, atol=1e-3):
                    problem = "rows that are not unit length (every entry is L2-normalised when written)"
                if problem:
                    break
    except Exception as err:  # truncated, empty, pickled or not an .npy file at all
        problem = f"unreadable ({type(err).__name__}: {err})"
    if problem is None:
        return cached if cached.nbytes > MMAP_BYTES else np.array(cached)
    logger.warning("embedding cache entry %s is invalid (%s): deleted, embedding again", path, problem)
    warnings.warn(f"embedding cache entry {path} was invalid ({problem}); it was deleted and the texts are embedded again", stacklevel=3)
    path.unlink(missing_ok=True)
    return None


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to a temporary ``.npy`` name unique to this process and thread, then rename it to ``path``; an
    interrupt leaves ``path`` as it was and no temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}.tmp.npy")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_cached(path: Path, vectors: np.ndarray) -> None:
    """Write ``vectors`` to ``path`` atomically."""
    write_atomically(path, lambda tmp: np.save(tmp, vectors))


def shard_folder(path: Path) -> Path:
    return path.with_name(path.stem + ".shards")


def embed_in_shards(texts: Sequence[str], embed: Callable[[Sequence[str], bool], np.ndarray] | None, path: Path,
                    show_progress: bool = True, job: Callable[[Sequence[str]], Any] | None = None) -> np.ndarray:
    """Embed ``texts`` into the cache entry ``path`` through resumable shards, and return the entry
    (memory-mapped when large).

    Each missing shard is ``embed(texts, show_progress)`` here, or, given ``job``, a joblib job ``job(texts)`` run
    on the backend in force (a Dask or Ray cluster); either way every shard is written as soon as it comes back."""
    from tqdm.auto import tqdm

    from ..qubo import run_jobs

    folder = shard_folder(path)
    folder.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, len(texts), SHARD_ROWS))
    shards = [folder / f"{i:06d}.npy" for i in range(len(starts))]
    done = [s.exists() and read_cached(s, min(SHARD_ROWS, len(texts) - start)) is not None for s, start in zip(shards, starts)]
    if any(done):
        logger.info("embedding cache %s: %d of %d shards already embedded, resuming", path, sum(done), len(shards))
    missing = [(shard, start) for shard, start, ready in zip(shards, starts, done) if not ready]
    if job is not None:
        results = run_jobs([job(texts[start:start + SHARD_ROWS]) for _, start in missing], -1)
    else:
        results = (embed(texts[start:start + SHARD_ROWS], False) for _, start in missing)
    with tqdm(total=len(texts), initial=len(texts) - sum(min(SHARD_ROWS, len(texts) - st) for _, st in missing),
              desc=f"embedding ({len(shards)} shards)", unit="row", disable=not show_progress) as bar:
        for (shard, _), vectors in zip(missing, results):
            write_cached(shard, vectors)
            bar.update(len(vectors))
    join_shards(shards, path)
    shutil.rmtree(folder, ignore_errors=True)  # last: the entry is complete
    return read_cached(path, len(texts))


def join_shards(shards: list[Path], path: Path) -> None:
    """Copy the shards, in order, into one ``.npy`` at ``path`` (written under a temporary name, then renamed)."""
    first = np.load(shards[0], mmap_mode="r")
    rows = sum(np.load(s, mmap_mode="r").shape[0] for s in shards)

    def write(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, first.shape[1]))
        at = 0
        for shard in shards:
            block = np.load(shard)
            out[at:at + len(block)] = block
            at += len(block)
        out.flush()

    write_atomically(path, write)
