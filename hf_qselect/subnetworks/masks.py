"""A subnetwork mask on disk: one JSON file, each layer's gates packed 8 to a byte (hex)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "hf_qselect-subnetwork-mask"


def pack(mask: np.ndarray) -> str:
    return np.packbits(np.asarray(mask, dtype=np.uint8)).tobytes().hex()


def unpack(hex_bits: str, size: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(hex_bits), dtype=np.uint8))[:size].astype(np.int8)


def mask_bytes(masks: dict[str, np.ndarray]) -> int:
    """What the gates take as bits: ``sum ceil(units / 8)`` bytes."""
    return int(sum(-(-len(m) // 8) for m in masks.values()))


def save_mask(masks: dict[str, np.ndarray], kinds: dict[str, str], path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``masks`` to ``path`` (a new file or one this function wrote); atomic: a temp file renamed in."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"mask path {str(path)!r} is a folder; give a file name such as mask.json")
    if path.exists():
        try:
            if json.loads(path.read_text()).get("format") != FORMAT:
                raise ValueError
        except (ValueError, UnicodeDecodeError, AttributeError):
            raise FileExistsError(f"{str(path)!r} exists and is not a subnetwork mask; refusing to overwrite it") from None
    body = {"format": FORMAT, "version": 1, "metadata": metadata or {},
            "layers": [{"name": name, "kind": kinds[name], "size": len(m), "kept": int(m.sum()), "bits": pack(m)} for name, m in masks.items()]}
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_mask(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, Any]]:
    """``(masks, kinds, metadata)`` from a file written by :func:`save_mask`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file {str(path)!r} does not exist")
    try:
        body = json.loads(path.read_text())
        if body.get("format") != FORMAT:
            raise ValueError
        masks = {l["name"]: unpack(l["bits"], int(l["size"])) for l in body["layers"]}
        kinds = {l["name"]: l["kind"] for l in body["layers"]}
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise ValueError(f"{str(path)!r} is not a subnetwork mask written by hf_qselect") from None
    return masks, kinds, body.get("metadata", {})
