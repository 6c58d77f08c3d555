"""Per-row quality from a causal LM, for ``InstanceSelector(quality="ifd" | "loss", quality_model=...)``.

* ``loss``: the mean token loss of the response given the instruction (higher: harder for the model).
* ``ifd``: Superfiltering's instruction-following difficulty, that loss over the loss of the response alone
  (higher: the instruction helps less, so the row teaches more). Rows with IFD of 1 or more (the instruction does
  not help at all) are scored as the worst row, as Superfiltering filters them out.

Scores are computed in padded batches with a progress bar and cached beside the embeddings, keyed by the model, the
scorer, the token limit and the rows' texts.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

SCORERS = ("ifd", "loss")
BATCH_ROWS = 8


def check_pairs_format(dataset: Any, text_column: str, kind: str) -> str:
    """The rows' format, which must pair an instruction with a response; else a one-line error."""
    from ..text_formats import detect_format

    fmt = detect_format(dataset.column_names, text_column)
    if fmt not in ("prompt_completion", "alpaca"):
        raise ValueError(f"quality={kind!r} scores a response given its instruction: it needs prompt/completion or Alpaca "
                         f"(instruction/output) rows, not {fmt} rows")
    return fmt


def _model_identity(model: str, gguf_file: str | None) -> str:
    from ..models import gguf_location

    folder, gguf = gguf_location(model, gguf_file)
    files = [folder / gguf] if gguf else sorted(folder.glob("*.safetensors"))
    return "|".join([str(folder.resolve()), *(f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in files)])


def scores_path(kind: str, model: str, gguf_file: str | None, max_length: int, texts: Sequence[str], cache_dir: Any) -> Path | None:
    """Where these scores are cached (``None``: ``cache_dir=False``)."""
    from .embeddings import default_cache_dir, texts_digest

    if cache_dir is False:
        return None
    key = hashlib.sha256(f"{_model_identity(model, gguf_file)}|{kind}|{max_length}|{texts_digest(texts)}".encode()).hexdigest()[:32]
    return Path(cache_dir or default_cache_dir()) / "quality" / f"{key}.npy"


def _read(path: Path | None, n_rows: int) -> np.ndarray | None:
    if path is None or not path.exists():
        return None
    try:
        scores = np.load(path, allow_pickle=False)
        if scores.shape == (n_rows,) and scores.dtype == np.float64 and np.isfinite(scores).all():
            return scores
    except Exception:  # truncated or foreign: computed again
        pass
    path.unlink(missing_ok=True)
    return None


def _mean_answer_losses(model: Any, tokenizer: Any, rows: list[tuple[list[int], list[int]]]) -> np.ndarray:
    """Mean cross-entropy of each row's answer tokens given the tokens before them, in one padded batch."""
    import torch

    width = max(len(head) + len(tail) for head, tail in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    answer = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, (head, tail) in enumerate(rows):
        tokens = head + tail
        ids[r, :len(tokens)] = torch.tensor(tokens)
        mask[r, :len(tokens)] = 1
        answer[r, len(head):len(tokens)] = True
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
    scored = answer[:, 1:]
    return ((losses * scored).sum(dim=1) / scored.sum(dim=1).clamp(min=1)).numpy().astype(np.float64)


def causal_quality(dataset: Any, kind: str, model: str, gguf_file: str | None = None, *, text_column: str = "text",
                   max_length: int = 256, cache_dir: Any = None, show_progress: bool = True) -> np.ndarray:
    """One ``kind`` score per row of ``dataset`` (prompt/completion or Alpaca rows) from the causal LM ``model``."""
    from tqdm.auto import tqdm

    from ..models import load_causal_lm
    from ..text_formats import prompt_and_answer, row_texts

    if kind not in SCORERS:
        raise ValueError(f"quality scorer must be one of {list(SCORERS)}, got {kind!r}")
    fmt = check_pairs_format(dataset, text_column, kind)
    texts, _ = row_texts(dataset, text_column)  # checks every row; the cache key
    path = scores_path(kind, model, gguf_file, max_length, texts, cache_dir)
    cached = _read(path, len(texts))
    if cached is not None:
        return cached
    lm, tokenizer = load_causal_lm(model, gguf_file)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    conditional, alone = [], []
    table = dataset.to_dict()
    for start in tqdm(range(0, len(texts), BATCH_ROWS), desc=f"quality ({kind})", disable=not show_progress):
        pairs = []
        for index in range(start, min(start + BATCH_ROWS, len(texts))):
            prompt, answer = prompt_and_answer({k: v[index] for k, v in table.items()}, fmt, tokenizer, index, text_column)
            tail = tokenizer(answer, add_special_tokens=False)["input_ids"][: max(1, max_length // 2)]
            head = (bos + tokenizer(prompt, add_special_tokens=False)["input_ids"])[-(max_length - len(tail)):]
            pairs.append((head, tail))
        conditional.append(_mean_answer_losses(lm, tokenizer, pairs))
        if kind == "ifd":
            alone.append(_mean_answer_losses(lm, tokenizer, [(bos, tail) for _, tail in pairs]))
    scores = np.concatenate(conditional)
    if kind == "ifd":
        scores = scores / np.maximum(np.concatenate(alone), 1e-12)
        unhelpful = scores >= 1.0
        if unhelpful.any() and not unhelpful.all():
            scores[unhelpful] = scores[~unhelpful].min()
    if path is not None:
        from .embedding_cache import write_atomically

        write_atomically(path, lambda tmp: np.save(tmp, scores))
    return scores


def is_scorer(name: str | None, columns: Sequence[str]) -> bool:
    """``quality=name`` asks for a model's scores (not a column of that name)."""
    return name in SCORERS and name not in columns

