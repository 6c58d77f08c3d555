"""The record of one compression: the budget, what each layer kept, which modules went int8, sizes and timings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records import JsonRecord


@dataclass
class CompressionReport(JsonRecord):
    method: str
    budget: str
    budget_kind: str
    limit: float  # in cost_unit
    cost_unit: str  # "bytes" | "ms"
    budget_form: str | None
    solver: str | None
    seed: int | None
    options: list[str]
    cost_before: float
    cost_after: float
    predicted_bytes_before: float
    predicted_bytes_after: float
    drop_loss: float  # estimated loss of the dropped units
    quant_loss: float  # beta x estimated loss of the int8 rounding
    fill_moves: int
    search: dict[str, Any]
    heads_before: list[int]
    heads_after: list[int]
    ffn_before: list[int]
    ffn_after: list[int]
    int8: list[list[bool]]  # [layer][role]
    roles: list[str]
    int8_other: dict[str, bool]  # modules outside the layers (the pooler)
    calibration_rows: int
    latency_table: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    bytes_before: dict[str, int] = field(default_factory=dict)  # measured on the model
    bytes_after: dict[str, int] = field(default_factory=dict)
    qscheme: str = "per_tensor"  # int8 scales: per_tensor or per_channel
    latency_ms: dict[str, float] = field(default_factory=dict)  # measured before/after, filled by whoever times it
    metrics_before: dict[str, float] = field(default_factory=dict)
    metrics_after: dict[str, float] = field(default_factory=dict)


    @property
    def int8_modules(self) -> int:
        return sum(sum(row) for row in self.int8) + sum(self.int8_other.values())

    def summary(self) -> str:
        size = ""
        if self.bytes_after:
            before, after = self.bytes_before["non_embedding"], self.bytes_after["non_embedding"]
            size = f"; non-embedding weights {before / 1e6:.1f} -> {after / 1e6:.1f} MB ({before / max(after, 1):.2f}x smaller)"
        unit = "MB" if self.cost_unit == "bytes" else "ms"
        scale = 1e6 if self.cost_unit == "bytes" else 1.0
        return (f"{self.method} compression to {self.budget}: heads {sum(self.heads_before)} -> {sum(self.heads_after)}, FFN neurons "
                f"{sum(self.ffn_before)} -> {sum(self.ffn_after)}, int8 modules {self.int8_modules}/{len(self.int8) * len(self.roles) + len(self.int8_other)}; "
                f"modelled cost {self.cost_before / scale:.2f} -> {self.cost_after / scale:.2f} {unit}{size}")
