"""The one unit-gating hook: multiply each unit's values by a gate, set from outside, without changing a weight.

A *unit set* is one layer's selectable units: the attention heads or the FFN neurons of a transformer layer (found
through the family's adapter: the input of the attention output projection holds the heads side by side, the input
of the FFN output projection holds the neurons), or the hidden neurons of one Linear of a plain MLP (the caller
gives the gate point). A gate is ``(n,)`` (one mask for every row) or ``(B, n)`` (one per row: the gradient of a
summed loss with respect to it is each row's own gradient). Pruning scores, compression sensitivities and
subnetwork search all gate through :class:`Gates`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .registry import adapter_for

LAYER_UNIT_KINDS = ("heads", "ffn")


@dataclass(frozen=True)
class UnitSet:
    """One layer's units: ``name`` (``"0"``, ``"layer.3.ffn"``), ``kind`` (``heads``, ``ffn`` or ``neurons``), ``size``."""

    name: str
    kind: str
    size: int

    @property
    def layer(self) -> int:
        """The transformer layer of a ``layer.N.kind`` set."""
        return int(self.name.split(".")[1])


def layer_unit_sets(model: Any, units: tuple[str, ...] = LAYER_UNIT_KINDS) -> list[UnitSet]:
    """The ``units`` (``"heads"``, ``"ffn"``) of every layer of a supported transformer, layer by layer."""
    shape = adapter_for(model).shape(model)
    sets = []
    for layer, (heads, ffn) in enumerate(zip(shape.heads_per_layer, shape.ffn_per_layer)):
        if "heads" in units:
            sets.append(UnitSet(f"layer.{layer}.heads", "heads", heads))
        if "ffn" in units:
            sets.append(UnitSet(f"layer.{layer}.ffn", "ffn", ffn))
    return sets


def transformer_gate_point(model: Any) -> Callable[[UnitSet], tuple[nn.Module, bool]]:
    """Where a transformer's unit sets are gated: ``(module, True)``, the module whose input carries them."""
    adapter = adapter_for(model)
    layers = adapter.layers(model)

    def point(unit: UnitSet) -> tuple[nn.Module, bool]:
        layer = layers[unit.layer]
        return (adapter.head_carrier(layer) if unit.kind == "heads" else adapter.ffn_carrier(layer)), True

    return point


class Hooks:
    """Forward hooks registered on a model, removed by :meth:`remove` or on leaving a ``with`` block."""

    _handles: list

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class Gates(Hooks):
    """Hooks multiplying each unit set's values by ``self.values[name]`` (no entry: the set is open).

    ``point(unit) -> (module, on_input)`` says where a set's values flow (default: a transformer's, through its
    adapter); ``observe(unit, gated)``, if given, sees every gated tensor (pruning samples its signals there).
    """

    def __init__(self, model: Any, sets: list[UnitSet], point: Callable[[UnitSet], tuple[nn.Module, bool]] | None = None,
                 observe: Callable[[UnitSet, torch.Tensor], None] | None = None) -> None:
        self.model, self.sets, self.observe = model, sets, observe
        self.values: dict[str, torch.Tensor] = {}
        self._handles = []
        point = point or transformer_gate_point(model)
        for unit in sets:
            module, on_input = point(unit)
            if on_input:
                self._handles.append(module.register_forward_pre_hook(self._input_hook(unit)))
            else:
                self._handles.append(module.register_forward_hook(self._output_hook(unit)))

    def _scale(self, unit: UnitSet, tensor: torch.Tensor) -> torch.Tensor:
        gate = self.values.get(unit.name)
        if gate is not None:
            gate = gate.to(tensor.dtype)
            if unit.kind == "heads":
                *lead, width = tensor.shape
                shape = (lead[0], *([1] * (len(lead) - 1)), unit.size, 1) if gate.dim() == 2 else (*([1] * len(lead)), unit.size, 1)
                tensor = (tensor.reshape(*lead, unit.size, width // unit.size) * gate.reshape(shape)).reshape(*lead, width)
            else:
                if gate.dim() == 2 and tensor.dim() == 3:
                    gate = gate[:, None, :]
                tensor = tensor * gate
        if self.observe is not None:
            self.observe(unit, tensor)
        return tensor

    def _output_hook(self, unit: UnitSet):
        def hook(module, args, output):
            return self._scale(unit, output)

        return hook

    def _input_hook(self, unit: UnitSet):
        def hook(module, args):
            return (self._scale(unit, args[0]),) + tuple(args[1:])

        return hook

    def set_masks(self, masks: dict[str, Any] | None) -> None:
        """Fixed 0/1 gates for every row (``None``: all open)."""
        self.values = {} if masks is None else {k: torch.as_tensor(v, dtype=torch.float32) for k, v in masks.items()}


class SkipLayers(Hooks):
    """Hooks that make the layers ``indices`` pass their input through unchanged (a model with those layers dropped,
    without changing a weight): ``with SkipLayers(model, [3, 4]): loss = model(**batch).loss``."""

    def __init__(self, model: Any, indices: list[int]) -> None:
        layers = adapter_for(model).layers(model)
        self._handles = [layers[i].register_forward_hook(self._hook, with_kwargs=True) for i in indices]

    @staticmethod
    def _hook(module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        return hidden if isinstance(output, torch.Tensor) else (hidden, *output[1:])
