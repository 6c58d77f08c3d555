"""``AnnealingCompressor``: choose, per head and FFN block, drop or keep and, per Linear module, int8 or fp32,
within a size or latency budget; then remove and quantize for real."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from datasets import Dataset

from ..annealing import anneal_settings
from ..params import DeclaredParams
from ..qubo import AnnealSettings, get_solver
from .costs import CostModel, latency_costs, size_costs
from .formulation import Formulation, fallback, fill, loss_of
from .layout import POOLER, ROLES, Choice, Layout, build_layout, keep_best
from .params import CompressionParams
from .quantize import check_not_quantized, quantize_linears, weight_bytes
from .report import CompressionReport

GAMMA_STEPS = 14
LAMBDAS = (1e2, 1e3, 1e4, 1e5, 1e6)
RELINEARISE = 3


class AnnealingCompressor(DeclaredParams, CompressionParams):
    """Joint structured pruning and int8 quantization of a transformer classifier by one QUBO (seed 001).

    ``budget`` is a size (``"25%"`` of the fp32 non-embedding weights, or ``"10MB"``) or give ``latency_ms``
    (milliseconds at ``latency_batch x latency_length``, timed on this machine at ``fit``). ``options`` are the
    choices: ``drop`` (heads, FFN blocks of ``ffn_block`` neurons), ``int8`` and ``fp32`` (Linear modules).

    ``fit`` scores what each choice costs in loss on calibration rows and anneals; ``prune(model)`` removes the
    dropped units (the model stays trainable, e.g. for a recovery epoch), ``quantize(model)`` quantizes the
    int8 modules; ``apply`` does both. Fitted attributes: ``choice_``, ``layout_``, ``cost_``, ``report_``.
    """

    def __repr__(self) -> str:
        return (f"AnnealingCompressor(budget={self.budget!r}, latency_ms={self.latency_ms}, options={self.options}, "
                f"method={self.method!r}, budget_form={self.budget_form!r}, solver={self.solver!r}, seed={self.seed})")

    def _settings(self, solver) -> AnnealSettings:
        return anneal_settings(self, solver=solver, block_size=10**6, n_jobs=1, show_progress=False)  # one QUBO, never cut

    def fit(self, model, calibration_dataset: Dataset) -> "AnnealingCompressor":
        """Measure the costs and sensitivities on ``calibration_dataset`` (tokenized, with labels) and choose."""
        from ..models import adapter_for, check_calibration

        method = self.check_params()["method"]
        adapter = adapter_for(model, what="compression")
        shape = adapter.shape(model)
        check_not_quantized(model)
        check_calibration(calibration_dataset, adapter.can_generate(model))
        target = self.target()
        device = next(model.parameters()).device
        if target.kind == "latency" and device.type != "cpu":
            raise ValueError(f"latency_ms is timed on the CPU (int8 dynamic quantization runs there); the model is on {device}: move it to the CPU")
        timings: dict[str, float] = {}
        blank = keep_best(build_layout(model, self.ffn_block))
        start = time.perf_counter()
        per_channel = self.per_channel(model)
        sizes = size_costs(blank, model, per_channel)
        cost = sizes if target.kind != "latency" else latency_costs(blank, model, self.latency_batch, self.latency_length, self.show_progress, per_channel)
        timings["costs"] = time.perf_counter() - start
        everything = Choice(np.ones(len(blank.units), bool), np.zeros(len(blank.modules), bool))
        full_bytes = sizes.evaluate(blank, everything)
        limit = target.limit(full_bytes, 0.0)
        self._check_reachable(blank, cost, limit, target, full_bytes)  # before any scoring
        from .sensitivity import measure_sensitivity

        start = time.perf_counter()
        layout = build_layout(model, self.ffn_block)
        sens = measure_sensitivity(model, calibration_dataset, layout, self.batch_size, self.show_progress, per_channel)
        keep_best(layout, sens.drop)  # same units as the blank layout; the costliest head and block of each layer stay
        timings["sensitivity"] = time.perf_counter() - start
        form = Formulation(layout, sens, cost, self.beta, self.options)
        start = time.perf_counter()
        search: dict[str, Any] = {}
        if method == "fallback":
            choice = fallback(form, limit)
            filled = 0
        else:
            solver = get_solver(self.solver)
            settings = self._settings(solver)
            choice, search = (self._reward_search if self.budget_form == "reward" else self._penalty_search)(form, limit, settings)
            choice, filled = fill(form, choice, limit)
        timings["solve"] = time.perf_counter() - start
        self.layout_, self.cost_, self.sensitivity_, self.choice_, self.shape_ = layout, cost, sens, choice, shape
        self.size_model_, self.per_channel_ = sizes, per_channel
        drop_loss, quant_loss = loss_of(choice, layout, sens, self.beta)
        self.report_ = CompressionReport(
            method=method, budget=str(target), budget_kind=target.kind, limit=float(limit), cost_unit=cost.unit,
            budget_form=self.budget_form if method == "qubo" else None,
            solver=get_solver(self.solver).name if method == "qubo" else None, seed=self.seed, options=list(self.options),
            cost_before=float(form.full_cost), cost_after=float(cost.evaluate(layout, choice)),
            predicted_bytes_before=float(full_bytes), predicted_bytes_after=float(sizes.evaluate(layout, choice)),
            drop_loss=drop_loss, quant_loss=quant_loss, fill_moves=int(filled), search=search,
            heads_before=[int(h) for h in self.shape_.heads_per_layer], heads_after=[len(v) for v in choice.kept_heads(layout).values()],
            ffn_before=[int(w) for w in self.shape_.ffn_per_layer], ffn_after=[len(v) for v in choice.kept_neurons(layout).values()],
            int8=[[bool(choice.int8[m]) for m, mod in enumerate(layout.modules) if mod.layer == l and mod.role != POOLER] for l in range(layout.n_layers)],
            int8_other={mod.role: bool(choice.int8[m]) for m, mod in enumerate(layout.modules) if mod.role == POOLER},
            roles=list(ROLES), calibration_rows=len(calibration_dataset), latency_table=cost.table,
            timings={k: round(v, 3) for k, v in timings.items()},
            bytes_before=dict(zip(("non_embedding", "total"), weight_bytes(model))),
            qscheme="per_channel" if per_channel else "per_tensor",
        )
        return self

    def per_channel(self, model) -> bool:
        """Whether int8 weights get one scale per output row (``qscheme``; ``auto``: for causal LMs)."""
        from ..models import adapter_for

        if self.qscheme == "auto":
            return bool(adapter_for(model, what="compression").can_generate(model))
        return self.qscheme == "per_channel"

    def _check_reachable(self, layout: Layout, cost: CostModel, limit: float, target, full_bytes: float) -> None:
        """Refuse a budget that even the smallest answer (everything droppable dropped, all int8) misses."""
        form = Formulation(layout, _zero_sensitivity(layout), cost, self.beta, self.options)
        smallest = cost.evaluate(layout, form.smallest())
        if smallest > limit:
            unit, scale = ("MB", 1e6) if cost.unit == "bytes" else ("ms", 1.0)
            full = full_bytes if cost.unit == "bytes" else form.full_cost
            raise ValueError(f"budget {target} cannot be met with options {','.join(self.options)}: the smallest reachable is "
                             f"{smallest / scale:.3f} {unit} ({smallest / full:.1%} of the fp32 model's {full / scale:.3f} {unit})")

    def _reward_search(self, form: Formulation, limit: float, settings: AnnealSettings) -> tuple[Choice, dict]:
        """Least-loss answer within the budget over ``gamma``: double until it fits, then bisect (log scale)."""
        tried = []

        def solve(gamma: float) -> Choice:
            choice = form.solve(form.reward_blocks(gamma), settings)
            tried.append((gamma, form.cost.evaluate(form.layout, choice), form.loss(choice), choice))
            return choice

        low, high = 0.0, 1.0
        while form.cost.evaluate(form.layout, solve(high)) > limit:
            low, high = high, high * 4.0
            if high > 1e9:
                break
        low = low or high / 1024.0
        for _ in range(GAMMA_STEPS):
            middle = float(np.sqrt(low * high))
            if form.cost.evaluate(form.layout, solve(middle)) > limit:
                low = middle
            else:
                high = middle
        return _least_loss(tried, limit, "reward", "gamma", "raise num_reads or the budget")

    def _penalty_search(self, form: Formulation, limit: float, settings: AnnealSettings) -> tuple[Choice, dict]:
        """Least-loss answer within the budget over a grid of ``lambda``, re-linearising the cost at each answer."""
        tried = []
        for lam in LAMBDAS:
            at = Choice(np.ones(len(form.layout.units), bool), form.vars.module[:, 0] >= 0)
            target = limit
            for _ in range(RELINEARISE):
                choice = form.solve([form.penalty_block(lam, target, at)], settings)
                cost = form.cost.evaluate(form.layout, choice)
                tried.append((lam, cost, form.loss(choice), choice))
                if cost > limit:  # aim lower by the overshoot
                    target = max(target - (cost - limit), 1e-9)
                at = choice
        return _least_loss(tried, limit, "penalty", "lambda", "try budget_form='reward'")

    # ------------------------------------------------------------------ applying
    def _check_fitted(self, model) -> None:
        if not hasattr(self, "report_"):
            raise RuntimeError("this AnnealingCompressor is not fitted yet: call compressor.fit(model, calibration_dataset) first")
        if _shape(model) != self.shape_:
            raise ValueError(f"the model's structure {_shape(model)} differs from the one the compressor was fitted on {self.shape_}")

    def prune(self, model):
        """Remove the dropped heads and FFN blocks (in place); the model stays fp32 and trainable."""
        from ..models import remove_units

        self._check_fitted(model)
        check_not_quantized(model)
        layout, choice = self.layout_, self.choice_
        heads = {l: h for l, h in choice.kept_heads(layout).items() if len(h) < self.shape_.heads_per_layer[l]}
        neurons = {l: n for l, n in choice.kept_neurons(layout).items() if len(n) < self.shape_.ffn_per_layer[l]}
        remove_units(model, list(range(layout.n_layers)), heads, neurons)
        self.pruned_shape_ = _shape(model)
        return model

    def quantize(self, model):
        """Quantize the modules chosen int8 (in place) on a model :meth:`prune` has already cut."""
        if not hasattr(self, "pruned_shape_") or _shape(model) != self.pruned_shape_:
            raise ValueError("quantize a model this compressor has pruned (call compressor.prune(model) first)")
        check_not_quantized(model)
        quantize_linears(model, self.choice_.int8_linears(self.layout_), self.per_channel_)
        model.config.hf_qselect_compression = {"int8": self.choice_.int8_linears(self.layout_), "engine": "torch.ao.quantize_dynamic",
                                              "qscheme": "per_channel_symmetric" if self.per_channel_ else "per_tensor_symmetric"}
        non_embedding, total = weight_bytes(model)
        self.report_.bytes_after = {"non_embedding": non_embedding, "total": total}
        return model

    def apply(self, model):
        """:meth:`prune` then :meth:`quantize`."""
        return self.quantize(self.prune(model))

    def fit_apply(self, model, calibration_dataset: Dataset):
        return self.fit(model, calibration_dataset).apply(model)

    def plot(self, path) -> Any:
        """Heat map PNG: per layer, the share of heads and FFN neurons kept and the precision of each module."""
        from .plot import plot_compression

        return plot_compression(self.report_, path)


def _least_loss(tried: list[tuple], limit: float, form: str, weight: str, hint: str) -> tuple[Choice, dict]:
    """The least-loss answer among ``(weight, cost, loss, choice)`` tries that fit ``limit``, and the search record."""
    feasible = [t for t in tried if t[1] <= limit]
    if not feasible:
        raise RuntimeError(f"no annealed answer fitted the budget ({len(tried)} {form}-form solves); {hint}")
    value, _, _, choice = min(feasible, key=lambda t: t[2])
    return choice, {"form": form, weight: value, "anneals": len(tried), "feasible": len(feasible),
                    "trace": [[round(w, 6), round(c, 3), round(l, 6)] for w, c, l, _ in tried]}


def _shape(model):
    from ..models import adapter_for

    return adapter_for(model, what="compression").shape(model)


def _zero_sensitivity(layout: Layout):
    from .sensitivity import Sensitivity

    return Sensitivity(drop=np.ones(len(layout.units)), quant=[np.zeros(len(m.units)) for m in layout.modules], batches=1)
