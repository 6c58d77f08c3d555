"""``hf-qselect`` command line: ``hf-qselect select --data ... --keep 0.5 --out DIR``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from datasets import DatasetDict, load_from_disk

from .data import input_paths, load_data
from .hub import REPORT_FILE, check_repo_id, publish_reduced, with_source_index
from .output_dir import check_output_dir, staged_output
from .params import add_cli_arguments, add_renamed_flags, from_cli
from .provenance import public_path
from .pruning.params import RENAMED as PRUNING_RENAMED, PruningParams
from .selection import InstanceSelector, SelectionParams, SelectionReport
from .compression.params import CompressionParams
from .diagnostics.params import TASK as DIAGNOSTICS_TASK, DiagnosticsParams
from .subnetworks.params import SubnetworkParams


def add_select_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data`` plus one flag per selector parameter (from :class:`~hf_qselect.selection.SelectionParams`)."""
    parser.add_argument("--data", required=True, help="CSV/JSON/Parquet file, save_to_disk folder, hub id, or builtin:rotten_tomatoes / builtin:vader_nyt / builtin:convention_2012")
    add_cli_arguments(parser, SelectionParams)


def selector_from_args(args: argparse.Namespace) -> InstanceSelector:
    return from_cli(InstanceSelector, args)


def cmd_select(args: argparse.Namespace) -> int:
    """Select from ``--data``; write the reduced dataset (``save_to_disk``, or the Hub layout with ``--publish``)."""
    check_repo_id(args.repo_id)
    if args.push and not args.publish:
        raise ValueError("--push uploads the Hub folder that --publish writes: add --publish (or run `hf-qselect publish OUT --push` later)")
    check_output_dir(args.out, input_paths(args.data), overwrite=args.overwrite)
    check_scores_file(args, input_paths(args.data))
    data = load_data(args.data)
    inputs = input_paths(args.data, data)
    out = check_output_dir(args.out, inputs, overwrite=args.overwrite)
    check_scores_file(args, inputs)
    selector = selector_from_args(args)
    selector.fit(data)
    selector.report_.source = public_path(args.data)
    reduced = selector.select(data)
    print(selector.report_.summary())
    if args.publish and args.scores:
        write_scores(selector, args.scores, args.overwrite)
    if args.publish:
        folder = publish_reduced(reduced, selector, repo_id=args.repo_id, local_dir=out, push=args.push, private=not args.public,
                                 overwrite=args.overwrite, inputs=inputs)
        print(f"wrote a Hub-ready dataset folder to {folder}" + (f" and uploaded it to {args.repo_id}" if args.push else ""))
        return 0
    if isinstance(reduced, DatasetDict):
        reduced["train"] = with_source_index(reduced["train"], selector)
    else:
        reduced = with_source_index(reduced, selector)
    with staged_output(out) as staging:
        reduced.save_to_disk(str(staging))
        selector.report_.to_json(str(staging / REPORT_FILE))
    if args.scores:
        write_scores(selector, args.scores, args.overwrite)
    rows = len(reduced["train"]) if isinstance(reduced, DatasetDict) else len(reduced)
    print(f"wrote {rows} rows to {out} (report: {out / REPORT_FILE}); publish it with: hf-qselect publish {out} --repo-id NAMESPACE/NAME")
    return 0


SCORES = "--scores file"


def is_scores_file(path: Path) -> bool:
    """A Parquet file with the columns :func:`write_scores` writes (an earlier ``--scores`` output)."""
    try:
        import pyarrow.parquet as pq

        return {"row", "flagged", "kept"} <= set(pq.read_schema(path).names)
    except Exception:  # not Parquet at all
        return False


def check_scores_file(args: argparse.Namespace, inputs: list) -> None:
    """``--scores``, before any work: not an input, not inside ``--out`` (replaced as a whole), no foreign file."""
    if args.scores is None:
        return
    from .output_dir import check_output_file

    path = check_output_file(args.scores, is_scores_file, SCORES, inputs, overwrite=args.overwrite, flag="--overwrite")
    out = Path(args.out).expanduser().absolute()
    if path == out or out in path.parents:
        raise ValueError(f"{SCORES} {args.scores} is inside --out {args.out}, which is replaced as a whole; write it elsewhere")


def write_scores(selector: InstanceSelector, path: str, overwrite: bool = False) -> None:
    """The per-row diagnostics (``selector.row_scores_``) as Parquet, atomically; flagged rows counted on stdout."""
    from .output_dir import replace_file

    scores = selector.row_scores_
    replace_file(path, lambda tmp: scores.to_parquet(tmp, index=False), is_scores_file, SCORES, overwrite=overwrite)
    flagged = int(scores["flagged"].sum()) if scores["flagged"].notna().all() else 0
    print(f"wrote per-row scores to {path} ({flagged} rows flagged as likely mislabelled)")


def cmd_compare(args: argparse.Namespace) -> int:
    """Paired, repeated comparison of methods and keep rates on ``--data``; a recommendation and its command."""
    from .comparison import compare
    from .comparison.compare import check_compare_args

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        keeps = [float(k) for k in args.keep.split(",") if k.strip()]
    except ValueError:
        raise ValueError(f"--keep must be comma-separated fractions such as 0.75,0.5,0.25, got {args.keep!r}") from None
    label_column = None if args.label_column.strip().lower() == "none" else args.label_column
    check_compare_args(methods, keeps, evaluation=args.eval, tolerance=args.tolerance, folds=args.folds, repeats=args.repeats,
                       finetune_steps=args.finetune_steps, label_column=label_column, model=args.model, epochs=args.epochs,
                       max_length=args.max_length)  # the flags' values, before loading anything
    check_output_dir(args.out, input_paths(args.data), overwrite=args.overwrite)
    data = load_data(args.data)
    out = check_output_dir(args.out, input_paths(args.data, data), overwrite=args.overwrite)
    if isinstance(data, DatasetDict):
        data = data["train"]
    options = {"quality": args.quality} if args.quality else None
    result = compare(data, methods, keeps, evaluation=args.eval, tolerance=args.tolerance, folds=args.folds, repeats=args.repeats,
                     text_column=args.text_column, label_column=label_column, seed=args.seed, source=public_path(args.data),
                     finetune_steps=args.finetune_steps, model=args.model, gguf_file=args.gguf_file, epochs=args.epochs,
                     max_length=args.max_length, selector_options=options)
    result.save(out, overwrite=True)  # checked before the work
    print(result.markdown())
    print(f"wrote {out / 'compare.json'}, {out / 'compare.md'} and {out / 'compare.png'}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Turn a ``hf-qselect select`` output folder into a Hub-ready folder, and upload it with ``--push``."""
    check_repo_id(args.repo_id)
    folder = Path(args.reduced_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder} (REDUCED_DIR must be the --out folder of `hf-qselect select`)")
    local_dir = Path(args.local_dir) if args.local_dir else folder.with_name(folder.name + "-hub")
    check_output_dir(local_dir, [folder], overwrite=args.overwrite, what="--local-dir")
    report_path = folder / REPORT_FILE
    if not report_path.exists():
        raise FileNotFoundError(f"{report_path} not found: REDUCED_DIR must be the --out folder of `hf-qselect select`")
    if args.push and args.repo_id is None:
        raise ValueError("--push needs --repo-id NAMESPACE/NAME")
    try:
        report = SelectionReport.from_dict(json.loads(report_path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{report_path} is not a valid selection report ({err})") from None
    reduced = load_from_disk(str(folder))
    out = publish_reduced(reduced, report, repo_id=args.repo_id, local_dir=local_dir, push=args.push,
                          private=not args.public, source=args.source, overwrite=args.overwrite, inputs=[folder])
    print(f"wrote a Hub-ready dataset folder to {out}" + (f" and uploaded it to {args.repo_id}" if args.push else ""))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Run a YAML recipe: select, fine-tune, evaluate, save the model and its card."""
    from .training import parse_recipe, run_recipe

    parsed = parse_recipe(args.recipe, args.overrides)
    summary = run_recipe(*parsed)
    print(json.dumps(summary, indent=1))
    saved = summary["time_saved_fraction"]
    if "eval_after" in summary:  # a causal LM: held-out loss and perplexity before and after
        b, a = summary["eval_before"], summary["eval_after"]
        result = f"held-out loss {b['loss']:.4f} -> {a['loss']:.4f} (perplexity {b['perplexity']:.2f} -> {a['perplexity']:.2f})"
    else:
        result = f"macro-F1 {summary['macro_f1']:.4f}"
    print(
        f"trained on {summary['rows_kept']}/{summary['rows_full']} rows, {result}; "
        f"selection {summary['selection_seconds']:.1f}s + training {summary['train_seconds']:.1f}s vs ~{summary['full_train_seconds_estimated']:.1f}s "
        f"for all rows at the measured rate ({saved:.0%} saved)" if saved is not None else "",
    )
    print(f"model: {summary['output_dir']}  card: {summary['model_card']}")
    return 0


COMMAND_TASKS = {"prune": "structured pruning", "compress": "compression", "subnetwork": "subnetwork selection",
                 "diagnose": DIAGNOSTICS_TASK}


def model_command(args: argparse.Namespace, cls: type) -> tuple[Path, object]:
    """What every command on a saved model checks first, before loading anything: the model folder (or GGUF file;
    a supported family, not an int8 folder, whole weight files), the output folder, the parameters and the counts."""
    from .models import check_model_dir, gguf_location

    for flag in ("calibration_rows", "rows"):
        if getattr(args, flag, None) is not None and getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if getattr(args, "max_length", None) is not None and args.max_length < 2:
        raise ValueError(f"--max-length must be at least 2, got {args.max_length}")
    _, gguf = gguf_location(args.model_dir, getattr(args, "gguf_file", None))
    if gguf is None:
        check_model_dir(args.model_dir, COMMAND_TASKS[args.command], any_family=args.command == "diagnose")
    out = check_output_dir(args.out, [args.model_dir, *input_paths(args.data)], overwrite=args.overwrite)
    obj = from_cli(cls, args)
    obj.check_params()
    return out, obj


def cmd_prune(args: argparse.Namespace) -> int:
    """Prune a saved model with calibration rows from ``--data``; save it with its report and heat-map."""
    from .pruning import AnnealingPruner
    from .pruning.saved import prune_saved_model, save_pruned

    out, pruner = model_command(args, AnnealingPruner)
    model, tokenizer = prune_saved_model(args.model_dir, args.data, pruner, text_column=args.text_column, label_column=args.label_column,
                                         calibration_rows=args.calibration_rows, max_length=args.max_length, seed=args.seed,
                                         gguf_file=args.gguf_file, recover_steps=args.recover_steps, recover_batch=args.recover_batch,
                                         recover_lr=args.recover_lr)
    with staged_output(out) as staging:
        save_pruned(model, tokenizer, pruner, staging)
    print(pruner.report_.summary())
    from .models import needs_load_pruned

    how = "hf_qselect.pruning.load_pruned" if needs_load_pruned(model.config) else "plain from_pretrained (or load_pruned)"
    print(f"wrote the pruned model to {out} (reload with {how}); report: {out / 'pruning_report.json'}")
    return 0


def compressed_causal_lm(path: str):
    """``(model, tokenizer)`` of a folder ``hf-qselect compress`` wrote, or ``(None, None)`` for any other path."""
    from .models import COMPRESSION_KEY

    config = Path(path) / "config.json"
    if not config.is_file() or COMPRESSION_KEY not in json.loads(config.read_text()):
        return None, None
    from transformers import AutoTokenizer

    from .compression import load_compressed

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return load_compressed(path), tokenizer


def cmd_generate(args: argparse.Namespace) -> int:
    """Greedy generation from a causal LM folder (pruned or not) or a GGUF file: does the model still talk?"""
    import torch

    from .models import load_causal_lm
    from .text_formats import render_messages

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    model, tokenizer = compressed_causal_lm(args.model) if args.gguf_file is None else (None, None)
    if model is None:
        model, tokenizer = load_causal_lm(args.model, args.gguf_file)
    text = render_messages([{"role": "user", "content": args.prompt}], tokenizer, add_generation_prompt=True) if not args.raw else args.prompt
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=not getattr(tokenizer, "chat_template", None) or args.raw)
    with torch.no_grad():
        out = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], max_new_tokens=args.max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id)
    print(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return 0


def cmd_subnetwork(args: argparse.Namespace) -> int:
    """Select a subnetwork of a saved encoder for ``--data``; write the mask, the pruned encoder and the report."""
    from .subnetworks import SubnetworkSelector
    from .subnetworks.saved import save_subnetwork, select_saved_model

    out, selector = model_command(args, SubnetworkSelector)
    model, tokenizer = select_saved_model(args.model_dir, args.data, selector, text_column=args.text_column, label_column=args.label_column)
    with staged_output(out) as staging:
        save_subnetwork(model, tokenizer, selector, staging)
    report = selector.report_
    print(f"kept {sum(report['kept'].values())} of {sum(report['units'].values())} units; training loss {report['open_loss']:.4f} "
          f"(all open) -> {report['losses'][-1]:.4f}; mask {report['mask_bytes']} bytes; {report['seconds']:.1f}s")
    print(f"wrote the mask, the pruned encoder and the report to {out} (reload with hf_qselect.pruning.load_pruned(path, AutoModel))")
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Sparse-training diagnostics of a saved classifier on ``--data``: report, spectrum plot, optional sparse weights."""
    from .data import load_labelled

    out, params = model_command(args, DiagnosticsParams)
    dataset = load_labelled(args.data, args.text_column, args.label_column, DIAGNOSTICS_TASK)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .diagnostics import save_sparse, sparse_training_report
    from .models import load_pruned
    if args.rows is not None:
        dataset = dataset.shuffle(seed=params.seed).select(range(min(args.rows, len(dataset))))
    model = load_pruned(args.model_dir, AutoModelForSequenceClassification)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    report = sparse_training_report(model, dataset, tokenizer, params, text_column=args.text_column, label_column=args.label_column)
    with staged_output(out) as staging:
        report.to_json(staging / "diagnostics.json")
        (staging / "diagnostics.md").write_text(report.to_markdown())
        report.plot(staging / "spectrum.png")
        if args.save_sparse:
            save_sparse(report.model, staging / "sparse_weights.safetensors")
    print(report.to_markdown())
    print(f"wrote diagnostics.json, diagnostics.md and spectrum.png to {out}")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    """Compress a saved classifier or causal LM within a size or latency budget; write it, its
    report and heat map (and ONNX for a classifier)."""
    from .compression import AnnealingCompressor

    out, compressor = model_command(args, AnnealingCompressor)
    if args.onnx or args.vocab:
        from transformers import AutoConfig

        from .models import gguf_location, is_causal_lm

        folder, gguf = gguf_location(args.model_dir, args.gguf_file)
        if gguf is not None or is_causal_lm(AutoConfig.from_pretrained(folder)):
            raise ValueError("--onnx and --vocab serve classifiers; a causal LM is written as int8 safetensors only "
                             "(reload with hf_qselect.compression.load_compressed)")
    if args.onnx:
        from .onnx_io import check_onnx_available

        check_onnx_available()
    from .compression.saved import compress_saved_model, write_compressed

    model, tokenizer, rows = compress_saved_model(args.model_dir, args.data, compressor, text_column=args.text_column,
                                                  label_column=args.label_column, calibration_rows=args.calibration_rows,
                                                  max_length=args.max_length, seed=args.seed, gguf_file=args.gguf_file)
    kept_tokens = None
    if args.vocab:
        from .compression import prune_vocabulary
        from .data import load_labelled

        texts = list(load_labelled(args.data, args.text_column, args.label_column, "compression")[args.text_column])
        model, tokenizer, kept = prune_vocabulary(model, tokenizer, texts)
        kept_tokens = len(kept)
    with staged_output(out) as staging:
        write_compressed(model, staging, tokenizer)
        compressor.report_.to_json(str(staging / "compression_report.json"))
        compressor.plot(staging / "compression.png")
        if args.onnx:
            from .compression import export_onnx

            export_onnx(model, staging / "onnx", tokenizer)
    print(compressor.report_.summary())
    if kept_tokens is not None:
        print(f"vocabulary: kept {kept_tokens:,} tokens that the training texts use (others map to [UNK])")
    print(f"wrote the compressed model to {out} (reload with hf_qselect.compression.load_compressed)"
          + (f"; ONNX Runtime copy in {out / 'onnx'}" if args.onnx else ""))
    return 0


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-id", default=None, help="namespace/name of the Hub dataset repo")
    parser.add_argument("--push", action="store_true", help="upload to the Hub (needs a token: huggingface-cli login or HF_TOKEN)")
    parser.add_argument("--public", action="store_true", help="create the repo public (default: private)")


def add_model_command(commands, name: str, help_text: str, params: type, func,
                      data_help: str = "labelled texts (same sources as select); the train split is used") -> argparse.ArgumentParser:
    """A command on a saved model folder: MODEL_DIR, --data, one flag per declared parameter, columns, --out, --overwrite."""
    parser = commands.add_parser(name, help=help_text)
    parser.add_argument("model_dir")
    parser.add_argument("--data", required=True, help=data_help)
    add_cli_arguments(parser, params)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--out", required=True)
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-qselect", description="Shrink what gets fine-tuned with QUBOs solved on annealers.")
    commands = parser.add_subparsers(dest="command", required=True)
    select = commands.add_parser("select", help="select a subset of a labelled text dataset")
    add_select_arguments(select)
    select.add_argument("--out", required=True, help="folder for the reduced dataset (save_to_disk) and selection_report.json")
    select.add_argument("--overwrite", action="store_true")
    select.add_argument("--publish", action="store_true", help="write --out as a Hub-ready folder (Parquet, dataset card, selection map)")
    select.add_argument("--scores", default=None, help="also write per-row diagnostics (out-of-fold label probability, flagged, kept) to this Parquet file")
    add_push_arguments(select)
    select.set_defaults(func=cmd_select)

    publish = commands.add_parser("publish", help="make a Hub-ready folder from a `select` output and optionally upload it")
    publish.add_argument("reduced_dir")
    publish.add_argument("--local-dir", default=None, help="where to write the Hub folder (default: REDUCED_DIR-hub)")
    publish.add_argument("--source", default=None, help="source dataset name for the card (default: the one recorded by select)")
    publish.add_argument("--overwrite", action="store_true")
    add_push_arguments(publish)
    publish.set_defaults(func=cmd_publish)

    prune = add_model_command(commands, "prune", "remove attention heads, FFN neurons and layers from a saved model", PruningParams,
                              cmd_prune, "calibration data (same sources as select)")
    add_renamed_flags(prune, PruningParams, PRUNING_RENAMED)  # --heads, --ffn, --layers: now --remove-heads, ...
    prune.add_argument("--calibration-rows", type=int, default=256, help="training rows the units are scored on")
    prune.add_argument("--gguf-file", default=None, help="a causal LM stored as a GGUF file in MODEL_DIR (dequantized to float32)")
    prune.add_argument("--max-length", type=int, default=64, help="tokenizer truncation length (causal LMs: tokens per row)")
    prune.add_argument("--recover-steps", type=int, default=0,
                       help="causal LMs: LoRA recovery steps after pruning, on other rows of --data (0: none; needs hf-qselect[peft])")
    prune.add_argument("--recover-batch", type=int, default=4, help="rows per LoRA recovery step")
    prune.add_argument("--recover-lr", type=float, default=2e-4, help="LoRA recovery learning rate (constant)")
    generate = commands.add_parser("generate", help="greedy generation from a causal LM folder or GGUF file, to see that it still talks")
    generate.add_argument("model", help="causal LM folder (pruned by hf-qselect or not), or a .gguf file")
    generate.add_argument("--prompt", required=True, help="the user's message (rendered with the chat template, if any)")
    generate.add_argument("--gguf-file", default=None, help="a GGUF file inside MODEL")
    generate.add_argument("--max-new-tokens", type=int, default=64)
    generate.add_argument("--raw", action="store_true", help="send the prompt as it is, without the chat template")
    generate.set_defaults(func=cmd_generate)
    add_model_command(commands, "subnetwork", "select a task's subnetwork of a frozen encoder (no weight trained) and remove the rest",
                      SubnetworkParams, cmd_subnetwork)
    compress = add_model_command(commands, "compress", "drop heads and FFN blocks and quantize Linears to int8 within a size or latency budget",
                                 CompressionParams, cmd_compress, "calibration data (same sources as select)")
    compress.add_argument("--calibration-rows", type=int, default=256, help="training rows the choices are scored on")
    compress.add_argument("--max-length", type=int, default=64, help="tokenizer truncation length (causal LMs: tokens per row)")
    compress.add_argument("--gguf-file", default=None, help="a causal LM stored as a GGUF file in MODEL_DIR (dequantized to float32)")
    compress.add_argument("--onnx", action="store_true", help="also write an ONNX Runtime copy (int8 where chosen) to OUT/onnx")
    compress.add_argument("--vocab", action="store_true", help="also keep only the token embeddings the training texts use")
    diag = add_model_command(commands, "diagnose", "would this fine-tuning suit quantum sparse training? sparsity, Hessian spectrum, costs",
                             DiagnosticsParams, cmd_diagnose)
    diag.add_argument("--rows", type=int, default=None, help="use this many shuffled rows (default: all)")
    diag.add_argument("--save-sparse", action="store_true", help="also write the sparse fine-tuned weights (indices + values)")

    comp = commands.add_parser("compare", help="how much can be dropped: methods x keep rates, paired intervals, a recommendation")
    comp.add_argument("--data", required=True, help="same sources as select")
    comp.add_argument("--methods", default="random,qubo,facility,pasin2024", help="comma-separated methods")
    comp.add_argument("--keep", default="0.75,0.5,0.25", help="comma-separated keep rates")
    comp.add_argument("--eval", default="probe", choices=["probe", "finetune", "causal-lm"],
                      help="probe: logistic regression on frozen embeddings (fast); finetune: a short classifier fine-tune; "
                           "causal-lm: LoRA on --model, held-out loss on the responses (with --label-column none)")
    comp.add_argument("--tolerance", type=float, default=1.0,
                      help="macro-F1 points below full data that are acceptable (causal-lm: percent of full data's loss)")
    comp.add_argument("--folds", type=int, default=5)
    comp.add_argument("--repeats", type=int, default=5)
    comp.add_argument("--finetune-steps", type=int, default=60, help="optimizer steps per run with --eval finetune")
    comp.add_argument("--text-column", default="text")
    comp.add_argument("--label-column", default="label", help="none: rows without class labels (instruction, chat or text)")
    comp.add_argument("--model", default=None, help="finetune: the classifier to fine-tune; causal-lm: the causal LM (folder, package:NAME or .gguf)")
    comp.add_argument("--gguf-file", default=None, help="causal-lm: a GGUF file inside --model's folder")
    comp.add_argument("--epochs", type=float, default=1.0, help="causal-lm: LoRA epochs on each subset")
    comp.add_argument("--max-length", type=int, default=256, help="causal-lm: tokens per row")
    comp.add_argument("--quality", default=None, help="a numeric column the quality-aware methods read (qubo, deita, quality)")
    comp.add_argument("--seed", type=int, default=0)
    comp.add_argument("--out", required=True, help="folder for compare.json, compare.md and compare.png")
    comp.add_argument("--overwrite", action="store_true")
    comp.set_defaults(func=cmd_compare)

    train = commands.add_parser("train", help="run a YAML recipe: select, fine-tune, evaluate, write the model card")
    train.add_argument("recipe")
    train.add_argument("overrides", nargs=argparse.REMAINDER, help="--key value pairs that override the recipe")
    train.set_defaults(func=cmd_train)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input (a value, a file, a missing package), each shown as one line."""
    errors: tuple[type[BaseException], ...] = (ValueError, KeyError, TypeError, OSError, RuntimeError, ImportError)
    try:
        from safetensors import SafetensorError

        errors += (SafetensorError,)
    except ImportError:
        pass
    return errors


def main(argv: list[str] | None = None) -> int:
    from .output_dir import clear_written, interrupt_message

    args = build_parser().parse_args(argv)
    clear_written()
    try:
        return args.func(args)
    except user_errors() as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"hf-qselect {args.command}: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hf-qselect {args.command}: interrupted; {interrupt_message()}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
