"""Joint structured pruning and int8 quantization of BERT-family classifiers by one QUBO (seed 001).

The parameter declaration is light; the compressor (torch) is imported on first use.
"""
from ..lazy import lazy_getattr
from .params import BUDGET_FORMS, COMPRESS_METHODS, OPTIONS, CompressionParams, parse_budget

_EXPORTS = {"AnnealingCompressor": ".compressor", "CompressionReport": ".report", "save_compressed": ".saved", "load_compressed": ".saved", "write_compressed": ".saved",
            "quantize_linears": ".quantize", "weight_bytes": ".quantize", "quantized_modules": ".quantize", "export_onnx": ".onnx_export",
            "prune_vocabulary": ".vocab", "measure_latency": ".timing"}
__all__ = ["AnnealingCompressor", "BUDGET_FORMS", "COMPRESS_METHODS", "CompressionParams", "CompressionReport", "OPTIONS", "export_onnx",
           "load_compressed", "measure_latency", "parse_budget", "prune_vocabulary", "quantize_linears", "quantized_modules", "save_compressed",
           "weight_bytes", "write_compressed"]
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
