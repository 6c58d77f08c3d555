"""The joint pruning + bit-width QUBO (seed 001), its budget search, and the fall-back baseline.

Every unit is a one-hot group ``{drop, keep}`` (``{keep}`` for the unit a layer must keep) and every module a
one-hot group ``{int8, fp32}`` (``{fp32}`` without the int8 option). With ``D_u`` the loss of dropping unit ``u``,
``Q_mu`` the loss of quantizing unit ``u``'s weights in module ``m``, and ``cost`` a :class:`CostModel`:

    loss(x)   = sum_u D_u drop_u + beta sum_{m, u in m} Q_mu keep_u int8_m
    reward    : E = loss(x) + gamma * cost(x)          (the paper's H = L_p + beta L_q - gamma R, R = full - cost)
    penalty   : E = loss(x) + lambda * (cost~(x) - B)^2 (cost~: cost linearised at the previous answer)

``cost(x)`` is quadratic (``keep_u * int8_m``), so the reward form is an exact QUBO and separates by layer
(one block per layer); ``gamma`` is searched (doubling, then bisection) for the least-loss answer within the
budget. The penalty form squares the cost, so its bilinear part is linearised at the previous answer and the
whole model is one block; ``lambda`` runs over a grid. Both end with :func:`fill`, which spends what is left of
the budget on the moves that buy back the most loss per unit of cost.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..qubo import AnnealSettings, BlockQUBO, anneal, boundary_penalty
from .costs import CostModel
from .layout import Choice, Layout
from .sensitivity import Sensitivity


@dataclass
class Variables:
    """Numbering of the one-hot options: ``unit[u] = (drop var or -1, keep var)``, ``module[m] = (int8 var or -1, fp32 var)``."""

    unit: np.ndarray
    module: np.ndarray
    group: np.ndarray
    layer: np.ndarray

    @property
    def size(self) -> int:
        return len(self.group)


def number_variables(layout: Layout, options: tuple[str, ...]) -> Variables:
    unit, module, group, layer = [], [], [], []
    n = 0
    for u in layout.units:
        drop = "drop" in options and u.droppable
        unit.append((n if drop else -1, n + 1 if drop else n))
        size = 2 if drop else 1
        group += [len(unit) - 1] * size
        layer += [u.layer] * size
        n += size
    offset = len(unit)
    for m, mod in enumerate(layout.modules):
        q = "int8" in options
        module.append((n if q else -1, n + 1 if q else n))
        size = 2 if q else 1
        group += [offset + m] * size
        layer += [mod.layer] * size
        n += size
    return Variables(np.array(unit), np.array(module), np.array(group), np.array(layer))


def loss_of(choice: Choice, layout: Layout, sens: Sensitivity, beta: float) -> tuple[float, float]:
    """``(pruning loss, quantization loss)`` of an answer, recomputed from the estimates."""
    drop = float(sens.drop @ ~choice.keep)
    quant = sum(float(q @ choice.keep[mod.units]) + fixed for mod, q, fixed, on in zip(layout.modules, sens.quant, sens.quant_fixed, choice.int8) if on)
    return drop, beta * quant


class Formulation:
    """Builds the QUBOs of one problem and decodes their answers."""

    def __init__(self, layout: Layout, sens: Sensitivity, cost: CostModel, beta: float, options: tuple[str, ...]):
        self.layout, self.sens, self.cost, self.beta, self.options = layout, sens, cost, beta, options
        self.vars = number_variables(layout, options)
        droppable = sens.drop[self.vars.unit[:, 0] >= 0]
        quant = np.concatenate(sens.quant) if sens.quant else np.zeros(1)
        self.loss_scale = float(np.mean(droppable)) if len(droppable) and np.mean(droppable) > 0 else float(np.mean(quant)) or 1.0
        everything = Choice(np.ones(len(layout.units), bool), np.zeros(len(layout.modules), bool))
        self.full_cost = cost.evaluate(layout, everything)

    # ------------------------------------------------------------------ energies
    def _terms(self, gamma: float) -> tuple[np.ndarray, np.ndarray, float]:
        """``(h, J, offset)`` of loss/loss_scale + gamma * cost/full_cost over every variable."""
        v, n = self.vars, self.vars.size
        h, J = np.zeros(n), np.zeros((n, n))
        g = gamma / self.full_cost
        drop_var, keep_var = v.unit[:, 0], v.unit[:, 1]
        has_drop = drop_var >= 0
        h[drop_var[has_drop]] += self.sens.drop[has_drop] / self.loss_scale
        h[keep_var] += g * self.cost.unit_cost
        for m, mod in enumerate(self.layout.modules):
            q_var, f_var = v.module[m]
            keeps = keep_var[mod.units]
            h[f_var] += g * self.cost.const[m]["fp32"]
            _pair(J, keeps, f_var, g * self.cost.per_unit[m]["fp32"])
            if q_var >= 0:
                h[q_var] += g * self.cost.const[m]["int8"] + self.beta * self.sens.quant_fixed[m] / self.loss_scale
                _pair(J, keeps, q_var, g * self.cost.per_unit[m]["int8"] + self.beta * self.sens.quant[m] / self.loss_scale)
        return h, J, g * self.cost.base

    def block(self, h: np.ndarray, J: np.ndarray, variables: np.ndarray) -> BlockQUBO:
        groups = self.vars.group[variables]
        _, local = np.unique(groups, return_inverse=True)
        counts = np.ones(local.max() + 1, dtype=np.int64)
        sub = J[np.ix_(variables, variables)]
        hb, Jb = h[variables] + np.diag(sub), np.triu(sub + sub.T, 1)  # x_v^2 = x_v: the diagonal is linear
        return BlockQUBO(index=variables, h=hb, J=Jb, offset=0.0, groups=local, counts=counts,
                         penalty=boundary_penalty(hb, Jb, groups=local, counts=counts))

    def reward_blocks(self, gamma: float) -> list[BlockQUBO]:
        """One block per layer: with the reward form no term couples two layers."""
        h, J, _ = self._terms(gamma)
        return [self.block(h, J, np.flatnonzero(self.vars.layer == l)) for l in np.unique(self.vars.layer)]

    def penalty_block(self, lam: float, limit: float, at: Choice) -> BlockQUBO:
        """One block: loss + lam * ((cost linearised at ``at``) / limit - 1)^2."""
        h, J, _ = self._terms(0.0)
        c, const = self.linear_cost(at)
        c, const = c / limit, const / limit - 1.0
        J = J + lam * np.outer(c, c)  # symmetric: block() folds it to the upper triangle (diagonal c_v^2 stays)
        h = h + lam * 2.0 * const * c
        return self.block(h, J, np.arange(self.vars.size))

    def linear_cost(self, at: Choice) -> tuple[np.ndarray, float]:
        """``cost(x) ~ const + c.x``: each product ``keep_u * option_m`` linearised at the answer ``at``."""
        v = self.vars
        c, const = np.zeros(v.size), self.cost.base
        keep_var = v.unit[:, 1]
        c[keep_var] += self.cost.unit_cost
        for m, mod in enumerate(self.layout.modules):
            q_var, f_var = v.module[m]
            at_opt = "int8" if at.int8[m] else "fp32"
            kept0 = at.keep[mod.units].astype(float)
            c[keep_var[mod.units]] += self.cost.per_unit[m][at_opt]
            for option, var in (("fp32", f_var), ("int8", q_var)):
                if var >= 0:
                    c[var] += self.cost.const[m][option] + float(self.cost.per_unit[m][option] @ kept0)
            const -= float(self.cost.per_unit[m][at_opt] @ kept0)
        return c, const

    # ------------------------------------------------------------------ answers
    def decode(self, x: np.ndarray) -> Choice:
        keep = x[self.vars.unit[:, 1]].astype(bool)
        q = self.vars.module[:, 0]
        int8 = np.where(q >= 0, x[np.maximum(q, 0)], 0).astype(bool)
        return Choice(keep=keep, int8=int8)

    def encode(self, choice: Choice) -> np.ndarray:
        x = np.zeros(self.vars.size, dtype=np.int8)
        drop_var, keep_var = self.vars.unit[:, 0], self.vars.unit[:, 1]
        x[keep_var[choice.keep]] = 1
        x[drop_var[~choice.keep]] = 1
        q_var, f_var = self.vars.module[:, 0], self.vars.module[:, 1]
        x[q_var[choice.int8]] = 1
        x[f_var[~choice.int8]] = 1
        return x

    def solve(self, blocks: list[BlockQUBO], settings: AnnealSettings) -> Choice:
        x = np.zeros(self.vars.size, dtype=np.int8)
        for qubo, solution in zip(blocks, anneal(blocks, settings)):
            x[qubo.index] = solution.x
        return self.decode(x)

    def loss(self, choice: Choice) -> float:
        return float(sum(loss_of(choice, self.layout, self.sens, self.beta)))

    def smallest(self) -> Choice:
        """Every droppable unit dropped, every module int8 (where allowed): the cheapest answer."""
        keep = ~((self.vars.unit[:, 0] >= 0))
        return Choice(keep=keep, int8=self.vars.module[:, 0] >= 0)


def _pair(J: np.ndarray, rows: np.ndarray, col: int, values: np.ndarray) -> None:
    J[rows, col] += values


def fill(form: Formulation, choice: Choice, limit: float) -> tuple[Choice, int]:
    """Spend the budget left: re-add units and fall back to fp32 while it fits, best loss saved per cost first."""
    layout, cost = form.layout, form.cost
    choice = Choice(choice.keep.copy(), choice.int8.copy())
    droppable = form.vars.unit[:, 0] >= 0
    moves = 0
    while True:
        current, base_loss = cost.evaluate(layout, choice), form.loss(choice)
        best, best_rate = None, 0.0
        candidates = [("unit", u) for u in np.flatnonzero(droppable & ~choice.keep)] + [("module", m) for m in np.flatnonzero(choice.int8)]
        for kind, i in candidates:
            trial = Choice(choice.keep.copy(), choice.int8.copy())
            if kind == "unit":
                trial.keep[i] = True
            else:
                trial.int8[i] = False
            extra = cost.evaluate(layout, trial) - current
            gain = base_loss - form.loss(trial)
            if gain <= 0 or current + extra > limit:
                continue
            rate = gain / max(extra, 1e-12)
            if rate > best_rate:
                best, best_rate = trial, rate
        if best is None:
            return choice, moves
        choice, moves = best, moves + 1


def fallback(form: Formulation, limit: float) -> Choice:
    """int8 everywhere allowed; drop the unit that loses least per cost saved until the budget holds; then fall back
    to fp32 the modules whose error is largest per cost while the budget still holds (as Intel Neural Compressor's
    fall-back), and re-add what fits."""
    choice = Choice(np.ones(len(form.layout.units), bool), form.vars.module[:, 0] >= 0)
    return fill(form, shed(form, choice, limit), limit)[0]


def shed(form: Formulation, choice: Choice, limit: float) -> Choice:
    """Drop, one at a time, the kept unit that loses least per cost saved, until ``choice`` fits ``limit`` (or nothing
    droppable is left)."""
    layout, cost = form.layout, form.cost
    choice = Choice(choice.keep.copy(), choice.int8.copy())
    droppable = form.vars.unit[:, 0] >= 0
    while cost.evaluate(layout, choice) > limit:
        current, base_loss = cost.evaluate(layout, choice), form.loss(choice)
        best, best_rate = None, np.inf
        for u in np.flatnonzero(droppable & choice.keep):
            trial = Choice(choice.keep.copy(), choice.int8.copy())
            trial.keep[u] = False
            saved = current - cost.evaluate(layout, trial)
            rate = (form.loss(trial) - base_loss) / max(saved, 1e-12)
            if saved > 0 and rate < best_rate:
                best, best_rate = trial, rate
        if best is None:
            break
        choice = best
    return choice
