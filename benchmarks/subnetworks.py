"""Subnetworks of frozen models found by unit selection: the QUBO-local search against random masks, unit-level
edge-popup and greedy Taylor ranking, side by side in one run.

Digits (the paper-style experiment: a frozen random MLP 64-256-256-10, He-normal weights, zero biases; 80/20
stratified split; test accuracy):
    python benchmarks/subnetworks.py digits --keep 0.3,0.5,0.7 --seeds 5
Frozen pretrained MiniLM (gates on FFN neurons or heads chosen on a stratified sample of a training split;
macro-F1 of a logistic-regression probe on the masked model's mean-pooled embeddings, fitted on the training
split and scored on a held-out split), with the mask's size and the pruned model's CPU speed:
    python benchmarks/subnetworks.py minilm --datasets vader_nyt,rotten_tomatoes --units ffn --keep 0.5

Writes benchmarks/results/subnetworks_{digits,minilm_<units>}.{json,md}.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hf_qselect.models import adapter_for
from hf_qselect.subnetworks import SubnetworkSelector

RESULTS = Path(__file__).parent / "results"
METHODS = ("random", "greedy", "edgepopup", "qubo")


def random_mlp(seed: int, widths=(64, 256, 256, 10)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        linear = nn.Linear(a, b)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()] if i < len(widths) - 2 else [linear]
    return nn.Sequential(*layers).requires_grad_(False)


def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    mean, std = Xtr.mean(0), Xtr.std(0) + 1e-6
    return ((Xtr - mean) / std).astype(np.float32), ytr, ((Xte - mean) / std).astype(np.float32), yte


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.as_tensor(X)).argmax(1).numpy() == y).mean())


def trained_mlp(seed: int, Xtr, ytr, epochs: int = 200) -> nn.Sequential:
    """The ceiling: the same MLP with every weight trained (Adam, full batch)."""
    model = random_mlp(seed).requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X, y = torch.as_tensor(Xtr), torch.as_tensor(ytr)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    return model.requires_grad_(False)


def run_digits(keeps: list[float], seeds: int, methods: list[str]) -> dict:
    Xtr, ytr, Xte, yte = digits_split()
    rows = []
    for seed in range(seeds):
        rows.append({"method": "trained", "keep": 1.0, "seed": seed, "accuracy": accuracy(trained_mlp(seed, Xtr, ytr), Xte, yte), "seconds": None})
        rows.append({"method": "open", "keep": 1.0, "seed": seed, "accuracy": accuracy(random_mlp(seed), Xte, yte), "seconds": None})
        for keep in keeps:
            for method in methods:
                model = random_mlp(seed)
                selector = SubnetworkSelector(keep=keep, method=method, seed=seed, max_rows=None, show_progress=False).fit(model, Xtr, ytr)
                with selector.masked(model):
                    acc = accuracy(model, Xte, yte)
                rows.append({"method": method, "keep": keep, "seed": seed, "accuracy": acc, "train_loss": selector.report_["losses"][-1],
                             "seconds": selector.report_["seconds"]})
                print(f"seed {seed} keep {keep} {method:10s} accuracy {acc:.4f} loss {rows[-1]['train_loss']:.4f} {rows[-1]['seconds']:.1f}s", flush=True)
    return {"rows": rows}


def digits_table(result: dict, keeps: list[float], methods: list[str]) -> str:
    rows = result["rows"]
    lines = ["| method | " + " | ".join(f"keep {k}" for k in keeps) + " | seconds (keep 0.5) |", "|---" * (len(keeps) + 2) + "|"]
    for method in methods:
        cells = []
        for keep in keeps:
            acc = [r["accuracy"] for r in rows if r["method"] == method and r["keep"] == keep]
            cells.append(f"{100 * np.mean(acc):.1f} ± {100 * np.std(acc):.1f}")
        secs = [r["seconds"] for r in rows if r["method"] == method and r["keep"] == 0.5]
        lines.append(f"| {method} | " + " | ".join(cells) + (f" | {np.mean(secs):.1f} |" if secs else " | - |"))
    for method in ("open", "trained"):
        acc = [r["accuracy"] for r in rows if r["method"] == method]
        lines.append(f"| {method} (all units{', weights trained' if method == 'trained' else ''}) | {100 * np.mean(acc):.1f} ± {100 * np.std(acc):.1f} |" + " |" * len(keeps))
    gaps = []
    for keep in keeps:
        paired = [(q["accuracy"] - e["accuracy"]) for q in rows for e in rows if q["method"] == "qubo" and e["method"] == "edgepopup"
                  and q["keep"] == e["keep"] == keep and q["seed"] == e["seed"]]
        if paired:
            gaps.append(f"keep {keep}: {100 * np.mean(paired):+.1f} points (qubo ahead on {sum(p > 0 for p in paired)}/{len(paired)} seeds)")
    return "\n".join(lines) + ("\n\nqubo - edgepopup, paired by seed: " + "; ".join(gaps) if gaps else "") + "\n"


# ------------------------------------------------------------------ MiniLM
def pooled(model, tokenizer, texts: list[str], batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    adapter = adapter_for(model)  # the model layer's pooling: what subnetwork selection itself scores
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            out[idx] = adapter.pooled(model, enc["input_ids"], enc["attention_mask"]).numpy()
    return out


def probe_f1(train: np.ndarray, ytr: np.ndarray, test: np.ndarray, yte: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train, ytr)
    return float(f1_score(yte, probe.predict(test), average="macro"))


def latency_ms(model, tokenizer, texts: list[str], batch: int, rounds: int = 7) -> float:
    enc = tokenizer(texts[:batch], truncation=True, max_length=128, padding="max_length", return_tensors="pt")
    with torch.no_grad():
        model(**enc)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            model(**enc)
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def run_minilm(datasets: list[str], units: tuple[str, ...], keep: float, methods: list[str], random_seeds: int, train_rows: int,
               test_rows: int) -> dict:
    from sklearn.model_selection import train_test_split
    from transformers import AutoModel, AutoTokenizer

    from hf_qselect.data import BUILTINS
    from hf_qselect.selection.embeddings import default_embedder

    torch.set_num_threads(2)
    path = default_embedder()
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = []
    for name in datasets:
        ds = BUILTINS[f"builtin:{name}"]()
        y = np.asarray(ds["label"])
        tr, te = train_test_split(np.arange(len(ds)), train_size=train_rows, test_size=test_rows, stratify=y, random_state=0)
        train, test = ds.select(tr), ds.select(te)
        model = AutoModel.from_pretrained(path).eval()

        def evaluate(gated_model) -> float:
            return probe_f1(pooled(gated_model, tokenizer, train["text"]), y[tr], pooled(gated_model, tokenizer, test["text"]), y[te])

        rows.append({"dataset": name, "method": "open", "seed": None, "f1": evaluate(model), "seconds": None})
        print(name, rows[-1], flush=True)
        for method in methods:
            for seed in range(random_seeds if method == "random" else 1):
                selector = SubnetworkSelector(units=units, keep=keep, method=method, seed=seed, schedule="joint", rounds=8, epochs=3,
                                              show_progress=False).fit(model, train, tokenizer=tokenizer)
                with selector.masked(model):
                    f1 = evaluate(model)
                rows.append({"dataset": name, "method": method, "seed": seed, "f1": f1, "seconds": selector.report_["seconds"],
                             "losses": selector.report_["losses"], "mask_bytes": selector.report_["mask_bytes"]})
                print(name, {k: v for k, v in rows[-1].items() if k != "losses"}, flush=True)
        pruned = selector.apply(copy.deepcopy(model))
        texts = test["text"]
        speed = {}
        for shape in ((1, 64), (8, 128)):
            base, fast = [], []
            for _ in range(3):  # interleaved rounds
                base.append(latency_ms(model, tokenizer, texts, shape[0]))
                fast.append(latency_ms(pruned, tokenizer, texts, shape[0]))
            speed[f"{shape[0]}x128"] = {"open_ms": float(np.median(base)), "pruned_ms": float(np.median(fast)),
                                        "speedup": float(np.median(base) / np.median(fast))}
        rows.append({"dataset": name, "method": "speed", "speed": speed,
                     "params_open": sum(p.numel() for p in model.parameters()), "params_pruned": sum(p.numel() for p in pruned.parameters())})
        print(name, rows[-1], flush=True)
    return {"rows": rows, "units": list(units), "keep": keep, "train_rows": train_rows, "test_rows": test_rows}


def minilm_table(result: dict, methods: list[str]) -> str:
    rows = result["rows"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    lines = ["| method | " + " | ".join(f"{d} macro-F1" for d in datasets) + " | seconds to select |", "|---" * (len(datasets) + 2) + "|"]
    for method in ["open"] + methods:
        cells, secs = [], []
        for d in datasets:
            f1 = [r["f1"] for r in rows if r["dataset"] == d and r["method"] == method]
            cells.append(f"{100 * np.mean(f1):.2f}" + (f" ± {100 * np.std(f1):.2f}" if len(f1) > 1 else ""))
            secs += [r["seconds"] for r in rows if r["dataset"] == d and r["method"] == method and r["seconds"] is not None]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {np.mean(secs):.0f} |" if secs else f"| {method} | " + " | ".join(cells) + " | - |")
    for r in rows:
        if r["method"] == "speed":
            s = r["speed"]
            lines.append(f"\n{r['dataset']}: parameters {r['params_open']:,} -> {r['params_pruned']:,}; CPU latency (2 threads, median of 3x7) "
                         + "; ".join(f"{k}: {v['open_ms']:.1f} -> {v['pruned_ms']:.1f} ms ({v['speedup']:.2f}x)" for k, v in s.items()))
    masks = [r["mask_bytes"] for r in rows if r.get("mask_bytes")]
    if masks:
        lines.append(f"\nmask size: {masks[0]} bytes")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["digits", "minilm"])
    parser.add_argument("--keep", default="0.3,0.5,0.7")
    parser.add_argument("--seeds", type=int, default=5, help="digits: network seeds; minilm: random-mask seeds")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--datasets", default="vader_nyt,rotten_tomatoes")
    parser.add_argument("--units", default="ffn")
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=2000)
    args = parser.parse_args()
    keeps = [float(k) for k in args.keep.split(",")]
    methods = args.methods.split(",")
    RESULTS.mkdir(exist_ok=True)
    if args.experiment == "digits":
        result = run_digits(keeps, args.seeds, methods)
        table, stem = digits_table(result, keeps, methods), "subnetworks_digits"
    else:
        units = tuple(args.units.split(","))
        result = run_minilm(args.datasets.split(","), units, keeps[0], methods, args.seeds, args.train_rows, args.test_rows)
        table, stem = minilm_table(result, methods), f"subnetworks_minilm_{'_'.join(units)}"
    result["command"] = "python benchmarks/subnetworks.py " + " ".join(__import__("sys").argv[1:])
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1))
    (RESULTS / f"{stem}.md").write_text(f"`{result['command']}`\n\n{table}")
    print(table)


if __name__ == "__main__":
    main()
