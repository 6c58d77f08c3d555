"""K-bit classifier heads on frozen features: fp32 logistic regression, round-to-nearest, GPTQ-style rounding and
QuboClassifier (both modes), side by side in one run.

Text (frozen MiniLM embeddings, stratified folds):
    python benchmarks/heads.py --datasets vader_nyt,rotten_tomatoes,convention_2012 --bits 1,2,4,8,12 --folds 5
The paper's own smallest setting (sklearn digits, frozen random convolutional features = an extreme learning machine):
    python benchmarks/heads.py --digits --bits 4,6,8,10,12,16,20 --folds 5

Writes benchmarks/results/heads[_digits].{json,md,png}. Per fold and method: macro-F1 (accuracy for digits) on the
held-out part, the surrogate energy 1/2 (w - w*)^T H (w - w*) summed over outputs (0 = the fp32 weights; H the
loss Hessian at w*), and seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

from hf_qselect.classifier import QuboClassifier
from hf_qselect.classifier import grid, surrogate

RESULTS = Path(__file__).parent / "results"
ROUNDINGS = ("round", "gptq")
MODES = ("surrogate", "iterative")


def text_features(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Frozen MiniLM embeddings (cached) and labels of a built-in dataset."""
    from hf_qselect.data import BUILTINS
    from hf_qselect.selection import embed_dataset
    from hf_qselect.validation import text_values

    ds = BUILTINS[f"builtin:{name}"]()
    emb, _ = embed_dataset(ds, "text", text_values(ds, "text"), show_progress=True)
    return emb.astype(np.float64), np.asarray(ds["label"])


def digits_features(seed: int = 0, filters: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits through a frozen, randomly initialised conv layer (3x3, ReLU, 2x2 max-pool): an ELM."""
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(1, filters, 3, padding=1)
    with torch.no_grad():
        images = torch.as_tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
        features = torch.nn.functional.max_pool2d(torch.relu(conv(images)), 2).flatten(1).numpy()
    return features.astype(np.float64) / features.max(), y


def rounded(X: np.ndarray, W_star: np.ndarray, expansions, bits: int, how: str) -> np.ndarray:
    """Weights rounded onto the K-bit grid (absmax scale), per output: round-to-nearest or error feedback."""
    out = np.zeros_like(W_star)
    for c, (w, (A, _)) in enumerate(zip(W_star, expansions)):
        steps, scale = grid.round_to_nearest(w, bits)
        if how == "gptq":
            steps = grid.gptq(w, A, bits, scale)
        out[c] = scale * steps
    return out


def predict(X: np.ndarray, W: np.ndarray, classes: np.ndarray) -> np.ndarray:
    scores = surrogate.augment(X) @ W.T
    return classes[(scores[:, 0] > 0).astype(int)] if W.shape[0] == 1 else classes[scores.argmax(axis=1)]


def energy(W: np.ndarray, W_star: np.ndarray, expansions) -> float:
    return float(sum(0.5 * (w - ws) @ A @ (w - ws) for w, ws, (A, _) in zip(W, W_star, expansions)))


def run_fold(X, y, train, test, bits_list, args, metric) -> list[dict]:
    rows = []
    classes = np.unique(y[train])
    codes = np.searchsorted(classes, y[train])
    start = time.perf_counter()
    fp32 = LogisticRegression(max_iter=2000).fit(X[train], codes)
    W_star = np.hstack([fp32.coef_, fp32.intercept_[:, None]])
    fp32_seconds = time.perf_counter() - start
    rows.append({"method": "fp32 LR", "bits": 32, "score": metric(y[test], classes[fp32.predict(X[test])]), "energy": 0.0, "seconds": fp32_seconds})
    if args.sgd:
        start = time.perf_counter()
        sgd = SGDClassifier(loss="log_loss", random_state=args.seed, max_iter=50, tol=None).fit(X[train], codes)
        rows.append({"method": "fp32 SGD", "bits": 32, "score": metric(y[test], classes[sgd.predict(X[test])]), "energy": None,
                     "seconds": time.perf_counter() - start})
    Xa = surrogate.augment(X[train])
    expansions = surrogate.expansion(Xa, W_star, surrogate.ridge(X.shape[1], 1.0, len(train)))
    for bits in bits_list:
        for how in ROUNDINGS:
            start = time.perf_counter()
            W = rounded(X[train], W_star, expansions, bits, how)
            rows.append({"method": how, "bits": bits, "score": metric(y[test], predict(X[test], W, classes)),
                         "energy": energy(W, W_star, expansions), "seconds": time.perf_counter() - start})
        for mode in args.modes.split(","):
            head = QuboClassifier(bits=bits, mode=mode, block_features=args.block_features, max_iter=args.max_iter,
                            num_sweeps=args.num_sweeps, seed=args.seed).fit(X[train], y[train])
            W = np.hstack([head.coef_, head.intercept_[:, None]])
            rows.append({"method": f"qubo-{mode}", "bits": bits, "score": metric(y[test], head.predict(X[test])),
                         "energy": energy(W, W_star, expansions), "seconds": head.report_.seconds})
        done = [r for r in rows if r["bits"] == bits]
        print("  ".join(f"{r['method']} K={bits}: {r['score']:.4f}" for r in done), file=sys.stderr, flush=True)
    return rows


def summarise(runs: dict[str, list[list[dict]]]) -> dict:
    """dataset -> method -> bits -> {score, energy, seconds}: mean and std over folds."""
    out = {}
    for name, folds in runs.items():
        table: dict = {}
        for fold in folds:
            for r in fold:
                cell = table.setdefault(r["method"], {}).setdefault(str(r["bits"]), {"score": [], "energy": [], "seconds": []})
                for key in ("score", "energy", "seconds"):
                    if r[key] is not None:
                        cell[key].append(r[key])
        out[name] = table
    return out


def markdown(summary: dict, bits_list: list[int], metric_name: str, command: str) -> str:
    lines = [f"```bash\n{command}\n```\n"]
    for name, table in summary.items():
        lines.append(f"**{name}**: {metric_name} (mean ± std over folds); fp32 rows use all 32 bits\n")
        lines.append("| method | " + " | ".join(f"K={b}" for b in bits_list) + " |")
        lines.append("|---|" + "---|" * len(bits_list))
        for method, cells in table.items():
            if "32" in cells and method.startswith("fp32"):
                s = cells["32"]["score"]
                lines.append(f"| {method} | " + " | ".join(f"{np.mean(s):.4f} ± {np.std(s):.4f}" for _ in bits_list) + " |")
            else:
                lines.append(f"| {method} | " + " | ".join(
                    f"{np.mean(cells[str(b)]['score']):.4f} ± {np.std(cells[str(b)]['score']):.4f}" for b in bits_list) + " |")
        lines.append("\nSurrogate energy (0 = fp32) and seconds per fold:\n")
        lines.append("| method | " + " | ".join(f"K={b}" for b in bits_list) + " |")
        lines.append("|---|" + "---|" * len(bits_list))
        for method, cells in table.items():
            if method.startswith("fp32"):
                continue
            lines.append(f"| {method} | " + " | ".join(
                f"{np.mean(cells[str(b)]['energy']):.4g} / {np.mean(cells[str(b)]['seconds']):.1f}s" for b in bits_list) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict, bits_list: list[int], metric_name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summary), figsize=(5 * len(summary), 4), squeeze=False)
    for ax, (name, table) in zip(axes[0], summary.items()):
        for method, cells in table.items():
            if method.startswith("fp32"):
                ax.axhline(np.mean(cells["32"]["score"]), linestyle="--", color="grey" if method == "fp32 LR" else "black", label=method)
                continue
            means = [np.mean(cells[str(b)]["score"]) for b in bits_list]
            stds = [np.std(cells[str(b)]["score"]) for b in bits_list]
            ax.errorbar(bits_list, means, yerr=stds, marker="o", capsize=3, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(bits_list, [str(b) for b in bits_list])
        ax.set_xlabel("bits per weight (K)")
        ax.set_ylabel(metric_name)
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="vader_nyt,rotten_tomatoes,convention_2012")
    parser.add_argument("--digits", action="store_true", help="the paper's setting: digits, frozen random conv features, accuracy")
    parser.add_argument("--bits", default="1,2,4,8,12")
    parser.add_argument("--modes", default="surrogate,iterative")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--block-features", type=int, default=32)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--num-sweeps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    args.sgd = args.digits
    bits_list = [int(b) for b in args.bits.split(",")]
    if args.digits:
        sources = {"digits (random conv features)": digits_features(args.seed)}
        metric, metric_name = accuracy_score, "accuracy"
    else:
        sources = {name: text_features(name) for name in args.datasets.split(",")}
        metric, metric_name = (lambda a, b: f1_score(a, b, average="macro")), "macro-F1"
    runs: dict[str, list] = {}
    for name, (X, y) in sources.items():
        splitter = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
        for fold, (train, test) in enumerate(splitter.split(X, y)):
            print(f"{name} fold {fold}", file=sys.stderr, flush=True)
            runs.setdefault(name, []).append(run_fold(X, y, train, test, bits_list, args, metric))
    summary = summarise(runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("heads_digits" if args.digits else "heads")
    command = "python benchmarks/heads.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / f"{stem}.json").write_text(json.dumps({"args": vars(args), "runs": runs, "summary": summary}, indent=1))
    (out / f"{stem}.md").write_text(markdown(summary, bits_list, metric_name, command))
    plot(summary, bits_list, metric_name, out / f"{stem}.png")
    print(markdown(summary, bits_list, metric_name, command))


if __name__ == "__main__":
    main()
