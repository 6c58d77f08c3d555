"""Full data vs random vs QUBO selection with the real Trainer, side by side in one run.

    python benchmarks/trainer.py --dataset builtin:vader_nyt --keep 0.5 --seeds 0,1,2 --epochs 3

Each run is ``hf-qselect train``'s own code path (``run_recipe``): a fresh packaged MiniLM, max_len 64,
an 80/20 stratified split that changes with the seed, selection (embedding included: every run gets an
empty embedding cache) and fine-tuning. Reports macro-F1 and wall time (selection + training) as
ratios to the full-data run of the same seed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from hf_qselect.training import DataArguments, ModelArguments, QSelectConfig, run_recipe
from selection import eval_literal  # the benchmarks' shared "method@key=value" reading


def one_run(dataset: str, method: str, keep: float, seed: int, epochs: float, batch: int, model: str = "", block_size: int = 100) -> dict:
    """One run; ``method`` may carry selector parameters after ``@``, separated by ``;``: ``qubo@embedder_backend=static``."""
    method, _, params = method.partition("@")
    extra = {k: eval_literal(v) for k, v in (p.split("=", 1) for p in params.split(";") if p)}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HF_QSELECT_CACHE"] = str(Path(tmp) / "cache")
        config = QSelectConfig(
            output_dir=str(Path(tmp) / "model"), num_train_epochs=epochs, per_device_train_batch_size=batch,
            per_device_eval_batch_size=128, learning_rate=5e-5, warmup_steps=0.06, eval_strategy="no",
            save_strategy="no", logging_strategy="no", report_to=[], seed=seed, disable_tqdm=True,
            selection_keep=keep if method != "full" else 1.0, selection_method="none" if method == "full" else method,
            selection_seed=seed, selection_block_size=block_size, **{f"selection_{k}": v for k, v in extra.items()},
        )
        summary = run_recipe(ModelArguments(model_name_or_path=model), DataArguments(dataset=dataset, split_seed=seed), config)
    summary["wall_seconds"] = summary["selection_seconds"] + summary["train_seconds"]
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="builtin:vader_nyt")
    parser.add_argument("--methods", default="full,random,qubo", help="comma-separated; selector parameters after @: qubo@embedder_backend=static")
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=float, default=3.0, help="as TrainingArguments.num_train_epochs (its default: 3)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="", help="model to fine-tune (default: the packaged MiniLM)")
    parser.add_argument("--block-size", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="trainer")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for method in args.methods.split(","):
            summary = one_run(args.dataset, method, args.keep, seed, args.epochs, args.batch_size, args.model, args.block_size)
            runs.setdefault(method, []).append(summary)
            print(f"seed {seed} {method:>7}: macro-F1 {summary['macro_f1']:.4f}, rows {summary['rows_kept']}, "
                  f"selection {summary['selection_seconds']}s + training {summary['train_seconds']}s", file=sys.stderr, flush=True)
    full = runs["full"]
    lines = [f"**{args.dataset}**, keep {args.keep}, {args.epochs:g} epoch(s), seeds {args.seeds}, packaged MiniLM, max_len 64\n",
             "| method | rows | macro-F1 | ΔF1 vs full (points) | selection s | training s | wall time / full |", "|---|---|---|---|---|---|---|"]
    for method, summaries in runs.items():
        f1 = np.array([s["macro_f1"] for s in summaries])
        delta = 100 * (f1 - np.array([s["macro_f1"] for s in full]))
        ratio = np.array([s["wall_seconds"] / f["wall_seconds"] if f["wall_seconds"] > 0 else np.nan for s, f in zip(summaries, full)])
        lines.append(
            f"| {method} | {summaries[0]['rows_kept']} | {f1.mean():.4f} ± {f1.std():.4f} | {delta.mean():+.2f} ± {delta.std():.2f} | "
            f"{np.mean([s['selection_seconds'] for s in summaries]):.1f} | {np.mean([s['train_seconds'] for s in summaries]):.1f} | "
            f"{ratio.mean():.3f} ± {ratio.std():.3f} |"
        )
    table = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.md").write_text(table)
    (out / f"{args.name}.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    print(table)


if __name__ == "__main__":
    main()
