"""Structured pruning of a MiniLM fine-tuned on Vader NYT: unpruned vs greedy ranking vs QUBO, side by side.

    python benchmarks/pruning.py --budgets "0.4,0.3,0;0.5,0.5,0" --epochs 1 --seeds 0,1

1. fine-tune the packaged MiniLM for ``--epochs`` on the 80% training split (``hf-qselect train``'s code path);
2. reference: the same model trained one more epoch, unpruned;
3. per budget (heads, ffn, layers) and method (greedy, qubo): prune the fine-tuned model (256 calibration rows),
   then one recovery epoch;
4. macro-F1 on the 20% test split (for pruned models also just after pruning, before the recovery epoch:
   what the choice of units costs by itself), parameter count, and CPU inference throughput of every model, measured
   in this run (same batches, ``--threads`` threads, median of ``--repeats`` rounds, models interleaved);
5. ``--seeds`` repeats it all per seed (its own split, training order and annealing); the table is mean ± std.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoTokenizer

from hf_qselect.data import load_data
from hf_qselect.measure import interleaved_seconds, mean_std
from hf_qselect.pruning import load_pruned
from hf_qselect.training import DataArguments, ModelArguments, QSelectConfig, run_recipe
from hf_qselect.training.recipes import prepare_splits


def train(model_path: str, out: Path, epochs: float, seed: int, dataset: str, pruning: dict | None = None) -> dict:
    """Fine-tune (and prune, with ``pruning`` options such as ``prune_remove_heads``, ``prune_method``) through ``run_recipe``.
    The pruner and the compressor are seeded with the run's seed, as the published figures were."""
    config = QSelectConfig(output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=32, per_device_eval_batch_size=128,
                           learning_rate=5e-5, warmup_steps=0.06, eval_strategy="no", save_strategy="no", logging_strategy="no",
                           report_to=[], seed=seed, disable_tqdm=True, selection_method="none", selection_keep=1.0,
                           prune_seed=seed, compress_seed=seed, **(pruning or {}))
    return run_recipe(ModelArguments(model_name_or_path=model_path), DataArguments(dataset=dataset, split_seed=seed), config)


def padded_batches(tokenizer, texts: list[str], batch_size: int = 64) -> list:
    """Inference batches of ``texts``, padded to max_len 64 so every model sees the same shapes."""
    return [tokenizer(texts[i : i + batch_size], truncation=True, max_length=64, padding="max_length", return_tensors="pt")
            for i in range(0, len(texts), batch_size)]


def load_timed(model_dir: Path, texts: list[str]):
    """The saved model and its inference batches."""
    return load_pruned(model_dir).eval(), padded_batches(AutoTokenizer.from_pretrained(model_dir), texts)


def timed_rates(loaded: dict[str, tuple], n_rows: int, repeats: int) -> dict[str, float]:
    """Rows per second of each ``(model, batches)``, median over ``repeats`` rounds after a warm-up; each round
    times every model once, one after another, so a change in machine load hits all models alike."""
    with torch.inference_mode():
        for model, batches in loaded.values():
            for batch in batches[:2]:
                model(**batch)
    runners = {name: (lambda model=model, batches=batches: [model(**batch) for batch in batches]) for name, (model, batches) in loaded.items()}
    seconds = interleaved_seconds(runners, rounds=repeats, warmup=0)
    return {name: statistics.median(n_rows / s for s in times) for name, times in seconds.items()}


def throughputs(model_dirs: dict[str, Path], texts: list[str], repeats: int) -> dict[str, float]:
    """CPU inference rows per second of each saved model, timed side by side."""
    return timed_rates({name: load_timed(d, texts) for name, d in model_dirs.items()}, len(texts), repeats)


def run_seed(args: argparse.Namespace, seed: int, work: Path) -> dict[str, dict]:
    """Fine-tune, the +1 epoch reference, and every pruned model for one seed; macro-F1, params and throughput."""
    from hf_qselect.selection.embeddings import default_embedder

    rows: dict[str, dict] = {}
    base = train(args.model or default_embedder(), work / "base", args.epochs, seed, args.dataset)
    print(f"seed {seed} fine-tuned: macro-F1 {base['macro_f1']:.4f}", file=sys.stderr, flush=True)
    rows["unpruned"] = {**base, "dir": str(work / "base")}
    rows["unpruned +1 epoch"] = {**train(str(work / "base"), work / "plus1", 1, seed, args.dataset), "dir": str(work / "plus1")}
    for budget in args.budgets.split(";"):
        heads, ffn, layers = (float(x) for x in budget.split(","))
        for method in args.methods.split(","):
            name = f"{method} heads {heads:g} ffn {ffn:g}" + (f" layers {layers:g}" if layers else "")
            out = work / name.replace(" ", "_")
            pruning = dict(prune_remove_heads=heads, prune_remove_ffn=ffn, prune_remove_layers=layers, prune_method=method, prune_at="start",
                           prune_ffn_multiple=args.ffn_multiple)
            rows[name] = {**train(str(work / "base"), out, 1, seed, args.dataset, pruning), "dir": str(out)}
            print(f"seed {seed} {name}: macro-F1 {rows[name]['macro_f1']:.4f}, params {rows[name]['params']:,}", file=sys.stderr, flush=True)
    _, test = prepare_splits(load_data(args.dataset), DataArguments(dataset=args.dataset, split_seed=seed))
    texts = list(test["text"])[: args.rows]
    for name, rate in throughputs({name: Path(row["dir"]) for name, row in rows.items()}, texts, args.repeats).items():
        rows[name]["rows_per_second"] = rate
        print(f"seed {seed} {name}: {rate:.1f} rows/s", file=sys.stderr, flush=True)
    return rows


def render(args: dict, per_seed: dict) -> tuple[str, dict[str, dict]]:
    """The markdown table (mean ± std over seeds) and its summary numbers, from every seed's rows."""
    seeds = list(per_seed)
    names = list(per_seed[seeds[0]])
    lines = [f"**{args['dataset']}**, packaged MiniLM fine-tuned {args['epochs']:g} epoch(s); pruned models: prune then 1 recovery epoch "
             f"(FFN width rounded down to a multiple of {args['ffn_multiple']}); CPU inference over {args['rows']} test rows, "
             f"{args['threads']} threads, median of {args['repeats']} interleaved rounds; seeds {args['seeds']} (mean ± std)\n",
             "| model | macro-F1 just after pruning | macro-F1 | Δ vs unpruned (points) | Δ vs unpruned +1 epoch (points) | parameters | "
             "params / unpruned | rows/s | speed-up |",
             "|---|---|---|---|---|---|---|---|---|"]
    summary: dict[str, dict] = {}
    for name in names:
        runs = [per_seed[s][name] for s in seeds]
        f1 = [r["macro_f1"] for r in runs]
        delta = [r["macro_f1"] - per_seed[s]["unpruned"]["macro_f1"] for s, r in zip(seeds, runs)]
        delta_plus = [r["macro_f1"] - per_seed[s]["unpruned +1 epoch"]["macro_f1"] for s, r in zip(seeds, runs)]
        speed = [r["rows_per_second"] / per_seed[s]["unpruned"]["rows_per_second"] for s, r in zip(seeds, runs)]
        summary[name] = {"macro_f1": statistics.mean(f1), "delta_points": 100 * statistics.mean(delta),
                         "delta_plus1_points": 100 * statistics.mean(delta_plus), "speedup": statistics.mean(speed), "params": runs[0]["params"]}
        pruned_f1 = [r["pruning_metrics"]["after"]["macro_f1"] for r in runs if r.get("pruning_metrics", {}).get("after")]
        summary[name]["macro_f1_just_after_pruning"] = statistics.mean(pruned_f1) if pruned_f1 else None
        lines.append(f"| {name} | {mean_std(pruned_f1) if pruned_f1 else '–'} | {mean_std(f1)} | {mean_std(delta, 100, 2, True)} | {mean_std(delta_plus, 100, 2, True)} | {runs[0]['params']:,} | "
                     f"{runs[0]['params'] / per_seed[seeds[0]]['unpruned']['params']:.3f} | "
                     f"{statistics.mean(r['rows_per_second'] for r in runs):.1f} | {mean_std(speed, 1, 2)}x |")
    return "\n".join(lines) + "\n", summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="builtin:vader_nyt")
    parser.add_argument("--budgets", default="0.4,0.3,0;0.5,0.5,0", help="heads,ffn,layers; separated by ';'")
    parser.add_argument("--methods", default="greedy,qubo")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seeds", default="0", help="comma-separated; each seed repeats the whole comparison on its own split")
    parser.add_argument("--ffn-multiple", type=int, default=64, help="AnnealingPruner(ffn_multiple=...)")
    parser.add_argument("--rows", type=int, default=512, help="test rows timed for throughput")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--model", default="", help="model to fine-tune first (default: the packaged MiniLM)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="hfq-prune-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    per_seed = {seed: run_seed(args, seed, work / f"seed{seed}") for seed in seeds}
    table, summary = render(vars(args), per_seed)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "pruning.md").write_text(table)
    rows = per_seed[seeds[0]]
    (Path(args.out) / "pruning.json").write_text(json.dumps({"args": vars(args), "rows": rows, "seeds": per_seed, "summary": summary},
                                                            indent=1, default=str))
    print(table)


if __name__ == "__main__":
    main()
