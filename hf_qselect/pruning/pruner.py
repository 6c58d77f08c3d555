"""``AnnealingPruner``: fit on a model and a calibration set, then physically remove heads, FFN neurons and layers."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from datasets import Dataset

from ..annealing import anneal_settings
from ..models import adapter_for, apply_plan, check_calibration
from ..params import DeclaredParams
from ..qubo import AnnealSettings, get_solver
from .params import PruningParams
from .report import PruningReport
from .scores import compute_scores
from .units import select_units


def ffn_keep_width(width: int, ffn: float, multiple: int) -> int:
    """FFN neurons kept per layer: ``width`` less the ``ffn`` fraction, rounded down to a multiple of ``multiple``
    (matrix shapes CPUs and GPUs multiply fastest) when at least one multiple remains, so at least ``ffn`` is removed."""
    keep = width - int(round(ffn * width))
    if multiple > 1 and keep < width and keep >= multiple:
        keep -= keep % multiple
    return keep


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


class AnnealingPruner(DeclaredParams, PruningParams):
    """Remove ``heads``, ``ffn`` (fractions of attention heads / FFN neurons) and ``layers`` (fraction of layers).

    ``method="qubo"`` keeps units by annealing importance-minus-redundancy QUBOs; ``method="greedy"`` keeps
    the most important units (Michel-style ranking) under the same budgets. FFN width stays equal across
    layers so ``config.intermediate_size`` describes the model. Every kept layer keeps at least one head.
    ``ffn_multiple`` (default 64) rounds the kept FFN width down to a multiple of 64: an odd width such as 1075
    runs slower on CPU than 1088 despite having fewer neurons. ``ffn_multiple=1`` keeps exactly the budget.

    Fitted attributes: ``kept_layers_``, ``kept_heads_`` ({layer: heads}), ``kept_neurons_`` ({layer: neurons}),
    ``scores_``, ``shape_``, ``report_``.
    """

    def __repr__(self) -> str:
        return f"AnnealingPruner(heads={self.heads}, ffn={self.ffn}, layers={self.layers}, method={self.method!r}, solver={self.solver!r}, seed={self.seed})"

    def _settings(self) -> AnnealSettings:
        return anneal_settings(self, show_progress=False)

    def fit(self, model, calibration_dataset: Dataset) -> "AnnealingPruner":
        """Score every unit on ``calibration_dataset`` (tokenized, with labels) and choose what to keep."""
        adapter = adapter_for(model, what="structured pruning")
        checked = self.check_params()
        budgets = {name: checked[name] for name in ("heads", "ffn", "layers")}
        check_calibration(calibration_dataset)
        shape = adapter.shape(model)
        n_layers = len(shape.heads_per_layer)
        keep_layers = n_layers - int(round(budgets["layers"] * n_layers))
        if keep_layers < 1:
            raise ValueError(f"layers={budgets['layers']} would remove all {n_layers} layers")
        settings = self._settings()
        if self.method == "qubo":
            settings.solver = get_solver(self.solver)  # resolved once for every layer's QUBOs
        timings = {}
        start = time.perf_counter()
        scores = compute_scores(model, calibration_dataset, self.batch_size, self.max_tokens, self.show_progress)
        timings["scores"] = time.perf_counter() - start
        start = time.perf_counter()
        energies, repaired = {}, 0

        layer_choice = select_units(scores.layer_importance, scores.layer_vectors, keep_layers, settings, self.redundancy_weight, self.method)
        kept_layers = [int(i) for i in layer_choice.kept]
        energies["layers"], repaired = layer_choice.energy, repaired + layer_choice.repaired

        offsets = np.concatenate([[0], np.cumsum(shape.heads_per_layer)])
        units = np.concatenate([np.arange(offsets[l], offsets[l + 1]) for l in kept_layers])
        total_heads = len(units)
        keep_heads = total_heads - int(round(budgets["heads"] * total_heads))
        if keep_heads < len(kept_layers):
            raise ValueError(f"heads={budgets['heads']} leaves {keep_heads} heads for {len(kept_layers)} layers; every kept layer needs one")
        importance = np.concatenate([scores.head_importance[l] / (np.linalg.norm(scores.head_importance[l]) or 1.0) for l in kept_layers])
        head_choice = select_units(importance, scores.head_vectors[units], keep_heads, settings, self.redundancy_weight, self.method)
        kept_units, empty_repairs = self._fill_empty_layers(units[head_choice.kept], units, importance, offsets, kept_layers)
        kept_heads = {l: [int(u - offsets[l]) for u in kept_units if offsets[l] <= u < offsets[l + 1]] for l in kept_layers}
        energies["heads"], repaired = head_choice.energy, repaired + head_choice.repaired

        width = shape.ffn_per_layer[kept_layers[0]]
        keep_width = ffn_keep_width(int(width), budgets["ffn"], int(self.ffn_multiple))
        if keep_width < 1:
            raise ValueError(f"ffn={budgets['ffn']} would remove every FFN neuron")
        kept_neurons, energies["ffn"] = {}, 0.0
        for l in kept_layers:
            choice = select_units(scores.neuron_importance[l], scores.neuron_vectors[l], keep_width, settings, self.redundancy_weight, self.method)
            kept_neurons[l] = [int(i) for i in choice.kept]
            energies["ffn"] += choice.energy
            repaired += choice.repaired
        timings["solve"] = time.perf_counter() - start

        self.scores_, self.shape_ = scores, shape
        self.kept_layers_, self.kept_heads_, self.kept_neurons_ = kept_layers, kept_heads, kept_neurons
        self.report_ = PruningReport(
            method=self.method, solver=settings.solver.name if self.method == "qubo" else None, seed=self.seed, budgets=budgets,
            layers_before=n_layers, layers_kept=kept_layers, heads_before=int(sum(shape.heads_per_layer)),
            heads_after=sum(len(h) for h in kept_heads.values()), kept_heads={str(l): h for l, h in kept_heads.items()},
            ffn_width_before=int(width), ffn_width_after=int(keep_width), energies=energies, repaired_blocks=repaired,
            empty_layer_repairs=empty_repairs, calibration_rows=len(calibration_dataset), calibration_tokens=scores.tokens,
            params_before=count_parameters(model), timings={k: round(v, 3) for k, v in timings.items()},
        )
        return self

    @staticmethod
    def _fill_empty_layers(kept, units, importance, offsets, kept_layers) -> tuple[np.ndarray, int]:
        """Give every kept layer its best head back, dropping the weakest head of a layer that has several."""
        kept = set(int(u) for u in kept)
        score = dict(zip(units.tolist(), importance.tolist()))

        def layer_of(unit: int) -> int:
            return int(np.searchsorted(offsets, unit, side="right")) - 1

        repairs = 0
        for l in kept_layers:
            layer_units = range(offsets[l], offsets[l + 1])
            if not kept.intersection(layer_units):
                counts = {m: len(kept.intersection(range(offsets[m], offsets[m + 1]))) for m in kept_layers}
                donors = [u for u in kept if counts[layer_of(u)] > 1]
                kept.remove(min(donors, key=lambda u: score[u]))
                kept.add(max(layer_units, key=lambda u: score[u]))
                repairs += 1
        return np.array(sorted(kept)), repairs

    def apply(self, model):
        """Physically remove the pruned units from ``model`` (in place) and return it."""
        if not hasattr(self, "report_"):
            raise RuntimeError("this AnnealingPruner is not fitted yet: call pruner.fit(model, calibration_dataset) first")
        shape = adapter_for(model, what="structured pruning").shape(model)
        if shape != self.shape_:
            raise ValueError(f"the model's structure {shape} differs from the one the pruner was fitted on {self.shape_}; fit on this model")
        heads = {l: h for l, h in self.kept_heads_.items() if len(h) < self.shape_.heads_per_layer[l]}
        neurons = {l: n for l, n in self.kept_neurons_.items() if len(n) < self.shape_.ffn_per_layer[l]}
        apply_plan(model, self.kept_layers_, heads, neurons)
        self.report_.params_after = count_parameters(model)
        return model

    def fit_apply(self, model, calibration_dataset: Dataset):
        return self.fit(model, calibration_dataset).apply(model)

    def plot(self, path) -> Any:
        """Heat-map PNG of kept/pruned heads and FFN width per layer."""
        from .heatmap import plot_pruning

        return plot_pruning(self.report_, max(self.shape_.heads_per_layer), path)
