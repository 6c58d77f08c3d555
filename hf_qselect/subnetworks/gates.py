"""Multiplicative gates on a model's units, set from outside without changing a weight.

A *unit set* is one layer's selectable units: the hidden neurons of one ``nn.Linear`` in an MLP, the FFN
neurons of one encoder layer, or the attention heads of one encoder layer. ``Gates`` registers forward hooks
that multiply each unit's output by its gate. A gate tensor is ``(n,)`` (one mask for every row) or
``(B, n)`` (one per row: the gradient of the summed loss with respect to it is each row's own gradient).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

UNIT_KINDS = ("neurons", "ffn", "heads")
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.ELU, nn.Identity, nn.Dropout, nn.Softplus)


@dataclass(frozen=True)
class UnitSet:
    """One layer's units: ``name`` (``"0"``, ``"layer.3.ffn"``), ``kind``, ``size``."""

    name: str
    kind: str
    size: int


def is_mlp(model: Any) -> bool:
    return isinstance(model, nn.Sequential)


def mlp_linears(model: nn.Sequential) -> list[int]:
    """Positions of the ``nn.Linear`` modules of a plain MLP; raises naming the first module it cannot gate through."""
    linears = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    for i, module in enumerate(model):
        if not isinstance(module, (nn.Linear, nn.Flatten) + ELEMENTWISE):
            raise TypeError(f"subnetwork selection on an nn.Sequential supports Linear layers with elementwise activations; "
                            f"module {i} is {type(module).__name__}")
    if len(linears) < 2:
        raise TypeError("an nn.Sequential needs at least two Linear layers (hidden units to select); got "
                        f"{len(linears)}")
    return linears


def unit_sets(model: Any, units: tuple[str, ...]) -> list[UnitSet]:
    """The selectable unit sets of ``model``: every hidden Linear of an MLP, or ``units`` of each encoder layer."""
    if is_mlp(model):
        linears = mlp_linears(model)
        return [UnitSet(str(i), "neurons", model[i].out_features) for i in linears[:-1]]
    from ..pruning import check_supported

    try:
        check_supported(model)
    except TypeError as err:
        raise TypeError(f"subnetwork selection supports nn.Sequential MLPs and {str(err).split('supports ', 1)[1]}") from None
    from ..pruning import shape_of

    shape = shape_of(model)
    sets = []
    for layer, (heads, ffn) in enumerate(zip(shape.heads_per_layer, shape.ffn_per_layer)):
        if "heads" in units:
            sets.append(UnitSet(f"layer.{layer}.heads", "heads", heads))
        if "ffn" in units:
            sets.append(UnitSet(f"layer.{layer}.ffn", "ffn", ffn))
    return sets


def _gate_point(model: Any, unit: UnitSet) -> tuple[nn.Module, bool]:
    """The module whose output (``False``) or input (``True``) carries ``unit``'s values."""
    if unit.kind == "neurons":
        linears = mlp_linears(model)
        position = int(unit.name)
        following = linears[linears.index(position) + 1]
        return model[following - 1], False  # the last module before the next Linear: the activation's output
    from ..pruning import encoder_layers

    layer = encoder_layers(model)[int(unit.name.split(".")[1])]
    if unit.kind == "ffn":
        return layer.intermediate, False
    return layer.attention.output.dense, True


class Gates:
    """Forward hooks multiplying each unit set's values by ``self.values[name]`` (no entry: the unit set is open)."""

    def __init__(self, model: Any, sets: list[UnitSet]) -> None:
        self.model, self.sets = model, sets
        self.values: dict[str, torch.Tensor] = {}
        self._handles = []
        for unit in sets:
            module, on_input = _gate_point(model, unit)
            if on_input:
                self._handles.append(module.register_forward_pre_hook(self._input_hook(unit)))
            else:
                self._handles.append(module.register_forward_hook(self._output_hook(unit)))

    def _scale(self, unit: UnitSet, tensor: torch.Tensor) -> torch.Tensor:
        gate = self.values.get(unit.name)
        if gate is None:
            return tensor
        gate = gate.to(tensor.dtype)
        if unit.kind == "heads":
            batch, tokens, width = tensor.shape
            per_row = gate.reshape(batch, 1, unit.size, 1) if gate.dim() == 2 else gate.reshape(1, 1, unit.size, 1)
            return (tensor.reshape(batch, tokens, unit.size, width // unit.size) * per_row).reshape(batch, tokens, width)
        if gate.dim() == 2 and tensor.dim() == 3:
            gate = gate[:, None, :]
        return tensor * gate

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

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "Gates":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
