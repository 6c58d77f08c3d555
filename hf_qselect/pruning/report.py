"""The record of one pruning: what was kept, the QUBO energies, sizes and timings."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..records import JsonRecord


@dataclass
class PruningReport(JsonRecord):
    method: str
    solver: str | None
    seed: int | None
    budgets: dict[str, float]
    layers_before: int
    layers_kept: list[int]
    heads_before: int
    heads_after: int
    kept_heads: dict[str, list[int]]
    ffn_width_before: int
    ffn_width_after: int
    energies: dict[str, float] = field(default_factory=dict)
    repaired_blocks: int = 0
    empty_layer_repairs: int = 0
    calibration_rows: int = 0
    calibration_tokens: int = 0
    params_before: int | None = None
    params_after: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    metrics_before: dict[str, float] = field(default_factory=dict)  # eval metrics just before pruning (QSelectTrainer)
    metrics_after: dict[str, float] = field(default_factory=dict)  # ... and just after, before any further training
    head_unit: str | None = None  # grouped-query attention: "group" or "query"
    kv_heads_before: int | None = None
    kv_heads_after: int | None = None
    layer_drop_losses: dict | None = None  # layer_scores="pairs": the measured single and neighbour-pair drop losses
    recovery: dict | None = None  # how the pruned model was recovered (lora_recover's record), when it was
    ffn_per_layer_after: list[int] | None = None  # per_layer_ffn: each kept layer's FFN width (ffn_width_after is their mean)


    def summary(self) -> str:
        params = f", params {self.params_before:,} -> {self.params_after:,}" if self.params_after else ""
        recovered = f"; recovered by {self.recovery['method']} ({self.recovery['steps']} steps x {self.recovery['batch_size']} rows)" if self.recovery else ""
        per_layer = self.ffn_per_layer_after
        widths = f" (mean; {min(per_layer)}-{max(per_layer)} per layer)" if per_layer and len(set(per_layer)) > 1 else ""
        return (
            f"{self.method} pruning: layers {self.layers_before} -> {len(self.layers_kept)}, heads {self.heads_before} -> "
            f"{self.heads_after}, FFN width {self.ffn_width_before} -> {self.ffn_width_after}{widths}{params}{recovered}"
        )
