"""The pruner's parameters, declared once: ``AnnealingPruner``'s constructor and checks, the ``hf-qselect prune``
flags and the recipe keys come from this dataclass."""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Optional

from ..annealing import annealing
from ..params import boolean, check_params, fraction, integer, one_of, param

PRUNE_METHODS = ("qubo", "greedy", "magnitude", "random", "block_influence")
HEAD_UNITS = ("auto", "group", "query")
RENAMED = {"heads": "remove_heads", "ffn": "remove_ffn", "layers": "remove_layers"}  # old names, accepted with a FutureWarning
LAYER_SCORES = ("auto", "influence", "pairs")


def check_budget(name: str, value: Any) -> float:
    """A fraction to remove, in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a fraction to remove in [0, 1), got {name}={value!r}")
    return float(value)


@dataclass(eq=False, repr=False)
class PruningParams:
    """Every parameter of :class:`~hf_qselect.pruning.AnnealingPruner`."""

    remove_heads: float = param(0.0, "fraction of (query) attention heads to remove, in [0, 1)", check=check_budget)
    remove_ffn: float = param(0.0, "fraction of FFN neurons to remove (same in every layer), in [0, 1)", check=check_budget)
    remove_layers: float = param(0.0, "fraction of layers to remove, in [0, 1)", check=check_budget)
    solver: Any = annealing("solver")
    seed: Optional[int] = annealing("seed")
    _: KW_ONLY
    method: str = param("qubo", "qubo: importance-minus-redundancy QUBOs (layers of a causal LM: measured drop losses with "
                        "neighbour interactions); greedy: first-order (Taylor) ranking; magnitude: weight-norm ranking; random; "
                        "block_influence: layers by ShortGPT's 1 - cos(input, output) (layers only)",
                        check=one_of(lambda: list(PRUNE_METHODS)), choices=lambda: list(PRUNE_METHODS))
    redundancy_weight: float = param(0.5, "beta: weight of the redundancy term (0 = importance ranking)", check=fraction(0.0, 1e9))
    block_size: int = annealing("block_size")
    num_reads: int = annealing("num_reads")
    num_sweeps: Optional[int] = annealing("num_sweeps")
    n_jobs: Optional[int] = annealing("n_jobs", 1)
    batch_size: int = param(16, "calibration batch size when scoring units", check=integer(1), provenance=False)
    max_tokens: int = param(2048, "calibration tokens sampled for the redundancy vectors", check=integer(1))
    ffn_multiple: int = param(64, "round the kept FFN width down to a multiple of this (1: exact budget)", check=integer(1))
    uniform: bool = param(False, "the same head, key/value-head and FFN counts in every layer (a config plain from_pretrained "
                          "loads); else heads may differ per layer (reload with load_pruned)", check=boolean)
    per_layer_ffn: bool = param(False, "with uniform=False: FFN widths may differ per layer too (multiples of ffn_multiple, at "
                                "least one a layer), the same total as the uniform width, chosen by one ranking of first-order "
                                "importances across layers (reload with load_pruned)", check=boolean)
    head_unit: str = param("auto", "grouped-query attention: group removes key/value groups with their query heads; query "
                           "removes query heads, the same number in every group; auto: group", check=one_of(lambda: list(HEAD_UNITS)),
                           choices=lambda: list(HEAD_UNITS))
    layer_scores: str = param("auto", "how layers are scored for qubo and greedy: influence (block influence and redundancy); "
                              "pairs (the measured loss of dropping each layer and each neighbouring pair); auto: pairs for "
                              "causal LMs", check=one_of(lambda: list(LAYER_SCORES)), choices=lambda: list(LAYER_SCORES))
    layer_rounds: int = param(1, "layer_scores=pairs: drop the layers over this many rounds, each re-measuring the drop "
                              "losses without the layers earlier rounds dropped (2L - 1 more passes a round)", check=integer(1))
    pair_rows: int = param(32, "calibration rows the layer-drop losses are measured on (layer_scores=pairs)", check=integer(1))
    show_progress: bool = param(True, "progress bars", check=boolean, provenance=False)

    def check_params(self) -> dict[str, Any]:
        return check_params(self)
