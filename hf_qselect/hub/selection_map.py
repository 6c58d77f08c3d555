"""A PNG of the embeddings projected to 2-D by PCA: kept vs dropped rows, coloured by class."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..output_dir import save_figure

MAX_POINTS = 20_000


def pca_2d(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """Project on the top two principal directions (fitted on at most ``MAX_POINTS`` rows)."""
    rng = np.random.default_rng(seed)
    sample = embeddings if len(embeddings) <= MAX_POINTS else embeddings[rng.choice(len(embeddings), MAX_POINTS, replace=False)]
    mean = sample.mean(axis=0)
    _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
    return (embeddings - mean) @ vt[:2].T


def plot_selection_map(embeddings: np.ndarray, codes: np.ndarray, mask: np.ndarray, classes, path: str | Path, title: str = "") -> Path:
    """Write the selection map to ``path``: filled dots kept, faint crosses dropped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = pca_2d(embeddings)
    rng = np.random.default_rng(0)
    shown = np.arange(len(points)) if len(points) <= MAX_POINTS else np.sort(rng.choice(len(points), MAX_POINTS, replace=False))
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    colours = plt.get_cmap("tab10")
    for c, name in enumerate(classes):
        of_class = shown[codes[shown] == c]
        dropped, kept = of_class[~mask[of_class]], of_class[mask[of_class]]
        ax.scatter(points[dropped, 0], points[dropped, 1], s=6, marker="x", alpha=0.25, color=colours(c % 10), label=f"{name} dropped")
        ax.scatter(points[kept, 0], points[kept, 1], s=8, alpha=0.8, color=colours(c % 10), label=f"{name} kept")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title or f"kept {int(mask.sum())} of {len(mask)} rows")
    ax.legend(markerscale=2, fontsize=8, loc="best")
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
