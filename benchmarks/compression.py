"""Joint pruning + int8 compression of a fine-tuned MiniLM: every baseline and the QUBO side by side, one run.

    python benchmarks/compression.py --datasets vader_nyt,rotten_tomatoes --seeds 0,1,2 --budgets 25%,20%

Per dataset and seed:
1. fine-tune the packaged MiniLM for ``--epochs`` on ``--train-rows`` rows of the 80% training split (``hf-qselect
   train``'s code path; batch 32, lr 5e-5, max length 64);
2. reference: the same model trained one more epoch, fp32 ("fp32 +1 epoch"): every other model also gets exactly
   one more epoch, or none;
3. uniform int8: the reference with every Linear quantized (``quantize_dynamic``), no further training;
4. prune-only: ``AnnealingPruner(remove_heads=0.4, remove_ffn=0.3)`` then one epoch; "prune then int8 everywhere": that model
   with every Linear quantized;
5. per size budget (and per latency budget, ``--latency-budgets``, timed on this machine at fit): the fall-back
   baseline (int8 everywhere, drop the cheapest units, fall back to fp32 what fits) and the QUBO (reward form;
   the penalty form at the first size budget), each fitted on 256 training rows of the fine-tuned model,
   pruned, trained one epoch in fp32, then quantized;
6. macro-F1 on the test split (``--test-rows``), non-embedding and total MB as stored, and the median latency at
   batch 1x64 and 8x128 (``--threads`` threads, every model in interleaved rounds, plus the ONNX Runtime copies of
   the reference and of the QUBO model at the first budget); a Pareto plot of F1 against latency.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from sklearn.metrics import f1_score
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).parent))
from pruning import train  # noqa: E402  (the same fine-tuning path as the pruning benchmark)

from hf_qselect.compression import load_compressed, measure_latency, quantize_linears, weight_bytes  # noqa: E402
from hf_qselect.data import load_data  # noqa: E402
from hf_qselect.measure import mean_std as _mean_std  # noqa: E402
from hf_qselect.pruning import load_pruned  # noqa: E402
from hf_qselect.training import DataArguments  # noqa: E402
from hf_qselect.training.recipes import prepare_splits  # noqa: E402

REFERENCE, UNIFORM, PRUNED, PRUNED_INT8 = "fp32 +1 epoch", "int8 everywhere", "pruned h0.4 f0.3", "pruned + int8 everywhere"
SHAPES = ((1, 64), (8, 128))


def all_int8(model):
    """Every ``nn.Linear`` of a copy of ``model`` quantized (what a user gets from one ``quantize_dynamic`` call)."""
    model = copy.deepcopy(model)
    return quantize_linears(model, [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)])


def macro_f1(model, tokenizer, test, batch_size: int = 64) -> float:
    texts, labels = list(test["text"]), np.asarray(test["label"])
    predictions = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], truncation=True, max_length=64, padding=True, return_tensors="pt")
            predictions.append(model(**batch).logits.argmax(-1).numpy())
    return float(f1_score(labels, np.concatenate(predictions), average="macro"))


def split(dataset: str, seed: int, train_rows: int, test_rows: int, folder: Path) -> tuple[str, object]:
    """The seed's train/test split, capped, saved as a DatasetDict folder the recipe reads."""
    source = dataset if ":" in dataset or "/" in dataset else f"builtin:{dataset}"
    train_split, test = prepare_splits(load_data(source), DataArguments(dataset=source, split_seed=seed))
    train_split = train_split.shuffle(seed=seed).select(range(min(train_rows, len(train_split))))
    test = test.shuffle(seed=seed).select(range(min(test_rows, len(test))))
    DatasetDict({"train": train_split.select_columns(["text", "label"]), "test": test.select_columns(["text", "label"])}).save_to_disk(str(folder))
    return str(folder), test


def run_seed(args: argparse.Namespace, dataset: str, seed: int, work: Path) -> dict[str, dict]:
    from hf_qselect.compression import export_onnx
    from hf_qselect.compression.onnx_export import onnx_session
    from hf_qselect.selection.embeddings import default_embedder

    data, test = split(dataset, seed, args.train_rows, args.test_rows, work / "data")
    log = lambda text: print(f"[{dataset} seed {seed}] {text}", file=sys.stderr, flush=True)  # noqa: E731
    base = train(args.model or default_embedder(), work / "base", args.epochs, seed, data)
    log(f"fine-tuned: macro-F1 {base['macro_f1']:.4f}")
    models, rows = {}, {}
    start = time.perf_counter()
    train(str(work / "base"), work / "plus1", 1, seed, data)
    models[REFERENCE] = load_pruned(work / "plus1").eval()
    rows[REFERENCE] = {"train_seconds": time.perf_counter() - start}
    models[UNIFORM] = all_int8(models[REFERENCE])
    start = time.perf_counter()
    train(str(work / "base"), work / "pruned", 1, seed, data, dict(prune_remove_heads=0.4, prune_remove_ffn=0.3, prune_at="start", prune_show_progress=False))
    models[PRUNED] = load_pruned(work / "pruned").eval()
    rows[PRUNED] = {"train_seconds": time.perf_counter() - start}
    models[PRUNED_INT8] = all_int8(models[PRUNED])
    budgets = args.budgets.split(",")
    runs = [(f"{m} {b}", dict(compress_method=m, compress_budget=b)) for b in budgets for m in ("fallback", "qubo")]
    if args.penalty:
        runs.append((f"qubo {budgets[0]} penalty", dict(compress_method="qubo", compress_budget=budgets[0], compress_budget_form="penalty")))
    for ms in filter(None, args.latency_budgets.split(",")):
        runs += [(f"{m} {float(ms):g}ms", dict(compress_method=m, compress_latency_ms=float(ms))) for m in ("fallback", "qubo")]
    for name, options in runs:
        out = work / name.replace(" ", "_").replace("%", "pc")
        start = time.perf_counter()
        summary = train(str(work / "base"), out, 1, seed, data, dict(quantize=True, prune_at="start", compress_show_progress=False, **options))
        models[name] = load_compressed(out)
        report = json.loads((out / "compression_report.json").read_text())
        rows[name] = {"train_seconds": time.perf_counter() - start, "recipe_macro_f1": summary["macro_f1"],
                      "report": {k: report[k] for k in ("heads_after", "ffn_after", "int8", "int8_other", "drop_loss", "quant_loss",
                                                         "cost_unit", "cost_after", "limit", "search", "fill_moves", "timings")}}
        log(f"{name}: {report['method']} heads {sum(report['heads_after'])}, FFN {sum(report['ffn_after'])}, recipe macro-F1 {summary['macro_f1']:.4f}")
    tokenizer = AutoTokenizer.from_pretrained(work / "plus1")
    for name, model in models.items():
        non_embedding, total = weight_bytes(model)
        rows.setdefault(name, {}).update(macro_f1=macro_f1(model, tokenizer, test), non_embedding_mb=non_embedding / 1e6, total_mb=total / 1e6)
        log(f"{name}: macro-F1 {rows[name]['macro_f1']:.4f}, non-embedding {non_embedding / 1e6:.2f} MB")
    onnx_names = {f"ONNX {REFERENCE}": models[REFERENCE], f"ONNX qubo {budgets[0]}": models[f"qubo {budgets[0]}"]}
    timed = dict(models)
    for name, model in onnx_names.items():
        folder = work / name.replace(" ", "_").replace("%", "pc")
        export_onnx(model, folder, tokenizer)
        timed[name] = onnx_session(folder, threads=args.threads)
        rows[name] = {"onnx_mb": (folder / "model.onnx").stat().st_size / 1e6}
    for batch, length in SHAPES:
        for name, ms in measure_latency(timed, batch, length, rounds=args.rounds, repeats=args.repeats).items():
            rows[name][f"ms_{batch}x{length}"] = ms
    log("latency: " + ", ".join(f"{n} {r['ms_8x128']:.1f} ms" for n, r in rows.items()))
    return rows


def fit_only(args: argparse.Namespace, dataset: str, seed: int, work: Path) -> dict[str, dict]:
    """The fine-tuned model and every compressor fitted on the same 256 rows the trainer would use: the estimated
    loss and the modelled cost of each answer, without training or timing the results."""
    from hf_qselect.compression import AnnealingCompressor
    from hf_qselect.selection.embeddings import default_embedder

    data, _ = split(dataset, seed, args.train_rows, args.test_rows, work / "data")
    train(args.model or default_embedder(), work / "base", args.epochs, seed, data)
    model = load_pruned(work / "base").eval()
    tokenizer = AutoTokenizer.from_pretrained(work / "base")
    rows = load_data(data)["train"]
    rows = rows.select(range(min(256, len(rows)))).map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True)
    budgets = args.budgets.split(",")
    runs = [(f"{m} {b}", dict(method=m, budget=b)) for b in budgets for m in ("fallback", "qubo")]
    runs += [(f"{m} {float(ms):g}ms", dict(method=m, latency_ms=float(ms))) for ms in filter(None, args.latency_budgets.split(","))
             for m in ("fallback", "qubo")]
    out = {}
    for name, options in runs:
        report = AnnealingCompressor(seed=seed, show_progress=False, **options).fit(model, rows).report_
        out[name] = {"loss": report.drop_loss + report.quant_loss, "cost": report.cost_after, "limit": report.limit}
        print(f"[{dataset} seed {seed}] {name}: estimated loss {out[name]['loss']:.5f}, modelled cost {report.cost_after:.4g}",
              file=sys.stderr, flush=True)
    return out


def render_fit_only(results: dict) -> str:
    lines = ["| dataset | budget | fallback: estimated loss | QUBO: estimated loss | QUBO lower / equal / higher (runs) |", "|---|---|---|---|---|"]
    for dataset, per_seed in results.items():
        names = list(next(iter(per_seed.values())))
        for budget in dict.fromkeys(n.split(" ", 1)[1] for n in names):
            fallback = [r[f"fallback {budget}"]["loss"] for r in per_seed.values()]
            qubo = [r[f"qubo {budget}"]["loss"] for r in per_seed.values()]
            lower = sum(q < g - 1e-12 for q, g in zip(qubo, fallback))
            higher = sum(q > g + 1e-12 for q, g in zip(qubo, fallback))
            lines.append(f"| {dataset} | {budget} | {statistics.mean(fallback):.5f} | {statistics.mean(qubo):.5f} | "
                         f"{lower} / {len(qubo) - lower - higher} / {higher} |")
    return "\n".join(lines) + "\n"


def mean_std(values: list[float], digits: int = 2) -> str:
    return _mean_std(values, digits)


def render(args: dict, results: dict) -> tuple[str, dict]:
    lines, summary = [], {}
    for dataset, per_seed in results.items():
        seeds = list(per_seed)
        names = list(per_seed[seeds[0]])
        lines += [f"\n**{dataset}**: MiniLM fine-tuned {args['epochs']:g} epoch on {args['train_rows']} rows, then one more epoch "
                  f"(or none) per model; {args['test_rows']} test rows; latency median of {args['rounds']}x{args['repeats']} interleaved "
                  f"passes, {args['threads']} threads; seeds {args['seeds']} (mean ± std)\n",
                  "| model | macro-F1 | Δ vs fp32 +1 epoch (points) | non-embedding MB | x smaller | total MB | ms 1x64 | ms 8x128 | "
                  "throughput 8x128 vs fp32 |", "|---" * 9 + "|"]
        summary[dataset] = {}
        for name in names:
            runs = [per_seed[s][name] for s in seeds]
            ref = [per_seed[s][REFERENCE] for s in seeds]
            speed = [r["ms_8x128"] and f["ms_8x128"] / r["ms_8x128"] for r, f in zip(runs, ref)]
            entry = {"ms_1x64": statistics.mean(r["ms_1x64"] for r in runs), "ms_8x128": statistics.mean(r["ms_8x128"] for r in runs),
                     "speedup_8x128": statistics.mean(speed)}
            if "macro_f1" in runs[0]:
                delta = [100 * (r["macro_f1"] - f["macro_f1"]) for r, f in zip(runs, ref)]
                smaller = [f["non_embedding_mb"] / r["non_embedding_mb"] for r, f in zip(runs, ref)]
                entry.update(macro_f1=statistics.mean(r["macro_f1"] for r in runs), delta_points=statistics.mean(delta),
                             non_embedding_mb=statistics.mean(r["non_embedding_mb"] for r in runs), smaller=statistics.mean(smaller),
                             total_mb=statistics.mean(r["total_mb"] for r in runs))
                lines.append(f"| {name} | {mean_std([r['macro_f1'] for r in runs], 4)} | {mean_std(delta)} | {entry['non_embedding_mb']:.2f} | "
                             f"{entry['smaller']:.2f}x | {entry['total_mb']:.1f} | {mean_std([r['ms_1x64'] for r in runs], 1)} | "
                             f"{mean_std([r['ms_8x128'] for r in runs], 1)} | {mean_std(speed)}x |")
            else:
                lines.append(f"| {name} (onnxruntime, {runs[0]['onnx_mb']:.1f} MB file) | as above | | | | | {mean_std([r['ms_1x64'] for r in runs], 1)} | "
                             f"{mean_std([r['ms_8x128'] for r in runs], 1)} | {mean_std(speed)}x |")
            summary[dataset][name] = entry
    return "\n".join(lines) + "\n", summary


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summary), figsize=(6 * len(summary), 4.5), dpi=110, squeeze=False)
    for ax, (dataset, entries) in zip(axes[0], summary.items()):
        for name, e in entries.items():
            if "macro_f1" not in e:
                continue
            marker = "*" if name.startswith("qubo") else "s" if name.startswith("fallback") else "o"
            ax.scatter(e["ms_8x128"], 100 * e["macro_f1"], marker=marker, s=80 if marker == "*" else 40)
            ax.annotate(name, (e["ms_8x128"], 100 * e["macro_f1"]), fontsize=7, xytext=(4, 2), textcoords="offset points")
        ax.set_xlabel("latency at 8x128, ms (2 threads)")
        ax.set_ylabel("macro-F1 (%)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="vader_nyt,rotten_tomatoes")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--budgets", default="25%,20%", help="size budgets of the fall-back baseline and the QUBO")
    parser.add_argument("--latency-budgets", default="30", help="latency budgets in ms at 8x128 (timed at fit on this machine); empty: none")
    parser.add_argument("--no-penalty", dest="penalty", action="store_false", help="skip the penalty-form QUBO at the first budget")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="", help="model to fine-tune first (default: the packaged MiniLM)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="compression")
    parser.add_argument("--fit-only", action="store_true", help="only fine-tune and fit: estimated loss and modelled cost per answer")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="hfq-compress-"))
    if args.fit_only:
        found = {d: {s: fit_only(args, d, int(s), work / f"{i}_{Path(d).stem}" / f"seed{s}") for s in args.seeds.split(",")}
                 for i, d in enumerate(args.datasets.split(","))}
        table = render_fit_only(found)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"{args.name}.md").write_text(table)
        (Path(args.out) / f"{args.name}.json").write_text(json.dumps({"args": vars(args), "results": found}, indent=1))
        print(table)
        return
    results = {d: {s: run_seed(args, d, int(s), work / f"{i}_{Path(d).stem}" / f"seed{s}") for s in args.seeds.split(",")}
               for i, d in enumerate(args.datasets.split(","))}
    table, summary = render(vars(args), results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.md").write_text(table)
    (out / f"{args.name}.json").write_text(json.dumps({"args": vars(args), "results": results, "summary": summary}, indent=1, default=str))
    plot(summary, out / f"{args.name}.png")
    print(table)


if __name__ == "__main__":
    main()
