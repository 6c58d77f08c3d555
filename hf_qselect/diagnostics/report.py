"""``sparse_training_report``: would this fine-tuning run suit Liu et al.'s quantum gradient descent? Measured, not assumed.

Global magnitude pruning at ``sparsity``, then a short sparse fine-tuning (AdamW, pruned weights held at zero);
at each of ``steps``: weight and update sparsity, and the spectrum of the Hessian of the loss restricted to the
unpruned Linear weights (Lanczos top/bottom eigenvalues, Hutchinson trace, spectral density). Then the paper's
cost expression next to the classical costs, and a verdict per condition with the numbers behind it.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .hessian import Lanczos, density, hutchinson_trace, hvp_fn, lanczos
from .masks import apply_masks, emptied, magnitude_masks, prunable
from .params import TASK, DiagnosticsParams

# Our thresholds for the verdicts (the paper says "sparse", "dissipative", "small"; these make that checkable).
SPARSE_AT = 0.9          # the authors' pruning level
UPDATES_AT = 0.1         # at most this share of all weights moved in a window
NEGATIVE_MASS_AT = 0.05  # at most this share of |spectral mass| below zero
LR_CURVATURE_AT = 0.1    # learning rate x top eigenvalue


@dataclass
class Checkpoint:
    step: int
    loss: float
    weight_sparsity: float
    updated_share: float | None
    top_eigenvalues: list[float]
    min_eigenvalue: float
    negative_mass_share: float
    negative_count_share: float
    trace: float
    trace_stderr: float
    ritz_values: list[float]
    ritz_weights: list[float]
    seconds: float


@dataclass
class SparseTrainingReport:
    """Everything measured; ``model`` is the sparse fine-tuned copy (the caller's model is never changed)."""

    params: dict[str, Any]
    parameters: int
    restricted_parameters: int
    nonzero_parameters: int
    max_row_nonzeros: int
    emptied: list[str] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    eval_macro_f1: float | None = None
    costs: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    model: Any = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, model=None))
        out.pop("model")
        return out

    def to_json(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """The report as JSON (atomically; an existing file only if it is an earlier diagnostics report, or with ``overwrite``)."""
        from ..output_dir import write_json

        return write_json(path, self.to_dict(), "diagnostics report", overwrite=overwrite)

    def to_markdown(self) -> str:
        lines = [f"Sparse-training diagnostics (Liu et al. 2024): sparsity {self.params['sparsity']}, steps {list(self.params['steps'])}, "
                 f"{self.restricted_parameters:,} Linear weights ({self.nonzero_parameters:,} nonzero) of {self.parameters:,} parameters.", "",
                 "| step | loss | weight sparsity | weights updated | top eigenvalues | min eigenvalue | negative mass | trace |",
                 "|---|---|---|---|---|---|---|---|"]
        for c in self.checkpoints:
            updated = "-" if c.updated_share is None else f"{c.updated_share:.4f}"
            lines.append(f"| {c.step} | {c.loss:.4f} | {c.weight_sparsity:.4f} | {updated} | {', '.join(f'{v:.4g}' for v in c.top_eigenvalues)} "
                         f"| {c.min_eigenvalue:.4g} | {c.negative_mass_share:.3f} | {c.trace:.4g} ± {c.trace_stderr:.2g} |")
        lines += ["", "| condition | verdict | measured |", "|---|---|---|"]
        for name, v in self.verdicts.items():
            lines.append(f"| {name} | {'yes' if v['ok'] else 'no'} | {v['why']} |")
        c = self.costs
        lines += ["", "Cost, as a scaling estimate with unknown constants (log10 of operation counts; not a runtime):",
                  f"- quantum, s^3 T^2 / eps^2 (x polylog n, left out): {c['log10_quantum']:.1f} "
                  f"(s = {self.max_row_nonzeros} nonzeros in the fullest weight row, T = {c['T']}, eps = {c['precision']})",
                  f"- classical sparse, T x nonzeros: {c['log10_classical_sparse']:.1f}; classical dense, T x n: {c['log10_classical_dense']:.1f}"]
        if self.eval_macro_f1 is not None:
            lines.append(f"\nmacro-F1 on the evaluation rows after {self.checkpoints[-1].step} sparse steps: {self.eval_macro_f1:.4f}")
        lines.append(f"\n{self.seconds:.0f} s on this machine.")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Spectral density per checkpoint (symmetric-log x axis), one line each."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.8))
        top = max(max(abs(v) for v in c.ritz_values) for c in self.checkpoints) or 1.0
        grid = np.linspace(-top * 1.05, top * 1.05, 2000)
        for c in self.checkpoints:
            lz = Lanczos(values=np.asarray(c.ritz_values), weights=np.asarray(c.ritz_weights))
            ax.plot(grid, density(lz, grid, top / 200) + 1e-12, label=f"step {c.step}")
        ax.set_yscale("log")
        ax.set_xscale("symlog", linthresh=max(top * 1e-3, 1e-8))
        ax.set_xlabel("eigenvalue of the loss Hessian (unpruned Linear weights)")
        ax.set_ylabel("density (SLQ, one probe)")
        ax.set_title(f"sparsity {self.params['sparsity']}")
        ax.legend()
        fig.tight_layout()
        from ..output_dir import save_figure

        try:
            return save_figure(fig, path, overwrite=overwrite, dpi=110)
        finally:
            plt.close(fig)


def _batches(tokenizer: Any, texts: list[str], labels: np.ndarray, size: int, max_length: int) -> list[dict[str, torch.Tensor]]:
    out = []
    for start in range(0, len(texts), size):
        enc = tokenizer(texts[start:start + size], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        out.append({**enc, "labels": torch.as_tensor(labels[start:start + size])})
    return out


def spectrum(model: torch.nn.Module, batch: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], lanczos_steps: int,
             trace_samples: int, seed: int) -> dict[str, Any]:
    """Top-5 and smallest eigenvalues, negative spectral mass, trace and Ritz values of the masked Hessian on ``batch``."""
    named = dict(model.named_parameters())
    names = [n for n in masks if named[n].requires_grad]
    params = [named[n] for n in names]
    keep = [masks[n].to(named[n].dtype) for n in names]
    was_training = model.training
    model.eval()
    try:
        product = hvp_fn(lambda: model(**batch).loss, params, keep)
        lz = lanczos(product, params, keep, lanczos_steps, seed)
        trace, stderr = hutchinson_trace(product, params, keep, trace_samples, seed)
    finally:
        model.train(was_training)
    mass = lz.weights * np.abs(lz.values)
    negative = lz.values < 0
    return {"top_eigenvalues": [float(v) for v in lz.values[::-1][:5]], "min_eigenvalue": float(lz.values[0]),
            "negative_mass_share": float(mass[negative].sum() / max(mass.sum(), 1e-300)),
            "negative_count_share": float(lz.weights[negative].sum()), "trace": trace, "trace_stderr": stderr,
            "ritz_values": lz.values.tolist(), "ritz_weights": lz.weights.tolist()}


def sparse_training_report(model: Any, dataset: Any, tokenizer: Any, params: DiagnosticsParams | None = None, *,
                           eval_dataset: Any = None, text_column: str = "text", label_column: str = "label",
                           **kwargs: Any) -> SparseTrainingReport:
    """Measure a copy of ``model`` (a ``*ForSequenceClassification``) pruned and fine-tuned sparsely on ``dataset``."""
    from tqdm.auto import tqdm

    from ..validation import check_columns, label_codes, label_values, text_values

    params = params or DiagnosticsParams(**kwargs)
    checked = params.check_params()
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"{type(model).__name__} has no trainable parameters (all requires_grad=False): there is no training to diagnose")
    if not prunable(model, include_head=True):
        raise TypeError(f"{type(model).__name__} has no nn.Linear weights to prune")
    check_columns(dataset, text_column=text_column, label_column=label_column)
    codes, _ = label_codes(label_values(dataset, label_column), label_column, TASK)
    texts = text_values(dataset, text_column)
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    if num_labels is not None and codes.max() >= num_labels:
        raise ValueError(f"label column {label_column!r} has {codes.max() + 1} classes but the model has {num_labels} labels")
    start = time.perf_counter()
    rng = np.random.default_rng(checked["seed"])
    torch.manual_seed(checked["seed"])
    work = copy.deepcopy(model)
    masks = magnitude_masks(work, checked["sparsity"], checked["prune_head"], checked["scope"])
    apply_masks(work, masks)
    order = rng.permutation(len(texts))
    hessian_rows = order[: checked["hessian_rows"]]
    hessian_batch = _batches(tokenizer, [texts[i] for i in hessian_rows], codes[hessian_rows], len(hessian_rows), checked["max_length"])[0]
    restricted = sum(m.numel() for m in masks.values())
    nonzero = sum(int(m.sum()) for m in masks.values())
    report = SparseTrainingReport(params={**checked, "steps": list(checked["steps"])}, parameters=sum(p.numel() for p in work.parameters()),
                                  restricted_parameters=restricted, nonzero_parameters=nonzero,
                                  max_row_nonzeros=max(int(m.reshape(m.shape[0], -1).sum(1).max()) for m in masks.values()),
                                  emptied=emptied(masks))
    optimizer = torch.optim.AdamW([p for p in work.parameters() if p.requires_grad], lr=checked["learning_rate"])
    weights = {name: w for name, w in dict(work.named_parameters()).items() if name in masks}
    previous = {n: w.detach().clone() for n, w in weights.items()}
    step, position = 0, 0
    with tqdm(total=len(checked["steps"]), desc="diagnostics checkpoints", disable=not checked["show_progress"]) as bar:
        for target in checked["steps"]:
            work.train()
            while step < target:
                if position >= len(order):
                    order, position = rng.permutation(len(texts)), 0
                rows = order[position:position + checked["batch_size"]]
                position += checked["batch_size"]
                batch = _batches(tokenizer, [texts[i] for i in rows], codes[rows], len(rows), checked["max_length"])[0]
                loss = work(**batch).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                apply_masks(work, masks)
                step += 1
            began = time.perf_counter()
            with torch.no_grad():
                work.eval()
                at_batch = float(work(**hessian_batch).loss)
            moved = sum(int(((w.detach() - previous[n]).abs() > checked["epsilon"]).sum()) for n, w in weights.items())
            previous = {n: w.detach().clone() for n, w in weights.items()}
            measured = spectrum(work, hessian_batch, masks, checked["lanczos_steps"], checked["trace_samples"], checked["seed"])
            zeros = sum(int((w == 0).sum()) for w in weights.values())
            report.checkpoints.append(Checkpoint(step=step, loss=at_batch, weight_sparsity=zeros / restricted,
                                                 updated_share=None if step == 0 else moved / restricted,
                                                 seconds=time.perf_counter() - began, **measured))
            bar.update(1)
    if eval_dataset is not None:
        report.eval_macro_f1 = macro_f1(work, tokenizer, eval_dataset, text_column, label_column, checked["max_length"])
    T = max(checked["steps"][-1], 1)
    s = report.max_row_nonzeros
    report.costs = {"T": T, "precision": checked["precision"],
                    "log10_quantum": float(3 * np.log10(s) + 2 * np.log10(T) - 2 * np.log10(checked["precision"])),
                    "log10_classical_sparse": float(np.log10(T) + np.log10(max(nonzero, 1))),
                    "log10_classical_dense": float(np.log10(T) + np.log10(restricted))}
    report.verdicts = verdicts(report, checked["learning_rate"])
    report.seconds = time.perf_counter() - start
    report.model = work
    return report


def verdicts(report: SparseTrainingReport, learning_rate: float) -> dict[str, dict[str, Any]]:
    last = report.checkpoints[-1]
    top = last.top_eigenvalues[0]
    updated = [c.updated_share for c in report.checkpoints if c.updated_share is not None]
    out = {
        "connected": {"ok": not report.emptied,
                      "why": ("no weight matrix is removed whole" if not report.emptied else
                              f"every weight of {', '.join(report.emptied[:3])} is gone: nothing before it can "
                              "learn; try scope='layer'")},
        "sparse weights": {"ok": last.weight_sparsity >= SPARSE_AT - 1e-4,
                           "why": f"weight sparsity {last.weight_sparsity:.4f} (needs >= {SPARSE_AT})"},
        "dissipative": {"ok": top > 0 and last.negative_mass_share <= NEGATIVE_MASS_AT,
                        "why": (f"negative share of spectral mass {last.negative_mass_share:.3f} (needs <= {NEGATIVE_MASS_AT}); "
                                f"smallest eigenvalue {last.min_eigenvalue:.4g} against the largest {top:.4g}") if top > 0 else
                               "the Hessian on the kept weights is zero: the loss does not depend on them (see connected)"},
        "small learning rate": {"ok": learning_rate * top <= LR_CURVATURE_AT,
                                "why": f"learning rate x top eigenvalue = {learning_rate:.3g} x {top:.4g} = {learning_rate * top:.3g} "
                                       f"(needs <= {LR_CURVATURE_AT}; 1/lambda_max = {1 / top if top > 0 else float('inf'):.3g})"},
    }
    if updated:
        out["sparse updates"] = {"ok": updated[-1] <= UPDATES_AT + 1e-4,
                                 "why": f"{updated[-1]:.4f} of the Linear weights moved by more than epsilon in the last window (needs <= {UPDATES_AT})"}
    return out


def macro_f1(model: Any, tokenizer: Any, dataset: Any, text_column: str, label_column: str, max_length: int) -> float:
    from sklearn.metrics import f1_score

    from ..validation import label_codes, label_values, text_values

    codes, _ = label_codes(label_values(dataset, label_column), label_column, TASK)
    texts = text_values(dataset, text_column)
    predictions = []
    model.eval()
    with torch.no_grad():
        for batch in _batches(tokenizer, texts, codes, 64, max_length):
            predictions.append(model(**{k: v for k, v in batch.items() if k != "labels"}).logits.argmax(-1).numpy())
    return float(f1_score(codes, np.concatenate(predictions), average="macro"))
