"""Embedding backends side by side: throughput, agreement with torch fp32, and what the selection probe sees.

    python benchmarks/embedding.py --datasets vader_nyt,rotten_tomatoes,convention_2012 --backends torch,onnx,onnx-int8,static

Per dataset, every backend embeds every row (the ONNX export is made before timing and reused: it is made once
per model and cached); rows/s on ``--threads`` threads, best of ``--repeats`` passes over the first ``--timed-rows``
rows; the cosine of each row's embedding with torch fp32's (median, 1st percentile); and the paired probe
(``--folds`` x ``--probe-repeats`` stratified splits shared by every backend): the default QUBO selection at each
``--keep`` and all rows, a logistic regression on the kept rows, macro-F1 on the split's test part. The probe
is run twice: on the backend's own vectors (selection and classifier), and with the selection made on the
backend's vectors but the classifier on torch fp32's ("same judge"), which isolates how good the kept rows are.
A backend whose vectors live in another space (``static``: 256-d) has no cosine with torch.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset

from hf_qselect import InstanceSelector
from hf_qselect.data import BUILTINS
from hf_qselect.selection.embeddings import embed_texts
from hf_qselect.selection.probe import paired_probe


def timed(texts: list[str], backend: str, repeats: int, cache: str) -> float:
    precision = "float32" if backend == "torch" else backend
    embed_texts(texts[:8], precision=precision, cache_dir=cache, show_progress=False)  # export (once) and warm up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        embed_texts(texts, precision=precision, cache_dir=cache, show_progress=False)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def run(args: argparse.Namespace) -> dict:
    cache = tempfile.mkdtemp(prefix="hfq-onnx-")
    backends = args.backends.split(",")
    keeps = [float(k) for k in args.keep.split(",")]
    results = {}
    for name in args.datasets.split(","):
        ds = BUILTINS[f"builtin:{name}"]()
        texts, codes = list(ds["text"]), np.unique(np.asarray(ds["label"]), return_inverse=True)[1]
        words = [len(t.split()) for t in texts]
        entry = {"rows": len(texts), "median_words": float(np.median(words)), "backends": {}}
        reference = None
        for backend in backends:
            precision = "float32" if backend == "torch" else backend
            rate = timed(texts[: args.timed_rows], backend, args.repeats, cache)
            vectors = embed_texts(texts, precision=precision, cache_dir=cache, show_progress=False)
            reference = vectors if reference is None else reference
            same_space = vectors.shape == reference.shape
            cosine = (vectors * reference).sum(axis=1) if same_space else np.full(len(vectors), np.nan)

            def select(x, y, method, keep, seed):
                return InstanceSelector(keep=keep, seed=seed, show_progress=False).fit(Dataset.from_dict({"label": y.tolist()}), embeddings=x).indices_

            row_of = {row.tobytes(): i for i, row in enumerate(reference)}  # the probe hands select reference rows

            def select_on_backend(x, y, method, keep, seed):
                return select(vectors[[row_of[r.tobytes()] for r in x]], y, method, keep, seed)

            probe = paired_probe(vectors, codes, select, ["qubo"], keeps, folds=args.folds, repeats=args.probe_repeats, seed=0, show_progress=False)
            judged = paired_probe(reference, codes, select_on_backend, ["qubo"], keeps, folds=args.folds, repeats=args.probe_repeats,
                                  seed=0, show_progress=False)
            entry["backends"][backend] = {"rows_per_second": rate, "dim": int(vectors.shape[1]),
                                          "cosine_median": float(np.median(cosine)) if same_space else None,
                                          "cosine_p1": float(np.percentile(cosine, 1)) if same_space else None, "full": probe.full.tolist(),
                                          "qubo": {str(k): v.tolist() for k, v in probe.scores["qubo"].items()},
                                          "qubo_same_judge": {str(k): v.tolist() for k, v in judged.scores["qubo"].items()}}
            print(f"{name} {backend}: {rate:.1f} rows/s, cosine median {np.median(cosine):.4f}, probe full {probe.full.mean():.4f}, "
                  + ", ".join(f"keep {k} {v.mean():.4f}" for k, v in probe.scores["qubo"].items()) + "; same judge "
                  + ", ".join(f"keep {k} {v.mean():.4f}" for k, v in judged.scores["qubo"].items()), file=sys.stderr, flush=True)
        results[name] = entry
    return results


def render(results: dict, args: dict) -> str:
    keeps = args["keep"].split(",")
    lines = [f"Rows/s: best of {args['repeats']} passes over {args['timed_rows']} rows, {args['threads']} threads. Probe: "
             f"{args['folds']} folds x {args['probe_repeats']} repeats shared by every backend; Δ = paired mean difference from torch fp32 "
             "(points). Own vectors: selection and classifier on the backend's vectors. Same judge: selection on the backend's "
             "vectors, classifier on torch fp32's.\n",
             "| dataset (median words) | backend | dim | rows/s | x torch | cosine median | cosine 1st pct | probe all rows (Δ) | "
             + " | ".join(f"keep {k}, own vectors (Δ)" for k in keeps) + " | "
             + " | ".join(f"keep {k}, same judge (Δ)" for k in keeps) + " |", "|---" * (8 + 2 * len(keeps)) + "|"]
    for name, entry in results.items():
        base = entry["backends"][next(iter(entry["backends"]))]
        for backend, r in entry["backends"].items():
            cells = []
            pairs = [(r["full"], base["full"])] + [(r["qubo"][k], base["qubo"][k]) for k in keeps]
            pairs += [(r["qubo_same_judge"][k], base["qubo_same_judge"][k]) for k in keeps if "qubo_same_judge" in r]
            for values, ref in pairs:
                delta = 100 * statistics.mean(np.subtract(values, ref))
                cells.append(f"{statistics.mean(values):.4f} ({delta:+.2f})")
            cosine = ("n/a (other space)", "n/a") if r.get("cosine_median") is None else (f"{r['cosine_median']:.4f}", f"{r['cosine_p1']:.4f}")
            lines.append(f"| {name} ({entry['median_words']:.0f}) | {backend} | {r.get('dim', '')} | {r['rows_per_second']:.1f} | "
                         f"{r['rows_per_second'] / base['rows_per_second']:.2f}x | {cosine[0]} | {cosine[1]} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="vader_nyt,rotten_tomatoes,convention_2012")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8,static", help="the first is the reference")
    parser.add_argument("--keep", default="0.5,0.25")
    parser.add_argument("--timed-rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--probe-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="embedding")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = run(args)
    table = render(results, vars(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.md").write_text(table)
    (out / f"{args.name}.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print(table)


if __name__ == "__main__":
    main()
