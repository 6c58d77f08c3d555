"""The record of one selection: what was kept, how, and how long each phase took."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..records import JsonRecord


@dataclass
class SelectionReport(JsonRecord):
    """What :meth:`InstanceSelector.fit` did. ``to_dict``/``to_json`` for logs, cards and the CLI."""

    method: str
    keep: float
    n_rows: int
    n_kept: int
    kept_per_class: dict[str, dict[str, int]]
    embedder: str | None = None
    embedding_precision: str | None = None
    formulation: str | None = None
    solver: str | None = None
    seed: int | None = None
    block_size: int | None = None
    n_blocks: int = 0
    num_reads: int | None = None
    num_sweeps: int | None = None
    energy: float | None = None
    feasible_blocks: int = 0
    repaired_blocks: int = 0
    likely_mislabelled: int = 0
    classes_topped_up: int = 0
    embeddings_cached: bool = False
    source_fingerprint: str | None = None
    source: str | None = None
    class_balance: float | None = None
    chosen_method: str | None = None
    auto: dict[str, Any] | None = None
    grouping: str | None = None  # what the quotas are per: class labels, strata, or one group
    text_format: str | None = None  # text, messages, prompt_completion or alpaca
    objective: str | None = None  # the terms optimised and their weights
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def reduction(self) -> float:
        """Fraction of rows removed."""
        return 1.0 - self.n_kept / self.n_rows

    @property
    def selection_seconds(self) -> float:
        """Time of everything after embedding."""
        return sum(v for k, v in self.timings.items() if k != "embed")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reduction"] = self.reduction
        return data


    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SelectionReport":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def summary(self) -> str:
        """One line for humans."""
        per_class = ", ".join(f"{c}: {v['before']}->{v['after']}" for c, v in self.kept_per_class.items())
        energy = f", energy {self.energy:.4g}" if self.energy is not None else ""
        return (
            f"{self.method}{' -> ' + self.chosen_method if self.chosen_method else ''}: kept {self.n_kept}/{self.n_rows} ({1 - self.reduction:.0%}) "
            f"[{(self.grouping + ': ') if self.grouping else ''}{per_class}]"
            f"{energy}, solver {self.solver}, {self.selection_seconds:.2f}s after embedding"
        )
