"""The subnetwork selector's parameters, declared once: ``SubnetworkSelector``'s constructor and checks and the
``hf-qselect subnetwork`` flags come from this dataclass."""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Optional

from ..annealing import annealing
from ..params import boolean, check_params, fraction, integer, one_of, optional, param

SUBNETWORK_METHODS = ("qubo", "greedy", "random", "edgepopup")
UNITS = ("ffn", "heads")
SCHEDULES = ("auto", "layer", "joint")
AUTO_ROUNDS = {"mlp": 20, "encoder": 8}  # what docs/subnetworks.md measures: digits MLPs, and MiniLM on 1,024 rows (minutes here)
AUTO_SCHEDULE = {"mlp": "layer", "encoder": "joint"}
CURVATURES = ("gauss-newton", "fisher")


def check_units(name: str, value: Any) -> tuple[str, ...]:
    """A non-empty tuple of ``ffn`` / ``heads``."""
    units = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else None
    if not units or any(u not in UNITS for u in units) or len(set(units)) != len(units):
        raise ValueError(f"{name} must be one or both of {list(UNITS)}, got {name}={value!r}")
    return units


def parse_units(text: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in text.split(",") if u.strip())


@dataclass(eq=False, repr=False)
class SubnetworkParams:
    """Every parameter of :class:`~hf_qselect.subnetworks.SubnetworkSelector`."""

    units: tuple = param(("ffn",), "encoder units to select: ffn, heads or ffn,heads (an MLP's hidden neurons always)",
                         check=check_units, parse=parse_units)
    keep: float = param(0.5, "fraction of each layer's units kept, in (0, 1)", check=fraction(0.0, 1.0, low_open=True, high_open=True))
    method: str = param("qubo", "qubo: local QUBOs; greedy: Taylor ranking; random; edgepopup: unit scores by SGD",
                        check=one_of(lambda: list(SUBNETWORK_METHODS)), choices=lambda: list(SUBNETWORK_METHODS))
    rounds: Optional[int] = param(None, "rounds of local QUBO moves after the first selection (none: 20 for an MLP, 8 for an "
                                  "encoder or decoder)", check=integer(0, none=True), parse=optional(int))
    block_size: int = annealing("block_size", 64, help="units per local QUBO")
    solver: Any = annealing("solver")
    seed: Optional[int] = annealing("seed", help="seed of the blocks, the annealer and the baselines")
    _: KW_ONLY
    schedule: str = param("auto", "layer: one accept test per layer per round; joint: every layer moved, then one test; auto: "
                          "layer for an MLP, joint for an encoder or decoder (one forward pass over the rows per round)",
                          check=one_of(lambda: list(SCHEDULES)), choices=lambda: list(SCHEDULES))
    curvature: str = param("gauss-newton", "the quadratic model's curvature: Gauss-Newton or the empirical Fisher",
                           check=one_of(lambda: list(CURVATURES)), choices=lambda: list(CURVATURES))
    trust: float = param(0.5, "starting trust-region weight per changed gate, in units of the mean |gradient|",
                         check=fraction(0.0, 1e6))
    tries: int = param(3, "QUBO moves tried per layer and round before giving up on it", check=integer(1))
    num_reads: int = annealing("num_reads")
    num_sweeps: Optional[int] = annealing("num_sweeps")
    epochs: int = param(100, "edgepopup: passes over the rows (100 suits an MLP; an encoder needs a few)", check=integer(1))
    lr: float = param(0.1, "edgepopup: learning rate of the scores", check=fraction(0.0, 1e6, low_open=True))
    max_rows: Optional[int] = param(1024, "rows of the data the gates are chosen on (stratified sample; none: all)",
                                    check=integer(2, none=True), parse=optional(int))
    max_length: int = param(128, "encoders: tokens per text", check=integer(2))
    batch_size: int = param(64, "rows per forward pass", check=integer(1), provenance=False)
    C: float = param(1.0, "encoders: inverse L2 strength of the logistic-regression head", check=fraction(0.0, 1e12, low_open=True))
    show_progress: bool = param(True, "progress bars", check=boolean, provenance=False)

    def check_params(self) -> dict[str, Any]:
        return check_params(self)
