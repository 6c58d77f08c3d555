"""Select a subnetwork of a saved encoder folder for a dataset: what ``hf-qselect subnetwork`` runs."""
from __future__ import annotations

import json
from pathlib import Path

from ..data import load_labelled
from .selector import SubnetworkSelector


def select_saved_model(model_dir: str | Path, data: str, selector: SubnetworkSelector, *, text_column: str = "text",
                       label_column: str = "label"):
    """Load the encoder in ``model_dir``, fit ``selector`` on ``data``'s training rows and remove the closed units.

    Every input is checked before the model is loaded. Returns ``(model, tokenizer)``; nothing is written."""
    from transformers import AutoModel, AutoTokenizer

    from ..models import load_pruned

    dataset = load_labelled(data, text_column, label_column, "subnetwork selection")
    model = load_pruned(model_dir, AutoModel)  # an unsupported architecture is named by fit, before any work
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    selector.fit(model, dataset, tokenizer=tokenizer, text_column=text_column, label_column=label_column)
    selector.apply(model)
    return model, tokenizer


def save_subnetwork(model, tokenizer, selector: SubnetworkSelector, out: str | Path) -> Path:
    """Write the pruned encoder, its tokenizer, ``mask.json``, ``subnetwork_report.json`` and ``subnetwork.png``."""
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    selector.save_mask(out / "mask.json")
    (out / "subnetwork_report.json").write_text(json.dumps(selector.report_, indent=1, default=str))
    selector.plot(out / "subnetwork.png")
    return out
