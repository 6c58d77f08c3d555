"""Fixed-seed results of every application on small models: what ``tests/test_golden.py`` compares against.

Run once on the commit before a refactor that must not change behaviour (``python tests/golden/make_golden.py``);
the JSON it writes is the record every later commit must reproduce exactly.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from datasets import Dataset

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.conftest import clustered  # noqa: E402

SENTENCES = ["a wonderful, moving film", "great acting and a clever plot", "I loved every minute", "a delightful surprise",
             "beautifully shot and warmly told", "funny, smart and kind", "the best film of the year", "a joy to watch",
             "superb performances all round", "charming and heartfelt", "an uplifting story", "brilliant direction",
             "a dull, lifeless mess", "the plot makes no sense", "I was bored throughout", "a tedious waste of time",
             "clumsy writing and flat acting", "painfully slow and predictable", "the worst film of the year", "an ugly chore",
             "nothing works here", "lazy, loud and empty", "a depressing failure", "poorly edited and overlong"]


def sentences() -> Dataset:
    return Dataset.from_dict({"text": SENTENCES, "label": [1] * 12 + [0] * 12})


def tokenizer():
    from transformers import AutoTokenizer

    from hf_qselect.selection.embeddings import default_embedder

    return AutoTokenizer.from_pretrained(default_embedder())


def tiny_bert(vocab: int, seed: int = 0, layers: int = 2, heads: int = 4, hidden: int = 32, ffn: int = 64, head: bool = True):
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn, max_position_embeddings=64, num_labels=2)
    return (BertForSequenceClassification(config) if head else BertModel(config)).eval()


def selection() -> dict:
    from hf_qselect import InstanceSelector

    emb, labels = clustered(240, classes=2)
    ds = Dataset.from_dict({"text": [f"row {i} label {y}" for i, y in enumerate(labels)], "label": labels.tolist()})
    out = {}
    for method in ("qubo", "pasin2024", "facility"):
        sel = InstanceSelector(keep=0.5, method=method, seed=0, show_progress=False).fit(ds, embeddings=emb)
        out[method] = np.flatnonzero(sel.mask_).tolist()
    return out


def pruning() -> dict:
    from hf_qselect.pruning import AnnealingPruner

    rng = np.random.default_rng(0)
    calibration = Dataset.from_dict({"input_ids": [rng.integers(1, 200, rng.integers(6, 14)).tolist() for _ in range(48)],
                                     "labels": rng.integers(0, 2, 48).tolist()})
    out = {}
    for method in ("qubo", "greedy"):
        p = AnnealingPruner(remove_heads=0.4, remove_ffn=0.3, remove_layers=0.25, method=method, seed=0, show_progress=False)
        p.fit(tiny_bert(200, layers=4), calibration)
        out[method] = {"layers": p.kept_layers_, "heads": {str(k): v for k, v in p.kept_heads_.items()},
                       "neurons": {str(k): v for k, v in p.kept_neurons_.items()}}
    return out


def compression() -> dict:
    from hf_qselect.compression import AnnealingCompressor

    tok = tokenizer()
    calibration = sentences().map(lambda b: tok(b["text"], truncation=True, max_length=16), batched=True)
    out = {}
    for method, budget in (("qubo", "30%"), ("qubo", "18%"), ("greedy", "18%")):  # recorded as "greedy", now "fallback"
        c = AnnealingCompressor(budget=budget, ffn_block=8, num_reads=4, num_sweeps=300, show_progress=False,
                                method={"greedy": "fallback"}.get(method, method))
        c.fit(tiny_bert(tok.vocab_size), calibration)
        out[f"{method}-{budget}"] = {"keep": np.asarray(c.choice_.keep).astype(int).tolist(), "int8": np.asarray(c.choice_.int8).astype(int).tolist()}
    return out


def subnetworks() -> dict:
    from torch import nn

    from hf_qselect.subnetworks import SubnetworkSelector

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 3))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 2
    y = rng.integers(0, 3, 120)
    X = (centres[y] + rng.normal(size=(120, 8))).astype(np.float32)
    mlp_sel = SubnetworkSelector(keep=0.5, rounds=3, show_progress=False, seed=0).fit(mlp, X, y)
    tok = tokenizer()
    encoder = tiny_bert(tok.vocab_size, head=False)
    enc_sel = SubnetworkSelector(units=("ffn", "heads"), keep=0.5, rounds=2, batch_size=8, show_progress=False, seed=0,
                                 schedule="layer")  # the default when this was recorded (now auto: joint for encoders)
    enc_sel.fit(encoder, sentences(), tokenizer=tok)
    masks = lambda sel: {k: np.asarray(v).astype(int).tolist() for k, v in sel.mask_.items()}
    return {"mlp": masks(mlp_sel), "encoder": masks(enc_sel)}


def classifier_head() -> dict:
    from sklearn.datasets import load_digits

    from hf_qselect import QuboClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    out = {}
    for bits, mode in ((1, "iterative"), (2, "surrogate")):
        head = QuboClassifier(bits=bits, mode=mode, seed=0, show_progress=False, max_iter=2).fit(X, y)
        out[f"{bits}-{mode}"] = np.round(np.asarray(head.coef_, dtype=np.float64), 10).tolist()
    return out


PARTS = {"selection": selection, "pruning": pruning, "compression": compression, "subnetworks": subnetworks, "head": classifier_head}


def run() -> dict:
    return {name: make() for name, make in PARTS.items()}


if __name__ == "__main__":
    (HERE / "golden.json").write_text(json.dumps(run(), indent=None, sort_keys=True) + "\n")
    print("wrote", HERE / "golden.json")
