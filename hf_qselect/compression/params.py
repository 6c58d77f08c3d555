"""The compressor's parameters, declared once: ``AnnealingCompressor``'s constructor and checks, the
``hf-qselect compress`` flags and the recipe keys come from this dataclass."""
from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass
from typing import Any, Optional

from ..annealing import annealing
from ..params import boolean, check_params, fraction, integer, one_of, optional, param, renamed_value

COMPRESS_METHODS = ("qubo", "fallback")
RENAMED_METHODS = {"greedy": "fallback"}  # "greedy" names the importance ranking in pruning and subnetworks
OPTIONS = ("drop", "int8", "fp32")
BUDGET_FORMS = ("reward", "penalty")
QSCHEMES = ("auto", "per_channel", "per_tensor")
DEFAULT_BUDGET = "25%"


@dataclass(frozen=True)
class Budget:
    """What must fit: ``fraction`` of the fp32 non-embedding bytes, ``megabytes`` of them, or ``latency_ms``."""

    kind: str  # "fraction" | "megabytes" | "latency"
    value: float

    def limit(self, full_bytes: float, full_ms: float) -> float:
        """The budget in the cost model's unit (bytes, or milliseconds for a latency target)."""
        if self.kind == "fraction":
            return self.value * full_bytes
        if self.kind == "megabytes":
            return self.value * 1e6
        return self.value

    def __str__(self) -> str:
        return {"fraction": f"{self.value:.0%} of fp32 non-embedding weights", "megabytes": f"{self.value:g} MB of non-embedding weights",
                "latency": f"{self.value:g} ms"}[self.kind]


def parse_budget(name: str, value: Any) -> Budget:
    """``"25%"``, ``0.25`` (fractions of the fp32 non-embedding weights) or ``"10MB"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 < float(value) < 1:
            return Budget("fraction", float(value))
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        match = re.fullmatch(r"([0-9]*\.?[0-9]+)(%|mb)", text)
        if match:
            number, unit = float(match.group(1)), match.group(2)
            if unit == "%" and 0 < number < 100:
                return Budget("fraction", number / 100)
            if unit == "mb" and number > 0:
                return Budget("megabytes", number)
    raise ValueError(f"{name} must be a size such as '25%' (of the fp32 non-embedding weights, below 100%) or '10MB', got {name}={value!r}")


def check_budget(name: str, value: Any) -> Any:
    if value is not None:
        parse_budget(name, value)
    return value


def check_options(name: str, value: Any) -> tuple[str, ...]:
    """Two or more of ``drop``, ``int8``, ``fp32``, fp32 always among them (the unquantized choice)."""
    options = tuple(value.split(",")) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else ()
    options = tuple(o.strip() for o in options)
    if len(options) < 2 or "fp32" not in options or any(o not in OPTIONS for o in options) or len(set(options)) != len(options):
        raise ValueError(f"{name} must be fp32 and one or both of drop, int8 (e.g. drop,int8,fp32), got {name}={value!r}")
    return options


def parse_options(text: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in text.split(",") if o.strip())


@dataclass(eq=False, repr=False)
class CompressionParams:
    """Every parameter of :class:`~hf_qselect.compression.AnnealingCompressor`."""

    budget: Optional[str] = param(None, "size budget: '25%' of the fp32 non-embedding weights, or '10MB' (default 25% without latency_ms)",
                                  check=check_budget, parse=optional(str), recipe_type=Optional[str])
    latency_ms: Optional[float] = param(None, "latency budget in ms at latency_batch x latency_length, measured on this machine",
                                        check=fraction(0.0, 1e9, low_open=True, none=True), parse=optional(float),
                                        recipe_type=Optional[float])
    options: tuple = param(OPTIONS, "choices per group: drop (heads, FFN blocks), int8 and fp32 (Linear modules)",
                           check=check_options, parse=parse_options, recipe_type=str)
    solver: Any = annealing("solver")
    seed: Optional[int] = annealing("seed")
    _: KW_ONLY
    method: str = param("qubo", "qubo: one QUBO over every choice; fallback (formerly greedy): int8 everywhere, drop the cheapest "
                        "units, fall back to fp32 (Intel Neural Compressor's strategy)",
                        check=one_of(lambda: list(COMPRESS_METHODS), RENAMED_METHODS), choices=lambda: list(COMPRESS_METHODS),
                        parse=renamed_value(RENAMED_METHODS))
    budget_form: str = param("reward", "reward: the paper's -gamma*R, gamma searched to fit; penalty: lambda*(cost - budget)^2",
                             check=one_of(lambda: list(BUDGET_FORMS)), choices=lambda: list(BUDGET_FORMS))
    beta: float = param(1.0, "weight of the Fisher-weighted quantization error against the pruning loss", check=fraction(0.0, 1e9))
    qscheme: str = param("auto", "int8 weight scales: per_channel (one per output row; small decoders need it), per_tensor "
                         "(one per Linear); auto: per_channel for causal LMs, per_tensor for classifiers",
                         check=one_of(lambda: list(QSCHEMES)), choices=lambda: list(QSCHEMES))
    ffn_block: int = param(64, "FFN neurons dropped together (one choice each)", check=integer(1))
    latency_batch: int = param(8, "batch size the latency is measured at", check=integer(1))
    latency_length: int = param(128, "sequence length the latency is measured at", check=integer(1))
    num_reads: int = annealing("num_reads", 8, help="annealer reads")
    num_sweeps: Optional[int] = annealing("num_sweeps")
    batch_size: int = param(16, "calibration batch size", check=integer(1), provenance=False)
    show_progress: bool = param(True, "progress bars", check=boolean, provenance=False)

    def check_params(self) -> dict[str, Any]:
        checked = check_params(self)
        if self.budget is not None and self.latency_ms is not None:
            raise ValueError(f"give one budget: budget={self.budget!r} (size) or latency_ms={self.latency_ms} (time), not both")
        return checked

    def target(self) -> Budget:
        """The budget to fit."""
        if self.latency_ms is not None:
            return Budget("latency", float(self.latency_ms))
        return parse_budget("budget", self.budget if self.budget is not None else DEFAULT_BUDGET)
