"""Structured pruning of a MiniLM fine-tuned on Vader NYT: unpruned vs greedy ranking vs QUBO, side by side.

    python benchmarks/pruning.py --budgets "0.4,0.3,0;0.5,0.5,0" --epochs 1

1. fine-tune the packaged MiniLM for ``--epochs`` on the 80% training split (``hf-qselect train``'s code path);
2. reference: the same model trained one more epoch, unpruned;
3. per budget (heads, ffn, layers) and method (greedy, qubo): prune the fine-tuned model (256 calibration rows),
   then one recovery epoch;
4. macro-F1 on the 20% test split, parameter count, and CPU inference throughput of every model, measured
   one after another in this run (same batches, ``--threads`` threads, median of ``--repeats``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, TrainingArguments

from hf_qselect.data import load_data
from hf_qselect.pruning import load_pruned
from hf_qselect.recipes import DataArguments, ModelArguments, PruningArguments, SelectionArguments, prepare_splits, run_recipe


def train(model_path: str, out: Path, epochs: float, seed: int, dataset: str, pruning: PruningArguments | None = None) -> dict:
    args = TrainingArguments(output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=32, per_device_eval_batch_size=128,
                             learning_rate=5e-5, warmup_steps=0.06, eval_strategy="no", save_strategy="no", logging_strategy="no",
                             report_to=[], seed=seed, disable_tqdm=True)
    return run_recipe(ModelArguments(model_name_or_path=model_path), DataArguments(dataset=dataset, split_seed=seed),
                      SelectionArguments(method="none", keep=1.0), pruning or PruningArguments(), args)


def throughput(model_dir: Path, texts: list[str], repeats: int, batch_size: int = 64) -> float:
    """Rows per second of CPU inference (max_len 64, padded), median over ``repeats`` passes."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_pruned(model_dir).eval()
    batches = [tokenizer(texts[i : i + batch_size], truncation=True, max_length=64, padding="max_length", return_tensors="pt")
               for i in range(0, len(texts), batch_size)]
    rates = []
    with torch.inference_mode():
        for batch in batches[:2]:
            model(**batch)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            for batch in batches:
                model(**batch)
            rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="builtin:vader_nyt")
    parser.add_argument("--budgets", default="0.4,0.3,0;0.5,0.5,0", help="heads,ffn,layers; separated by ';'")
    parser.add_argument("--methods", default="greedy,qubo")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=512, help="test rows timed for throughput")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--model", default="", help="model to fine-tune first (default: the packaged MiniLM)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="hfq-prune-"))
    from hf_qselect.embeddings import default_embedder

    rows: dict[str, dict] = {}
    base = train(args.model or default_embedder(), work / "base", args.epochs, args.seed, args.dataset)
    print(f"fine-tuned: macro-F1 {base['macro_f1']:.4f}", file=sys.stderr, flush=True)
    rows["unpruned"] = {**base, "dir": str(work / "base")}
    rows["unpruned +1 epoch"] = {**train(str(work / "base"), work / "plus1", 1, args.seed, args.dataset), "dir": str(work / "plus1")}
    for budget in args.budgets.split(";"):
        heads, ffn, layers = (float(x) for x in budget.split(","))
        for method in args.methods.split(","):
            name = f"{method} heads {heads:g} ffn {ffn:g}" + (f" layers {layers:g}" if layers else "")
            out = work / name.replace(" ", "_")
            pruning = PruningArguments(heads=heads, ffn=ffn, layers=layers, prune_method=method, prune_at="start")
            rows[name] = {**train(str(work / "base"), out, 1, args.seed, args.dataset, pruning), "dir": str(out)}
            print(f"{name}: macro-F1 {rows[name]['macro_f1']:.4f}, params {rows[name]['params']:,}", file=sys.stderr, flush=True)
    _, test = prepare_splits(load_data(args.dataset), DataArguments(dataset=args.dataset, split_seed=args.seed))
    texts = list(test["text"])[: args.rows]
    for name, row in rows.items():
        row["rows_per_second"] = throughput(Path(row["dir"]), texts, args.repeats)
        print(f"{name}: {row['rows_per_second']:.1f} rows/s", file=sys.stderr, flush=True)
    ref = rows["unpruned"]
    lines = [f"**{args.dataset}**, packaged MiniLM fine-tuned {args.epochs:g} epoch(s); pruned models: prune then 1 recovery epoch; "
             f"CPU inference over {len(texts)} test rows, {args.threads} threads, median of {args.repeats}\n",
             "| model | macro-F1 | Δ vs unpruned (points) | parameters | params / unpruned | rows/s | speed-up |", "|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['macro_f1']:.4f} | {100 * (row['macro_f1'] - ref['macro_f1']):+.2f} | {row['params']:,} | "
                     f"{row['params'] / ref['params']:.3f} | {row['rows_per_second']:.1f} | {row['rows_per_second'] / ref['rows_per_second']:.2f}x |")
    table = "\n".join(lines) + "\n"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "pruning.md").write_text(table)
    (Path(args.out) / "pruning.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1, default=str))
    print(table)


if __name__ == "__main__":
    main()
