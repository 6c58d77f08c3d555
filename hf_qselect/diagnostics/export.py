"""The classical half of Liu et al.'s scheme: save sparse weights (indices + values) to a file and load them back
(the paper calls these steps "download" and "upload"; ``download``/``upload`` remain as deprecated aliases).

One safetensors file: for each weight matrix with zeros, ``NAME.indices`` (flat positions, int64) and
``NAME.values``; every other tensor as it is; the shapes in the file's metadata.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

FORMAT = "hf_qselect-sparse-weights"


def save_sparse(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s weights as sparse (indices, values) where they hold zeros; atomic (temp file renamed in)."""
    from safetensors.torch import save_file

    from ..output_dir import replace_file
    from .masks import prunable

    sparse = set(prunable(model, include_head=True))
    tensors, shapes = {}, {}
    for name, value in model.state_dict().items():
        value = value.detach().contiguous()
        if name in sparse and bool((value == 0).any()):
            flat = value.flatten()
            index = torch.nonzero(flat, as_tuple=True)[0]
            tensors[f"{name}.indices"], tensors[f"{name}.values"] = index.to(torch.int64), flat[index].clone()
            shapes[name] = list(value.shape)
        else:
            tensors[name] = value.clone()
    metadata = {"format": FORMAT, "sparse_shapes": json.dumps(shapes)}
    return replace_file(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata), lambda p: _format(p) == FORMAT,
                        "sparse-weights file")


def _format(path: Path) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            return (handle.metadata() or {}).get("format")
    except Exception:  # not a safetensors file at all
        return None


def load_sparse(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a file written by :func:`save_sparse` into ``model`` (dense; zeros where nothing was stored)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sparse-weights file {str(path)!r} does not exist")
    if _format(path) != FORMAT:
        raise ValueError(f"{str(path)!r} is not a sparse-weights file written by hf_qselect.diagnostics.save_sparse")
    with safe_open(str(path), "pt") as handle:
        shapes = json.loads(handle.metadata()["sparse_shapes"])
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
    state = {}
    for name, shape in shapes.items():
        dense = torch.zeros(int(torch.tensor(shape).prod()), dtype=stored[f"{name}.values"].dtype)
        dense[stored.pop(f"{name}.indices")] = stored.pop(f"{name}.values")
        state[name] = dense.reshape(shape)
    state.update(stored)
    expected = set(model.state_dict())
    if set(state) != expected:
        missing, extra = sorted(expected - set(state))[:3], sorted(set(state) - expected)[:3]
        raise ValueError(f"{str(path)!r} does not match the model: missing {missing}, unexpected {extra}")
    model.load_state_dict(state)
    return model


def download(model: nn.Module, path: str | Path) -> Path:
    """Deprecated alias of :func:`save_sparse` (it writes a local file; nothing is downloaded)."""
    import warnings

    warnings.warn("hf_qselect.diagnostics.download is deprecated: use save_sparse", FutureWarning, stacklevel=2)
    return save_sparse(model, path)


def upload(model: nn.Module, path: str | Path) -> nn.Module:
    """Deprecated alias of :func:`load_sparse` (it reads a local file; nothing is uploaded)."""
    import warnings

    warnings.warn("hf_qselect.diagnostics.upload is deprecated: use load_sparse", FutureWarning, stacklevel=2)
    return load_sparse(model, path)
