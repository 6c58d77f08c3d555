"""The training loss of a gated model and the per-row gradients of that loss with respect to the gates.

Two objectives share one interface (``loss``, ``commit``, ``gradients``):

* :class:`MLPObjective`: an ``nn.Sequential`` on numeric features; the loss is the cross-entropy of its own
  (frozen) output layer.
* :class:`EncoderObjective`: a BERT-family encoder on texts; the loss is the cross-entropy of a logistic
  regression head on the mean-pooled last hidden states, fitted once on the open model's features (the one
  part fitted; no encoder weight changes), so the search keeps the features that head relies on.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .gates import Gates

Masks = dict[str, np.ndarray]


def _per_row(masks: Masks, rows: int) -> dict[str, torch.Tensor]:
    """Gate tensors of shape (rows, units) that collect each row's own gradient."""
    return {name: torch.tensor(np.broadcast_to(m, (rows, len(m))), dtype=torch.float32, requires_grad=True) for name, m in masks.items()}


def gauss_newton_terms(logits: torch.Tensor, y: torch.Tensor, gates: dict[str, torch.Tensor],
                       constant: tuple[int, ...] = ()) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-row gradients ``G`` (rows x units) of the cross-entropy and Gauss-Newton factors ``V`` ((rows x classes) x units)
    with ``V^T V = sum_rows J^T (diag p - p p^T) J``, ``J`` the row's logit Jacobian in its gates.

    ``diag p - p p^T = sum_c p_c (e_c - p)(e_c - p)^T``, so ``V``'s row ``(s, c)`` is ``sqrt(p_c) J^T (e_c - p)`` and
    ``G``'s row ``s`` is ``J^T (p - e_y)``: one backward pass per class (``constant`` lists logits that do not
    depend on the gates, skipped)."""
    p = torch.softmax(logits.detach().double(), dim=1)
    classes = logits.shape[1]
    jac = {name: [] for name in gates}
    for c in range(classes):
        if c in constant:
            for name, g in gates.items():
                jac[name].append(torch.zeros(g.shape, dtype=torch.float64))
            continue
        grads = torch.autograd.grad(logits[:, c].sum(), list(gates.values()), retain_graph=c < classes - 1)
        for name, g in zip(gates, grads):
            jac[name].append(g.double())
    onehot = torch.nn.functional.one_hot(y, classes).double()
    out = {}
    for name in gates:
        J = torch.stack(jac[name], dim=1)  # rows x classes x units
        G = torch.einsum("sc,scu->su", p - onehot, J)
        mean = torch.einsum("sc,scu->su", p, J)
        V = p.sqrt()[:, :, None] * (J - mean[:, None, :])
        out[name] = (G.numpy(), V.reshape(-1, V.shape[-1]).numpy())
    return out


def _merge(parts: list[dict[str, tuple[np.ndarray, np.ndarray]]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stack the batches' ``G`` and ``V`` rows (``V^T V / len(G)`` is then the mean Gauss-Newton matrix)."""
    return {name: (np.concatenate([p[name][0] for p in parts]), np.concatenate([p[name][1] for p in parts])) for name in parts[0]}


class MLPObjective:
    """Cross-entropy of a frozen ``nn.Sequential`` on ``(X, y)``."""

    def __init__(self, gates: Gates, X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.gates, self.batch_size = gates, batch_size
        self.X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        self.y = torch.as_tensor(np.asarray(y, dtype=np.int64))
        self._last = float("nan")

    @property
    def rows(self) -> int:
        return len(self.y)

    def logits(self, masks: Masks | None, rows: slice | np.ndarray = slice(None)) -> torch.Tensor:
        self.gates.set_masks(masks)
        with torch.no_grad():
            return self.gates.model(self.X[rows])

    def loss(self, masks: Masks) -> float:
        self._last = float(F.cross_entropy(self.logits(masks), self.y))
        return self._last

    def commit(self) -> float:
        return self._last

    def minibatches(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled row batches (what :meth:`gradients` takes as ``rows``)."""
        return np.array_split(rng.permutation(self.rows), max(1, -(-self.rows // self.batch_size)))

    def gradients(self, masks: Masks, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        rows = np.arange(self.rows) if rows is None else rows
        gates = _per_row(masks, len(rows))
        self.gates.values = gates
        loss = F.cross_entropy(self.gates.model(self.X[rows]), self.y[rows], reduction="sum")
        loss.backward()
        return {name: g.grad.numpy().astype(np.float64) for name, g in gates.items()}

    def local_terms(self, masks: Masks) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-row gradients and Gauss-Newton factors at ``masks`` (:func:`gauss_newton_terms`)."""
        parts = []
        for start in range(0, self.rows, self.batch_size):
            rows = slice(start, start + self.batch_size)
            gates = _per_row(masks, len(self.y[rows]))
            self.gates.values = gates
            parts.append(gauss_newton_terms(self.gates.model(self.X[rows]), self.y[rows], gates))
        return _merge(parts)


class EncoderObjective:
    """Cross-entropy of a logistic-regression head on a gated transformer's pooled features (the adapter's pooling)."""

    def __init__(self, gates: Gates, encoded: list[dict[str, torch.Tensor]], y: np.ndarray, C: float = 1.0) -> None:
        from ..models import adapter_for

        self.gates, self.batches, self.C = gates, encoded, C
        self.adapter = adapter_for(gates.model)
        self.y = np.asarray(y, dtype=np.int64)
        self._features: np.ndarray | None = None
        self.W = self.b = None

    @property
    def rows(self) -> int:
        return len(self.y)

    def _pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.adapter.pooled(self.gates.model, batch["input_ids"], batch["attention_mask"])

    def features(self, masks: Masks | None) -> np.ndarray:
        self.gates.set_masks(masks)
        with torch.no_grad():
            return torch.cat([self._pooled(b) for b in self.batches]).numpy()

    def fit_head(self, features: np.ndarray) -> None:
        """Logistic regression on standardised features, folded into one linear map of the raw features."""
        from sklearn.linear_model import LogisticRegression

        mean, std = features.mean(0), features.std(0) + 1e-6
        lr = LogisticRegression(C=self.C, max_iter=2000).fit((features - mean) / std, self.y)
        coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # binary: logits (0, z)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        W = coef / std
        self.W = torch.tensor(W, dtype=torch.float32)
        self.b = torch.tensor(intercept - W @ mean, dtype=torch.float32)

    def _loss_of(self, features: np.ndarray) -> float:
        logits = torch.as_tensor(features) @ self.W.T + self.b
        return float(F.cross_entropy(logits, torch.as_tensor(self.y)))

    def loss(self, masks: Masks) -> float:
        self._ensure_head(masks)
        self._features = self.features(masks)
        return self._loss_of(self._features)

    def _ensure_head(self, masks: Masks) -> None:
        """Fit the head once, on the open model's features: the features the search must preserve."""
        if self.W is None:
            self.fit_head(self.features({name: np.ones_like(m) for name, m in masks.items()}))

    def commit(self) -> float:
        """The loss of the mask evaluated last (the head stays as fitted on the open model, so losses compare)."""
        return self._loss_of(self._features)

    def gradients(self, masks: Masks, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        self._ensure_head(masks)
        chosen = range(len(self.batches)) if rows is None else rows
        out: dict[str, list[np.ndarray]] = {name: [] for name in masks}
        start = 0
        for i, batch in enumerate(self.batches):
            n = len(batch["input_ids"])
            if i in chosen:
                gates = _per_row(masks, n)
                self.gates.values = gates
                logits = self._pooled(batch) @ self.W.T + self.b
                F.cross_entropy(logits, torch.as_tensor(self.y[start:start + n]), reduction="sum").backward()
                for name, g in gates.items():
                    out[name].append(g.grad.numpy().astype(np.float64))
            start += n
        return {name: np.concatenate(parts) for name, parts in out.items()}

    def local_terms(self, masks: Masks) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-row gradients and Gauss-Newton factors at ``masks`` (:func:`gauss_newton_terms`)."""
        self._ensure_head(masks)
        constant = tuple(c for c in range(len(self.W)) if not bool(self.W[c].any()))
        parts, start = [], 0
        for batch in self.batches:
            n = len(batch["input_ids"])
            gates = _per_row(masks, n)
            self.gates.values = gates
            logits = self._pooled(batch) @ self.W.T + self.b
            parts.append(gauss_newton_terms(logits, torch.as_tensor(self.y[start:start + n]), gates, constant))
            start += n
        return _merge(parts)

    def minibatches(self, rng: np.random.Generator) -> list[list[int]]:
        """Shuffled tokenized batches, one at a time (what :meth:`gradients` takes as ``rows``)."""
        return [[int(i)] for i in rng.permutation(len(self.batches))]


def encode_texts(tokenizer: Any, texts: list[str], batch_size: int, max_length: int) -> tuple[list[dict[str, torch.Tensor]], np.ndarray]:
    """Tokenized batches of similar lengths, and the row order they hold (``order[i]``: the text of row ``i``)."""
    lengths = [len(t) for t in texts]
    order = np.argsort(lengths, kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = [texts[i] for i in order[start:start + batch_size]]
        enc = tokenizer(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        batches.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    return batches, order
