"""Compressing SmolLM2-135M-Instruct (grouped-query Llama) within a size budget: the QUBO against its greedy fall-back
and uniform int8.

    python benchmarks/decoder_compression.py --budget 25% --calibration-rows 128 --eval-rows 100

1. the packaged SmolLM2-135M-Instruct GGUF, dequantized to float32 once and cached as safetensors (``decoders.py``);
2. calibration: ``--calibration-rows`` Alpaca rows (seed ``--seed``; chat template, loss on the response);
3. for each of ``--qschemes`` (int8 scales per output row or per tensor): ``AnnealingCompressor(budget=...)`` with
   ``method="qubo"`` and ``method="fallback"`` (each fits its own sensitivity pass on the same rows), and every decoder
   Linear int8 with nothing dropped ("uniform int8");
4. each: non-embedding bytes as stored, perplexity on ``--eval-rows`` held-out Alpaca responses and as many GSM8K test
   answers, prefill tokens/s at 8 x 256 and decode tokens/s at batch 1, interleaved with the fp32 model; each QUBO
   model is saved with ``save_compressed`` and reloaded, and its logits compared.

Writes ``benchmarks/results/<name>.json`` and ``.md``. Alpaca is CC BY-NC 4.0: benchmarks only, never committed.
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from decoders import alpaca, cached_model, gsm8k, perplexity, speeds, write_results  # noqa: E402
from hf_qselect.compression import AnnealingCompressor, load_compressed, save_compressed  # noqa: E402
from hf_qselect.compression.quantize import quantize_linears, weight_bytes  # noqa: E402
from hf_qselect.models import ROLES, adapter_for, load_causal_lm  # noqa: E402
from hf_qselect.text_formats import tokenize_causal  # noqa: E402


def uniform_int8(model, per_channel: bool):
    """Every Linear of every decoder layer int8 (dynamic; scales per tensor or per output row), nothing dropped."""
    adapter = adapter_for(model)
    prefix = adapter.layer_prefix(model)
    names = [f"{prefix}.{i}.{name}" for i, layer in enumerate(adapter.layers(model)) for role in ROLES for name in adapter.linear(layer, role)]
    return quantize_linears(model, names, per_channel=per_channel)


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    base, tokenizer = load_causal_lm(cached_model())
    pad = tokenizer.pad_token_id
    pool = alpaca()
    held_out = pool.select(range(len(pool) - args.eval_rows, len(pool)))
    evaluation = {"alpaca": tokenize_causal(held_out, tokenizer, args.max_length),
                  "gsm8k": tokenize_causal(gsm8k(args.eval_rows), tokenizer, args.max_length)}
    rows = tokenize_causal(pool.shuffle(seed=args.seed).select(range(args.calibration_rows)), tokenizer, args.max_length)
    fp32 = weight_bytes(base)[0]
    results = {"args": vars(args), "fp32": {"non_embedding_bytes": fp32, "ppl": {k: perplexity(base, v, pad) for k, v in evaluation.items()}}}
    print("fp32", results["fp32"], flush=True)
    models = {}
    for qscheme in args.qschemes.split(","):
        for method in ("qubo", "fallback"):
            model = copy.deepcopy(base)
            began = time.perf_counter()
            compressor = AnnealingCompressor(budget=args.budget, method=method, qscheme=qscheme, seed=args.seed, batch_size=4, show_progress=False)
            compressor.fit(model, rows).apply(model)
            name = f"{method} ({qscheme})"
            results[name] = {"fit_seconds": time.perf_counter() - began, "summary": compressor.report_.summary(),
                             "heads_after": compressor.report_.heads_after, "ffn_after": compressor.report_.ffn_after,
                             "int8_modules": int(sum(map(sum, compressor.report_.int8))),
                             "predicted_bytes": compressor.report_.predicted_bytes_after}
            models[name] = model
        models[f"uniform int8 ({qscheme})"] = uniform_int8(copy.deepcopy(base), qscheme == "per_channel")
        results[f"uniform int8 ({qscheme})"] = {}
    for name, model in models.items():
        results[name].update(non_embedding_bytes=weight_bytes(model)[0], ppl={k: perplexity(model, v, pad) for k, v in evaluation.items()})
        print(name, {k: v for k, v in results[name].items() if k != "summary"}, flush=True)
    x = torch.tensor([tokenize_causal(held_out.select(range(4)), tokenizer, 64)["input_ids"][0]])
    for name in (n for n in models if n.startswith("qubo")):  # each QUBO model through save_compressed and load_compressed
        with tempfile.TemporaryDirectory() as scratch, torch.no_grad():
            again = load_compressed(save_compressed(models[name], Path(scratch) / "int8", tokenizer))
            results[name]["reload_identical_logits"] = bool(torch.equal(again(input_ids=x).logits, models[name](input_ids=x).logits))
    timed = speeds({"fp32": base, **models}, tokenizer.vocab_size, args.rounds, args.decode_tokens)
    for name in timed:
        results.setdefault(name, {})["speed"] = timed[name]
    return results


def render(results: dict) -> str:
    a = results["args"]
    fp32 = results["fp32"]
    lines = [f"SmolLM2-135M-Instruct, budget {a['budget']} of the fp32 non-embedding bytes ({fp32['non_embedding_bytes'] / 1e6:.1f} MB); "
             f"calibration {a['calibration_rows']} Alpaca rows (seed {a['seed']}); perplexity on {a['eval_rows']} held-out Alpaca responses "
             f"and {a['eval_rows']} GSM8K test answers, {a['max_length']} tokens; prefill tokens/s at 8 x 256 and decode tokens/s at "
             f"batch 1 ({a['decode_tokens']} new tokens), median of {a['rounds']} interleaved rounds, {a['threads']} threads.\n",
             "| model | non-embedding MB | of fp32 | Alpaca ppl | GSM8K ppl | prefill tok/s | decode tok/s | fit s |", "|---" * 8 + "|"]
    names = [n for n in results if n not in ("args",)]
    for name in names:
        r = results[name]
        speed = r.get("speed", {})
        fit = f"{r['fit_seconds']:.0f}" if "fit_seconds" in r else ""
        lines.append(f"| {name} | {r['non_embedding_bytes'] / 1e6:.1f} | {r['non_embedding_bytes'] / fp32['non_embedding_bytes']:.2%} | "
                     f"{r['ppl']['alpaca']:.3f} | {r['ppl']['gsm8k']:.3f} | {speed.get('prefill_tok_s', float('nan')):.0f} | "
                     f"{speed.get('decode_tok_s', float('nan')):.1f} | {fit} |")
    for name in names:
        if "summary" in results[name]:
            lines.append(f"\n{name}: {results[name]['summary']}")
    for name in names:
        if "reload_identical_logits" in results[name]:
            lines.append(f"\n{name} saved with save_compressed and reloaded gives identical logits: {results[name]['reload_identical_logits']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="25%")
    parser.add_argument("--calibration-rows", type=int, default=128)
    parser.add_argument("--eval-rows", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--qschemes", default="per_channel,per_tensor", help="int8 scales to compare: per_channel, per_tensor")
    parser.add_argument("--name", default="decoder_compression")
    args = parser.parse_args(argv)
    results = run(args)
    write_results(args.name, results, render(results))


if __name__ == "__main__":
    main()
