"""Dataset card of a reduced dataset: Hub YAML metadata plus a readable record of how it was made."""
from __future__ import annotations

import shlex
from importlib import metadata
from pathlib import Path

from datasets import Dataset
from huggingface_hub import DatasetCard, DatasetCardData

from ..params import cli_command
from ..selection import SelectionParams, SelectionReport

TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"
TAGS = ["instance-selection", "qubo", "hf-qselect"]
VERSIONED = ["hf-qselect", "datasets", "sentence-transformers", "transformers", "dimod", "dwave-samplers", "numpy", "torch"]


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` bucket for ``rows``."""
    for limit, name in [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]:
        if rows < limit:
            return name
    return "n>10M"


def library_versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def reproduce_command(report: SelectionReport, source: str) -> str:
    """The ``hf-qselect select`` call that remakes this selection: every recorded parameter that differs from its
    default, as the flags the selector's declaration gives it."""
    flags = cli_command(SelectionParams, report.params, always=("keep", "method", "text_column", "label_column", "seed"))
    return " ".join(shlex.quote(a) for a in ["hf-qselect", "select", "--data", source, *flags, "--out", "reduced"])


def labelled(report: SelectionReport) -> bool:
    """Whether the selection used class labels (older reports have no ``label_column`` entry: they did)."""
    return report.params.get("label_column", "label") is not None


def task_category(report: SelectionReport) -> str:
    """The Hub task of the data: classification with class labels; text generation for chat, instruction or plain
    text selected without labels."""
    return "text-classification" if labelled(report) else "text-generation"


def render_dataset_card(
    splits: dict[str, Dataset],
    report: SelectionReport,
    source: str,
    *,
    revision: str | None = None,
    pretty_name: str | None = None,
    selection_map: str | None = None,
    flagged: int | None = None,
    scores_file: str | None = None,
) -> DatasetCard:
    """The card for a folder holding ``data/{split}-*.parquet`` shards of ``splits``."""
    train = splits["train"]
    data = DatasetCardData(
        pretty_name=pretty_name or f"{source} reduced to {1 - report.reduction:.0%} by hf_qselect",
        task_categories=[task_category(report)],
        size_categories=[size_category(len(train))],
        source_datasets=[source],
        tags=TAGS,
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
        dataset_info={
            "features": train.features._to_yaml_list(),
            "splits": [{"name": s, "num_bytes": int(d.data.nbytes), "num_examples": len(d)} for s, d in splits.items()],
        },
    )
    params = {"objective": report.objective, **report.params, "class_balance": report.class_balance, "keep": report.keep, "method": report.method, "formulation": report.formulation,
              "embedder": report.embedder, "precision": report.embedding_precision, "solver": report.solver, "block_size": report.block_size,
              "num_reads": report.num_reads, "num_sweeps": report.num_sweeps}
    measures = {
        "energy (sum over blocks)": report.energy, "blocks": report.n_blocks,
        "blocks feasible as annealed": report.feasible_blocks, "blocks repaired": report.repaired_blocks,
        "rows flagged likely mislabelled": report.likely_mislabelled,
        "classes given one row (the method had kept none)": report.classes_topped_up or None,
        **{f"time: {k} (s)": v for k, v in report.timings.items()},
    }
    body = TEMPLATE.read_text().format(
        pretty_name=data.pretty_name,
        source=source,
        n_kept=report.n_kept,
        n_rows=report.n_rows,
        kept_pct=f"{1 - report.reduction:.1%}",
        method=report.method,
        formulation=report.formulation or "none",
        solver=report.solver or "none",
        group_word="class" if labelled(report) else "group",
        grouping=f"Quotas per {report.grouping}." if report.grouping else "",
        class_rows="\n".join(f"| {c} | {v['before']} | {v['after']} |" for c, v in report.kept_per_class.items()),
        param_rows="\n".join(f"| {k} | `{v}` |" for k, v in params.items() if v is not None),
        measure_rows="\n".join(f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in measures.items() if v is not None),
        fingerprint=report.source_fingerprint,
        revision=f", revision `{revision}`" if revision else "",
        selection_map=f"## Selection map\n\n![kept and dropped rows, PCA of the embeddings]({selection_map})" if selection_map else "",
        diagnostics=(f"## Label diagnostics\n\n{flagged} of {report.n_rows} source rows are flagged as likely mislabelled: an out-of-fold "
                     f"classifier on the embeddings gives another class a probability of at least {report.params.get('noise_confidence', 0.8)}. "
                     f"`{scores_file}` lists every source row with its label, that classifier's probability of the label, its prediction, "
                     "the flag, its block and whether it was kept.") if scores_file and labelled(report) else "",
        command=reproduce_command(report, source),
        versions=", ".join(f"{k} {v}" for k, v in library_versions().items()),
    )
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
