"""Sparse-training diagnostics on MiniLM (22.7M parameters, inside Liu et al.'s 7M-103M range) fine-tuned on Vader NYT:
dense vs structured-pruned (heads 0.4 + FFN 0.3, AnnealingPruner) vs 90% global magnitude pruning of the pretrained
model (task head dense; `_layer90`: the same share in every matrix) vs Liu et al.'s scheme (the dense run's fine-tuned model, then 90% magnitude pruning, then
sparse fine-tuning), each measured at optimizer steps 0, 50 and 200, then macro-F1 on held-out rows; plus the top
eigenvalue of the dense model at step 0 for three seeds (Hessian batch and Lanczos start).

    python benchmarks/diagnostics.py --steps 0,50,200 --seeds 3

Writes benchmarks/results/diagnostics.{json,md} and diagnostics_<config>.png.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hf_qselect.diagnostics import DiagnosticsParams, sparse_training_report

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="0,50,200")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-rows", type=int, default=1000)
    parser.add_argument("--configs", default="dense,structured,magnitude90,dense_then_magnitude90")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--name", default="diagnostics", help="stem of the result files")
    args = parser.parse_args()
    from sklearn.model_selection import train_test_split
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_qselect.data import vader_nyt
    from hf_qselect.pruning import AnnealingPruner
    from hf_qselect.selection.embeddings import default_embedder

    torch.set_num_threads(2)
    path = default_embedder()
    tokenizer = AutoTokenizer.from_pretrained(path)
    ds = vader_nyt()
    y = np.asarray(ds["label"])
    train_rows, eval_rows = train_test_split(np.arange(len(ds)), test_size=args.eval_rows, stratify=y, random_state=0)
    train, held_out = ds.select(train_rows), ds.select(eval_rows)
    steps = tuple(int(s) for s in args.steps.split(","))
    RESULTS.mkdir(exist_ok=True)
    out = {"command": "python benchmarks/diagnostics.py " + " ".join(sys.argv[1:]), "configs": {}, "seeds": []}

    trained = {}

    def model_for(config: str):
        if config.startswith("dense_then_"):
            return trained["dense"]  # the scheme: train densely, prune, train sparse
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        if config == "structured":
            calibration = train.shuffle(seed=0).select(range(256)).map(
                lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True)
            AnnealingPruner(remove_heads=0.4, remove_ffn=0.3, show_progress=False).fit(model, calibration).apply(model)
        return model

    for config in args.configs.split(","):
        params = DiagnosticsParams(sparsity=0.9 if config.endswith("90") else 0.0, scope="layer" if config.endswith("layer90") else "global",
                                   steps=steps, learning_rate=args.learning_rate, show_progress=False)
        start = time.perf_counter()
        report = sparse_training_report(model_for(config), train, tokenizer, params, eval_dataset=held_out)
        out["configs"][config] = {**report.to_dict(), "wall_seconds": time.perf_counter() - start}
        trained[config] = report.model
        report.plot(RESULTS / f"{args.name}_{config}.png")
        print(f"## {config}\n\n{report.to_markdown()}", flush=True)
    for seed in range(args.seeds):
        params = DiagnosticsParams(sparsity=0.0, steps=(0,), seed=seed, show_progress=False)
        start = time.perf_counter()
        report = sparse_training_report(model_for("dense"), train, tokenizer, params)
        out["seeds"].append({"seed": seed, "top": report.checkpoints[0].top_eigenvalues[0], "seconds": time.perf_counter() - start})
        print(out["seeds"][-1], flush=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(out, indent=1))
    lines = [f"`{out['command']}`", "", "| config | step | loss | weight sparsity | updated | top eigenvalue | min eigenvalue | negative mass | trace |",
             "|---|---|---|---|---|---|---|---|---|"]
    for config, r in out["configs"].items():
        for c in r["checkpoints"]:
            updated = "-" if c["updated_share"] is None else f"{c['updated_share']:.4f}"
            lines.append(f"| {config} | {c['step']} | {c['loss']:.4f} | {c['weight_sparsity']:.4f} | {updated} | {c['top_eigenvalues'][0]:.4g} "
                         f"| {c['min_eigenvalue']:.4g} | {c['negative_mass_share']:.3f} | {c['trace']:.4g} |")
    lines += ["", "| config | macro-F1 after the last step | verdicts (connected / sparse / dissipative / small lr / sparse updates) | wall time (s) |",
              "|---|---|---|---|"]
    for config, r in out["configs"].items():
        v = r["verdicts"]
        marks = " / ".join("yes" if v[k]["ok"] else "no" for k in ("connected", "sparse weights", "dissipative", "small learning rate", "sparse updates")
                           if k in v)
        lines.append(f"| {config} | {r['eval_macro_f1']:.4f} | {marks} | {r['wall_seconds']:.0f} |")
    if out["seeds"]:
        tops = np.array([s["top"] for s in out["seeds"]])
        lines += ["", f"Dense, step 0, top eigenvalue over {len(tops)} seeds: " + ", ".join(f"{t:.4g}" for t in tops)
                  + f" (spread {100 * (tops.max() - tops.min()) / tops.mean():.1f}% of the mean; "
                  + f"{np.mean([s['seconds'] for s in out['seeds']]):.0f} s each)"]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
