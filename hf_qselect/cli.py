"""``hf-qselect`` command line: ``hf-qselect select --data ... --keep 0.5 --out DIR``."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from datasets import DatasetDict

from .data import load_data
from .selector import InstanceSelector
from .solvers import SOLVERS

REPORT_FILE = "selection_report.json"


def check_out(out: str | Path, overwrite: bool) -> Path:
    """Refuse a non-empty output folder unless ``overwrite`` (checked before any work)."""
    path = Path(out)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"output folder {path} is not empty; pass --overwrite to replace it")
    return path


def clear_out(path: Path) -> None:
    """Empty the output folder just before writing, once the work has succeeded."""
    if path.exists():
        shutil.rmtree(path)


def add_select_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``select`` (and commands that select first)."""
    parser.add_argument("--data", required=True, help="CSV/JSON/Parquet file, save_to_disk folder, hub id, or builtin:rotten_tomatoes / builtin:vader_nyt")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--keep", type=float, default=0.5, help="fraction of rows to keep, in (0, 1]")
    parser.add_argument("--method", default="qubo", help="qubo (default formulation), pasin2024 or random")
    parser.add_argument("--solver", default="sa", choices=SOLVERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block-size", type=int, default=100)
    parser.add_argument("--num-reads", type=int, default=4)
    parser.add_argument("--embedder", default=None, help="sentence-transformers path or hub id (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--n-jobs", type=int, default=-1)


def selector_from_args(args: argparse.Namespace) -> InstanceSelector:
    return InstanceSelector(
        keep=args.keep, method=args.method, text_column=args.text_column, label_column=args.label_column,
        embedder=args.embedder, solver=args.solver, seed=args.seed, block_size=args.block_size,
        num_reads=args.num_reads, n_jobs=args.n_jobs,
    )


def cmd_select(args: argparse.Namespace) -> int:
    """Select from ``--data`` and write the reduced dataset (``save_to_disk``) and the report."""
    data = load_data(args.data)
    selector = selector_from_args(args)
    out = check_out(args.out, args.overwrite)
    selector.fit(data)
    reduced = selector.select(data)
    clear_out(out)
    reduced.save_to_disk(str(out))
    selector.report_.to_json(str(out / REPORT_FILE))
    print(selector.report_.summary())
    rows = len(reduced["train"]) if isinstance(reduced, DatasetDict) else len(reduced)
    print(f"wrote {rows} rows to {out} (report: {out / REPORT_FILE})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-qselect", description="Shrink what gets fine-tuned with QUBOs solved on annealers.")
    commands = parser.add_subparsers(dest="command", required=True)
    select = commands.add_parser("select", help="select a subset of a labelled text dataset")
    add_select_arguments(select)
    select.add_argument("--out", required=True, help="folder for the reduced dataset (save_to_disk) and selection_report.json")
    select.add_argument("--overwrite", action="store_true")
    select.set_defaults(func=cmd_select)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, TypeError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        print(f"hf-qselect {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
