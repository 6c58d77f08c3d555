"""The pruner's parameters, declared once: ``AnnealingPruner``'s constructor and checks, the ``hf-qselect prune``
flags and the recipe keys come from this dataclass."""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Optional

from ..annealing import annealing
from ..params import boolean, check_params, fraction, integer, one_of, param

PRUNE_METHODS = ("qubo", "greedy")


def check_budget(name: str, value: Any) -> float:
    """A fraction to remove, in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a fraction to remove in [0, 1), got {name}={value!r}")
    return float(value)


@dataclass(eq=False, repr=False)
class PruningParams:
    """Every parameter of :class:`~hf_qselect.pruning.AnnealingPruner`."""

    heads: float = param(0.0, "fraction of attention heads to remove, in [0, 1)", check=check_budget)
    ffn: float = param(0.0, "fraction of FFN neurons to remove (same in every layer), in [0, 1)", check=check_budget)
    layers: float = param(0.0, "fraction of encoder layers to remove, in [0, 1)", check=check_budget)
    solver: Any = annealing("solver")
    seed: Optional[int] = annealing("seed")
    _: KW_ONLY
    method: str = param("qubo", "qubo: importance-minus-redundancy QUBOs; greedy: importance ranking",
                        check=one_of(lambda: list(PRUNE_METHODS)), choices=lambda: list(PRUNE_METHODS))
    redundancy_weight: float = param(0.5, "beta: weight of the redundancy term (0 = importance ranking)", check=fraction(0.0, 1e9))
    block_size: int = annealing("block_size")
    num_reads: int = annealing("num_reads")
    num_sweeps: Optional[int] = annealing("num_sweeps")
    n_jobs: Optional[int] = annealing("n_jobs", 1)
    batch_size: int = param(16, "calibration batch size when scoring units", check=integer(1), provenance=False)
    max_tokens: int = param(2048, "calibration tokens sampled for the redundancy vectors", check=integer(1))
    ffn_multiple: int = param(64, "round the kept FFN width down to a multiple of this (1: exact budget)", check=integer(1))
    show_progress: bool = param(True, "progress bars", check=boolean, provenance=False)

    def check_params(self) -> dict[str, Any]:
        return check_params(self)
