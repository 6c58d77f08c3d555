"""``SubnetworkSelector``: choose a subnetwork of a frozen model by selecting its units, never changing a weight."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..annealing import anneal_settings
from ..params import DeclaredParams
from ..qubo import get_solver
from .gates import Gates, UnitSet, gates_for, is_mlp, unit_sets
from .masks import load_mask, mask_bytes, save_mask
from .params import AUTO_ROUNDS, AUTO_SCHEDULE, SubnetworkParams
from .search import SearchReport, edge_popup, greedy_masks, qubo_search, random_masks


def _stratified(y: np.ndarray, limit: int | None, seed: int | None) -> np.ndarray:
    """Row positions of a stratified sample of at most ``limit`` rows (all rows, in order, when fewer)."""
    if limit is None or len(y) <= limit:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    rows, _ = train_test_split(np.arange(len(y)), train_size=limit, stratify=y, random_state=seed)
    return np.sort(rows)


class SubnetworkSelector(DeclaredParams, SubnetworkParams):
    """Find a task-specific subnetwork of a frozen (random or pretrained) model by selecting units.

    ``fit(model, X, y)`` on an ``nn.Sequential`` MLP with numeric ``X``, or ``fit(model, dataset, tokenizer=...)``
    on a BERT-family encoder with a ``datasets.Dataset`` of texts and labels. ``method="qubo"`` keeps ``keep`` of
    each layer's units by local QUBOs (see :mod:`.search`); ``greedy``, ``random`` and ``edgepopup`` are the
    baselines under the same budget. No weight is changed: ``fit`` only sets ``mask_``.

    Fitted attributes: ``mask_`` ({layer: 0/1 array}), ``units_`` (the unit sets), ``rounds_`` and ``schedule_``
    (what ``rounds=None`` / ``schedule="auto"`` resolved to), ``report_`` (a dict: losses per round,
    accepted/refused moves, energies, seconds, mask bytes).
    ``apply(model)`` removes the closed units physically; ``save_mask``/``load_mask`` store the mask as bits.
    """

    def __repr__(self) -> str:
        return f"SubnetworkSelector(units={self.units}, keep={self.keep}, method={self.method!r}, rounds={self.rounds}, solver={self.solver!r}, seed={self.seed})"

    # ------------------------------------------------------------------ fit
    def _objective(self, model: Any, gates: Gates, X: Any, y: Any, tokenizer: Any, text_column: str, label_column: str):
        from .objectives import EncoderObjective, MLPObjective, encode_texts

        if is_mlp(model):
            X = np.asarray(X, dtype=np.float32)
            if y is None:
                raise ValueError("y is required: the labels the subnetwork is selected for")
            codes = np.asarray(y)
            outputs = [m for m in model if hasattr(m, "out_features")][-1].out_features
            if codes.ndim != 1 or not len(codes):
                raise ValueError(f"y must be a non-empty 1-d array of class ids, got shape {codes.shape}")
            if not np.issubdtype(codes.dtype, np.integer) or codes.min() < 0 or codes.max() >= outputs:
                raise ValueError(f"y must be integer class ids in [0, {outputs}) (the model's outputs), got {codes[:5].tolist()}...")
            if len(np.unique(codes)) < 2:
                raise ValueError(f"y has a single class ({codes[0]}); subnetwork selection needs at least two classes")
            if X.ndim != 2 or len(X) != len(codes):
                raise ValueError(f"X must be (rows, features) with one row per label; got X {X.shape} and {len(codes)} labels")
            bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
            if bad.size:
                raise ValueError(f"X has NaN or inf at rows {bad[:10].tolist()}")
            first = next(m for m in model if hasattr(m, "in_features"))
            if X.shape[1] != first.in_features:
                raise ValueError(f"X has {X.shape[1]} features but the model's first Linear takes {first.in_features}")
            rows = _stratified(codes, self.max_rows, self.seed)
            return MLPObjective(gates, X[rows], codes[rows], self.batch_size), len(rows)
        from datasets import Dataset

        from ..validation import check_columns, text_values

        if not isinstance(X, Dataset):
            raise TypeError(f"an encoder is fitted on a datasets.Dataset of texts and labels, got {type(X).__name__}")
        if tokenizer is None:
            raise ValueError("tokenizer is required to fit an encoder")
        check_columns(X, text_column=text_column, label_column=label_column)
        codes = _codes(X[label_column], label_column)
        rows = _stratified(codes, self.max_rows, self.seed)
        texts = text_values(X.select(rows), text_column)
        batches, order = encode_texts(tokenizer, texts, self.batch_size, self.max_length)
        return EncoderObjective(gates, batches, codes[rows][order], C=self.C), len(rows)

    def fit(self, model: Any, X: Any, y: Any = None, *, tokenizer: Any = None, text_column: str = "text",
            label_column: str = "label") -> "SubnetworkSelector":
        """Select the gates of ``model`` (left unchanged) for the task given by ``X``/``y`` or a dataset."""
        checked = self.check_params()
        sets = unit_sets(model, checked["units"])
        frozen = [(p, p.requires_grad) for p in model.parameters()]
        was_training = model.training
        gates = gates_for(model, sets)
        try:
            model.eval()
            for p, _ in frozen:
                p.requires_grad_(False)
            objective, rows = self._objective(model, gates, X, y, tokenizer, text_column, label_column)
            kind = "mlp" if is_mlp(model) else "encoder"
            self.rounds_ = AUTO_ROUNDS[kind] if self.rounds is None else int(self.rounds)
            self.schedule_ = AUTO_SCHEDULE[kind] if self.schedule == "auto" else self.schedule
            self.mask_, report = self._search(objective, sets)
            open_loss = objective.loss({u.name: np.ones(u.size, dtype=np.int8) for u in sets})
        finally:
            gates.remove()
            for p, flag in frozen:
                p.requires_grad_(flag)
            model.train(was_training)
        self.units_ = sets
        self.report_ = {**report.to_dict(), "rows": rows, "open_loss": open_loss, "units": {u.name: u.size for u in sets},
                        "kept": {name: int(m.sum()) for name, m in self.mask_.items()}, "mask_bytes": mask_bytes(self.mask_),
                        "solver": get_solver(self.solver).name if self.method == "qubo" else None, "params": self._provenance(),
                        "rounds_run": self.rounds_, "schedule_run": self.schedule_}
        return self

    def _search(self, objective: Any, sets: list[UnitSet]) -> tuple[dict[str, np.ndarray], SearchReport]:
        if self.method == "random":
            return random_masks(objective, sets, self.keep, self.seed)
        if self.method == "greedy":
            return greedy_masks(objective, sets, self.keep)
        if self.method == "edgepopup":
            return edge_popup(objective, sets, self.keep, epochs=self.epochs, lr=self.lr, seed=self.seed, show_progress=self.show_progress)
        settings = anneal_settings(self, solver=get_solver(self.solver), n_jobs=1, show_progress=False)
        return qubo_search(objective, sets, self.keep, settings, rounds=self.rounds_, block_size=self.block_size, schedule=self.schedule_,
                           curvature=self.curvature, trust=self.trust, tries=self.tries, seed=self.seed, show_progress=self.show_progress)

    def _provenance(self) -> dict[str, Any]:
        values = self.get_params()
        values["solver"] = values["solver"] if isinstance(values["solver"], str) else type(values["solver"]).__name__
        values["units"] = list(values["units"])
        return values

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> None:
        if not hasattr(self, "mask_"):
            raise RuntimeError("this SubnetworkSelector is not fitted yet: call fit(...) or load_mask(path) first")

    def _check_model(self, model: Any) -> None:
        units = {u.name: u.size for u in unit_sets(model, tuple({u.kind for u in self.units_} - {"neurons"}) or ("ffn",))}
        expected = {u.name: u.size for u in self.units_}
        if units != expected:
            raise ValueError(f"the model's units {units} differ from those the mask was made for {expected}")

    def masked(self, model: Any) -> Gates:
        """Hooks that apply the mask to ``model`` without changing it (``with selector.masked(model): ...``)."""
        self._check_fitted()
        self._check_model(model)
        gates = gates_for(model, self.units_)
        gates.set_masks(self.mask_)
        return gates

    def apply(self, model: Any) -> Any:
        """Remove the unselected units from ``model`` physically (in place) and return it."""
        from .removal import remove_closed_units

        self._check_fitted()
        self._check_model(model)
        return remove_closed_units(model, self.units_, self.mask_)

    def plot(self, path: str | Path) -> Path:
        """PNG of the training loss per round and the units kept per layer."""
        from .plot import plot_subnetwork

        self._check_fitted()
        return plot_subnetwork(self.report_, path)

    def save_mask(self, path: str | Path) -> Path:
        """Write the mask as bits (JSON, hex) with the parameters that made it."""
        self._check_fitted()
        return save_mask(self.mask_, {u.name: u.kind for u in self.units_}, path, {"params": self._provenance()})

    def load_mask(self, path: str | Path) -> "SubnetworkSelector":
        """Use a mask saved by :meth:`save_mask` (as if fitted)."""
        masks, kinds, _ = load_mask(path)
        self.mask_ = masks
        self.units_ = [UnitSet(name, kinds[name], len(m)) for name, m in masks.items()]
        return self


def _codes(labels: Any, column: str) -> np.ndarray:
    from ..validation import label_codes

    return label_codes(list(np.asarray(labels).tolist()), column, "subnetwork selection")[0]
