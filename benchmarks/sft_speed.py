"""How fast Alpaca rows embed on each backend, and what the default selection costs end to end from an empty cache.

    python benchmarks/sft_speed.py --rows 10000 --timed-rows 1000 --backends torch,onnx,onnx-int8,openvino,static

1. rows/s of every embedder backend on the first ``--timed-rows`` rows (instruction, input and output rendered whole,
   MiniLM cut at its 256-token limit; the export or distillation is made before timing), best of ``--repeats`` passes
   on ``--threads`` threads, and each row's cosine with torch float32's vectors;
2. the default ``InstanceSelector(keep=0.25, label_column=None)`` on ``--rows`` rows with an empty cache: wall time
   from the call to the fitted selector (model loading, the ``auto`` backend check, the ONNX export, embedding and
   the QUBO), and the backend ``auto`` chose.

Writes ``benchmarks/results/<name>.json`` and ``.md``. Alpaca is CC BY-NC 4.0: benchmarks only, never committed.
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

from hf_qselect import InstanceSelector  # noqa: E402
from hf_qselect.output_dir import replace_file  # noqa: E402
from hf_qselect.selection.embeddings import embed_texts, load_embedder  # noqa: E402
from hf_qselect.text_formats import row_texts  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "data"


def alpaca(n: int, root: Path = SHARED) -> Dataset:
    rows = [r for r in json.loads((root / "alpaca" / "alpaca_data.json").read_text()) if r["output"].strip()]
    return Dataset.from_list(rows[:n])


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    ds = alpaca(args.rows, Path(args.data_dir))
    texts, _ = row_texts(ds)
    model = load_embedder(None)
    lengths = [len(ids) for ids in model.tokenizer(texts[: args.timed_rows], truncation=True, max_length=model.max_seq_length)["input_ids"]]
    results = {"rows": len(ds), "timed_rows": args.timed_rows, "threads": args.threads,
               "tokens": {"median": float(np.median(lengths)), "p90": float(np.percentile(lengths, 90)), "limit": model.max_seq_length},
               "backends": {}}
    cache = tempfile.mkdtemp(prefix="hfq-speed-")
    sample = texts[: args.timed_rows]
    reference = None
    for backend in args.backends.split(","):
        precision = "float32" if backend == "torch" else backend
        embed_texts(sample[:16], model, precision=precision, cache_dir=cache, show_progress=False)  # export once, warm up
        best = np.inf
        for _ in range(args.repeats):
            start = time.perf_counter()
            vectors = embed_texts(sample, model, precision=precision, cache_dir=cache, show_progress=False)
            best = min(best, time.perf_counter() - start)
        reference = vectors if reference is None else reference
        same_space = vectors.shape == reference.shape
        cosine = np.sum(vectors * reference, axis=1) if same_space else None
        results["backends"][backend] = {"rows_s": len(sample) / best,
                                        "cosine_min": float(cosine.min()) if same_space else None,
                                        "cosine_median": float(np.median(cosine)) if same_space else None}
        print(backend, results["backends"][backend], flush=True)
    empty = tempfile.mkdtemp(prefix="hfq-empty-")
    start = time.perf_counter()
    selector = InstanceSelector(keep=0.25, label_column=None, cache_dir=empty, seed=0, show_progress=False).fit(ds)
    results["default_selection"] = {"seconds": time.perf_counter() - start, "backend": selector.report_.embedding_precision,
                                    "timings": selector.report_.timings, "kept": int(selector.mask_.sum())}
    print("default selection", results["default_selection"], flush=True)
    return results


def render(results: dict) -> str:
    t = results["tokens"]
    lines = [f"Alpaca rows (instruction, input and output rendered whole): median {t['median']:.0f} tokens, 90th percentile "
             f"{t['p90']:.0f}, cut at {t['limit']}. Rows/s: best pass over the first {results['timed_rows']} rows, "
             f"{results['threads']} threads; cosine with torch float32 per row.\n",
             "| backend | rows/s | x torch | cosine min | cosine median |", "|---|---|---|---|---|"]
    torch_rate = results["backends"].get("torch", {}).get("rows_s")
    for name, b in results["backends"].items():
        ratio = f"{b['rows_s'] / torch_rate:.2f}x" if torch_rate else "–"
        cos = (f"{b['cosine_min']:.4f} | {b['cosine_median']:.4f}" if b["cosine_min"] is not None else "n/a (other space) | n/a")
        lines.append(f"| {name} | {b['rows_s']:.1f} | {ratio} | {cos} |")
    d = results["default_selection"]
    lines.append(f"\nDefault selection, keep 0.25 of {results['rows']:,} rows, empty cache: **{d['seconds']:.1f} s** end to end "
                 f"(backend chosen by auto: {d['backend']}; embedding {d['timings'].get('embed', 0):.1f} s, "
                 f"annealing {d['timings'].get('solve', 0):.1f} s), {d['kept']:,} rows kept.\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--timed-rows", type=int, default=1000)
    parser.add_argument("--backends", default="torch,onnx,onnx-int8,openvino,static", help="the first is the reference")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=str(SHARED), help="holds alpaca/alpaca_data.json")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="sft_speed")
    args = parser.parse_args(argv)
    results = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    replace_file(out / f"{args.name}.json", lambda p: p.write_text(json.dumps(results, indent=1) + "\n"), ours=lambda p: True,
                 overwrite=True, what="benchmark results")
    replace_file(out / f"{args.name}.md", lambda p: p.write_text(render(results)), ours=lambda p: True, overwrite=True, what="benchmark table")
    print(render(results))


if __name__ == "__main__":
    main()
