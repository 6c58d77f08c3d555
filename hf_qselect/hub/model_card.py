"""Model card of a fine-tuning run: Hub YAML metadata plus the data-reduction and pruning record, from plain values."""
from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .dataset_card import library_versions

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
TAGS = ["instance-selection", "qubo", "quantum-annealing", "hf-qselect"]
SKIPPED_METRICS = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_epoch", "eval_model_preparation_time")


def _final_metrics(log_history: list[dict]) -> dict[str, float]:
    """The last evaluation's ``eval_*`` numbers."""
    evals = [entry for entry in log_history if any(k.startswith("eval_") for k in entry)]
    if not evals:
        return {}
    return {k: v for k, v in evals[-1].items() if k.startswith("eval_") and isinstance(v, (int, float))}


def _train_summary(log_history: list[dict]) -> dict[str, float]:
    done = [entry for entry in log_history if "train_runtime" in entry]
    return done[-1] if done else {}


def _table(rows: dict) -> str:
    return "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows.items())


def compression_section(r: dict | None) -> str:
    """The card's compression section from a ``CompressionReport.to_dict()`` (plus ``recovery_epochs``)."""
    if r is None:
        return "The model was not compressed: fp32 throughout."
    rows = {"method": r["method"], "budget": r["budget"], "budget form": r.get("budget_form"), "solver": r.get("solver"),
            "attention heads": f"{sum(r['heads_before'])} -> {sum(r['heads_after'])}",
            "FFN neurons": f"{sum(r['ffn_before'])} -> {sum(r['ffn_after'])}",
            "int8 Linear modules": f"{sum(map(sum, r['int8'])) + sum(r['int8_other'].values())} of {len(r['int8']) * len(r['roles']) + len(r['int8_other'])}",
            **{f"{name} precision": "int8" if on else "fp32" for name, on in r["int8_other"].items()},
            "when": {"start": "before fine-tuning (int8 after it)", "end": "after fine-tuning, then recovery epochs, then int8"}.get(r.get("when")),
            "recovery epochs (fp32, before quantizing)": r.get("recovery_epochs") if r.get("when") == "end" else None,
            "calibration rows": r.get("calibration_rows")}
    if r.get("bytes_after"):
        before, after = r["bytes_before"], r["bytes_after"]
        rows["non-embedding weights"] = f"{before['non_embedding'] / 1e6:.2f} -> {after['non_embedding'] / 1e6:.2f} MB ({before['non_embedding'] / after['non_embedding']:.2f}x smaller)"
        rows["all weights"] = f"{before['total'] / 1e6:.2f} -> {after['total'] / 1e6:.2f} MB"
    if r["cost_unit"] == "ms":
        rows["modelled latency (ms)"] = f"{r['cost_before']:.1f} -> {r['cost_after']:.1f}"
    before, after = r.get("metrics_before") or {}, r.get("metrics_after") or {}
    for name in ("macro_f1", "accuracy", "loss"):
        if name in before and name in after:
            rows[f"eval {name}: before compression -> after recovery and int8"] = f"{before[name]:.4f} -> {after[name]:.4f}"
    layers = "\n".join(f"| {l} | {h}/{hb} | {f}/{fb} | {', '.join(role for role, q in zip(r['roles'], q8) if q) or 'none'} |"
                       for l, (h, hb, f, fb, q8) in enumerate(zip(r["heads_after"], r["heads_before"], r["ffn_after"], r["ffn_before"], r["int8"])))
    return ("| what | value |\n|---|---|\n" + _table({k: v for k, v in rows.items() if v is not None})
            + "\n\n| layer | heads kept | FFN neurons kept | int8 modules |\n|---|---|---|---|\n" + layers
            + "\n\n![per-layer choices](compression.png)\n\nReload with `hf_qselect.compression.load_compressed(path)`; "
            "`hf-qselect compress ... --onnx` also writes an ONNX Runtime copy.")


def model_index(task: str, dataset: str | None, metrics: dict[str, float]) -> list[EvalResult] | None:
    """The ``model-index`` results: every final ``eval_*`` number, on the evaluation rows of ``dataset``."""
    results = [EvalResult(task_type=task, dataset_type=dataset or "custom", dataset_name=f"{dataset or 'custom'} (evaluation rows)",
                          metric_type=name.removeprefix("eval_"), metric_value=float(value), metric_name=name.removeprefix("eval_").replace("_", " "))
               for name, value in metrics.items() if name not in SKIPPED_METRICS]
    return results or None


def render_model_card(*, model_name: str, base_model: str | None, log_history: list[dict], selection: dict | None,
                      selection_seconds: float, rows_before: int | None, pruning: dict | None, training: dict,
                      sparsity: dict | None = None, compression: dict | None = None, pipeline_tag: str = "text-classification",
                      library_name: str = "transformers") -> ModelCard:
    """Render the card from plain values: the run's log history, the selection report (``to_dict()``), the
    pruning report (``to_dict()`` plus ``when`` and ``recovery_epochs``), the training settings and the fixed
    magnitude mask (``sparsity``: target, zeros, weights), if any; the task (``pipeline_tag``) and ``library_name``
    (``peft`` for adapters) of the model. The final evaluation goes into ``model-index``."""
    metrics = _final_metrics(log_history)
    train = _train_summary(log_history)
    base = base_model
    dataset = selection.get("source") if selection else None
    data = ModelCardData(
        model_name=model_name,
        base_model=base if base and "/" in base and not Path(base).exists() else None,
        datasets=[dataset] if dataset and "/" in dataset and not Path(dataset).exists() and not dataset.startswith("builtin:") else None,
        metrics=sorted({k.removeprefix("eval_") for k in metrics if k not in SKIPPED_METRICS}) or None,
        eval_results=model_index(pipeline_tag, dataset, metrics),
        tags=[*TAGS, pipeline_tag, *(["peft", "lora"] if library_name == "peft" else [])],
        library_name=library_name,
        pipeline_tag=pipeline_tag,
    )
    if metrics:
        results = "Final evaluation:\n\n| metric | value |\n|---|---|\n" + _table({k.removeprefix("eval_"): v for k, v in metrics.items()})
    else:
        results = "No evaluation was run after training."
    if selection is not None:
        r = selection
        rows = {
            "method": r["method"], "keep rate": r["keep"], "rows before": r["n_rows"], "rows kept": r["n_kept"],
            "reduction": f"{1 - r['n_kept'] / r['n_rows']:.1%}", "embedder": r.get("embedder"),
            "embedding precision": r.get("embedding_precision"), "formulation": r.get("formulation"),
            "solver": r.get("solver"), "seed": r.get("seed"), "block size": r.get("block_size"), "energy": r.get("energy"),
            "class balance": r.get("class_balance"), "rows flagged likely mislabelled": r.get("likely_mislabelled"),
            "selection time (s, incl. embedding)": round(selection_seconds, 2),
        }
        per_class = "\n".join(f"| {c} | {v['before']} | {v['after']} |" for c, v in r["kept_per_class"].items())
        reduction = (
            "| what | value |\n|---|---|\n" + _table({k: v for k, v in rows.items() if v is not None})
            + "\n\n| class | rows before | rows kept |\n|---|---|---|\n" + per_class
        )
    else:
        reduction = f"No instance selection: trained on all {rows_before} rows."
    if pruning is not None:
        r = pruning
        rows = {"method": r["method"], "solver": r.get("solver"), "when": r.get("when"),
                "recovery epochs": r.get("recovery_epochs") if r.get("when") == "end" else None,
                "layers": f"{r['layers_before']} -> {len(r['layers_kept'])} (kept {r['layers_kept']})",
                "attention heads": f"{r['heads_before']} -> {r['heads_after']}", "FFN width": f"{r['ffn_width_before']} -> {r['ffn_width_after']}" + (f" (mean; per layer {r['ffn_per_layer_after']})" if r.get("ffn_per_layer_after") else ""),
                "parameters": f"{r['params_before']:,} -> {r['params_after']:,} ({1 - r['params_after'] / r['params_before']:.1%} fewer)",
                "calibration rows": r.get("calibration_rows")}
        before, after = r.get("metrics_before") or {}, r.get("metrics_after") or {}
        for name in ("macro_f1", "accuracy", "loss"):
            if name in before and name in after:
                rows[f"eval {name}: before -> just after pruning"] = f"{before[name]:.4f} -> {after[name]:.4f}"
        heads = "\n".join(f"| {layer} | {r['kept_heads'][str(layer)]} |" for layer in r["layers_kept"])
        pruning_text = ("| what | value |\n|---|---|\n" + _table({k: v for k, v in rows.items() if v is not None})
                        + "\n\n| layer (original index) | kept heads |\n|---|---|\n" + heads
                        + "\n\n![heads kept per layer and FFN width](pruning.png)\n\nReload with `hf_qselect.pruning.load_pruned(path)`"
                        " (plain `from_pretrained` cannot rebuild layers that keep different head counts).")
    else:
        pruning_text = "The model was not pruned."
    if sparsity is not None:
        sparse_text = (f"Global magnitude pruning zeroed {sparsity['zeros']:,} of {sparsity['weights']:,} Linear weights "
                       f"({sparsity['zeros'] / sparsity['weights']:.1%}; target {sparsity['target']}) before training, and they were held at "
                       "zero through every optimizer step (Liu et al. 2024's classical half; see `hf_qselect.diagnostics`). "
                       "`hf_qselect.diagnostics.download(model, path)` stores the nonzero weights as indices and values.")
    else:
        sparse_text = "Dense: no weight was held at zero."
    compression_text = compression_section(compression)
    settings = {**training, "training time (s)": train.get("train_runtime"), "train loss": train.get("train_loss")}
    body = TEMPLATE.read_text().format(
        model_name=model_name,
        base_line=f"`{base}`" if base else "A model",
        data_line=f" on a QUBO-selected subset of `{dataset}`" if dataset and selection is not None else "",
        results=results,
        reduction=reduction,
        pruning=pruning_text,
        sparse=sparse_text,
        compression=compression_text,
        training_rows=_table({k: v for k, v in settings.items() if v is not None}),
        versions=", ".join(f"{k} {v}" for k, v in library_versions().items()),
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
