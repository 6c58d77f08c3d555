"""A subnetwork mask on disk: one JSON file, each layer's gates packed 8 to a byte (hex)."""
from __future__ import annotations

import json
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


def _is_mask(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("format") == FORMAT
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False


def save_mask(masks: dict[str, np.ndarray], kinds: dict[str, str], path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``masks`` to ``path`` (a new file or one this function wrote); atomic: a temp file renamed in."""
    from ..output_dir import replace_file

    body = {"format": FORMAT, "version": 1, "metadata": metadata or {},
            "layers": [{"name": name, "kind": kinds[name], "size": len(m), "kept": int(m.sum()), "bits": pack(m)} for name, m in masks.items()]}
    return replace_file(path, lambda tmp: tmp.write_text(json.dumps(body, indent=1)), _is_mask, "subnetwork mask")


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
