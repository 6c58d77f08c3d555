"""Model card of a ``QSelectTrainer`` run: Hub YAML metadata plus the data-reduction record, from the run's own numbers."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import ModelCard, ModelCardData

from .dataset_card import library_versions
from .embeddings import embedder_name

if TYPE_CHECKING:
    from .trainer import QSelectTrainer

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
TAGS = ["instance-selection", "qubo", "quantum-annealing", "hf-qselect", "text-classification"]


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


def render_model_card(trainer: "QSelectTrainer", model_name: str | None = None) -> ModelCard:
    """Render the card from the trainer's model, arguments, log history and selection report."""
    history = trainer.state.log_history
    metrics = _final_metrics(history)
    train = _train_summary(history)
    report = trainer.selection_report_
    name_or_path = getattr(trainer.model.config, "_name_or_path", "") or ""
    base = embedder_name(name_or_path) if name_or_path else None
    dataset = report.source if report is not None and report.source else None
    data = ModelCardData(
        base_model=base if base and "/" in base and not Path(base).exists() else None,
        datasets=[dataset] if dataset and "/" in dataset and not Path(dataset).exists() and not dataset.startswith("builtin:") else None,
        metrics=sorted({k.removeprefix("eval_") for k in metrics if k not in ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_loss", "eval_epoch")}) or None,
        tags=TAGS,
        library_name="transformers",
        pipeline_tag="text-classification",
    )
    if metrics:
        results = "Final evaluation:\n\n| metric | value |\n|---|---|\n" + _table({k.removeprefix("eval_"): v for k, v in metrics.items()})
    else:
        results = "No evaluation was run after training."
    if report is not None:
        rows = {
            "method": report.method, "keep rate": report.keep, "rows before": report.n_rows, "rows kept": report.n_kept,
            "reduction": f"{report.reduction:.1%}", "embedder": report.embedder,
            "embedding precision": report.embedding_precision, "formulation": report.formulation,
            "solver": report.solver, "seed": report.seed, "block size": report.block_size, "energy": report.energy,
            "class balance": report.class_balance, "rows flagged likely mislabelled": report.likely_mislabelled,
            "selection time (s, incl. embedding)": round(trainer.selection_seconds_, 2),
        }
        per_class = "\n".join(f"| {c} | {v['before']} | {v['after']} |" for c, v in report.kept_per_class.items())
        reduction = (
            "| what | value |\n|---|---|\n" + _table({k: v for k, v in rows.items() if v is not None})
            + "\n\n| class | rows before | rows kept |\n|---|---|---|\n" + per_class
        )
    else:
        reduction = f"No instance selection: trained on all {trainer.rows_before_selection_} rows."
    pruner = getattr(trainer, "pruner", None)
    if pruner is not None and hasattr(pruner, "report_"):
        r = pruner.report_
        rows = {"method": r.method, "solver": r.solver, "when": trainer.prune_at,
                "recovery epochs": trainer.recovery_epochs if trainer.prune_at == "end" else None,
                "layers": f"{r.layers_before} -> {len(r.layers_kept)} (kept {r.layers_kept})",
                "attention heads": f"{r.heads_before} -> {r.heads_after}", "FFN width": f"{r.ffn_width_before} -> {r.ffn_width_after}",
                "parameters": f"{r.params_before:,} -> {r.params_after:,} ({1 - r.params_after / r.params_before:.1%} fewer)",
                "calibration rows": r.calibration_rows}
        for name in ("macro_f1", "accuracy", "loss"):
            if name in r.metrics_before and name in r.metrics_after:
                rows[f"eval {name}: before -> just after pruning"] = f"{r.metrics_before[name]:.4f} -> {r.metrics_after[name]:.4f}"
        heads = "\n".join(f"| {layer} | {r.kept_heads[str(layer)]} |" for layer in r.layers_kept)
        pruning = ("| what | value |\n|---|---|\n" + _table({k: v for k, v in rows.items() if v is not None})
                   + "\n\n| layer (original index) | kept heads |\n|---|---|\n" + heads
                   + "\n\n![heads kept per layer and FFN width](pruning.png)\n\nReload with `hf_qselect.pruning.load_pruned(path)`"
                   " (plain `from_pretrained` cannot rebuild layers that keep different head counts).")
    else:
        pruning = "The model was not pruned."
    settings = {
        "training rows": len(trainer.train_dataset) if trainer.train_dataset is not None else None,
        "epochs": trainer.args.num_train_epochs, "learning rate": trainer.args.learning_rate,
        "batch size": trainer.args.per_device_train_batch_size, "seed": trainer.args.seed,
        "training time (s)": train.get("train_runtime"), "train loss": train.get("train_loss"),
    }
    body = TEMPLATE.read_text().format(
        model_name=model_name or Path(trainer.args.output_dir).name,
        base_line=f"`{base}`" if base else "A model",
        data_line=f" on a QUBO-selected subset of `{dataset}`" if dataset and report is not None else "",
        results=results,
        reduction=reduction,
        pruning=pruning,
        training_rows=_table({k: v for k, v in settings.items() if v is not None}),
        versions=", ".join(f"{k} {v}" for k, v in library_versions().items()),
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
