"""``compare(..., label_column=None, evaluation="causal-lm")``: selection methods on instruction or chat rows, judged by
what a causal LM learns from each subset.

Every method selects at every keep rate from the training part of the same ``repeats x folds`` splits (the rows have
no class, so the folds are plain shuffled folds); LoRA adapters are trained for the same number of epochs on each
subset (a smaller subset trains fewer steps) and the held-out loss on the responses of the split's test part is the
score. Lower is better; the differences against full data and random are paired split by split with the corrected
interval, and the recommendation is the smallest keep rate whose upper 95% bound against full data stays below
``tolerance`` percent of full data's loss.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..selection import InstanceSelector, backend_precision, embed_dataset, keep_count, paired, paired_probe, recommend
from .result import Comparison, paired_table, select_command


def compare_causal(ds, methods: list[str], keeps: list[float], *, tolerance: float, folds: int, repeats: int, text_column: str,
                   embedder: Any, cache_dir: Any, seed: int, source: str, show_progress: bool, model: str, gguf_file: str | None,
                   epochs: float, max_length: int, selector_options: dict | None) -> Comparison:
    """The causal-LM comparison (settings already checked by ``check_compare_args``)."""
    from datasets import Dataset

    from ..models import load_causal_lm
    from ..text_formats import row_texts, tokenize_causal
    from ..training import lora_epochs_score

    texts, _ = row_texts(ds, text_column)  # every row checked (turns, empty responses) before any work
    if len(ds) < folds:
        raise ValueError(f"{len(ds)} rows cannot make {folds} folds; use fewer folds or more rows")
    options = {"show_progress": False, "n_jobs": 1, **(selector_options or {})}
    quality = options.get("quality")
    if quality is not None and quality not in ds.column_names:
        raise KeyError(f"quality column {quality!r} not in the dataset (columns: {ds.column_names}); compare reads a column, "
                       "score the rows first (hf_qselect.selection.quality_scores.causal_quality)")
    seconds = {}
    start = time.perf_counter()
    precision = backend_precision(embedder, texts, options.get("embedder_backend", "auto"), cache_dir=cache_dir)
    vectors, _ = embed_dataset(ds, text_column, texts, embedder, cache_dir=cache_dir, show_progress=show_progress, precision=precision)
    seconds["embed"] = time.perf_counter() - start
    lm, tokenizer = load_causal_lm(model, gguf_file)
    tokens = tokenize_causal(ds, tokenizer, max_length, text_column)
    keep_columns = [c for c in (quality, options.get("strata")) if c is not None and c in ds.column_names]

    def select(rows: np.ndarray, _codes: np.ndarray, method: str, keep: float, split_seed: int) -> np.ndarray:
        rows = rows[:, 0]
        part = ds.select_columns(keep_columns).select(rows) if keep_columns else Dataset.from_dict({"row": rows.tolist()})
        selector = InstanceSelector(keep=keep, method=method, label_column=None, seed=split_seed, **options)
        return selector.fit(part, embeddings=vectors[rows]).indices_

    def evaluate(train: np.ndarray, _y: np.ndarray, test: np.ndarray, _test_y: np.ndarray) -> float:
        losses = lora_epochs_score(lm, tokens.select(train[:, 0]), {"test": tokens.select(test[:, 0])}, epochs=epochs, seed=seed)
        return -losses["test"]  # the probe's scores are higher-is-better

    start = time.perf_counter()
    rows = np.arange(len(ds))[:, None]  # the probe splits and passes row indices; select and evaluate look the rows up
    probe = paired_probe(rows, np.zeros(len(ds), dtype=np.int64), select, methods, keeps, folds=folds, repeats=repeats, seed=seed,
                         show_progress=show_progress, evaluate=evaluate)
    seconds["compare"] = time.perf_counter() - start
    full = -probe.full
    losses = {m: {k: -v for k, v in by.items()} for m, by in probe.scores.items()}
    table = paired_table(losses, full, methods, keeps, probe.test_fraction)
    rec = recommend(probe.scores, probe.full, probe.test_fraction, tolerance / 100.0 * float(np.mean(full)))
    if rec:
        rec["mean"] = -rec["mean"]
        rec["vs_full"] = paired(losses[rec["method"]][rec["keep"]], full, probe.test_fraction).to_dict()
        rec["command"] = select_command(source, rec["method"], rec["keep"], text_column, None, seed, options)
        rec["rows"] = keep_count(rec["keep"], len(ds))
    return Comparison(source=source, n_rows=len(ds), methods=methods, keeps=keeps, evaluation="causal-lm", tolerance=tolerance / 100.0,
                      folds=folds, repeats=repeats, full=full.tolist(),
                      scores={m: {str(k): v.tolist() for k, v in by.items()} for m, by in losses.items()},
                      table=table, recommendation=rec, seconds={k: round(v, 2) for k, v in seconds.items()}, metric="loss")
