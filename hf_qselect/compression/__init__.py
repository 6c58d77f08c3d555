"""Joint structured pruning and int8 quantization of transformer classifiers by one QUBO (seed 001).

The parameter declaration is light; the compressor (torch) is imported on first use.
"""
from typing import TYPE_CHECKING

from ..lazy import lazy_dir, lazy_getattr
from .params import BUDGET_FORMS, COMPRESS_METHODS, OPTIONS, CompressionParams, parse_budget

_EXPORTS = {"AnnealingCompressor": ".compressor", "CompressionReport": ".report", "save_compressed": ".saved", "load_compressed": ".saved", "write_compressed": ".saved",
            "quantize_linears": ".quantize", "weight_bytes": ".quantize", "quantized_modules": ".quantize", "export_onnx": ".onnx_export",
            "prune_vocabulary": ".vocab", "measure_latency": ".timing"}
__all__ = ["AnnealingCompressor", "BUDGET_FORMS", "COMPRESS_METHODS", "CompressionParams", "CompressionReport", "OPTIONS", "export_onnx",
           "load_compressed", "measure_latency", "parse_budget", "prune_vocabulary", "quantize_linears", "quantized_modules", "save_compressed",
           "weight_bytes", "write_compressed"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
__dir__ = lazy_dir(_EXPORTS, globals())

if TYPE_CHECKING:
    from .compressor import AnnealingCompressor
    from .onnx_export import export_onnx
    from .quantize import quantize_linears, quantized_modules, weight_bytes
    from .report import CompressionReport
    from .saved import load_compressed, save_compressed, write_compressed
    from .timing import measure_latency
    from .vocab import prune_vocabulary
