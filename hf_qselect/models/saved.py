"""Saved model folders: checking one, reading its (possibly sharded) safetensors, and reloading a pruned model."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


def check_model_dir(model_dir: str | Path) -> Path:
    """A saved model folder (with ``config.json``), or a one-line error naming it."""
    path = Path(model_dir)
    if not path.exists():
        raise FileNotFoundError(f"no such model folder: {model_dir}")
    if not path.is_dir() or not (path / "config.json").exists():
        raise FileNotFoundError(f"{model_dir} is not a saved model folder (no config.json); give the folder save_pretrained wrote")
    return path


def weight_files(path: str | Path) -> list[Path]:
    """The safetensors files of a folder: ``model.safetensors``, or every shard its index lists."""
    path = Path(path)
    if (path / WEIGHTS).exists():
        return [path / WEIGHTS]
    index = path / WEIGHTS_INDEX
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [s for s in shards if not (path / s).exists()]
        if missing:
            raise FileNotFoundError(f"{index} lists shards that are not there: {missing[:3]}")
        return [path / s for s in shards]
    raise FileNotFoundError(f"{path} has no {WEIGHTS} or {WEIGHTS_INDEX}")


def read_weights(path: str | Path) -> dict[str, Any]:
    """Every tensor of a folder's safetensors file or shards."""
    from safetensors.torch import load_file

    state: dict[str, Any] = {}
    for file in weight_files(path):
        state.update(load_file(str(file)))
    return state


def load_pruned(path: str | Path, model_class: Any = None, **kwargs) -> Any:
    """``from_pretrained`` for models pruned by hf_qselect (and for any other model, unchanged)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from .removal import PLAN_KEY, plan_is_uneven, pruned_skeleton

    model_class = model_class or AutoModelForSequenceClassification
    config = AutoConfig.from_pretrained(path, **kwargs)
    plan = getattr(config, PLAN_KEY, None)
    if not plan or not plan_is_uneven(config):
        return model_class.from_pretrained(path, config=config)
    model = pruned_skeleton(config, model_class)
    state = read_weights(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"{path} does not match the pruned structure: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()
