"""Selection quality on the QuantumCLEF 2025 protocol: stratified folds, macro-F1 on each fold's test part.

    python benchmarks/selection.py --datasets vader_nyt,rotten_tomatoes --keep 0.75,0.5,0.25 --eval probe

Every method selects from each fold's training part; an evaluator trains on the kept rows and
scores the fold's test part. ``--eval probe`` fits a logistic-regression probe on the frozen
sentence embeddings (fast); ``--eval finetune`` fine-tunes the packaged MiniLM with ``transformers.Trainer``
on each selection (max_len 64, batch 32) and records the training time. Its budget is either ``--epochs`` on
each selection (smaller selections train fewer steps) or ``--max-steps``, the same number of optimizer steps
for every run, which compares the data at equal compute. Methods and evaluators are registries, so more plug in.
Writes ``OUT/<name>_<eval>.md`` (mean +- std; with several keep rates also the smallest keep within
1 point of full data), ``.json`` (every fold; ``.partial.json`` after each fold while running) and, for a
sweep, ``.png`` (macro-F1 against keep).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from datasets import Dataset, DatasetDict
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from hf_qselect import InstanceSelector
from hf_qselect.data import BUILTINS, load_data
from hf_qselect.selection import paired
from hf_qselect.selection import reduction_without_loss as paired_reduction
from hf_qselect.selection.embeddings import embed_dataset
from hf_qselect.validation import text_values


def eval_literal(text: str):
    """``"0.5"`` -> 0.5, ``"False"`` -> False, anything else stays a string."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@dataclass
class Fold:
    """One evaluation: the kept training rows and the fold's test part, as datasets and as embeddings."""

    train: Dataset
    test: Dataset
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    seed: int
    args: argparse.Namespace


def probe(fold: Fold) -> tuple[float, float]:
    """Macro-F1 of a logistic-regression probe trained on the kept rows' embeddings; and its fit time."""
    start = time.perf_counter()
    model = LogisticRegression(max_iter=2000, random_state=fold.seed).fit(fold.train_x, fold.train_y)
    seconds = time.perf_counter() - start
    return float(f1_score(fold.test_y, model.predict(fold.test_x), average="macro")), seconds


def finetune(fold: Fold) -> tuple[float, float]:
    """Macro-F1 of the model fine-tuned with ``transformers.Trainer`` on the kept rows; and the training time."""
    import tempfile

    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from hf_qselect.selection.embeddings import default_embedder
    from hf_qselect.training.recipes import macro_f1_metrics

    path = fold.args.model or default_embedder()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=int(max(fold.train_y.max(), fold.test_y.max())) + 1)

    def prepare(data: Dataset) -> Dataset:
        data = data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=fold.args.max_length), batched=True)
        return data.rename_column("label", "labels").remove_columns(["text"])

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, num_train_epochs=fold.args.epochs, max_steps=fold.args.max_steps,
                                 per_device_train_batch_size=32, per_device_eval_batch_size=128, learning_rate=5e-5,
                                 warmup_steps=0.06, save_strategy="no", logging_strategy="no", report_to=[],
                                 seed=fold.seed, disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=prepare(fold.train), processing_class=tokenizer,
                          compute_metrics=macro_f1_metrics)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        metrics = trainer.evaluate(prepare(fold.test))
    return float(metrics["eval_macro_f1"]), seconds


EVALUATORS: dict[str, Callable[[Fold], tuple[float, float]]] = {"probe": probe, "finetune": finetune}


def load_named(name: str) -> Dataset:
    """A built-in short name (``vader_nyt``, ``rotten_tomatoes``, ``convention_2012``) or any ``load_data`` source with text/label."""
    if f"builtin:{name}" in BUILTINS:
        return BUILTINS[f"builtin:{name}"]()
    data = load_data(name)
    return data["train"] if isinstance(data, DatasetDict) else data


def run(args: argparse.Namespace, checkpoint: Path | None = None) -> dict:
    """Every method and keep rate on every fold; after each fold the results so far go to ``checkpoint``."""
    methods = args.methods.split(",")
    keeps = [float(k) for k in args.keep.split(",")]
    results: dict = {"args": vars(args), "datasets": {}}
    for name in args.datasets.split(","):
        ds = load_named(name)
        emb, _ = embed_dataset(ds, "text", text_values(ds, "text"), show_progress=True)
        labels = np.asarray(ds["label"])
        if args.repeats > 1:  # every method sees the same R x k splits, so differences pair split by split
            folds = RepeatedStratifiedKFold(n_splits=args.folds, n_repeats=args.repeats, random_state=args.seed)
        else:  # one repeat: the splits every earlier single-repeat run used
            folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
        scores: dict[str, dict[str, list[float]]] = {}
        seconds: dict[str, dict[str, list[float]]] = {}
        train_seconds: dict[str, dict[str, list[float]]] = {}
        results["datasets"][name] = {"n_rows": len(ds), "macro_f1": scores, "selection_seconds": seconds, "train_seconds": train_seconds}
        for fold, (train, test) in enumerate(folds.split(emb, labels)):
            train_ds = ds.select(train)
            for method in methods:
                for keep in ([1.0] if method == "full" else keeps):
                    start = time.perf_counter()
                    if method == "full":
                        kept = np.arange(len(train))
                    else:
                        name_, _, params = method.partition("@")
                        extra = {k: eval_literal(v) for k, v in (p.split("=") for p in params.split(";") if p)}
                        options = {"solver": args.solver, "seed": args.seed + fold, "show_progress": False, **extra}
                        sel = InstanceSelector(keep=keep, method=name_, **options)
                        kept = sel.fit(train_ds, embeddings=emb[train]).indices_
                    elapsed = time.perf_counter() - start
                    fold_data = Fold(train=train_ds.select(kept), test=ds.select(test), train_x=emb[train][kept], train_y=labels[train][kept],
                                     test_x=emb[test], test_y=labels[test], seed=args.seed, args=args)
                    f1, fit_seconds = EVALUATORS[args.eval](fold_data)
                    scores.setdefault(method, {}).setdefault(str(keep), []).append(f1)
                    seconds.setdefault(method, {}).setdefault(str(keep), []).append(elapsed)
                    train_seconds.setdefault(method, {}).setdefault(str(keep), []).append(fit_seconds)
                    print(f"{name} fold {fold} {method:>10} keep {keep:.2f}: macro-F1 {f1:.4f} ({elapsed:.1f}s)", file=sys.stderr, flush=True)
            if checkpoint is not None:
                checkpoint.write_text(json.dumps(results, indent=1))
    return results


def budget_note(args: dict) -> str:
    """The fine-tuning budget, as the table header states it."""
    if args["eval"] != "finetune":
        return ""
    if args["max_steps"] > 0:
        return f"; {args['max_steps']} optimizer steps for every run (batch 32, max_len {args['max_length']})"
    return f"; {args['epochs']:g} epoch(s) on each selection (batch 32, max_len {args['max_length']})"


def keep_table(by_method: dict[str, dict[str, list[float]]], keeps: list[float], cell: Callable[[list[float]], str]) -> list[str]:
    """Markdown rows of a methods x keep rates table; ``full`` fills every column with its one value."""
    lines = ["| method | " + " | ".join(f"keep {k:g}" for k in keeps) + " |", "|---|" + "---|" * len(keeps)]
    for method, by_keep in by_method.items():
        values = [by_keep.get(str(1.0 if method == "full" else k)) for k in keeps]
        lines.append(f"| {method} | " + " | ".join(cell(v) if v else "" for v in values) + " |")
    return lines + [""]


def markdown(results: dict, keeps: list[float]) -> str:
    """One table per dataset: methods x keep rates, macro-F1 mean +- std over folds (and training seconds)."""
    lines = []
    for name, data in results["datasets"].items():
        splits = f"{results['args'].get('repeats', 1)} x {results['args']['folds']} folds" if results["args"].get("repeats", 1) > 1 else f"{results['args']['folds']} folds"
        lines.append(f"**{name}** ({data['n_rows']} rows, {splits}, eval={results['args']['eval']}{budget_note(results['args'])})\n")
        lines += keep_table(data["macro_f1"], keeps, lambda v: f"{np.mean(v):.4f} ± {np.std(v):.4f}")
        if results["args"]["eval"] == "finetune":
            lines.append("training seconds per fold (mean)\n")
            lines += keep_table(data["train_seconds"], keeps, lambda v: f"{np.mean(v):.1f}")
    return "\n".join(lines)


def reduction_table(results: dict, keeps: list[float], tolerance: float = 0.01) -> str:
    """The mean-based table (the paired test is ``hf_qselect.selection.reduction_without_loss``): per dataset and method,
    the smallest keep such that it and every larger keep measured have mean
    macro-F1 within ``tolerance`` of full data (a dip at a larger keep ends the run)."""
    lines = ["| dataset | method | smallest keep within 1 point of full | reduction without loss |", "|---|---|---|---|"]
    for name, data in results["datasets"].items():
        full = np.mean(data["macro_f1"]["full"]["1.0"])
        for method, by_keep in data["macro_f1"].items():
            if method == "full":
                continue
            best = None
            for k in sorted((k for k in keeps if str(k) in by_keep), reverse=True):
                if np.mean(by_keep[str(k)]) < full - tolerance:
                    break
                best = k
            lines.append(f"| {name} | {method} | {best if best is not None else 'none'} | {f'{1 - best:.0%}' if best is not None else '0%'} |")
    return "\n".join(lines) + "\n"


def paired_table(results: dict, keeps: list[float]) -> str:
    """Per dataset: each method and keep rate against full data and against random, paired split by split, with
    the corrected resampled t interval (95%); the win rate against random; the reduction without loss."""
    folds = results["args"]["folds"]
    lines = []
    for name, data in results["datasets"].items():
        scores = data["macro_f1"]
        full = np.array(scores["full"]["1.0"])
        lines += [f"**{name}**: {len(full)} paired splits ({results['args'].get('repeats', 1)} x {folds}-fold); "
                  "differences in macro-F1 points, [95% CI] by the corrected resampled t (Nadeau & Bengio)\n",
                  "| method | keep | macro-F1 | vs full | vs random | wins vs random |", "|---|---|---|---|---|---|"]
        for method, by_keep in scores.items():
            if method == "full":
                continue
            for k in keeps:
                if str(k) not in by_keep:  # a method merged in at fewer keep rates
                    continue
                s = np.array(by_keep[str(k)])
                vs_full = paired(s, full, 1 / folds)
                cells = [f"{np.mean(s):.4f}", f"{100 * vs_full.mean:+.2f} [{100 * vs_full.low:+.2f}, {100 * vs_full.high:+.2f}]"]
                if method != "random" and str(k) in scores.get("random", {}):
                    vs_random = paired(s, np.array(scores["random"][str(k)]), 1 / folds)
                    cells += [f"{100 * vs_random.mean:+.2f} [{100 * vs_random.low:+.2f}, {100 * vs_random.high:+.2f}]", f"{vs_random.win_rate:.0%}"]
                else:
                    cells += ["–", "–"]
                lines.append(f"| {method} | {k:g} | " + " | ".join(cells) + " |")
        lines += ["", "| method | reduction without loss (lower 95% bound vs full above −1 point) |", "|---|---|"]
        for method, by_keep in scores.items():
            if method == "full":
                continue
            keep = paired_reduction({k: np.array(by_keep[str(k)]) for k in keeps if str(k) in by_keep}, full, 1 / folds)
            lines.append(f"| {method} | {f'{1 - keep:.0%} (keep {keep:g})' if keep is not None else 'none at the keep rates run'} |")
        lines.append("")
    return "\n".join(lines)


def plot_sweep(results: dict, keeps: list[float], path: Path) -> None:
    """Macro-F1 against keep rate, one panel per dataset, one line per method (std as a band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), dpi=110, squeeze=False)
    for ax, name in zip(axes[0], names):
        data = results["datasets"][name]["macro_f1"]
        for method, by_keep in data.items():
            if method == "full":
                ax.axhline(np.mean(by_keep["1.0"]), color="black", linestyle="--", linewidth=1, label="full")
                ax.axhspan(np.mean(by_keep["1.0"]) - 0.01, np.mean(by_keep["1.0"]), color="grey", alpha=0.15)
                continue
            xs = [k for k in keeps if str(k) in by_keep]
            mean = np.array([np.mean(by_keep[str(k)]) for k in xs])
            std = np.array([np.std(by_keep[str(k)]) for k in xs])
            line, = ax.plot(xs, mean, marker="o", linewidth=2.2 if method == "qubo" else 1.2, label=method)
            ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.08)
        full = np.mean(data["full"]["1.0"]) if "full" in data else None
        if full is not None:  # zoom on the band that matters; name what falls below it
            low = full - 0.04
            below = sorted(m for m, by_keep in data.items() if m != "full" and min(np.mean(v) for v in by_keep.values()) < low)
            ax.set_ylim(low, full + 0.015)
            if below:
                ax.text(0.98, 0.98, "below the axis at some keep: " + ", ".join(below), transform=ax.transAxes, fontsize=8, ha="right", va="top")
        ax.set_title(f"{name} ({results['args']['eval']}, {results['args']['folds']} folds)")
        ax.set_xlabel("keep rate")
        ax.set_ylabel("macro-F1")
        ax.invert_xaxis()
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def check_merge(old: dict, new: dict) -> None:
    """Raise unless runs with settings ``new`` can be merged into results run with settings ``old``."""
    for key in ("folds", "repeats", "seed", "eval", "max_steps", "epochs", "max_length", "model"):
        if old.get(key) != new.get(key):
            raise ValueError(f"--merge: {key}={new.get(key)!r} differs from the existing results' {old.get(key)!r}")
    if not set(new["keep"].split(",")) <= set(old["keep"].split(",")):
        raise ValueError(f"--merge: keep rates {new['keep']} are not all in the existing results' {old['keep']}")
    missing = set(new["datasets"].split(",")) - set(old["datasets"].split(","))
    if missing:
        raise ValueError(f"--merge: datasets {sorted(missing)} are not in the existing results")


def merge_results(old: dict, new: dict) -> dict:
    """``old`` with the methods of ``new`` replaced (or added); the caller has run :func:`check_merge`."""
    methods = old["args"]["methods"].split(",")
    methods += [m for m in new["args"]["methods"].split(",") if m not in methods]
    merged = {"args": {**old["args"], "methods": ",".join(methods)}, "datasets": old["datasets"]}
    for name, data in new["datasets"].items():
        for field, by_method in data.items():
            if isinstance(by_method, dict):
                for method, by_keep in by_method.items():
                    merged["datasets"][name][field].setdefault(method, {}).update(by_keep)
    merged["merged"] = old.get("merged", []) + [{"methods": new["args"]["methods"], "keep": new["args"]["keep"]}]
    return merged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="vader_nyt,rotten_tomatoes")
    parser.add_argument(
        "--methods", default="full,random,pasin2024,qubo",
        help="comma-separated; parameters after @, separated by ';': random@class_balance=0.5",
    )
    parser.add_argument("--keep", default="0.75,0.5,0.25")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeat the stratified k-fold with this many seeds (paired intervals); default 5 for the probe, 1 to fine-tune")
    parser.add_argument("--eval", default="probe", choices=sorted(EVALUATORS))
    parser.add_argument("--solver", default="sa")
    parser.add_argument("--model", default=None, help="finetune: model to fine-tune (default: the packaged MiniLM)")
    parser.add_argument("--epochs", type=float, default=1.0, help="finetune: epochs on each selection")
    parser.add_argument("--max-steps", type=int, default=-1, help="finetune: cap on optimizer steps (-1: no cap)")
    parser.add_argument("--max-length", type=int, default=64, help="finetune: tokenizer max length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="selection", help="output file stem: OUT/NAME_EVAL.{md,json,png}")
    parser.add_argument("--merge", action="store_true",
                        help="re-run --methods into the existing OUT/NAME_EVAL.json (same datasets, folds, keeps and seed): "
                             "their rows are replaced, every other method's rows are kept, and the outputs are re-rendered")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 5 if args.eval == "probe" else 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f"{args.name}_{args.eval}.partial.json"
    existing = out / f"{args.name}_{args.eval}.json"
    previous = None
    if args.merge:
        if not existing.exists():
            raise FileNotFoundError(f"--merge: no existing results at {existing}")
        previous = json.loads(existing.read_text())
        check_merge(previous["args"], vars(args))  # before the run, so a mismatch costs nothing
    results = run(args, checkpoint=partial)
    partial.unlink(missing_ok=True)
    if previous is not None:
        results = merge_results(previous, results)
    keeps = [float(k) for k in results["args"]["keep"].split(",")]
    table = markdown(results, keeps)
    if "full" in results["args"]["methods"].split(",") and results["args"].get("repeats", 1) > 1:
        table += "\n" + paired_table(results, keeps)
    elif "full" in results["args"]["methods"].split(",") and len(keeps) > 1:
        table += "\n" + reduction_table(results, keeps)
    if "full" in results["args"]["methods"].split(","):
        plot_sweep(results, keeps, out / f"{args.name}_{args.eval}.png")
    (out / f"{args.name}_{args.eval}.md").write_text(table)
    (out / f"{args.name}_{args.eval}.json").write_text(json.dumps(results, indent=1))
    print(table)


if __name__ == "__main__":
    main()
