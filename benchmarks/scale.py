"""Selection time and peak memory at scale, next to the time of one fine-tuning epoch.

    python benchmarks/scale.py --rows 100000 --dim 384 --classes 4

Embeddings are synthetic (clustered unit vectors, one cluster mixture per class) and passed
to ``fit(dataset, embeddings=...)``, so the time is everything after embedding. The epoch
time is measured, not assumed: the packaged MiniLM is fine-tuned with ``transformers.Trainer``
for ``--epoch-sample`` rows (max_len 64) and the rate is scaled to ``--rows``.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from datasets import Dataset

from hf_qselect import InstanceSelector


def synthetic_embeddings(rows: int, dim: int, classes: int, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around ``clusters`` random centres per class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    centres = rng.normal(size=(classes, clusters, dim)).astype(np.float32)
    which = rng.integers(0, clusters, rows)
    x = centres[labels, which] + 0.8 * rng.normal(size=(rows, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, labels


class PeakMemory:
    """Samples the resident memory of this process plus all its children (joblib workers) every 50 ms."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _total(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._total())
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--solver", default="sa")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch-sample", type=int, default=256, help="rows actually trained to measure the epoch rate (0: skip)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)

    embeddings, labels = synthetic_embeddings(args.rows, args.dim, args.classes, args.clusters, args.seed)
    data = Dataset.from_dict({"label": labels})
    selector = InstanceSelector(keep=args.keep, solver=args.solver, seed=args.seed, show_progress=True)
    with PeakMemory() as memory:
        start = time.perf_counter()
        selector.fit(data, embeddings=embeddings)
        seconds = time.perf_counter() - start
    peak = memory.peak / 2**30
    result = {
        "rows": args.rows, "dim": args.dim, "classes": args.classes, "keep": args.keep, "solver": args.solver,
        "selection_seconds": round(seconds, 2), "phases": selector.report_.timings,
        "peak_rss_gib_all_processes": round(peak, 3), "rss_before_fit_gib": round(memory.baseline / 2**30, 3),
        "n_blocks": selector.report_.n_blocks,
        "repaired_blocks": selector.report_.repaired_blocks,
    }
    if args.epoch_sample:
        epoch, rate = epoch_seconds(args.rows, args.epoch_sample, args.seed)
        result.update(epoch_seconds_estimated=round(epoch, 1), train_rows_per_second=round(rate, 2), selection_to_epoch_ratio=round(seconds / epoch, 5))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"selection {seconds:.1f}s for {args.rows} rows; peak RSS {peak:.2f} GiB (main process + joblib workers)", file=sys.stderr)
    if args.epoch_sample:
        print(f"one fine-tuning epoch on {args.rows} rows ~ {result['epoch_seconds_estimated']:.0f}s -> selection/epoch = {result['selection_to_epoch_ratio']:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
