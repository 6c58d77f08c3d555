"""The unit sets subnetwork selection chooses over, and where their gates go.

A transformer's unit sets (heads, FFN neurons per layer) and its gating hook come from the model layer
(:mod:`hf_qselect.models`); a plain ``nn.Sequential`` MLP's unit sets are the hidden neurons of each Linear but the
last, gated at the output of the last module before the next Linear (the activation).
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..models import Gates, UnitSet, layer_unit_sets

UNIT_KINDS = ("neurons", "ffn", "heads")
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.ELU, nn.Identity, nn.Dropout, nn.Softplus)

__all__ = ["ELEMENTWISE", "Gates", "UNIT_KINDS", "UnitSet", "gates_for", "is_mlp", "mlp_linears", "unit_sets"]


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
    """The selectable unit sets of ``model``: every hidden Linear of an MLP, or ``units`` of each transformer layer."""
    if is_mlp(model):
        linears = mlp_linears(model)
        return [UnitSet(str(i), "neurons", model[i].out_features) for i in linears[:-1]]
    from ..models import adapter_for

    try:
        adapter_for(model)
    except TypeError as err:
        raise TypeError(f"subnetwork selection supports nn.Sequential MLPs and {str(err).split('supports ', 1)[1]}") from None
    return layer_unit_sets(model, units)


def _mlp_point(model: nn.Sequential):
    linears = mlp_linears(model)

    def point(unit: UnitSet) -> tuple[nn.Module, bool]:
        following = linears[linears.index(int(unit.name)) + 1]
        return model[following - 1], False  # the last module before the next Linear: the activation's output

    return point


def gates_for(model: Any, sets: list[UnitSet]) -> Gates:
    """The gating hook on ``sets`` of an MLP or a transformer."""
    return Gates(model, sets, point=_mlp_point(model) if is_mlp(model) else None)
