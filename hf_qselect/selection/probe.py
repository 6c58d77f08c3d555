"""The paired, repeated probe: every method and keep rate selects from the same training parts of R x k stratified
splits, a logistic regression on the frozen embeddings is trained on the kept rows, and macro-F1 is taken on the
split's test part. Cheap (embeddings are computed once), so it is what ``compare`` and ``method="auto"`` run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

SelectFn = Callable[[np.ndarray, np.ndarray, str, float, int], np.ndarray]


@dataclass
class ProbeScores:
    """Macro-F1 per split: ``full`` (all training rows) and ``scores[method][keep]``, all on the same splits."""

    full: np.ndarray
    scores: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, dict[float, float]] = field(default_factory=dict)
    folds: int = 5
    repeats: int = 5

    @property
    def test_fraction(self) -> float:
        return 1.0 / self.folds

    def to_dict(self) -> dict:
        return {"folds": self.folds, "repeats": self.repeats, "full": self.full.tolist(),
                "scores": {m: {str(k): v.tolist() for k, v in by.items()} for m, by in self.scores.items()},
                "seconds": {m: {str(k): v for k, v in by.items()} for m, by in self.seconds.items()}}


def check_folds(codes: np.ndarray, folds: int, column: str = "label") -> None:
    """Every class needs at least ``folds`` rows for stratified folds."""
    counts = np.bincount(codes)
    if counts.min() < folds:
        raise ValueError(f"label column {column!r} has a class with {counts.min()} rows, fewer than the {folds} folds; "
                         "use fewer folds or more data")


def macro_f1(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    if len(np.unique(train_y)) < 2:
        return float(f1_score(test_y, np.full(len(test_y), train_y[0]), average="macro"))
    model = LogisticRegression(max_iter=1000).fit(train_x, train_y)
    return float(f1_score(test_y, model.predict(test_x), average="macro"))


def paired_probe(embeddings: np.ndarray, codes: np.ndarray, select: SelectFn, methods: list[str], keeps: list[float], *,
                 folds: int = 5, repeats: int = 5, seed: int = 0, show_progress: bool = True,
                 evaluate: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float] = macro_f1) -> ProbeScores:
    """Score every ``method`` at every ``keep`` on ``repeats x folds`` shared stratified splits.

    ``select(train_embeddings, train_codes, method, keep, seed)`` returns the kept row indices of the training part.
    """
    import time

    from sklearn.model_selection import RepeatedStratifiedKFold

    check_folds(codes, folds)
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = list(splitter.split(embeddings, codes))
    full, scores, seconds = [], {}, {}
    total = len(splits) * (1 + len(methods) * len(keeps))
    with tqdm(total=total, desc="paired probe", unit="fit", disable=not show_progress) as bar:
        for i, (train, test) in enumerate(splits):
            full.append(evaluate(embeddings[train], codes[train], embeddings[test], codes[test]))
            bar.update(1)
            for method in methods:
                for keep in keeps:
                    start = time.perf_counter()
                    kept = select(embeddings[train], codes[train], method, keep, seed + i)
                    spent = time.perf_counter() - start
                    score = evaluate(embeddings[train][kept], codes[train][kept], embeddings[test], codes[test])
                    scores.setdefault(method, {}).setdefault(keep, []).append(score)
                    seconds.setdefault(method, {}).setdefault(keep, 0.0)
                    seconds[method][keep] += spent
                    bar.update(1)
    return ProbeScores(full=np.array(full), scores={m: {k: np.array(v) for k, v in by.items()} for m, by in scores.items()},
                       seconds=seconds, folds=folds, repeats=repeats)
