"""Row vectors read a block at a time, from memory or from a memory-mapped ``.npy`` file, always as float32.

A file is read with plain reads, never mapped, so reading every row of a file larger than memory holds only the
rows asked for: the operating system's page cache holds the file. A worker given :class:`Vectors` of a file
reads its own rows; only the path travels.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

READ_ROWS = 65_536  # rows per block when streaming


class Vectors:
    """An ``(n, d)`` array of row vectors: an in-memory array, or a ``np.memmap`` of an ``.npy`` file (read by path)."""

    def __init__(self, array: np.ndarray):
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        filename = getattr(array, "filename", None)
        if isinstance(array, np.memmap) and filename is not None and _whole_file(array):
            self.path, self.offset, self.array = str(filename), int(array.offset), None
        else:
            self.path, self.offset, self.array = None, 0, array

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def on_disk(self) -> bool:
        return self.path is not None

    def rows(self, index: np.ndarray) -> np.ndarray:
        """The rows ``index`` (any order, repeats allowed) as a new float32 array."""
        index = np.asarray(index, dtype=np.int64)
        if self.array is not None:
            return np.asarray(self.array[index], dtype=np.float32)
        unique, inverse = np.unique(index, return_inverse=True)
        return self._read(unique)[inverse]

    def blocks(self, size: int = READ_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, rows)`` of consecutive blocks of at most ``size`` rows, in order, as float32."""
        for start in range(0, len(self), size):
            if self.array is not None:
                yield start, np.asarray(self.array[start : start + size], dtype=np.float32)
            else:
                yield start, self._read(np.arange(start, min(start + size, len(self))))

    def _read(self, sorted_rows: np.ndarray) -> np.ndarray:
        """Sorted distinct rows of the file, one read per run of consecutive rows, into a new float32 array.

        Plain reads, not a memory map: a mapped file's pages count as this process's resident memory while it is
        mapped, and the kernel maps neighbouring pages on every fault, so reading scattered rows through a map
        holds most of the file resident."""
        width = self.shape[1] * self.dtype.itemsize
        out = np.empty((len(sorted_rows), self.shape[1]), dtype=self.dtype)
        buffer = memoryview(out).cast("B")
        breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
        with open(self.path, "rb", buffering=0) as handle:
            for first, end in zip(np.r_[0, breaks], np.r_[breaks, len(sorted_rows)]):
                handle.seek(self.offset + int(sorted_rows[first]) * width)
                view, done = buffer[first * width : end * width], 0
                while done < len(view):
                    got = handle.readinto(view[done:])
                    if not got:
                        raise EOFError(f"{self.path} ends before row {int(sorted_rows[end - 1])}")
                    done += got
        return out.astype(np.float32, copy=False)


def _whole_file(array: np.memmap) -> bool:
    """``array`` maps a whole ``.npy`` payload (not a slice or a view of one)."""
    import os

    try:
        size = os.path.getsize(array.filename)
    except OSError:
        return False
    return array.flags.c_contiguous and array.offset + array.nbytes == size


def as_vectors(embeddings: np.ndarray | Vectors) -> Vectors:
    """``embeddings`` as :class:`Vectors` (unchanged if it already is)."""
    return embeddings if isinstance(embeddings, Vectors) else Vectors(embeddings)
