"""Vocabulary pruning (as TextPruner): keep the token embeddings the user's texts use, plus the special tokens.

MiniLM's word embedding (30,522 x 384, 11.7M parameters) is half the model and structured pruning never
touches it. The new WordPiece tokenizer holds only the kept tokens, in their old order; a text made of them
tokenizes exactly as before (greedy longest-match never had a longer piece to prefer), and a word no kept
pieces can spell becomes ``[UNK]``.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from torch import nn


def used_token_ids(tokenizer, texts: list[str], batch_size: int = 1000) -> list[int]:
    """Sorted ids the texts tokenize to, plus every special token's id."""
    ids = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), batch_size):
        for row in tokenizer(list(texts[start:start + batch_size]), add_special_tokens=True)["input_ids"]:
            ids.update(row)
    return sorted(ids)


def _renumbered_tokenizer(tokenizer, kept: list[int]):
    """A fast WordPiece tokenizer over the ``kept`` ids, renumbered 0..len(kept)-1."""
    from transformers import AutoTokenizer

    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"vocabulary pruning needs a fast tokenizer, got {type(tokenizer).__name__}")
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    if data["model"]["type"] != "WordPiece":
        raise TypeError(f"vocabulary pruning supports WordPiece tokenizers (BERT family), not {data['model']['type']}")
    new_id = {old: new for new, old in enumerate(kept)}
    by_id = {i: t for t, i in data["model"]["vocab"].items()}
    data["model"]["vocab"] = {by_id[old]: new for old, new in new_id.items()}
    for token in data.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    processor = data.get("post_processor") or {}
    for special in (processor.get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    for key in ("sep", "cls"):
        if key in processor:
            processor[key][1] = new_id[processor[key][1]]
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.save_pretrained(scratch)
        (Path(scratch) / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
        vocab_txt = Path(scratch) / "vocab.txt"
        if vocab_txt.exists():
            vocab_txt.write_text("".join(by_id[old] + "\n" for old in kept), encoding="utf-8")
        return AutoTokenizer.from_pretrained(scratch)


def prune_vocabulary(model, tokenizer, texts: list[str]):
    """Keep only the embeddings of tokens ``texts`` use (in place on ``model``); returns ``(model, tokenizer, kept_ids)``.

    ``kept_ids[new_id]`` is the token's id in the old vocabulary.
    """
    from ..models import adapter_for

    adapter = adapter_for(model, what="vocabulary pruning")
    if adapter.vocabulary is None:
        raise TypeError(f"vocabulary pruning supports the WordPiece vocabularies of the BERT family, not {adapter.family}")
    if not len(texts):
        raise ValueError("prune_vocabulary needs the training texts; got none")
    kept = used_token_ids(tokenizer, texts)
    new_tokenizer = _renumbered_tokenizer(tokenizer, kept)  # checked before the model is changed
    old = model.get_input_embeddings()
    index = torch.as_tensor(kept, dtype=torch.long, device=old.weight.device)
    pad = model.config.pad_token_id
    new_pad = kept.index(pad) if pad is not None and pad in kept else None
    embedding = nn.Embedding(len(kept), old.embedding_dim, padding_idx=new_pad, device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        embedding.weight.copy_(old.weight[index])
    model.set_input_embeddings(embedding)
    model.config.vocab_size = len(kept)
    model.config.pad_token_id = new_pad
    return model, new_tokenizer, kept
