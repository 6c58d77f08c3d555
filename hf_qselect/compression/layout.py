"""What the compressor chooses between: droppable units (heads, FFN blocks) and quantizable Linear modules.

Per transformer layer there are four modules, each one precision choice: ``qkv`` (query, key and value together),
``attention_output``, ``intermediate`` and ``output``. A head owns ``3 * head_size`` rows of ``qkv`` and
``head_size`` columns of ``attention_output``; with grouped-query attention the head unit is a key/value group (one
key/value head with the ``G`` query heads that share it), which owns ``(G + 2) * head_size`` rows of ``qkv`` and
``G * head_size`` columns of ``attention_output``; an FFN block owns ``ffn_block`` rows of ``intermediate`` and as
many columns of ``output``. The pooler's dense Linear, where the model has one, is a fifth kind of module with no
units (a precision choice only). Every layer keeps its most important head and FFN block (those units have only the
``keep`` option), so no layer is emptied and the layer count stays as it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROLES = ("qkv", "attention_output", "intermediate", "output")
POOLER = "pooler"
# each compression module is the Linears of these model-layer roles (hf_qselect.models.ROLES)
MODEL_ROLES = {"qkv": ("query", "key", "value"), "attention_output": ("attention_output",), "intermediate": ("ffn_input",),
               "output": ("ffn_output",)}


@dataclass
class Unit:
    """A head (``members``: its query head index, or with grouped-query attention the query heads of its key/value
    group) or an FFN block (``members``: its neuron indices) of one layer."""

    kind: str  # "head" | "ffn"
    layer: int
    members: np.ndarray
    droppable: bool = True


@dataclass
class Module:
    """One precision choice: the Linears of ``role`` in ``layer`` and, per unit it holds, that unit's weights/biases."""

    layer: int
    role: str
    linears: tuple[str, ...]  # names relative to the model
    units: list[int] = field(default_factory=list)  # indices into Layout.units
    unit_weights: list[int] = field(default_factory=list)  # weight elements of each unit in this module
    unit_biases: list[int] = field(default_factory=list)
    fixed_biases: int = 0  # bias elements that no unit owns (output-side biases of column-sliced Linears)
    fixed_weights: int = 0  # weight elements that no unit owns (a module without units: the pooler)


@dataclass
class Layout:
    units: list[Unit]
    modules: list[Module]
    layer_prefix: str  # the layers' module path, from the adapter
    n_layers: int
    head_size: int

    def module_names(self, module: Module) -> list[str]:
        if module.role == POOLER:
            return list(module.linears)
        return [f"{self.layer_prefix}.{module.layer}.{name}" for name in module.linears]

    @property
    def layer_modules(self) -> list[Module]:
        return [m for m in self.modules if m.role != POOLER]


def build_layout(model, ffn_block: int) -> Layout:
    """The units and modules of a supported transformer ``model``, every unit droppable (see :func:`keep_best`)."""
    from ..models import adapter_for

    adapter = adapter_for(model, what="compression")
    shape = adapter.shape(model)
    size = adapter.head_dim(model.config)
    hidden = shape.hidden_size
    layers = adapter.layers(model)
    prefix = adapter.layer_prefix(model)
    units: list[Unit] = []
    modules: list[Module] = []
    for l, (n_heads, n_kv, width) in enumerate(zip(shape.heads_per_layer, shape.kv_heads_per_layer, shape.ffn_per_layer)):
        names = {role: tuple(n for r in MODEL_ROLES[role] for n in adapter.linear(layers[l], r)) for role in ROLES}
        linears = {role: [layers[l].get_submodule(n) for n in names[role]] for role in ROLES}
        heads = n_kv  # head units: one per key/value head (a group of query heads, or one head without grouping)
        per = n_heads // n_kv
        qkv_rows = sum(m.out_features for m in linears["qkv"]) // heads
        qkv_bias = sum(m.out_features for m in linears["qkv"] if m.bias is not None) // heads
        in_bias = sum(1 for m in linears["intermediate"] if m.bias is not None)
        out_bias = hidden if any(m.bias is not None for m in linears["attention_output"]) else 0
        ffn_out_bias = hidden if any(m.bias is not None for m in linears["output"]) else 0
        head_ids = list(range(len(units), len(units) + heads))
        units += [Unit("head", l, np.arange(g * per, (g + 1) * per)) for g in range(heads)]
        blocks = [np.arange(start, min(start + ffn_block, width)) for start in range(0, width, ffn_block)]
        ffn_ids = list(range(len(units), len(units) + len(blocks)))
        units += [Unit("ffn", l, b) for b in blocks]
        n_in = len(names["intermediate"])
        modules.append(Module(l, "qkv", names["qkv"], head_ids, [qkv_rows * hidden] * heads, [qkv_bias] * heads))
        modules.append(Module(l, "attention_output", names["attention_output"], head_ids, [per * size * hidden] * heads, [0] * heads, out_bias))
        modules.append(Module(l, "intermediate", names["intermediate"], ffn_ids, [n_in * len(b) * hidden for b in blocks], [in_bias * len(b) for b in blocks]))
        modules.append(Module(l, "output", names["output"], ffn_ids, [len(b) * hidden for b in blocks], [0] * len(blocks), ffn_out_bias))
    for name in adapter.other_linears(model):
        dense = model.get_submodule(name)
        modules.append(Module(len(layers), POOLER, (name,), [], [], [], dense.out_features if dense.bias is not None else 0,
                              dense.weight.numel()))
    return Layout(units=units, modules=modules, layer_prefix=prefix, n_layers=len(layers), head_size=size)


def keep_best(layout: Layout, drop: np.ndarray | None = None) -> Layout:
    """Make the head and the FFN block of each layer with the largest drop loss (the first, without ``drop``)
    keep-only, so no layer is emptied."""
    for l in range(layout.n_layers):
        for kind in ("head", "ffn"):
            members = [i for i, u in enumerate(layout.units) if u.layer == l and u.kind == kind]
            best = members[int(np.argmax(drop[members]))] if drop is not None else members[0]
            for i in members:
                layout.units[i].droppable = i != best
    return layout


@dataclass
class Choice:
    """An answer: which units stay and which modules are int8."""

    keep: np.ndarray  # bool per unit
    int8: np.ndarray  # bool per module

    def kept_heads(self, layout: Layout) -> dict[int, list[int]]:
        """The query heads each layer keeps (every query head of a kept key/value group)."""
        out: dict[int, list[int]] = {l: [] for l in range(layout.n_layers)}
        for unit, kept in zip(layout.units, self.keep):
            if kept and unit.kind == "head":
                out[unit.layer].extend(int(h) for h in unit.members)
        return out

    def kept_neurons(self, layout: Layout) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {l: [] for l in range(layout.n_layers)}
        for unit, kept in zip(layout.units, self.keep):
            if kept and unit.kind == "ffn":
                out[unit.layer].extend(int(n) for n in unit.members)
        return out

    def int8_linears(self, layout: Layout) -> list[str]:
        return [name for module, q in zip(layout.modules, self.int8) if q for name in layout.module_names(module)]
