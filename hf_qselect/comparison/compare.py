"""``compare``: how much of *this* training set can be dropped, with which method, before quality falls?

Every method selects at every keep rate from the same repeated stratified splits; a probe (logistic regression
on the frozen embeddings, fast) or a short fine-tune scores each on the split's test part; the differences
against full data and against random are paired split by split with corrected 95% intervals
(``selection.stats``). The recommendation is the smallest keep rate whose lower bound stays within the tolerance
of full data, and the ``hf-qselect select`` command that makes that subset.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..selection import InstanceSelector, check_folds, embed_dataset, keep_count, paired_probe, recommend
from ..validation import check_columns, check_dataset, check_keep, label_codes, label_values, text_values
from .result import Comparison, paired_table, select_command  # noqa: F401  (Comparison: re-exported)

DEFAULT_METHODS = ("random", "qubo", "facility", "pasin2024")
DEFAULT_KEEPS = (0.75, 0.5, 0.25)
EVALS = ("probe", "finetune", "causal-lm")


def _count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {name}={value!r}")
    return int(value)


def check_compare_args(methods: Any, keeps: Any, *, evaluation: str, tolerance: float, folds: int, repeats: int,
                       finetune_steps: int, label_column: str | None = "label", model: Any = None, epochs: float = 1.0,
                       max_length: int = 256) -> tuple[list[str], list[float]]:
    """:func:`compare`'s settings, checked before any work: at least one method and one keep rate, each known once;
    without class labels, the causal-LM evaluation with a model and methods that need no labels."""
    from ..selection import METHODS, get_method

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
        raise ValueError(f"tolerance (macro-F1 points, or percent of full data's loss with causal-lm) must be in (0, 100), got {tolerance}")
    _count("folds", folds, 2)
    _count("repeats", repeats, 1)
    _count("finetune_steps", finetune_steps, 1)
    if evaluation == "causal-lm":
        if label_column is not None:
            raise ValueError("evaluation='causal-lm' compares instruction or chat rows without class labels: pass label_column=None "
                             "(--label-column none)")
        if not model:
            raise ValueError("evaluation='causal-lm' needs model=: a causal LM folder, package:NAME or a .gguf file (--model)")
        _count("max_length", max_length, 2)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not epochs > 0:
            raise ValueError(f"epochs must be a number > 0, got epochs={epochs!r}")
    elif label_column is None:
        raise ValueError(f"evaluation={evaluation!r} scores a classifier on class labels; without labels (label_column=None) "
                         "use evaluation='causal-lm' with model=<a causal LM>")
    if label_column is None:
        labelled = [m for m in methods if get_method(m).needs_labels]
        if labelled:
            raise ValueError(f"method(s) {labelled} need class labels; without labels use some of "
                             f"{[m for m in METHODS if not get_method(m).needs_labels and m != 'auto']}")
    return methods, keeps


def compare(dataset, methods: tuple[str, ...] | list[str] = DEFAULT_METHODS, keeps: tuple[float, ...] | list[float] = DEFAULT_KEEPS, *,
            evaluation: str = "probe", tolerance: float = 1.0, folds: int = 5, repeats: int = 5, text_column: str = "text",
            label_column: str | None = "label", embedder: Any = None, cache_dir: Any = None, seed: int = 0, source: str = "the dataset",
            show_progress: bool = True, flagged_rows: int = 20, finetune_steps: int = 60, model: str | None = None,
            selector_options: dict | None = None, gguf_file: str | None = None, epochs: float = 1.0, max_length: int = 256) -> Comparison:
    """Compare ``methods`` at ``keeps`` on ``dataset`` with paired repeated splits; recommend a method and keep rate.

    ``tolerance`` is in macro-F1 points. ``evaluation="probe"`` trains a logistic regression on the frozen embeddings
    (fast); ``"finetune"`` fine-tunes ``model`` (default: the packaged MiniLM) for ``finetune_steps`` steps per run.
    ``"causal-lm"`` (with ``label_column=None``: instruction, chat or text rows) trains LoRA adapters on the causal LM
    ``model`` (``gguf_file``: a GGUF file in that folder) for ``epochs`` epochs on each subset and scores held-out loss on
    the responses (``max_length`` tokens); ``tolerance`` is then a percentage of full data's loss
    (:mod:`hf_qselect.comparison.causal`).
    """
    methods, keeps = check_compare_args(methods, keeps, evaluation=evaluation, tolerance=tolerance, folds=folds, repeats=repeats,
                                        finetune_steps=finetune_steps, label_column=label_column, model=model, epochs=epochs,
                                        max_length=max_length)
    ds = check_dataset(dataset)
    if evaluation == "causal-lm":
        from .causal import compare_causal

        return compare_causal(ds, methods, keeps, tolerance=tolerance, folds=folds, repeats=repeats, text_column=text_column,
                              embedder=embedder, cache_dir=cache_dir, seed=seed, source=source, show_progress=show_progress,
                              model=model, gguf_file=gguf_file, epochs=epochs, max_length=max_length,
                              selector_options=selector_options)
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
    table = paired_table(probe.scores, probe.full, methods, keeps, probe.test_fraction)
    rec = recommend(probe.scores, probe.full, probe.test_fraction, tolerance / 100.0)
    if rec:
        rec["command"] = select_command(source, rec["method"], rec["keep"], text_column, label_column, seed)
        rec["rows"] = keep_count(rec["keep"], len(ds))
    flagged = most_flagged(ds, vectors, codes, classes, texts, label_column, seed, flagged_rows)
    return Comparison(source=source, n_rows=len(ds), methods=methods, keeps=keeps, evaluation=evaluation, tolerance=tolerance / 100.0,
                      folds=folds, repeats=repeats, full=probe.full.tolist(),
                      scores={m: {str(k): v.tolist() for k, v in by.items()} for m, by in probe.scores.items()},
                      table=table, recommendation=rec, flagged=flagged, seconds={k: round(v, 2) for k, v in seconds.items()})


def most_flagged(ds, vectors, codes, classes, texts, label_column: str, seed: int, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` rows an out-of-fold classifier most confidently assigns to another class, with their text."""
    from ..selection import InstanceSelector as Selector

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
