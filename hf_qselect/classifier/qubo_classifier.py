"""``QuboClassifier``: a K-bit linear classifier head trained without gradients, by annealing QUBOs (Atallah & Herrman 2026)."""
from __future__ import annotations

import json
import time
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..annealing import anneal_settings, annealing
from ..params import boolean, check_params, fraction, integer, one_of, param
from ..qubo import AnnealSettings, anneal, get_solver
from ..records import JsonRecord
from . import grid, surrogate

MODES = ("iterative", "surrogate")
HEAD_FILES = ("head.json", "head.npz")
WRITER = "hf_qselect.QuboClassifier"
INITS = ("gptq", "round", "zero")


@dataclass(eq=False, repr=False)
class QuboClassifierParams:
    """Every parameter of :class:`QuboClassifier`."""

    bits: int = param(8, "K: bits per weight, in [1, 32] (1 = binary weights)", check=integer(1))
    mode: str = param("iterative", "iterative: re-linearise the loss each iteration (the paper); surrogate: one quadratic around fp32",
                      check=one_of(lambda: list(MODES)), choices=lambda: list(MODES))
    solver: Any = annealing("solver")
    _: KW_ONLY
    block_features: int = param(32, "weights per block QUBO (block_features x bits binary variables)", check=integer(1))
    init: str = param("gptq", "starting levels: error-feedback rounding, round-to-nearest, or all bits 0",
                      check=one_of(lambda: list(INITS)), choices=lambda: list(INITS))
    max_iter: int = param(10, "outer iterations (iterative) or block sweeps (surrogate)", check=integer(1))
    C: float = param(1.0, "inverse L2 strength, as scikit-learn's LogisticRegression", check=fraction(0.0, 1e12, low_open=True))
    num_reads: int = annealing("num_reads")
    num_sweeps: Optional[int] = annealing("num_sweeps")
    tol: float = param(1e-7, "stop when an iteration lowers the loss by less than this", check=fraction(0.0, 1.0))
    seed: Optional[int] = annealing("seed")
    show_progress: bool = param(False, "a progress bar over iterations", check=boolean, provenance=False)


@dataclass
class ClassifierReport(JsonRecord):
    """What :meth:`QuboClassifier.fit` did: the surrogate energy and loss after each iteration, blocks, time."""

    bits: int
    mode: str
    init: str
    solver: str
    n_features: int
    n_outputs: int
    variables_per_block: int
    blocks_per_sweep: int
    energies: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    accepted_blocks: int = 0
    rejected_blocks: int = 0
    seconds: float = 0.0


class QuboClassifier(ClassifierMixin, BaseEstimator, QuboClassifierParams):
    """A linear classifier whose weights and bias lie on a K-bit grid, trained by block QUBOs on an annealer.

    ``fit(X, y)`` starts from the fp32 logistic regression's weights rounded to the grid (``init``), then
    minimises a quadratic surrogate of the cross-entropy over the grid by block-coordinate descent: each block
    of ``block_features`` weights (``block_features x bits`` binary variables) is one QUBO annealed by the core,
    given the other weights, and kept only if it lowers the surrogate, so the surrogate energy never rises.
    Binary tasks are one QUBO family, ``C`` classes ``C`` independent ones. A scikit-learn classifier:
    ``predict``, ``predict_proba``, ``decision_function``, ``classes_``, ``coef_``/``intercept_`` (dequantized,
    on the grid), ``scale_``, ``codes_`` (odd integers), ``report_``; ``clone`` works.
    """

    def __repr__(self) -> str:
        return f"QuboClassifier(bits={self.bits}, mode={self.mode!r}, solver={self.solver!r}, init={self.init!r})"

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> "QuboClassifier":
        checked = check_params(self)
        if not 1 <= checked["bits"] <= 32:
            raise ValueError(f"bits must be in [1, 32], got bits={self.bits}")
        X = check_features(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y) if y.ndim == 1 else y.shape}; they must match")
        if not len(y):
            raise ValueError("X and y have 0 rows; a classifier needs labelled rows")
        if y.dtype.kind == "f" and not np.array_equal(y, np.rint(y)):
            bad = float(y[y != np.rint(y)][0])
            raise ValueError(f"y holds non-integer numbers (e.g. {bad!r}): a regression target, not classes; give class labels")
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has a single class ({classes[0]!r}); a classifier needs at least two")
        start = time.perf_counter()
        n, d = X.shape
        Xa = surrogate.augment(X)
        Lam = surrogate.ridge(d, float(self.C), n)
        W_star = fp32_weights(X, codes, float(self.C), len(classes))
        expansions = surrogate.expansion(Xa, W_star, Lam)
        steps, scales = self._initial_levels(W_star, expansions)
        plan = get_solver(self.solver)
        settings = anneal_settings(self, solver=plan, seed=None, n_jobs=1, show_progress=False)  # seeded per block below
        blocks = [np.arange(i, min(i + self.block_features, d + 1)) for i in range(0, d + 1, self.block_features)]
        report = ClassifierReport(bits=self.bits, mode=self.mode, init=self.init, solver=plan.name, n_features=d, n_outputs=len(W_star),
                            variables_per_block=int(min(self.block_features, d + 1) * self.bits), blocks_per_sweep=len(blocks))
        gram = Xa.T @ Xa if self.mode == "iterative" else None
        rng = np.random.default_rng(self.seed)
        W = scales[:, None] * steps
        previous = surrogate.loss(Xa, codes, W, Lam)
        for _ in range(int(self.max_iter)):
            if self.mode == "surrogate":
                steps, scales = self._sweep(expansions, steps, scales, blocks, settings, rng, report)
            else:  # the local expansion first; the Böhning majoriser (never raises the loss) when that fails
                tried = self._sweep(surrogate.local(Xa, codes, W, Lam), steps, scales, blocks, settings, rng, report)
                if surrogate.loss(Xa, codes, tried[1][:, None] * tried[0], Lam) >= previous:
                    tried = self._sweep(surrogate.majoriser(Xa, gram, codes, W, Lam), steps, scales, blocks, settings, rng, report)
                steps, scales = tried
            W = scales[:, None] * steps
            report.energies.append(float(sum(surrogate.energy(A, b, w) - surrogate.energy(A, b, ws)
                                             for (A, b), w, ws in zip(expansions, W, W_star))))
            current = surrogate.loss(Xa, codes, W, Lam)
            report.losses.append(current)
            if previous - current < self.tol:
                break
            previous = current
        report.seconds = time.perf_counter() - start
        self.classes_, self.steps_, self.scale_ = classes, steps, scales
        self.n_features_in_, self.report_ = d, report
        self.fp32_coef_ = W_star
        return self

    def _initial_levels(self, W_star: np.ndarray, expansions: list) -> tuple[np.ndarray, np.ndarray]:
        steps, scales = np.zeros_like(W_star), np.zeros(len(W_star))
        for c, (w, (A, _)) in enumerate(zip(W_star, expansions)):
            rtn, absmax = grid.round_to_nearest(w, self.bits)
            if self.init == "zero":
                steps[c] = np.full(len(w), -grid.offset(self.bits))
                scales[c] = absmax
                continue
            q = rtn if self.init == "round" else grid.gptq(w, A, self.bits, absmax)
            steps[c], scales[c] = q, grid.best_scale(w, q, A)
        return steps, scales

    def _sweep(self, quadratics, steps, scales, blocks, settings, rng, report) -> tuple[np.ndarray, np.ndarray]:
        """One descent sweep for every output, each on its own quadratic."""
        steps, scales = steps.copy(), scales.copy()
        for c, (A, b) in enumerate(quadratics):
            steps[c], scales[c] = self._descend(A, b, steps[c], scales[c], blocks, settings, rng, report)
        return steps, scales

    def _descend(self, A, b, steps, scale, blocks, settings, rng, report) -> tuple[np.ndarray, float]:
        """One sweep of block-coordinate descent over the levels, then the best scale for them; never raises
        ``1/2 w^T A w + b^T w``."""
        steps = steps.copy()
        for block in blocks:
            qubo = surrogate.block_qubo(A, b, steps, scale, block, self.bits)
            current_bits = grid.to_bits(steps[block], self.bits).reshape(-1)
            settings.seed = int(rng.integers(2**31 - 1))
            answer = _anneal_one(qubo, settings)
            if qubo.energy(answer) < qubo.energy(current_bits) - 1e-12 * (1 + abs(qubo.energy(current_bits))):
                steps[block] = grid.from_bits(answer.reshape(len(block), self.bits), self.bits)
                report.accepted_blocks += 1
            else:
                report.rejected_blocks += 1
        denom = float(steps @ A @ steps)
        if denom > 0:
            best = -float(b @ steps) / denom
            if best > 0 and surrogate.energy(A, b, best * steps) < surrogate.energy(A, b, scale * steps):
                scale = best
        return steps, scale

    # ------------------------------------------------------------------ use
    @property
    def coef_(self) -> np.ndarray:
        self._check_fitted()
        return self.scale_[:, None] * self.steps_[:, :-1]

    @property
    def intercept_(self) -> np.ndarray:
        self._check_fitted()
        return self.scale_ * self.steps_[:, -1]

    @property
    def codes_(self) -> np.ndarray:
        """The integer weights: odd integers ``2 x level``, so ``coef_ = codes_[:, :-1] * scale_ / 2``."""
        self._check_fitted()
        return np.rint(2 * self.steps_).astype(np.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "steps_"):
            raise RuntimeError("this QuboClassifier is not fitted yet: call head.fit(X, y) first")

    def decision_function(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = check_features(X, self.n_features_in_)
        scores = X @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-scores))
            return np.stack([1 - p, p], axis=1)
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    # ------------------------------------------------------------------ datasets, torch, files
    def fit_dataset(self, dataset, text_column: str = "text", label_column: str = "label", *, embedder: Any = None,
                    cache_dir: Any = None, show_progress: bool = True) -> "QuboClassifier":
        """Embed ``text_column`` with the selector's embedder and cache, then fit on ``label_column``."""
        from ..selection import embed_dataset
        from ..validation import check_columns, check_dataset, text_values

        ds = check_dataset(dataset)
        check_columns(ds, text_column=text_column, label_column=label_column)
        texts = text_values(ds, text_column)
        vectors, _ = embed_dataset(ds, text_column, texts, embedder, cache_dir=cache_dir, show_progress=show_progress)
        return self.fit(vectors, np.asarray(ds[label_column]))

    def to_linear(self):
        """An ``nn.Linear`` holding the dequantized weights (one output for a binary task)."""
        import torch

        self._check_fitted()
        layer = torch.nn.Linear(self.n_features_in_, len(self.steps_))
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(self.coef_, dtype=torch.float32))
            layer.bias.copy_(torch.as_tensor(self.intercept_, dtype=torch.float32))
        return layer

    def to_int_linear(self):
        """An :class:`IntLinear`: integer weights (odd codes) and one scale per output."""
        self._check_fitted()
        return make_int_linear(self.codes_, self.scale_ / 2.0)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the folder ``path``: ``head.json`` (parameters, classes, report) and ``head.npz`` (integer codes,
        scales), staged and swapped in whole. An earlier head folder is replaced; any other non-empty folder only
        with ``overwrite`` (and then replaced as a whole)."""
        from ..output_dir import check_output_dir, staged_output

        self._check_fitted()
        earlier = Path(path).is_dir() and sorted(p.name for p in Path(path).iterdir()) == list(HEAD_FILES)
        target = check_output_dir(path, overwrite=overwrite or earlier, flag="overwrite=True", what="classifier head folder")
        params = {k: v for k, v in self.get_params().items() if k != "solver"}
        params["solver"] = self.solver if isinstance(self.solver, str) else "sa"
        record = {"writer": WRITER, "params": params, "classes": self.classes_.tolist(), "n_features": self.n_features_in_,
                  "report": self.report_.to_dict()}
        with staged_output(target) as staging:
            (staging / "head.json").write_text(json.dumps(record, indent=1) + "\n")
            np.savez(staging / "head.npz", codes=self.codes_, scale=self.scale_, fp32_coef=self.fp32_coef_)
        return target

    @classmethod
    def load(cls, path: str | Path) -> "QuboClassifier":
        """A head saved by :meth:`save`; any other folder is refused with a one-line error."""
        path = Path(path)
        expected = f"give a folder written by QuboClassifier.save ({' and '.join(HEAD_FILES)})"
        for name in HEAD_FILES:
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path / name} not found: {expected}")
        import zipfile

        try:
            record = json.loads((path / "head.json").read_text(encoding="utf-8"))
            with np.load(path / "head.npz", allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            ok = isinstance(record, dict) and {"params", "classes", "n_features", "report"} <= set(record) \
                and {"codes", "scale", "fp32_coef"} <= set(arrays)
        except (ValueError, OSError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"{path} is not a readable classifier head ({' '.join(str(err).split())}): {expected}") from None
        if not ok or record.get("writer", WRITER) != WRITER:
            raise ValueError(f"{path} was not written by QuboClassifier.save: {expected}")
        head = cls(**record["params"])
        head.classes_ = np.asarray(record["classes"])
        head.steps_ = arrays["codes"].astype(np.float64) / 2.0
        head.scale_ = arrays["scale"]
        head.fp32_coef_ = arrays["fp32_coef"]
        head.n_features_in_ = int(record["n_features"])
        head.report_ = ClassifierReport(**record["report"])
        return head


def make_int_linear(codes: np.ndarray, scale: np.ndarray):
    """A torch module computing ``x @ (codes * scale)^T`` from integer codes (bias: the last column)."""
    import torch

    class IntLinear(torch.nn.Module):
        """Integer weights and bias (``int64`` codes) and a per-output scale; ``forward`` dequantizes."""

        def __init__(self, codes: np.ndarray, scale: np.ndarray):
            super().__init__()
            self.register_buffer("weight_codes", torch.as_tensor(codes[:, :-1]))
            self.register_buffer("bias_codes", torch.as_tensor(codes[:, -1]))
            self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

        def forward(self, x):
            weight = self.weight_codes.to(torch.float32) * self.scale[:, None]
            return x @ weight.T + self.bias_codes.to(torch.float32) * self.scale

    return IntLinear(codes, scale)


def fp32_weights(X: np.ndarray, codes: np.ndarray, C: float, n_classes: int) -> np.ndarray:
    """The fp32 logistic regression's weights with the bias as the last column: ``(outputs, d + 1)``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=2000).fit(X, codes)
    return np.hstack([model.coef_, model.intercept_[:, None]])


def check_features(X: Any, n_features: int | None = None) -> np.ndarray:
    """A finite 2-d float array (with ``n_features`` columns when given), or a one-line error."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array of features, got shape {X.shape}")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ValueError(f"X has NaN or inf at rows {bad[:10].tolist()}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features but the head was fitted on {n_features}")
    return X


def _anneal_one(qubo, settings: AnnealSettings) -> np.ndarray:
    return anneal([qubo], settings)[0].x
