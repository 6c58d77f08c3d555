"""PNG heat map of a compression: per layer, the share of heads and FFN neurons kept and each module's precision."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..output_dir import save_figure
from .report import CompressionReport


def plot_compression(report: CompressionReport, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = len(report.heads_before)
    kept = np.array([[a / max(b, 1), c / max(d, 1)] for a, b, c, d in zip(report.heads_after, report.heads_before,
                                                                        report.ffn_after, report.ffn_before)])
    precision = np.array(report.int8, dtype=float)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 0.45 * layers + 2.2), dpi=110, gridspec_kw={"width_ratios": [2, 4]})
    left.imshow(kept, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(kept):
        count = (report.heads_after[i], report.heads_before[i]) if j == 0 else (report.ffn_after[i], report.ffn_before[i])
        left.text(j, i, f"{count[0]}/{count[1]}", ha="center", va="center", fontsize=8, color="white" if value > 0.6 else "black")
    left.set_xticks([0, 1], ["heads kept", "FFN kept"])
    left.set_yticks(range(layers))
    left.set_ylabel("layer")
    right.imshow(precision, cmap="Oranges", vmin=0, vmax=1.6, aspect="auto")
    for (i, j), value in np.ndenumerate(precision):
        right.text(j, i, "int8" if value else "fp32", ha="center", va="center", fontsize=8)
    right.set_xticks(range(len(report.roles)), report.roles, fontsize=8)
    right.set_yticks(range(layers))
    other = ", ".join(f"{name} {'int8' if on else 'fp32'}" for name, on in report.int8_other.items())
    right.set_title("precision per module" + (f" ({other})" if other else ""), fontsize=9)
    fig.suptitle(report.summary()[:150], fontsize=8)
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
