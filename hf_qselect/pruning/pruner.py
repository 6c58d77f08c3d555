"""``AnnealingPruner``: fit on a model and a calibration set, then physically remove heads, FFN neurons and layers."""
from __future__ import annotations

import inspect
import time
from typing import Any

import numpy as np
from datasets import Dataset

from ..annealing import anneal_settings
from ..models import adapter_for, remove_units, check_calibration, kept_groups, unit_weight_norms
from ..params import DeclaredParams, renamed_kwargs
from ..qubo import AnnealSettings, get_solver
from .params import RENAMED, PruningParams
from .report import PruningReport
from .scores import UnitScores, compute_scores
from .units import per_layer_widths, select_in_groups, select_units


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
    """Remove ``remove_heads``, ``remove_ffn`` (fractions of attention heads / FFN neurons) and ``remove_layers``
    (fraction of layers). The old names ``heads``, ``ffn`` and ``layers`` still work, with a ``FutureWarning``.

    ``method="qubo"`` keeps units by annealing importance-minus-redundancy QUBOs; ``method="greedy"`` keeps
    the most important units (Michel-style ranking) under the same budgets. FFN width stays equal across
    layers so ``config.intermediate_size`` describes the model, unless ``per_layer_ffn=True`` (with ``uniform=False``)
    lets it differ, at the same total. Every kept layer keeps at least one head.
    ``ffn_multiple`` (default 64) rounds the kept FFN width down to a multiple of 64: an odd width such as 1075
    runs slower on CPU than 1088 despite having fewer neurons. ``ffn_multiple=1`` keeps exactly the budget.

    Fitted attributes: ``kept_layers_``, ``kept_heads_`` ({layer: heads}), ``kept_neurons_`` ({layer: neurons}),
    ``scores_``, ``shape_``, ``report_``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        PruningParams.__init__(self, *args, **renamed_kwargs(kwargs, RENAMED, "AnnealingPruner"))

    def __repr__(self) -> str:
        return (f"AnnealingPruner(remove_heads={self.remove_heads}, remove_ffn={self.remove_ffn}, remove_layers={self.remove_layers}, "
                f"method={self.method!r}, solver={self.solver!r}, seed={self.seed})")

    def _settings(self) -> AnnealSettings:
        return anneal_settings(self, show_progress=False)

    def fit(self, model, calibration_dataset: Dataset, *, scores: UnitScores | None = None, drop_losses: Any = None) -> "AnnealingPruner":
        """Score every unit on ``calibration_dataset`` (tokenized; with class labels for a classifier, any text for a
        causal LM) and choose what to keep.

        ``scores`` / ``drop_losses`` reuse another fitted pruner's ``scores_`` / ``drop_losses_`` on the same model and
        rows (comparing methods on one scoring); they are not checked against the model."""
        adapter = adapter_for(model, what="structured pruning")
        checked = self.check_params()
        budgets = {name: checked[f"remove_{name}"] for name in ("heads", "ffn", "layers")}  # fractions removed
        causal = adapter.can_generate(model)
        check_calibration(calibration_dataset, causal)
        shape = adapter.shape(model)
        self.check_shape(shape)
        n_layers = len(shape.heads_per_layer)
        keep_layers = n_layers - int(round(budgets["layers"] * n_layers))
        grouped = shape.kv_heads_per_layer != shape.heads_per_layer
        head_unit = self._head_unit(shape)
        settings = self._settings()
        if self.method == "qubo":
            settings.solver = get_solver(self.solver)  # resolved once for every layer's QUBOs
        timings = {}
        start = time.perf_counter()
        layer_mode = self.layer_scores if self.layer_scores != "auto" else ("pairs" if causal else "influence")
        pairs = keep_layers < n_layers and layer_mode == "pairs" and self.method in ("qubo", "greedy")
        if scores is None or self.method in ("magnitude", "random"):
            layers_only = pairs and not budgets["heads"] and not budgets["ffn"]  # the layers come from measured losses alone
            scores = self._unit_scores(model, adapter, calibration_dataset, shape) if not layers_only else self._blank_scores(shape)
        timings["scores"] = time.perf_counter() - start
        start = time.perf_counter()
        energies, repaired = {}, 0
        rank = self.method if self.method in ("qubo", "greedy") else "greedy"

        later_rounds = []
        if pairs:
            from .layer_drop import choose_drops, measure_drop_losses, round_sizes

            dropped, energies["layers"] = [], 0.0
            for r, count in enumerate(round_sizes(n_layers - keep_layers, int(self.layer_rounds))):
                if r == 0 and drop_losses is not None:  # given: another pruner's first round on the same model and rows
                    losses = drop_losses
                else:
                    losses = measure_drop_losses(model, calibration_dataset, self.pair_rows, self.batch_size, self.show_progress, skipped=dropped)
                if r == 0:
                    drop_losses = losses
                else:
                    later_rounds.append({"dropped_before": sorted(dropped), "single": _rounded(losses.single), "pair": _rounded(losses.pair)})
                remaining = [i for i in range(n_layers) if i not in dropped]
                chosen, energy = choose_drops(losses, count, self.method, settings)
                dropped += [remaining[j] for j in chosen]
                energies["layers"] += energy
            kept_layers = [i for i in range(n_layers) if i not in dropped]
        else:
            layer_choice = select_units(scores.layer_importance, scores.layer_vectors, keep_layers, settings, self.redundancy_weight, rank)
            kept_layers = [int(i) for i in layer_choice.kept]
            energies["layers"], repaired = layer_choice.energy, repaired + layer_choice.repaired

        kept_heads, empty_repairs, energy, fixed = self._choose_heads(scores, shape, kept_layers, budgets["heads"], head_unit, settings, rank)
        energies["heads"], repaired = energy, repaired + fixed

        width = shape.ffn_per_layer[kept_layers[0]]
        keep_width = ffn_keep_width(int(width), budgets["ffn"], int(self.ffn_multiple))
        if keep_width < 1:
            raise ValueError(f"remove_ffn={budgets['ffn']} would remove every FFN neuron")
        per_layer = self.per_layer_ffn and keep_width < width
        widths = (per_layer_widths([scores.neuron_importance[l] for l in kept_layers], keep_width, int(self.ffn_multiple))
                  if per_layer else [keep_width] * len(kept_layers))
        kept_neurons, energies["ffn"] = {}, 0.0
        for l, layer_width in zip(kept_layers, widths):
            choice = select_units(scores.neuron_importance[l], scores.neuron_vectors[l], layer_width, settings, self.redundancy_weight, rank)
            kept_neurons[l] = [int(i) for i in choice.kept]
            energies["ffn"] += choice.energy
            repaired += choice.repaired
        timings["solve"] = time.perf_counter() - start

        self.scores_, self.shape_, self.drop_losses_ = scores, shape, drop_losses
        self.kept_layers_, self.kept_heads_, self.kept_neurons_ = kept_layers, kept_heads, kept_neurons
        self.report_ = PruningReport(
            method=self.method, solver=settings.solver.name if self.method == "qubo" else None, seed=self.seed, budgets=budgets,
            layers_before=n_layers, layers_kept=kept_layers, heads_before=int(sum(shape.heads_per_layer)),
            heads_after=sum(len(h) for h in kept_heads.values()), kept_heads={str(l): h for l, h in kept_heads.items()},
            ffn_width_before=int(width), ffn_width_after=int(round(np.mean(widths))), energies=energies, repaired_blocks=repaired,
            empty_layer_repairs=empty_repairs, calibration_rows=len(calibration_dataset), calibration_tokens=scores.tokens,
            params_before=count_parameters(model), timings={k: round(v, 3) for k, v in timings.items()},
        )
        if per_layer:
            self.report_.ffn_per_layer_after = [int(w) for w in widths]
        if grouped:
            self.report_.head_unit = head_unit
            self.report_.kv_heads_before = int(sum(shape.kv_heads_per_layer))
            self.report_.kv_heads_after = int(sum(len(kept_groups(h, shape.heads_per_layer[l], shape.kv_heads_per_layer[l]))
                                                  for l, h in kept_heads.items()))
        if drop_losses is not None:
            self.report_.layer_drop_losses = {"single": _rounded(drop_losses.single), "pair": _rounded(drop_losses.pair),
                                              "rows": self.pair_rows, "later_rounds": later_rounds}
        return self

    def check_shape(self, shape) -> None:
        """Every budget checked against a model's shape (``adapter.config_shape(config)`` before loading it)."""
        checked = self.check_params()
        n_layers = len(shape.heads_per_layer)
        if n_layers - int(round(checked["remove_layers"] * n_layers)) < 1:
            raise ValueError(f"remove_layers={checked['remove_layers']} would remove all {n_layers} layers")
        if self.method == "block_influence" and (checked["remove_heads"] or checked["remove_ffn"]):
            raise ValueError("method='block_influence' ranks whole layers (ShortGPT); set remove_heads=0 and remove_ffn=0, or use another method")
        if self.per_layer_ffn and self.uniform:
            raise ValueError("per_layer_ffn=True gives every layer its own FFN width, which uniform=True forbids; set one of them to False")
        self._check_head_budget(shape, checked["remove_heads"], self._head_unit(shape))

    def _head_unit(self, shape) -> str:
        """``head`` without grouped-query attention, else ``group`` or ``query`` (``auto``: ``group``)."""
        if shape.kv_heads_per_layer == shape.heads_per_layer:
            return "head"
        return "group" if self.head_unit == "auto" else self.head_unit

    def _check_head_budget(self, shape, heads: float, head_unit: str) -> None:
        """Refuse, before any work, a head budget that would empty a key/value group or a layer."""
        if not heads:
            return
        for l, (n_heads, n_kv) in enumerate(zip(shape.heads_per_layer, shape.kv_heads_per_layer)):
            if head_unit == "query" and (n_heads // n_kv) - int(round(heads * (n_heads // n_kv))) < 1:
                raise ValueError(f"remove_heads={heads} would leave no query head in a key/value group of layer {l} "
                                 f"({n_heads // n_kv} query heads per group); lower remove_heads or use head_unit='group'")
            if self.uniform and head_unit in ("group", "head"):
                units = n_kv if head_unit == "group" else n_heads
                if units - int(round(heads * units)) < 1:
                    raise ValueError(f"remove_heads={heads} would remove every {'key/value group' if head_unit == 'group' else 'head'} "
                                     f"of layer {l} ({units}); lower remove_heads")

    def _unit_scores(self, model, adapter, calibration_dataset, shape) -> UnitScores:
        """Taylor importances and redundancy signals (qubo, greedy, block_influence), or weight norms (magnitude) or
        random numbers (random) in the same layout."""
        if self.method in ("qubo", "greedy", "block_influence"):
            return compute_scores(model, calibration_dataset, self.batch_size, self.max_tokens, self.show_progress)
        if self.method == "magnitude":
            heads, kv, neurons, layers = unit_weight_norms(adapter, model)
            groups = [np.repeat(k, h // len(k)) for k, h in zip(kv, shape.heads_per_layer)]
            heads = [q + g / (len(q) // len(k)) for q, g, k in zip(heads, groups, kv)]  # each query head's share of its key/value head
            layers = np.asarray(layers)
        else:
            rng = np.random.default_rng(self.seed)
            heads = [rng.random(h) for h in shape.heads_per_layer]
            neurons = [rng.random(w) for w in shape.ffn_per_layer]
            layers = rng.random(len(shape.heads_per_layer))
        return self._blank_scores(shape, heads, neurons, layers)

    @staticmethod
    def _blank_scores(shape, heads=None, neurons=None, layers=None) -> UnitScores:
        """Scores in :class:`UnitScores`' layout with no redundancy signal (ones where no importance is given)."""
        heads = heads if heads is not None else [np.ones(h) for h in shape.heads_per_layer]
        neurons = neurons if neurons is not None else [np.ones(w) for w in shape.ffn_per_layer]
        layers = layers if layers is not None else np.ones(len(shape.heads_per_layer))
        return UnitScores(head_importance=heads, head_vectors=np.zeros((sum(shape.heads_per_layer), 1), dtype=np.float32),
                          neuron_importance=neurons, neuron_vectors=[np.zeros((w, 1), dtype=np.float32) for w in shape.ffn_per_layer],
                          layer_importance=np.asarray(layers), layer_vectors=np.zeros((len(layers), 1), dtype=np.float32), tokens=0)

    def _choose_heads(self, scores: UnitScores, shape, kept_layers: list[int], heads: float, head_unit: str, settings, rank: str):
        """``({layer: kept query heads}, empty-layer repairs, energy, repaired blocks)`` for the head unit in use."""
        offsets = np.concatenate([[0], np.cumsum(shape.heads_per_layer)])
        if head_unit == "query":
            kept, energy, fixed = {}, 0.0, 0
            for l in kept_layers:
                n_heads, n_kv = shape.heads_per_layer[l], shape.kv_heads_per_layer[l]
                per_group = n_heads // n_kv
                choice = select_in_groups(scores.head_importance[l], scores.head_vectors[offsets[l]:offsets[l + 1]],
                                          np.arange(n_heads) // per_group, per_group - int(round(heads * per_group)), settings,
                                          self.redundancy_weight, rank)
                kept[l] = [int(h) for h in choice.kept]
                energy, fixed = energy + choice.energy, fixed + choice.repaired
            return kept, 0, energy, fixed
        if head_unit == "group":  # a key/value group's importance and signal are its query heads' together
            sizes = [h // k for h, k in zip(shape.heads_per_layer, shape.kv_heads_per_layer)]
            importance = [scores.head_importance[l].reshape(-1, sizes[l]).sum(1) for l in range(len(sizes))]
            vectors = np.concatenate([_group_rows(scores.head_vectors[offsets[l]:offsets[l + 1]], sizes[l]) for l in range(len(sizes))])
            counts = list(shape.kv_heads_per_layer)
        else:
            importance, vectors, counts, sizes = scores.head_importance, scores.head_vectors, list(shape.heads_per_layer), None
        unit_offsets = np.concatenate([[0], np.cumsum(counts)])
        if self.uniform:
            kept, energy, fixed = {}, 0.0, 0
            for l in kept_layers:
                choice = select_units(importance[l], vectors[unit_offsets[l]:unit_offsets[l + 1]], counts[l] - int(round(heads * counts[l])),
                                      settings, self.redundancy_weight, rank)
                kept[l] = [int(u) for u in choice.kept]
                energy, fixed = energy + choice.energy, fixed + choice.repaired
            repairs = 0
        else:
            units = np.concatenate([np.arange(unit_offsets[l], unit_offsets[l + 1]) for l in kept_layers])
            keep = len(units) - int(round(heads * len(units)))
            if keep < len(kept_layers):
                raise ValueError(f"remove_heads={heads} leaves {keep} heads for {len(kept_layers)} layers; every kept layer needs one")
            flat = np.concatenate([importance[l] / (np.linalg.norm(importance[l]) or 1.0) for l in kept_layers])
            choice = select_units(flat, vectors[units], keep, settings, self.redundancy_weight, rank)
            kept_units, repairs = self._fill_empty_layers(units[choice.kept], units, flat, unit_offsets, kept_layers)
            kept = {l: [int(u - unit_offsets[l]) for u in kept_units if unit_offsets[l] <= u < unit_offsets[l + 1]] for l in kept_layers}
            energy, fixed = choice.energy, choice.repaired
        if head_unit == "group":  # a kept group keeps all its query heads
            kept = {l: [g * sizes[l] + j for g in groups for j in range(sizes[l])] for l, groups in kept.items()}
        return kept, repairs, energy, fixed

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
        remove_units(model, self.kept_layers_, heads, neurons)
        self.report_.params_after = count_parameters(model)
        return model

    def fit_apply(self, model, calibration_dataset: Dataset):
        return self.fit(model, calibration_dataset).apply(model)

    def plot(self, path) -> Any:
        """Heat-map PNG of kept/pruned heads and FFN width per layer."""
        from .heatmap import plot_pruning

        return plot_pruning(self.report_, max(self.shape_.heads_per_layer), path)


def _rounded(values) -> list[float]:
    return [round(float(v), 6) for v in values]


def _group_rows(head_rows: np.ndarray, size: int) -> np.ndarray:
    """Each key/value group's signal: its query heads' unit rows summed and normalised."""
    summed = head_rows.reshape(-1, size, head_rows.shape[1]).sum(1)
    norms = np.linalg.norm(summed, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (summed / norms).astype(np.float32)


AnnealingPruner.__init__.__signature__ = inspect.signature(PruningParams.__init__)  # the declared parameters, for help and IDEs
