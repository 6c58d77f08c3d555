"""The diagnostics' parameters, declared once: ``sparse_training_report``'s keywords and the ``hf-qselect diagnose`` flags."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..params import boolean, check_params, fraction, integer, one_of, param

TASK = "sparse-training diagnostics"  # what needs the labels, in errors


def check_sparsity(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a fraction of weights to zero in [0, 1), got {name}={value!r}")
    return float(value)


def check_steps(name: str, value: Any) -> tuple[int, ...]:
    steps = tuple(value) if isinstance(value, (list, tuple)) else None
    if not steps or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in steps) or list(steps) != sorted(set(steps)):
        raise ValueError(f"{name} must be increasing step counts >= 0 such as 0,50,200, got {name}={value!r}")
    return steps


def parse_steps(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s.strip())


@dataclass(eq=False, repr=False)
class DiagnosticsParams:
    """Every parameter of :func:`~hf_qselect.diagnostics.sparse_training_report`."""

    sparsity: float = param(0.9, "fraction of Linear weights zeroed by global magnitude pruning, in [0, 1)", check=check_sparsity)
    scope: str = param("global", "global: one |w| threshold over every Linear weight (the authors'); layer: the same share in every matrix",
                       check=one_of(lambda: ["global", "layer"]), choices=lambda: ["global", "layer"])
    prune_head: bool = param(False, "also prune the task head (a new head is small: one global threshold zeroes it whole)", check=boolean)
    steps: tuple = param((0, 50, 200), "optimizer steps of sparse fine-tuning at which the spectrum is measured", check=check_steps,
                         parse=parse_steps)
    lanczos_steps: int = param(24, "Lanczos iterations (Hessian-vector products) per spectrum", check=integer(2))
    trace_samples: int = param(8, "Rademacher vectors of the Hutchinson trace", check=integer(1))
    hessian_rows: int = param(32, "rows of the fixed batch the Hessian is taken on", check=integer(1))
    learning_rate: float = param(5e-5, "AdamW learning rate of the sparse fine-tuning", check=fraction(0.0, 1.0, low_open=True))
    batch_size: int = param(16, "rows per optimizer step", check=integer(1))
    max_length: int = param(64, "tokens per text", check=integer(2))
    epsilon: float = param(1e-6, "a weight counts as updated in a window when it moved by more than this", check=fraction(0.0, 1.0))
    precision: float = param(1e-3, "epsilon of the quantum cost expression (target precision)", check=fraction(0.0, 1.0, low_open=True))
    seed: int = param(0, "seed of the data order, the Hessian batch and the Lanczos start", check=integer(0))
    show_progress: bool = param(True, "progress bars", check=boolean, provenance=False)

    def check_params(self) -> dict[str, Any]:
        return check_params(self)
