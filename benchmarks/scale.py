"""Selection time per phase and peak memory at scale, a curve over row counts, next to one fine-tuning epoch.

    python benchmarks/scale.py --rows 10000,100000,1000000 --dim 384 --classes 10     # make bench-scale
    python benchmarks/scale.py --rows 10000000 --dim 384 --classes 10 --memmap /tmp/scale --epoch-sample 0

Embeddings are synthetic (clustered unit vectors, one cluster mixture per class) and passed
to ``fit(dataset, embeddings=...)``, so the time is everything after embedding. Each size runs in a fresh
process, one after the other. ``--memmap DIR`` writes them as a float16 ``.npy`` (a block at a time) and passes
``np.load(path, mmap_mode="r")``: the out-of-core path. Memory is the resident set of the process and its
workers, sampled every 50 ms; "above the embeddings" subtracts what the process held before ``fit`` (the
embeddings, when they are in memory). The epoch time is measured, not assumed: the packaged MiniLM is fine-tuned
with ``transformers.Trainer`` for ``--epoch-sample`` rows (max_len 64) and the rate is scaled to the largest size.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from datasets import Dataset

from hf_qselect import InstanceSelector


def synthetic_embeddings(rows: int, dim: int, classes: int, clusters: int, seed: int, block_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around ``clusters`` random centres per class (the centres depend on ``seed`` only, so blocks
    drawn with different ``block_seed`` share them)."""
    centres = np.random.default_rng(seed).normal(size=(classes, clusters, dim)).astype(np.float32)
    rng = np.random.default_rng(seed if block_seed is None else [seed, block_seed])
    labels = rng.integers(0, classes, rows)
    which = rng.integers(0, clusters, rows)
    x = centres[labels, which] + 0.8 * rng.normal(size=(rows, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, labels


class PeakMemory:
    """Samples the resident memory of this process and of all its children (joblib workers) every 50 ms: the peak
    of the sum, and the peaks of this process and of the largest child on their own."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak, self.main_peak, self.child_peak, self._stop = interval, 0, 0, 0, threading.Event()

    def _sample(self) -> tuple[int, int]:
        me = psutil.Process()
        main, children = me.memory_info().rss, []
        for child in me.children(recursive=True):
            try:
                children.append(child.memory_info().rss)
            except psutil.NoSuchProcess:
                pass
        return main, children

    def _total(self) -> int:
        main, children = self._sample()
        return main + sum(children)

    def _run(self) -> None:
        while not self._stop.is_set():
            main, children = self._sample()
            self.peak = max(self.peak, main + sum(children))
            self.main_peak = max(self.main_peak, main)
            self.child_peak = max([self.child_peak, *children])
            time.sleep(self.interval)

    def __enter__(self) -> "PeakMemory":
        self.baseline = self._total()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._total())


def epoch_seconds(rows: int, sample: int, seed: int) -> tuple[float, float]:
    """Seconds for one epoch over ``rows`` examples, from a measured Trainer run on ``sample`` rows."""
    import tempfile

    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from hf_qselect.selection.embeddings import default_embedder

    path = default_embedder()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4)
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "film", "plot", "actor", "scene", "story", "boring", "great", "slow"]
    texts = [" ".join(rng.choice(words, 40)) for _ in range(sample)]
    data = Dataset.from_dict({"text": texts, "label": rng.integers(0, 4, sample).tolist()})
    data = data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=64, padding="max_length"), batched=True)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(tmp, per_device_train_batch_size=32, num_train_epochs=1, report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True, use_cpu=True)
        trainer = Trainer(model=model, args=args, train_dataset=data.remove_columns(["text"]))
        start = time.perf_counter()
        trainer.train()
        took = time.perf_counter() - start
    rate = sample / took
    return rows / rate, rate


def write_memmap(path: Path, rows: int, dim: int, classes: int, clusters: int, seed: int, block: int = 500_000) -> np.ndarray:
    """Synthetic float16 embeddings written to ``path`` a block at a time (labels returned), unless already there."""
    labels_path = path.with_suffix(".labels.npy")
    if path.exists() and labels_path.exists():
        return np.load(labels_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.float16, shape=(rows, dim))
    labels = np.empty(rows, dtype=np.int64)
    for i, start in enumerate(range(0, rows, block)):
        x, y = synthetic_embeddings(min(block, rows - start), dim, classes, clusters, seed, block_seed=i)
        out[start : start + len(x)] = x
        labels[start : start + len(x)] = y
    out.flush()
    del out
    path.with_suffix(".tmp.npy").rename(path)
    np.save(labels_path, labels)
    return labels


def run_one(args: argparse.Namespace, rows: int) -> dict:
    """One selection at ``rows``, in this process."""
    if args.memmap:
        path = Path(args.memmap) / f"embeddings_{rows}x{args.dim}_c{args.classes}_s{args.seed}.npy"
        labels = write_memmap(path, rows, args.dim, args.classes, args.clusters, args.seed)
        embeddings = np.load(path, mmap_mode="r")
    else:
        embeddings, labels = synthetic_embeddings(rows, args.dim, args.classes, args.clusters, args.seed)
    data = Dataset.from_dict({"label": labels})
    del labels
    sizes = {} if args.chunk_rows is None else {"chunk_rows": args.chunk_rows}
    selector = InstanceSelector(keep=args.keep, solver=args.solver, seed=args.seed, show_progress=True, **sizes)
    with PeakMemory() as memory:
        start = time.perf_counter()
        selector.fit(data, embeddings=embeddings)
        seconds = time.perf_counter() - start
    report = selector.report_
    kept = np.bincount(np.asarray(data["label"])[selector.mask_], minlength=args.classes)
    return {
        "rows": rows, "dim": args.dim, "classes": args.classes, "keep": args.keep, "solver": args.solver,
        "embeddings": f"float16 memory-mapped {path.name}" if args.memmap else "float32 in memory",
        "embeddings_gib": round(embeddings.nbytes / 2**30, 3),
        "selection_seconds": round(seconds, 2), "phases": report.timings,
        "peak_rss_gib_all_processes": round(memory.peak / 2**30, 3), "rss_before_fit_gib": round(memory.baseline / 2**30, 3),
        "peak_above_before_fit_gib": round((memory.peak - memory.baseline) / 2**30, 3),
        "peak_main_gib": round(memory.main_peak / 2**30, 3), "peak_largest_worker_gib": round(memory.child_peak / 2**30, 3),
        "n_blocks": report.n_blocks, "repaired_blocks": report.repaired_blocks, "n_kept": int(selector.mask_.sum()),
        "kept_per_class": kept.tolist(),
    }


def slopes(results: list[dict]) -> list[float]:
    """Log-log slope of selection time between successive sizes (1.0 = linear)."""
    return [round(float(np.log(b["selection_seconds"] / a["selection_seconds"]) / np.log(b["rows"] / a["rows"])), 3)
            for a, b in zip(results, results[1:])]


def table(results: list[dict]) -> str:
    """Markdown: one row per size, the phases as wall seconds (jobs' phases as CPU seconds summed over workers)."""
    head = ("| rows | embeddings | total s | prepare | scoring | partition | solve (wall) | jobs: blocks / QUBO / anneal (CPU s) "
            "| blocks | peak GiB (all processes) | above before-fit GiB |")
    lines = [head, "|" + "---|" * 11]
    for r in results:
        p = r["phases"]
        jobs = " / ".join(f"{p[k]:.1f}" for k in ("jobs_blocks", "jobs_qubo", "jobs_anneal")) if "jobs_anneal" in p else (
            f"in-process build: {p.get('partition', 0):.1f} / {p.get('qubo', 0):.1f}; anneal in the solve")
        lines.append(f"| {r['rows']:,} | {r['embeddings']} | {r['selection_seconds']:.1f} | {p.get('prepare', 0):.1f} | {p.get('score', 0):.1f} "
                     f"| {p.get('partition', 0):.1f} | {p.get('solve', 0):.1f} | {jobs} | {r['n_blocks']:,} "
                     f"| {r['peak_rss_gib_all_processes']:.2f} | {r['peak_above_before_fit_gib']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000", help="one size or a comma-separated curve, e.g. 10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--solver", default="sa")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-rows", type=int, default=None, help="the selector's chunk_rows (default: its own default)")
    parser.add_argument("--memmap", default=None, help="folder for float16 .npy embedding files, read memory-mapped (out of core)")
    parser.add_argument("--epoch-sample", type=int, default=256, help="rows actually trained to measure the epoch rate (0: skip)")
    parser.add_argument("--name", default="scale")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run one size, print its JSON
    args = parser.parse_args(argv)
    sizes = [int(float(r)) for r in str(args.rows).split(",")]

    if args.one:
        print("RESULT " + json.dumps(run_one(args, sizes[0])))
        return
    results = []
    for rows in sizes:  # a fresh process per size: peak memory and warm caches of one size do not leak into the next
        forwarded = [a for a in (argv if argv is not None else sys.argv[1:])]
        command = [sys.executable, __file__, *forwarded, "--rows", str(rows), "--one"]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        results.append(json.loads(line.removeprefix("RESULT ")))
        r = results[-1]
        print(f"{rows:,} rows: {r['selection_seconds']:.1f} s, peak {r['peak_rss_gib_all_processes']:.2f} GiB "
              f"({r['peak_above_before_fit_gib']:.2f} above before fit)", file=sys.stderr)
    summary = {"command": "python benchmarks/scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "results": results, "slopes": slopes(results)}
    if args.epoch_sample:
        epoch, rate = epoch_seconds(sizes[-1], args.epoch_sample, args.seed)
        summary.update(epoch_seconds_estimated=round(epoch, 1), train_rows_per_second=round(rate, 2),
                       selection_to_epoch_ratio=round(results[-1]["selection_seconds"] / epoch, 5))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(summary, indent=1))
    text = table(results) + f"\n\nlog-log slope of the total time between successive sizes: {summary['slopes']}\n"
    (out / f"{args.name}.md").write_text(f"`{summary['command']}`\n\n" + text)
    print(text)


if __name__ == "__main__":
    main()
