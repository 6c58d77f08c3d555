"""What ``compare`` returns: the scores per split, the paired table, the recommendation and its ``select`` command,
as JSON, Markdown and a plot."""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..output_dir import save_figure
from ..selection import paired

SELECT_FLAGS = ("quality", "quality_weight", "strata", "strata_clusters", "class_balance", "solver")  # carried into the command
METRIC_NAMES = {"macro_f1": "macro-F1", "loss": "held-out loss"}


@dataclass
class Comparison:
    """The scores per split, the paired table, the recommendation and the rows most likely mislabelled."""

    source: str
    n_rows: int
    methods: list[str]
    keeps: list[float]
    evaluation: str
    tolerance: float
    folds: int
    repeats: int
    full: list[float]
    scores: dict[str, dict[str, list[float]]]
    table: list[dict[str, Any]]
    recommendation: dict[str, Any] | None
    flagged: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    metric: str = "macro_f1"  # "loss" for evaluation="causal-lm": lower is better, differences in nats per token

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def _delta(self, d: dict[str, Any]) -> str:
        """A paired difference and its interval: macro-F1 points, or loss in nats per token."""
        scale, fmt = (100, "+.2f") if self.metric == "macro_f1" else (1, "+.4f")
        return f"{scale * d['mean']:{fmt}} [{scale * d['ci95'][0]:{fmt}}, {scale * d['ci95'][1]:{fmt}}]"

    def markdown(self) -> str:
        """The table with its intervals, the recommendation and the flagged rows, as Markdown."""
        name = METRIC_NAMES[self.metric]
        loss = self.metric == "loss"
        units = ("held-out loss in nats per response token (lower is better; a negative difference is a lower loss)" if loss
                 else "macro-F1 points")
        split = "splits" if loss else "stratified splits"
        lines = [f"# How much of {self.source} can be dropped\n",
                 f"{self.n_rows} rows; {self.evaluation} on {self.repeats} x {self.folds} {split} (every method on the "
                 f"same splits). Differences are in {units}, paired split by split, with the corrected resampled t "
                 "interval of Nadeau & Bengio (95%).\n",
                 f"Full data: {np.mean(self.full):.4f} ± {np.std(self.full):.4f}\n",
                 f"| method | keep | {name} | vs full (95% CI) | vs random (95% CI) | {'better' if loss else 'wins'} vs random |",
                 "|---|---|---|---|---|---|"]
        for row in self.table:
            vs_random = row.get("vs_random")
            wins = (1 - vs_random["win_rate"]) if loss and vs_random else (vs_random or {}).get("win_rate")
            random_cells = f"{self._delta(vs_random)} | {wins:.0%}" if vs_random else "– | –"
            lines.append(f"| {row['method']} | {row['keep']:g} | {row['mean']:.4f} ± {row['std']:.4f} | {self._delta(row['vs_full'])} | "
                         f"{random_cells} |")
        lines.append("")
        rec = self.recommendation
        if rec and loss:
            lines.append(f"**Recommendation:** `{rec['method']}` at keep {rec['keep']:g}: the smallest keep rate whose 95% interval "
                         f"against full data stays below +{100 * self.tolerance:g}% of its loss (upper bound "
                         f"{rec['vs_full']['ci95'][1]:+.4f}, {100 * rec['vs_full']['ci95'][1] / np.mean(self.full):+.2f}%).\n")
        elif rec:
            lines.append(f"**Recommendation:** `{rec['method']}` at keep {rec['keep']:g}: the smallest keep rate whose 95% interval "
                         f"against full data stays above −{100 * self.tolerance:g} points (lower bound {100 * rec['vs_full']['ci95'][0]:+.2f}).\n")
        if rec:
            lines.append(f"```bash\n{rec['command']}\n```\n")
        else:
            bound = f"{100 * self.tolerance:g}% of full data's loss" if loss else f"{100 * self.tolerance:g} points"
            lines.append(f"**Recommendation:** keep every row: no method and keep rate stays within {bound} of full "
                         "data with 95% confidence on this data.\n")
        if self.flagged:
            lines += ["## Rows most confidently flagged as mislabelled\n", "| row | label | predicted | P(label) | text |", "|---|---|---|---|---|"]
            for r in self.flagged:
                text = str(r["text"]).replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {r['row']} | {r['label']} | {r['predicted']} | {r['label_proba']:.3f} | {text[:160]} |")
        return "\n".join(lines) + "\n"

    def save(self, out: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``compare.json``, ``compare.md`` and ``compare.png`` as the folder ``out``, staged and swapped in
        whole; a non-empty ``out`` is replaced only with ``overwrite``."""
        from ..output_dir import check_output_dir, staged_output

        target = check_output_dir(out, overwrite=overwrite, flag="overwrite=True", what="comparison folder")
        with staged_output(target) as staging:
            (staging / "compare.json").write_text(json.dumps(self.to_dict(), indent=1, default=float) + "\n")
            (staging / "compare.md").write_text(self.markdown())
            self.plot(staging / "compare.png")
        return target

    def plot(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Macro-F1 against keep rate per method, each with its 95% band, and full data as a line with its band."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        full = float(np.mean(self.full))
        loss = self.metric == "loss"
        ax.axhline(full, color="black", linestyle="--", label="full data")
        if loss:
            ax.axhspan(full, full * (1 + self.tolerance), color="grey", alpha=0.12, label=f"within {100 * self.tolerance:g}%")
        else:
            ax.axhspan(full - self.tolerance, full, color="grey", alpha=0.12, label=f"within {100 * self.tolerance:g} points")
        for method in self.methods:
            rows = sorted((r for r in self.table if r["method"] == method), key=lambda r: r["keep"])
            keeps = [r["keep"] for r in rows]
            means = [r["mean"] for r in rows]
            low = [full + r["vs_full"]["ci95"][0] for r in rows]
            high = [full + r["vs_full"]["ci95"][1] for r in rows]
            line, = ax.plot(keeps, means, marker="o", label=method)
            ax.fill_between(keeps, low, high, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("keep rate")
        ax.set_ylabel(METRIC_NAMES[self.metric] + (" (lower is better)" if loss else ""))
        ax.invert_xaxis()
        ax.set_title(f"{self.source}: {self.evaluation}, {self.repeats}x{self.folds} paired splits")
        ax.legend(fontsize=8)
        fig.tight_layout()
        try:
            save_figure(fig, path, overwrite=overwrite, dpi=120)
        finally:
            plt.close(fig)


def paired_table(scores: dict[str, dict[float, np.ndarray]], full: np.ndarray, methods: list[str], keeps: list[float],
                 test_fraction: float) -> list[dict[str, Any]]:
    """One row per method and keep rate: mean, spread, and the paired differences against full data and random."""
    table = []
    for method in methods:
        for keep in keeps:
            s = scores[method][keep]
            row = {"method": method, "keep": keep, "mean": float(np.mean(s)), "std": float(np.std(s)),
                   "vs_full": paired(s, full, test_fraction).to_dict()}
            if "random" in scores and method != "random":
                row["vs_random"] = paired(s, scores["random"][keep], test_fraction).to_dict()
            table.append(row)
    return table


def select_command(source: str, method: str, keep: float, text_column: str, label_column: str | None, seed: int,
                   options: dict | None = None) -> str:
    """The ``hf-qselect select`` call that makes the recommended subset of the whole dataset (with the selector
    options that are flags of ``select``, such as ``quality``)."""
    argv = ["hf-qselect", "select", "--data", source, "--text-column", text_column, "--label-column", label_column or "none",
            "--method", method, "--keep", f"{keep:g}", "--seed", str(seed)]
    for name, value in (options or {}).items():
        if name in SELECT_FLAGS and value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    argv += ["--out", f"reduced-{method}-{keep:g}"]
    return " ".join(shlex.quote(a) for a in argv)
