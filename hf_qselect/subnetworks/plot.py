"""PNG of a subnetwork search: the training loss per round and the units kept per layer."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..output_dir import save_figure


def plot_subnetwork(report: dict[str, Any], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    losses = report["losses"]
    left.plot(range(len(losses)), losses, marker="o")
    left.axhline(report["open_loss"], color="grey", linestyle="--", label="all units open")
    left.set_xlabel("round" if report["method"] == "qubo" else "epoch" if report["method"] == "edgepopup" else "")
    left.set_ylabel("training loss")
    left.set_title(f"{report['method']}: {report['accepted']} moves kept, {report['refused']} refused")
    left.legend()
    names = list(report["units"])
    right.bar(range(len(names)), [report["units"][n] for n in names], color="#dddddd", label="units")
    right.bar(range(len(names)), [report["kept"][n] for n in names], color="#2a7ab0", label="kept")
    right.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    right.set_title(f"mask: {report['mask_bytes']} bytes")
    right.legend()
    fig.tight_layout()
    try:
        return save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)
