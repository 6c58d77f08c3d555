"""CPU inference speed of MiniLM against its FFN width: why ``AnnealingPruner`` rounds the width to a multiple of 64.

    python benchmarks/ffn_width.py --widths 1536,1088,1075,1024

Each model is the packaged MiniLM with the same 29 of 72 heads removed (heads 0.4) and its FFN cut to
one of ``--widths`` neurons per layer (random neurons: speed does not depend on which). All models are
timed in the same run, interleaved, on the same padded batches (max_len 64, batch 64), median of
``--repeats`` rounds. Writes ``OUT/ffn_width.md``.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hf_qselect.data import BUILTINS
from hf_qselect.selection.embeddings import default_embedder
from hf_qselect.models import adapter_for, remove_units

sys.path.insert(0, str(Path(__file__).parent))
from pruning import padded_batches, timed_rates  # noqa: E402


def pruned_copy(base, width: int, heads_removed: int, seed: int = 0):
    """``base`` with ``heads_removed`` heads (spread over layers) and FFN width ``width``, physically removed."""
    rng = np.random.default_rng(seed)
    shape = adapter_for(base).shape(base)
    n_layers, n_heads = len(shape.heads_per_layer), shape.heads_per_layer[0]
    removed = np.bincount(np.arange(heads_removed) % n_layers, minlength=n_layers)
    heads = {l: sorted(rng.choice(n_heads, n_heads - removed[l], replace=False).tolist()) for l in range(n_layers) if removed[l]}
    ffn = shape.ffn_per_layer[0]
    neurons = {l: sorted(rng.choice(ffn, width, replace=False).tolist()) for l in range(n_layers)} if width < ffn else {}
    return remove_units(copy.deepcopy(base), list(range(n_layers)), heads, neurons).eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="1536,1088,1075,1024")
    parser.add_argument("--heads-removed", type=int, default=29, help="heads removed in every model but the unpruned one")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", default="", help="default: the packaged MiniLM")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    path = args.model or default_embedder()
    tokenizer = AutoTokenizer.from_pretrained(path)
    base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).eval()
    texts = list(BUILTINS["builtin:vader_nyt"]()["text"])[: args.rows]
    batches = padded_batches(tokenizer, texts)
    models = {"unpruned": base}
    for width in (int(w) for w in args.widths.split(",")):
        models[f"heads -{args.heads_removed}, FFN {width}"] = pruned_copy(base, width, args.heads_removed)
    rates = timed_rates({name: (m, batches) for name, m in models.items()}, len(texts), args.repeats)
    lines = [f"CPU inference, {len(texts)} rows, max_len 64, batch 64, {torch.get_num_threads()} threads, median of {args.repeats} interleaved rounds\n",
             "| model | parameters | rows/s | speed-up |", "|---|---|---|---|"]
    for name, model in models.items():
        lines.append(f"| {name} | {sum(p.numel() for p in model.parameters()):,} | {rates[name]:.1f} | {rates[name] / rates['unpruned']:.2f}x |")
    table = "\n".join(lines) + "\n"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "ffn_width.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
