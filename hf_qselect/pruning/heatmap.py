"""PNG of what pruning kept: heads per layer (kept / pruned / layer removed) and FFN width per layer."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..output_dir import save_figure
from .report import PruningReport


def plot_pruning(report: PruningReport, heads_per_layer: int, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    grid = np.full((report.layers_before, heads_per_layer), 0.0)  # 0: layer removed
    widths = np.zeros(report.layers_before)
    per_layer = dict(zip(report.layers_kept, report.ffn_per_layer_after or [report.ffn_width_after] * len(report.layers_kept)))
    for layer in report.layers_kept:
        grid[layer] = 1.0  # 1: head pruned
        for head in report.kept_heads.get(str(layer), range(heads_per_layer)):
            grid[layer, head] = 2.0  # 2: kept
        widths[layer] = per_layer[layer]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.45 * report.layers_before + 2), dpi=110, gridspec_kw={"width_ratios": [3, 1]})
    left.imshow(grid, cmap=ListedColormap(["#333333", "#f2c6c6", "#3a7bd5"]), vmin=0, vmax=2, aspect="auto")
    left.set_xlabel("head")
    left.set_ylabel("layer")
    left.set_xticks(range(heads_per_layer))
    left.set_yticks(range(report.layers_before))
    left.set_title("attention heads: blue kept, pink pruned, grey layer removed", fontsize=9)
    right.barh(range(report.layers_before), widths, color="#3a7bd5")
    right.axvline(report.ffn_width_before, color="#999999", linestyle="--", linewidth=1)
    right.set_ylim(report.layers_before - 0.5, -0.5)
    right.set_xlabel(f"FFN width (was {report.ffn_width_before})")
    right.set_yticks(range(report.layers_before))
    fig.suptitle(report.summary(), fontsize=9)
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
