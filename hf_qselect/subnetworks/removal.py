"""Physical removal of the closed units: sliced Linears for an MLP, the model layer's removal for a transformer."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .gates import UnitSet, is_mlp, mlp_linears


def remove_closed_units(model: Any, sets: list[UnitSet], masks: dict[str, np.ndarray]) -> Any:
    """Remove every unit whose gate is 0, in place; every replacement module is built before any is swapped in."""
    from ..models import adapter_for, remove_units, keep_inputs, keep_outputs

    if is_mlp(model):
        linears = mlp_linears(model)
        replaced = {}
        for unit in sets:
            position = int(unit.name)
            following = linears[linears.index(position) + 1]
            index = torch.as_tensor(np.flatnonzero(masks[unit.name]), dtype=torch.long)
            replaced[position] = keep_outputs(replaced.get(position, model[position]), index)
            replaced[following] = keep_inputs(model[following], index)
        for position, module in replaced.items():
            model[position] = module
        return model
    heads = {int(u.name.split(".")[1]): np.flatnonzero(masks[u.name]).tolist() for u in sets if u.kind == "heads"}
    neurons = {int(u.name.split(".")[1]): np.flatnonzero(masks[u.name]).tolist() for u in sets if u.kind == "ffn"}
    return remove_units(model, list(range(len(adapter_for(model).layers(model)))), heads, neurons)
