"""Compressed models on disk: int8 weights stored as int8 (with their scale), everything else as it is, the
pruning record and the int8 module list in ``config.json``; and ``hf-qselect compress``'s load-fit-apply."""
from __future__ import annotations

from pathlib import Path

import torch

from ..models import COMPRESSION_KEY
from .quantize import QUANTIZED_LINEAR, is_per_channel, quantize_linears

WEIGHTS = "model.safetensors"
INT8, SCALE, ZERO, AXIS = ".weight_int8", ".weight_scale", ".weight_zero_point", ".weight_axis"  # AXIS only per channel


def compressed_state(model) -> dict[str, torch.Tensor]:
    """The model's tensors: quantized Linears as int8 weight + fp32 scale(s) + int32 zero point(s) (one per output row,
    and the axis, for per-channel weights) + fp32 bias."""
    quantized = {name: module for name, module in model.named_modules() if isinstance(module, QUANTIZED_LINEAR)}
    state, stored = {}, set()
    for name, tensor in model.state_dict().items():
        if any(name.startswith(q + ".") for q in quantized) or not isinstance(tensor, torch.Tensor) or tensor.is_quantized:
            continue
        if tensor.data_ptr() in stored:  # a tied weight (an LM head sharing the token embedding): stored once, re-tied on load
            continue
        stored.add(tensor.data_ptr())
        state[name] = tensor.detach().contiguous()
    for name, module in quantized.items():
        weight, bias = module._packed_params._weight_bias()
        state[name + INT8] = weight.int_repr().contiguous()
        if is_per_channel(weight):
            state[name + SCALE] = weight.q_per_channel_scales().to(torch.float32).contiguous()
            state[name + ZERO] = weight.q_per_channel_zero_points().to(torch.int32).contiguous()
            state[name + AXIS] = torch.tensor([weight.q_per_channel_axis()], dtype=torch.int32)
        else:
            state[name + SCALE] = torch.tensor([weight.q_scale()], dtype=torch.float32)
            state[name + ZERO] = torch.tensor([weight.q_zero_point()], dtype=torch.int32)
        if bias is not None:
            state[name + ".bias"] = bias.detach().contiguous()
    return state


def tied_names(model) -> set[str]:
    """Parameter names that are another name's tensor (tied weights): loaded through the first name."""
    seen, tied = set(), set()
    for name, parameter in model.named_parameters(remove_duplicate=False):
        (tied.add(name) if id(parameter) in seen else seen.add(id(parameter)))
    return tied


def save_compressed(model, directory: str | Path, tokenizer=None, *, overwrite: bool = False) -> Path:
    """Write ``model`` (pruned and/or int8, or plain) to ``directory``: ``config.json``, ``model.safetensors`` and
    the tokenizer. A non-empty folder needs ``overwrite=True``; the folder is replaced atomically."""
    from ..output_dir import check_output_dir, staged_output

    target = check_output_dir(directory, overwrite=overwrite, flag="overwrite=True", what="compressed model folder")
    with staged_output(target) as staging:
        write_compressed(model, staging, tokenizer)
    return target


def write_compressed(model, folder: str | Path, tokenizer=None) -> Path:
    """Write the files of :func:`save_compressed` into ``folder`` (no checks, not atomic: for callers that stage)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quantized = sorted(name for name, module in model.named_modules() if isinstance(module, QUANTIZED_LINEAR))
    state = compressed_state(model)
    recorded = dict(getattr(model.config, COMPRESSION_KEY, None) or {})
    recorded["int8"] = quantized
    setattr(model.config, COMPRESSION_KEY, recorded)
    if not getattr(model.config, "architectures", None):  # as save_pretrained records it: what the loader rebuilds
        model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(folder)
    save_file(state, str(folder / WEIGHTS), metadata={"format": "pt", "writer": "hf_qselect.compression"})
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def load_compressed(directory: str | Path, model_class=None):
    """Rebuild what :func:`save_compressed` wrote: same shapes, same int8 modules, identical logits. ``model_class``:
    ``AutoModelForCausalLM`` for a causal LM's folder, ``AutoModelForSequenceClassification`` otherwise (by default)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from ..models import check_model_dir, check_safetensors, is_causal_lm, pruned_skeleton, read_weights

    path = check_model_dir(directory)
    if not (path / WEIGHTS).exists():
        raise FileNotFoundError(f"{path} has no {WEIGHTS}")
    check_safetensors(path / WEIGHTS)
    config = AutoConfig.from_pretrained(path)
    if not isinstance(getattr(config, COMPRESSION_KEY, None), dict):
        raise ValueError(f"{path} was not written by hf_qselect.compression.save_compressed (no {COMPRESSION_KEY} in config.json); "
                         "load it with from_pretrained or hf_qselect.models.load_pruned")
    default = AutoModelForCausalLM if is_causal_lm(config) else AutoModelForSequenceClassification
    model = pruned_skeleton(config, model_class or default)
    state = read_weights(path)
    int8 = list((getattr(config, COMPRESSION_KEY, None) or {}).get("int8", []))
    absent = [name for name in int8 if name + INT8 not in state]
    if absent:
        raise ValueError(f"{path / WEIGHTS} lacks the int8 weights of {absent[:3]} that config.json lists")
    plain = {k: v for k, v in state.items() if not k.endswith((INT8, SCALE, ZERO, AXIS)) and not any(k == n + ".bias" for n in int8)}
    missing, unexpected = model.load_state_dict(plain, strict=False)
    tied = tied_names(model)
    missing = [m for m in missing if not m.endswith("position_ids") and not any(m.startswith(n + ".") for n in int8) and m not in tied]
    if missing or unexpected:
        raise ValueError(f"{path / WEIGHTS} does not match the model's structure: missing {missing[:5]}, unexpected {unexpected[:5]}")
    per_channel = [name for name in int8 if name + AXIS in state]
    quantize_linears(model, [name for name in int8 if name not in per_channel])
    quantize_linears(model, per_channel, per_channel=True)
    for name in int8:
        if name in per_channel:
            weight = torch._make_per_channel_quantized_tensor(state[name + INT8], state[name + SCALE].to(torch.float64),
                                                              state[name + ZERO].to(torch.int64), int(state[name + AXIS][0]))
        else:
            weight = torch._make_per_tensor_quantized_tensor(state[name + INT8], float(state[name + SCALE][0]), int(state[name + ZERO][0]))
        model.get_submodule(name).set_weight_bias(weight, state.get(name + ".bias"))
    return model.eval()


def compress_saved_model(model_dir: str | Path, data: str, compressor, *, text_column: str = "text", label_column: str = "label",
                         calibration_rows: int = 256, max_length: int = 64, seed: int = 0, gguf_file: str | None = None):
    """Load ``model_dir`` (a classifier, or a causal LM folder or GGUF file), fit ``compressor`` on calibration rows of
    ``data`` (class labels for a classifier; text in any of :mod:`~hf_qselect.text_formats`' formats for a causal LM)
    and apply it. Returns ``(model, tokenizer, rows)``."""
    from transformers import AutoConfig

    from ..models import check_model_dir, gguf_location, is_causal_lm
    from ..pruning import calibration_rows_of, causal_calibration_rows

    folder, gguf = gguf_location(model_dir, gguf_file)
    if gguf is None:
        check_model_dir(folder, "compression")  # an int8 folder, a truncated file or an unsupported family: refused here
    if gguf is not None or is_causal_lm(AutoConfig.from_pretrained(folder)):
        model, tokenizer, rows = causal_calibration_rows(model_dir, data, gguf_file=gguf_file, text_column=text_column,
                                                         calibration_rows=calibration_rows, max_length=max_length, seed=seed)
    else:
        model, tokenizer, rows = calibration_rows_of(model_dir, data, text_column=text_column, label_column=label_column,
                                                     calibration_rows=calibration_rows, max_length=max_length, seed=seed)
    compressor.fit(model, rows).apply(model)
    return model, tokenizer, rows
