"""ONNX plumbing shared by the compressor's export and the selector's ONNX embedder: trace a module to ONNX with
dynamic batch and sequence axes, quantize MatMuls to int8 with onnxruntime, and open a CPU session (onnxruntime,
or OpenVINO, which reads the same file)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any


def check_onnx_available(what: str = "ONNX export") -> None:
    """Raise naming what to install unless onnx and onnxruntime import (both are dependencies of hf-qselect)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise ImportError(f"{what} needs onnx and onnxruntime ({err.name} is missing): pip install onnx onnxruntime onnxscript") from err


def trace(module: Any, path: str | os.PathLike, input_names: list[str], output_name: str, opset: int = 17) -> Path:
    """Export ``module(**{name: LongTensor})`` to ``path`` with the TorchScript exporter; batch and sequence axes
    of every input (and the output's batch axis) stay dynamic."""
    import torch

    example = {name: torch.ones(2, 8, dtype=torch.long) for name in input_names}
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names} | {output_name: {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (), str(path), kwargs=example, input_names=list(input_names), output_names=[output_name],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    return Path(path)


def quantize_int8(source: str | os.PathLike, target: str | os.PathLike, *, nodes: list[str] | None = None,
                  per_channel: bool = False) -> Path:
    """onnxruntime's dynamic int8 quantization of ``source`` into ``target``: the named MatMul/Gemm ``nodes``, or every
    MatMul when ``nodes`` is ``None``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    options = {"nodes_to_quantize": nodes} if nodes is not None else {"op_types_to_quantize": ["MatMul"]}
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=per_channel, **options)
    return Path(target)


def cpu_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session of the file at ``path`` (``threads`` intra-op threads, one inter-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _OpenVinoSession:
    """An OpenVINO model compiled for the CPU, called like an onnxruntime session: ``run(None, feeds)``."""

    def __init__(self, path: str | os.PathLike, threads: int | None):
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": int(threads)} if threads else {}
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)

    def run(self, _outputs: Any, feeds: dict) -> list:
        return [self.compiled(feeds)[self.compiled.output(0)]]


def check_openvino_available(what: str = "embedder_backend='openvino'") -> None:
    """Raise naming what to install unless OpenVINO imports (a dependency of hf-qselect)."""
    try:
        import openvino  # noqa: F401
    except ImportError as err:
        raise ImportError(f"{what} needs OpenVINO: pip install openvino") from err


def openvino_session(path: str | os.PathLike, threads: int | None = None) -> _OpenVinoSession:
    """The ONNX file at ``path`` compiled by OpenVINO for the CPU."""
    check_openvino_available()
    return _OpenVinoSession(path, threads)
