"""``compare``: how much of *this* training set can be dropped, with which method, before quality falls?

Every method selects at every keep rate from the same repeated stratified splits; a probe (logistic regression
on the frozen embeddings, fast) or a short fine-tune scores each on the split's test part; the differences
against full data and against random are paired split by split with corrected 95% intervals
(``selection.stats``). The recommendation is the smallest keep rate whose lower bound stays within the tolerance
of full data, and the ``hf-qselect select`` command that makes that subset.
"""
from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


import numpy as np

from ..output_dir import save_figure
from ..selection import InstanceSelector, check_folds, embed_dataset, keep_count, paired, paired_probe, recommend
from ..validation import check_columns, check_dataset, check_keep, label_codes, label_values, text_values

DEFAULT_METHODS = ("random", "qubo", "facility", "pasin2024")
DEFAULT_KEEPS = (0.75, 0.5, 0.25)
EVALS = ("probe", "finetune")


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

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def markdown(self) -> str:
        """The table with its intervals, the recommendation and the flagged rows, as Markdown."""
        lines = [f"# How much of {self.source} can be dropped\n",
                 f"{self.n_rows} rows; {self.evaluation} on {self.repeats} x {self.folds} stratified splits (every method on the "
                 "same splits). Differences are in macro-F1 points, paired split by split, with the corrected resampled t "
                 "interval of Nadeau & Bengio (95%).\n",
                 f"Full data: {np.mean(self.full):.4f} ± {np.std(self.full):.4f}\n",
                 "| method | keep | macro-F1 | vs full (95% CI) | vs random (95% CI) | wins vs random |", "|---|---|---|---|---|---|"]
        for row in self.table:
            vs_random = row.get("vs_random")
            random_cells = (f"{100 * vs_random['mean']:+.2f} [{100 * vs_random['ci95'][0]:+.2f}, {100 * vs_random['ci95'][1]:+.2f}] | "
                            f"{vs_random['win_rate']:.0%}") if vs_random else "– | –"
            full = row["vs_full"]
            lines.append(f"| {row['method']} | {row['keep']:g} | {row['mean']:.4f} ± {row['std']:.4f} | "
                         f"{100 * full['mean']:+.2f} [{100 * full['ci95'][0]:+.2f}, {100 * full['ci95'][1]:+.2f}] | {random_cells} |")
        lines.append("")
        rec = self.recommendation
        if rec:
            lines.append(f"**Recommendation:** `{rec['method']}` at keep {rec['keep']:g}: the smallest keep rate whose 95% interval "
                         f"against full data stays above −{100 * self.tolerance:g} points (lower bound {100 * rec['vs_full']['ci95'][0]:+.2f}).\n")
            lines.append(f"```bash\n{rec['command']}\n```\n")
        else:
            lines.append(f"**Recommendation:** keep every row: no method and keep rate stays within {100 * self.tolerance:g} points of full "
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
        ax.axhline(full, color="black", linestyle="--", label="full data")
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
        ax.set_ylabel("macro-F1")
        ax.invert_xaxis()
        ax.set_title(f"{self.source}: {self.evaluation}, {self.repeats}x{self.folds} paired splits")
        ax.legend(fontsize=8)
        fig.tight_layout()
        try:
            save_figure(fig, path, overwrite=overwrite, dpi=120)
        finally:
            plt.close(fig)


def _count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {name}={value!r}")
    return int(value)


def check_compare_args(methods: Any, keeps: Any, *, evaluation: str, tolerance: float, folds: int, repeats: int,
                       finetune_steps: int) -> tuple[list[str], list[float]]:
    """:func:`compare`'s settings, checked before any work: at least one method and one keep rate, each known once."""
    from ..selection import METHODS

    methods, keeps = list(methods), list(keeps)
    if not methods:
        raise ValueError(f"methods is empty: name at least one of {list(METHODS)}")
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; the methods are {list(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods names a method twice: {methods}")
    if not keeps:
        raise ValueError("keeps is empty: give at least one keep rate in (0, 1], such as 0.5")
    keeps = [check_keep(k) for k in keeps]
    if len(set(keeps)) != len(keeps):
        raise ValueError(f"keeps names a keep rate twice: {keeps}")
    if evaluation not in EVALS:
        raise ValueError(f"evaluation must be one of {list(EVALS)}, got {evaluation!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 100:
        raise ValueError(f"tolerance is in macro-F1 points and must be in (0, 100), got {tolerance}")
    _count("folds", folds, 2)
    _count("repeats", repeats, 1)
    _count("finetune_steps", finetune_steps, 1)
    return methods, keeps


def compare(dataset, methods: tuple[str, ...] | list[str] = DEFAULT_METHODS, keeps: tuple[float, ...] | list[float] = DEFAULT_KEEPS, *,
            evaluation: str = "probe", tolerance: float = 1.0, folds: int = 5, repeats: int = 5, text_column: str = "text",
            label_column: str = "label", embedder: Any = None, cache_dir: Any = None, seed: int = 0, source: str = "the dataset",
            show_progress: bool = True, flagged_rows: int = 20, finetune_steps: int = 60, model: str | None = None,
            selector_options: dict | None = None) -> Comparison:
    """Compare ``methods`` at ``keeps`` on ``dataset`` with paired repeated splits; recommend a method and keep rate.

    ``tolerance`` is in macro-F1 points. ``evaluation="probe"`` trains a logistic regression on the frozen embeddings
    (fast); ``"finetune"`` fine-tunes ``model`` (default: the packaged MiniLM) for ``finetune_steps`` steps per run.
    """
    methods, keeps = check_compare_args(methods, keeps, evaluation=evaluation, tolerance=tolerance, folds=folds, repeats=repeats,
                                        finetune_steps=finetune_steps)
    ds = check_dataset(dataset)
    check_columns(ds, text_column=text_column, label_column=label_column)
    codes, classes = label_codes(label_values(ds, label_column), label_column)
    check_folds(codes, folds, label_column)
    texts = text_values(ds, text_column)
    seconds = {}
    start = time.perf_counter()
    vectors, _ = embed_dataset(ds, text_column, texts, embedder, cache_dir=cache_dir, show_progress=show_progress)
    seconds["embed"] = time.perf_counter() - start
    options = {"show_progress": False, "n_jobs": 1, **(selector_options or {})}

    def select(x: np.ndarray, c: np.ndarray, method: str, keep: float, split_seed: int) -> np.ndarray:
        from datasets import Dataset

        part = Dataset.from_dict({"label": c.tolist()})
        return InstanceSelector(keep=keep, method=method, seed=split_seed, **options).fit(part, embeddings=x).indices_

    evaluate = None
    if evaluation == "finetune":
        evaluate = finetune_evaluator(texts, vectors, codes, model, finetune_steps, seed)
    start = time.perf_counter()
    probe = paired_probe(vectors, codes, select, methods, keeps, folds=folds, repeats=repeats, seed=seed, show_progress=show_progress,
                         **({"evaluate": evaluate} if evaluate else {}))
    seconds["compare"] = time.perf_counter() - start
    table = []
    for method in methods:
        for keep in keeps:
            s = probe.scores[method][keep]
            row = {"method": method, "keep": keep, "mean": float(np.mean(s)), "std": float(np.std(s)),
                   "vs_full": paired(s, probe.full, probe.test_fraction).to_dict()}
            if "random" in probe.scores and method != "random":
                row["vs_random"] = paired(s, probe.scores["random"][keep], probe.test_fraction).to_dict()
            table.append(row)
    rec = recommend(probe.scores, probe.full, probe.test_fraction, tolerance / 100.0)
    if rec:
        rec["command"] = select_command(source, rec["method"], rec["keep"], text_column, label_column, seed)
        rec["rows"] = keep_count(rec["keep"], len(ds))
    flagged = most_flagged(ds, vectors, codes, classes, texts, label_column, seed, flagged_rows)
    return Comparison(source=source, n_rows=len(ds), methods=methods, keeps=keeps, evaluation=evaluation, tolerance=tolerance / 100.0,
                      folds=folds, repeats=repeats, full=probe.full.tolist(),
                      scores={m: {str(k): v.tolist() for k, v in by.items()} for m, by in probe.scores.items()},
                      table=table, recommendation=rec, flagged=flagged, seconds={k: round(v, 2) for k, v in seconds.items()})


def select_command(source: str, method: str, keep: float, text_column: str, label_column: str, seed: int) -> str:
    """The ``hf-qselect select`` call that makes the recommended subset of the whole dataset."""
    argv = ["hf-qselect", "select", "--data", source, "--text-column", text_column, "--label-column", label_column,
            "--method", method, "--keep", f"{keep:g}", "--seed", str(seed), "--out", f"reduced-{method}-{keep:g}"]
    return " ".join(shlex.quote(a) for a in argv)


def most_flagged(ds, vectors, codes, classes, texts, label_column: str, seed: int, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` rows an out-of-fold classifier most confidently assigns to another class, with their text."""
    from ..selection import InstanceSelector as Selector

    names = [str(c) for c in classes]
    feature = ds.features[label_column]
    if hasattr(feature, "int2str"):
        names = [feature.int2str(int(c)) for c in classes]
    selector = Selector(keep=1.0, method="random", label_column=label_column, seed=seed, show_progress=False)
    selector.fit(ds, embeddings=vectors)
    scores = selector.row_scores_
    flagged = scores[scores["flagged"]].sort_values("label_proba").head(limit)
    return [{"row": int(r.row), "label": r.label, "predicted": r.predicted, "label_proba": float(r.label_proba), "text": texts[int(r.row)]}
            for r in flagged.itertuples()]


def finetune_evaluator(texts: list[str], vectors: np.ndarray, codes: np.ndarray, model: str | None, steps: int, seed: int):
    """An ``evaluate`` for :func:`paired_probe` that fine-tunes ``model`` for ``steps`` steps on the kept rows.

    Rows are found by their embeddings, so the evaluator sees the same (train, test) parts the probe does."""
    index = {vectors[i].tobytes(): i for i in range(len(vectors))}

    def evaluate(train_x, train_y, test_x, test_y) -> float:
        from ..training import short_finetune

        train_rows = [index[v.tobytes()] for v in train_x]
        test_rows = [index[v.tobytes()] for v in test_x]
        return short_finetune([texts[i] for i in train_rows], train_y, [texts[i] for i in test_rows], test_y,
                              model=model, steps=steps, seed=seed)

    return evaluate
