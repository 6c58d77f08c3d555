"""ONNX export of a (compressed) model that runs under onnxruntime, and ``pipeline()`` through optimum, without hf_qselect.

The int8 modules cannot be traced as they are; the exporter traces an fp32 copy (int8 weights dequantized, so
the fp32 graph carries exactly the rounded weights) and onnxruntime's dynamic quantization then makes the
same modules' MatMuls int8 again (``nodes_to_quantize``), leaving the fp32 choices fp32.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..onnx_io import check_onnx_available, cpu_session, quantize_int8, trace
from .quantize import QUANTIZED_LINEAR, is_per_channel

ONNX_FILE = "model.onnx"


def dequantized_copy(model) -> tuple[nn.Module, list[str]]:
    """An fp32 copy of ``model`` with each dynamic int8 Linear replaced by an ``nn.Linear`` of its rounded weights."""
    names = [name for name, module in model.named_modules() if isinstance(module, QUANTIZED_LINEAR)]
    plain = copy.deepcopy(model)
    for name in names:
        module = plain.get_submodule(name)
        weight, bias = module._packed_params._weight_bias()
        linear = nn.Linear(module.in_features, module.out_features, bias=bias is not None)
        with torch.no_grad():
            linear.weight.copy_(weight.dequantize())
            if bias is not None:
                linear.bias.copy_(bias)
        parent, _, child = name.rpartition(".")
        setattr(plain.get_submodule(parent) if parent else plain, child, linear)
    return plain.eval(), names


def onnx_module_name(node_name: str) -> str:
    """An ONNX node name to its module name: ``/a/b.0/c/MatMul`` -> ``a.b.0.c``."""
    return node_name.strip("/").rsplit("/", 1)[0].replace("/", ".")


def export_onnx(model, directory: str | Path, tokenizer=None, *, overwrite: bool = False, opset: int = 17) -> Path:
    """Write ``model.onnx`` (int8 where ``model`` is int8), ``config.json`` and the tokenizer to ``directory``."""
    check_onnx_available()
    import onnx

    from ..output_dir import check_output_dir, staged_output

    target = check_output_dir(directory, overwrite=overwrite, flag="overwrite=True", what="ONNX folder")
    plain, int8 = dequantized_copy(model)
    with_types = getattr(model.config, "type_vocab_size", 0) > 1 or (tokenizer is not None and "token_type_ids" in tokenizer.model_input_names)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_types else [])
    with staged_output(target) as staging, tempfile.TemporaryDirectory() as scratch:
        fp32_path = trace(plain, Path(scratch) / "fp32.onnx", names, "logits", opset)
        if int8:
            graph = onnx.load(str(fp32_path))
            wanted = set(int8)
            nodes = [n.name for n in graph.graph.node if n.op_type in ("MatMul", "Gemm") and onnx_module_name(n.name) in wanted]
            if len(nodes) != len(wanted):
                raise RuntimeError(f"found {len(nodes)} ONNX MatMuls for {len(wanted)} int8 modules; the graph's names changed")
            per_channel = any(is_per_channel(model.get_submodule(name)._packed_params._weight_bias()[0]) for name in int8)
            quantize_int8(fp32_path, staging / ONNX_FILE, nodes=nodes, per_channel=per_channel)
        else:
            fp32_path.replace(staging / ONNX_FILE)
        config = copy.deepcopy(model.config)
        config.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
    return target


def onnx_session(directory: str | Path, threads: int | None = None):
    """An onnxruntime CPU session of ``directory/model.onnx``."""
    return cpu_session(Path(directory) / ONNX_FILE, threads)
