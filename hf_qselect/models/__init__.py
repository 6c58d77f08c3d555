"""The model layer: one adapter per model family, and what every model editor builds on.

Pruning, compression and subnetworks ask this package, never a model attribute, for the layers, the units
(heads, key/value heads, FFN neurons), the gating hook, physical removal and reloading. A new family is one
:class:`ModelAdapter` subclass registered with :func:`register_adapter` plus its tests.
"""
from typing import TYPE_CHECKING

from ..lazy import lazy_dir, lazy_getattr

_EXPORTS = {
    **{name: ".adapter" for name in ("ModelAdapter", "ROLES", "Shape", "unit_weight_norms")},
    **{name: ".registry" for name in ("adapter_for", "is_peft", "register_adapter", "registered", "supported_text", "unregister_adapter")},
    "BertAdapter": ".bert",
    "LlamaAdapter": ".llama",
    **{name: ".gates" for name in ("Gates", "LAYER_UNIT_KINDS", "SkipLayers", "UnitSet", "layer_unit_sets", "transformer_gate_point")},
    **{name: ".linear" for name in ("head_index", "keep_inputs", "keep_outputs")},
    **{name: ".removal" for name in ("PRUNING_KEY", "remove_units", "grouped_heads", "kept_groups", "needs_load_pruned", "pruned_skeleton", "sliced_layer")},
    **{name: ".saved" for name in ("COMPRESSION_KEY", "check_model_dir", "check_safetensors", "gguf_location", "is_causal_lm", "load_causal_lm", "load_pruned", "read_weights",
                                   "weight_files")},
    **{name: ".calibration" for name in ("MODEL_INPUTS", "calibration_batches", "check_calibration", "label_column")},
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
__dir__ = lazy_dir(_EXPORTS, globals())

if TYPE_CHECKING:
    from .adapter import ROLES, ModelAdapter, Shape, unit_weight_norms
    from .registry import adapter_for, is_peft, register_adapter, registered, supported_text, unregister_adapter
    from .bert import BertAdapter
    from .llama import LlamaAdapter
    from .calibration import MODEL_INPUTS, calibration_batches, check_calibration, label_column
    from .gates import LAYER_UNIT_KINDS, Gates, SkipLayers, UnitSet, layer_unit_sets, transformer_gate_point
    from .linear import head_index, keep_inputs, keep_outputs
    from .removal import PRUNING_KEY, remove_units, grouped_heads, kept_groups, needs_load_pruned, pruned_skeleton, sliced_layer
    from .saved import (COMPRESSION_KEY, check_model_dir, check_safetensors, gguf_location, is_causal_lm, load_causal_lm, load_pruned,
                        read_weights, weight_files)
