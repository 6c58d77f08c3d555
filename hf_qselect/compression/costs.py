"""What each choice costs: bytes of the non-embedding weights, or milliseconds measured on this machine.

A cost is ``base + sum_u keep_u a_u + sum_m (c_m[o_m] + sum_{u in m} keep_u b_{m,u}[o_m])`` with ``o_m`` the
precision of module ``m``: linear in the kept units for a fixed precision, so the compressor's QUBO holds it
exactly (the products ``keep_u * int8_m`` are its quadratic terms).

Sizes are counted as :func:`~hf_qselect.compression.save_compressed` stores them (int8 weights, an fp32 scale
and zero point per Linear, fp32 biases). Latencies come from a table measured on the model's own Linears at
two widths per module (fp32 and int8), the attention core and the GELU at two widths, and one whole-model
pass that sets ``base``; nothing is guessed.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..measure import median_ms
from torch import nn

from .layout import Choice, Layout
from .quantize import SCALE_BYTES, embedding_weights, int8_qconfig, is_embedding

PRECISIONS = ("int8", "fp32")


@dataclass
class CostModel:
    """``unit`` is ``"bytes"`` or ``"ms"``; ``per_unit[m][o]`` is aligned with ``layout.modules[m].units``."""

    unit: str
    base: float
    unit_cost: np.ndarray
    per_unit: list[dict[str, np.ndarray]]
    const: list[dict[str, float]]
    table: dict = field(default_factory=dict)  # the measurements behind a latency model

    def evaluate(self, layout: Layout, choice: Choice) -> float:
        total = self.base + float(self.unit_cost @ choice.keep)
        for m, module in enumerate(layout.modules):
            option = "int8" if choice.int8[m] else "fp32"
            total += self.const[m][option] + float(self.per_unit[m][option] @ choice.keep[module.units])
        return total


def size_costs(layout: Layout, model, per_channel: bool = False) -> CostModel:
    """Bytes of the non-embedding weights as a function of the choice (int8 scales per Linear, or per output row with
    ``per_channel``: then a unit that owns rows also owns their scales)."""
    linear_names = {f"{n}.{p}" for module in layout.modules for n in layout.module_names(module) for p in ("weight", "bias")}
    embeddings = embedding_weights(model)
    base = sum(p.numel() * 4 for name, p in model.named_parameters()
               if not is_embedding(name) and id(p) not in embeddings and name not in linear_names)
    per_unit, const = [], []
    for module in layout.modules:
        w, b = np.asarray(module.unit_weights, float), np.asarray(module.unit_biases, float)
        linears = [model.get_submodule(name) for name in layout.module_names(module)]
        unit_scales, fixed_scales = np.zeros(len(w)), SCALE_BYTES * len(linears)
        if per_channel and module.units and module.role in ("qkv", "intermediate"):  # units own rows: each row one scale
            unit_scales, fixed_scales = SCALE_BYTES * w / linears[0].in_features, 0
        elif per_channel:  # units own columns (or there are none): every output row's scale is fixed
            fixed_scales = SCALE_BYTES * sum(linear.out_features for linear in linears)
        per_unit.append({"fp32": 4 * (w + b), "int8": w + 4 * b + unit_scales})
        fixed = 4.0 * module.fixed_biases
        const.append({"fp32": fixed + 4.0 * module.fixed_weights, "int8": fixed + module.fixed_weights + fixed_scales})
    return CostModel("bytes", float(base), np.zeros(len(layout.units)), per_unit, const)


def quantized_copy(module: nn.Module, per_channel: bool = False) -> nn.Module:
    """``module`` with its Linears dynamically quantized to int8 (a copy; scales per tensor or per output row)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(module), {nn.Linear: int8_qconfig(per_channel)}, dtype=torch.qint8)


def _slice(linear: nn.Linear, n: int, outputs: bool) -> nn.Linear:
    from ..models import keep_inputs, keep_outputs

    index = torch.arange(n)
    return keep_outputs(linear, index) if outputs else keep_inputs(linear, index)


def _linear_line(linears: list[nn.Linear], units: int, unit_widths: list[int], outputs: bool, tokens: int,
                 per_channel: bool = False) -> dict[str, tuple[float, float]]:
    """``(intercept, per unit)`` ms of running ``linears`` (sliced to ``units`` and half of them), fp32 and int8; a unit
    owns ``unit_widths[i]`` rows (``outputs``) or columns of ``linears[i]``."""
    half = max(1, units // 2)
    line = {}
    for precision in PRECISIONS:
        times = []
        for n in (units, half):
            sliced = nn.ModuleList([_slice(l, n * w, outputs) for l, w in zip(linears, unit_widths)])
            if precision == "int8":
                sliced = quantized_copy(sliced, per_channel)
            x = torch.randn(tokens, sliced[0].in_features)
            times.append(median_ms(lambda: [lin(x) for lin in sliced]))
        slope = (times[0] - times[1]) / max(units - half, 1)
        line[precision] = (times[0] - slope * units, slope)
    return line


def latency_costs(layout: Layout, model, batch: int, length: int, show_progress: bool = False, per_channel: bool = False) -> CostModel:
    """Milliseconds of one forward pass at ``batch x length`` tokens, from timings on this machine."""
    from tqdm.auto import tqdm

    from ..models import adapter_for

    tokens = batch * length
    layers = adapter_for(model).layers(model)
    cache: dict[tuple, dict] = {}
    per_unit, const = [], []
    unit_cost = np.zeros(len(layout.units))
    table: dict[str, dict] = {}
    for module in tqdm(layout.modules, desc="latency table", disable=not show_progress):
        if not module.units:  # the pooler: one row per sequence, timed whole
            linear = model.get_submodule(module.linears[0])
            x = torch.randn(batch, linear.in_features)
            times = {"fp32": median_ms(lambda: linear(x)), "int8": median_ms(lambda q=quantized_copy(linear, per_channel): q(x))}
            per_unit.append({p: np.zeros(0) for p in PRECISIONS})
            const.append(times)
            table[f"{module.role} {linear.in_features}->{linear.out_features}"] = {p: [round(times[p], 5), 0.0] for p in PRECISIONS}
            continue
        layer = layers[module.layer]
        linears = [layer.get_submodule(name) for name in module.linears]
        units = [layout.units[u] for u in module.units]
        outputs = module.role in ("qkv", "intermediate")
        n_units = sum(len(u.members) for u in units) if units[0].kind == "ffn" else len(units)
        # a head unit (a head, or a key/value group) owns an equal share of each projection's rows or columns
        widths = [1] * len(linears) if units[0].kind == "ffn" else [(l.out_features if outputs else l.in_features) // n_units for l in linears]
        key = (module.role, tuple(l.in_features for l in linears), tuple(l.out_features for l in linears))
        if key not in cache:
            cache[key] = _linear_line(linears, n_units, widths, outputs, tokens, per_channel)
            table[f"{module.role} {key[1][0]}->{key[2][0]}"] = {p: [round(v, 5) for v in cache[key][p]] for p in PRECISIONS}
        line = cache[key]
        sizes = np.array([len(u.members) if u.kind == "ffn" else 1 for u in units], float)
        per_unit.append({p: line[p][1] * sizes for p in PRECISIONS})
        const.append({p: line[p][0] for p in PRECISIONS})
    size = layout.head_size
    for l in range(layout.n_layers):
        heads = [i for i, u in enumerate(layout.units) if u.layer == l and u.kind == "head"]
        ffn = [i for i, u in enumerate(layout.units) if u.layer == l and u.kind == "ffn"]
        width = sum(len(layout.units[i].members) for i in ffn)
        per_group = len(layout.units[heads[0]].members) if heads else 1  # query heads a head unit carries (grouped-query attention)
        key = ("core", len(heads), per_group, width)
        if key not in cache:
            def attention(h: int):  # h head units: h x per_group query heads, their keys and values repeated as repeat_kv does
                q = torch.randn(batch, h * per_group, length, size)
                return median_ms(lambda: nn.functional.scaled_dot_product_attention(q, q, q))

            def gelu(w: int):
                x = torch.randn(tokens, w)
                return median_ms(lambda: nn.functional.gelu(x))

            h2, w2 = max(1, len(heads) // 2), max(1, width // 2)
            per_head = (attention(len(heads)) - attention(h2)) / max(len(heads) - h2, 1)
            per_neuron = (gelu(width) - gelu(w2)) / max(width - w2, 1)
            cache[key] = (per_head, per_neuron)
            table[f"attention core per head unit ({len(heads)} units of {per_group} query heads)"] = round(per_head, 5)
            table[f"gelu per neuron ({width} wide)"] = round(per_neuron, 7)
        per_head, per_neuron = cache[key]
        unit_cost[heads] = per_head
        unit_cost[ffn] = [per_neuron * len(layout.units[i].members) for i in ffn]
    partial = CostModel("ms", 0.0, unit_cost, per_unit, const, table)
    everything = Choice(keep=np.ones(len(layout.units), bool), int8=np.zeros(len(layout.modules), bool))
    inputs = {"input_ids": torch.randint(0, model.config.vocab_size, (batch, length)), "attention_mask": torch.ones(batch, length, dtype=torch.long)}
    was_training = model.training
    model.eval()
    try:
        measured = median_ms(lambda: model(**inputs), repeats=7)
    finally:
        model.train(was_training)
    partial.base = measured - partial.evaluate(layout, everything)
    table["whole model fp32"] = round(measured, 3)
    table["threads"] = torch.get_num_threads()
    table["shape"] = [batch, length]
    return partial
