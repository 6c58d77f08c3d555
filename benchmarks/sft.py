"""Selecting Alpaca rows for LoRA fine-tuning of SmolLM2-135M-Instruct: QUBO (quality + diversity) against the baselines.

    python benchmarks/sft.py --pool 300 --eval-rows 64 --keeps 0.5,0.25,0.1 --seeds 0,1,2

1. a fixed pool of ``--pool`` Alpaca rows (non-empty outputs, shuffled with ``--pool-seed``), and ``--eval-rows``
   Alpaca rows outside it plus as many GSM8K test answers (question as the prompt) held out; every row through the
   chat template, the loss on the response only, cut at ``--max-length`` tokens;
2. one quality score per pool row (``--quality``: Superfiltering's IFD from SmolLM2 itself), computed once and shared
   by every method that reads a score (``qubo``, ``deita``, ``quality``); MiniLM embeddings (default backend),
   computed once with an empty cache and shared;
3. per seed and keep rate, each method selects exactly ``round(keep * pool)`` rows (the seed drives selection and
   training), LoRA (r 8, alpha 16, lr 2e-4, batch 8) trains ``--epochs`` epochs on them (a smaller subset trains
   fewer steps), and the held-out losses are measured; ``full`` trains on the whole pool;
4. paired differences over the seeds (plain paired t interval: the held-out rows are fixed, the seeds are the
   repeats); wall time per run = selection (+ the shared scoring and embedding it needs) + training.

Writes ``benchmarks/results/<name>.json`` (after every run: ``--resume`` picks up where a run stopped), ``.md`` and
``.png``. Alpaca is CC BY-NC 4.0: benchmarks only, never committed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from decoders import SHARED, cached_model  # noqa: E402
from hf_qselect import InstanceSelector  # noqa: E402
from hf_qselect.models import load_causal_lm  # noqa: E402
from hf_qselect.output_dir import replace_file, save_figure  # noqa: E402
from hf_qselect.selection.quality_scores import causal_quality  # noqa: E402
from hf_qselect.selection.stats import paired  # noqa: E402
from hf_qselect.text_formats import tokenize_causal  # noqa: E402
from hf_qselect.training.causal_eval import held_out_loss, lora_epochs_score  # noqa: E402

SCORED = ("qubo", "deita", "quality")  # the methods that read the quality score
EMBEDDED = ("qubo", "deita", "kcenter", "semdedup", "facility")


def data(args: argparse.Namespace) -> tuple[Dataset, Dataset, Dataset]:
    root = Path(args.data_dir)
    rows = [r for r in json.loads((root / "alpaca" / "alpaca_data.json").read_text()) if r["output"].strip()]
    order = np.random.default_rng(args.pool_seed).permutation(len(rows))
    pool = Dataset.from_list([rows[i] for i in order[: args.pool]])
    held = Dataset.from_list([rows[i] for i in order[args.pool: args.pool + args.eval_rows]])
    gsm = [json.loads(line) for line in (root / "gsm8k" / "test.jsonl").read_text().splitlines()[: args.eval_rows]]
    return pool, held, Dataset.from_dict({"prompt": [r["question"] for r in gsm], "completion": [r["answer"] for r in gsm]})


def save(results: dict, out: Path, name: str) -> None:
    replace_file(out / f"{name}.json", lambda p: p.write_text(json.dumps(results, indent=1) + "\n"), ours=lambda p: True, overwrite=True,
                 what="benchmark results")


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    results = json.loads(path.read_text()) if args.resume and path.exists() else {"runs": {}}
    pool, held, gsm = data(args)
    model_dir = Path(args.model) if args.model else cached_model()
    model, tokenizer = load_causal_lm(model_dir)
    tokens = tokenize_causal(pool, tokenizer, args.max_length)
    evals = {"alpaca": tokenize_causal(held, tokenizer, args.max_length), "gsm8k": tokenize_causal(gsm, tokenizer, args.max_length)}
    cache = tempfile.mkdtemp(prefix="hfq-sft-")
    results.update(settings=vars(args), model=model_dir.name, rows={"pool": len(pool), "alpaca_held_out": len(held), "gsm8k": len(gsm)})
    if "base" not in results:
        results["base"] = {k: held_out_loss(model, v) for k, v in evals.items()}
        print("base", results["base"], flush=True)

    start = time.perf_counter()
    scores = causal_quality(pool, args.quality, str(model_dir), max_length=args.max_length, cache_dir=cache, show_progress=False)
    results.setdefault("shared_seconds", {})["quality"] = time.perf_counter() - start
    pool = pool.add_column("score", scores.tolist())
    start = time.perf_counter()
    probe = InstanceSelector(keep=0.5, label_column=None, cache_dir=cache, show_progress=False, seed=0).fit(pool)
    results["shared_seconds"]["embed"] = probe.report_.timings.get("embed", time.perf_counter() - start)
    results["embedding_backend"] = probe.report_.embedding_precision
    save(results, out, args.name)

    methods = args.methods.split(",")
    keeps = [float(k) for k in args.keeps.split(",")]
    for seed in [int(s) for s in args.seeds.split(",")]:
        cells = [("full", 1.0)] if "full" in methods else []
        cells += [(m, k) for k in keeps for m in methods if m != "full"]
        for method, keep in cells:
            key = f"{method}|{keep:g}|{seed}"
            if key in results["runs"]:
                continue
            began = time.perf_counter()
            if method == "full":
                kept = np.arange(len(pool))
            else:
                options = {"quality": "score", "quality_weight": args.quality_weight} if method in SCORED else {}
                selector = InstanceSelector(keep=keep, method=method, label_column=None, seed=seed, cache_dir=cache, show_progress=False,
                                            **options).fit(pool)
                kept = selector.indices_
            selected = time.perf_counter() - began
            shared = (results["shared_seconds"]["quality"] if method in SCORED else 0.0) + \
                     (results["shared_seconds"]["embed"] if method in EMBEDDED else 0.0)
            began = time.perf_counter()
            losses = lora_epochs_score(model, tokens.select(kept), evals, epochs=args.epochs, seed=seed)
            trained = time.perf_counter() - began
            results["runs"][key] = {"method": method, "keep": keep, "seed": seed, "rows": int(len(kept)), "loss": losses,
                                    "seconds": {"select": selected + shared, "train": trained}}
            print(key, len(kept), {k: round(v, 4) for k, v in losses.items()}, f"select {selected + shared:.1f}s train {trained:.0f}s",
                  flush=True)
            save(results, out, args.name)
    return results


def table(results: dict) -> list[dict]:
    runs = list(results["runs"].values())
    seeds = sorted({r["seed"] for r in runs})
    by = {(r["method"], r["keep"], r["seed"]): r for r in runs}
    rows = []
    cells = sorted({(r["method"], r["keep"]) for r in runs}, key=lambda c: (-c[1], c[0]))
    for method, keep in cells:
        done = [s for s in seeds if (method, keep, s) in by]
        row = {"method": method, "keep": keep, "seeds": len(done), "rows": by[(method, keep, done[0])]["rows"]}
        for name in ("alpaca", "gsm8k"):
            loss = np.array([by[(method, keep, s)]["loss"][name] for s in done])
            row[name] = {"mean": float(loss.mean()), "std": float(loss.std())}
            for ref, ref_keep in (("random", keep), ("full", 1.0)):
                paired_seeds = [s for s in done if (ref, ref_keep, s) in by]
                if ref == method or len(paired_seeds) < 1:
                    continue
                a = np.array([by[(method, keep, s)]["loss"][name] for s in paired_seeds])
                b = np.array([by[(ref, ref_keep, s)]["loss"][name] for s in paired_seeds])
                row[name][f"vs_{ref}"] = paired(a, b, 0.0).to_dict()
                row[name][f"vs_{ref}_relative"] = float(np.mean(a / b) - 1.0)
        row["seconds"] = {k: float(np.min([by[(method, keep, s)]["seconds"][k] for s in done])) for k in ("select", "train")}  # least disturbed
        rows.append(row)
    return rows


def render(results: dict) -> str:
    s = results["settings"]
    base = results["base"]
    model = results.get("model", "smollm2-135m-instruct")
    lines = [f"{model}: LoRA r 8 for {s['epochs']:g} epoch(s) on the kept rows of a {results['rows']['pool']}-row Alpaca pool "
             f"(pool seed {s['pool_seed']}); held-out loss (nats per response token, lower is better) on {results['rows']['alpaca_held_out']} "
             f"Alpaca rows outside the pool and {results['rows']['gsm8k']} GSM8K test answers; sequences cut at {s['max_length']} tokens. "
             f"Quality score: {s['quality']} from the same model ({results['shared_seconds']['quality']:.0f} s for the pool); embeddings: MiniLM, "
             f"{results.get('embedding_backend')} backend ({results['shared_seconds']['embed']:.1f} s). Seeds {s['seeds']}; "
             f"Δ = paired mean difference over the seeds with its 95% t interval (negative: lower loss than the reference). "
             f"Before fine-tuning: Alpaca {base['alpaca']:.4f}, GSM8K {base['gsm8k']:.4f}. Seconds: the fastest seed's (selection "
             f"includes the shared scoring and embedding a method needs; training includes the two held-out evaluations).\n",
             "| keep | method | rows | Alpaca loss | Δ vs random | vs full | GSM8K loss | Δ vs random | vs full | select s | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def delta(cell: dict, ref: str) -> str:
        d = cell.get(f"vs_{ref}")
        if d is None:
            return "–"
        return f"{d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"

    for row in table(results):
        cells = []
        for name in ("alpaca", "gsm8k"):
            c = row[name]
            rel = c.get("vs_full_relative")
            cells += [f"{c['mean']:.4f} ± {c['std']:.4f}", delta(c, "random"), "–" if rel is None else f"{100 * rel:+.2f}%"]
        lines.append(f"| {row['keep']:g} | {row['method']} | {row['rows']} | " + " | ".join(cells) +
                     f" | {row['seconds']['select']:.1f} | {row['seconds']['train']:.0f} |")
    return "\n".join(lines + targets(results)) + "\n"


def targets(results: dict, method: str = "qubo") -> list[str]:
    """Issue 27's targets, cell by cell, met or not."""
    rows = {(r["method"], r["keep"]): r for r in table(results)}
    lines = ["", "| target | measured | met? |", "|---|---|---|"]
    q = rows.get((method, 0.25))
    if q and "vs_random" in q["alpaca"]:
        d = q["alpaca"]["vs_random"]
        met = d["ci95"][1] < 0
        lines.append(f"| keep 0.25: {method}'s Alpaca loss below random's, 95% interval excluding 0 | {d['mean']:+.4f} "
                     f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] | {'yes' if met else '**no**'} |")
        for name in ("alpaca", "gsm8k"):
            others = {m: r[name]["mean"] for (m, k), r in rows.items() if k == 0.25 and m != method}
            beaten = [m for m, v in others.items() if v < q[name]["mean"]]
            lines.append(f"| keep 0.25: {method} at or below every other method's mean, {name} | {q[name]['mean']:.4f}; lower: "
                         f"{', '.join(f'{m} {others[m]:.4f}' for m in beaten) or 'none'} | {'yes' if not beaten else '**no**'} |")
    half = rows.get((method, 0.5))
    if half and "vs_full_relative" in half["alpaca"]:
        for name in ("alpaca", "gsm8k"):
            rel = half[name]["vs_full_relative"]
            lines.append(f"| keep 0.5: within 1% (relative) of full data, {name} | {100 * rel:+.2f}% | {'yes' if rel <= 0.01 else '**no**'} |")
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table(results)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, ("alpaca", "gsm8k")):
        full = [r for r in rows if r["method"] == "full"]
        if full:
            ax.axhline(full[0][name]["mean"], color="black", linestyle="--", label="full pool")
        ax.axhline(results["base"][name], color="grey", linestyle=":", label="before fine-tuning")
        for method in sorted({r["method"] for r in rows} - {"full"}):
            mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["keep"])
            ax.errorbar([r["keep"] for r in mine], [r[name]["mean"] for r in mine], yerr=[r[name]["std"] for r in mine], marker="o",
                        capsize=3, label=method)
        ax.set_xscale("log")
        ax.set_xlabel("keep rate")
        ax.set_ylabel("held-out loss (lower is better)")
        ax.set_title(f"{name} held-out")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    try:
        save_figure(fig, path, overwrite=True, dpi=110)
    finally:
        plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=300)
    parser.add_argument("--pool-seed", type=int, default=1234)
    parser.add_argument("--eval-rows", type=int, default=64)
    parser.add_argument("--keeps", default="0.5,0.25,0.1")
    parser.add_argument("--methods", default="full,random,qubo,kcenter,semdedup,deita,quality")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--quality", default="ifd", choices=["ifd", "loss"])
    parser.add_argument("--quality-weight", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="a causal LM folder (default: SmolLM2-135M-Instruct, converted once from the package)")
    parser.add_argument("--data-dir", default=str(SHARED), help="holds alpaca/alpaca_data.json and gsm8k/test.jsonl")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in <name>.json")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md and .png from <name>.json")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="sft")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = json.loads((out / f"{args.name}.json").read_text()) if args.render_only else run(args)
    replace_file(out / f"{args.name}.md", lambda p: p.write_text(render(results)), ours=lambda p: True, overwrite=True, what="benchmark table")
    plot(results, out / f"{args.name}.png")
    print(render(results))


if __name__ == "__main__":
    main()
