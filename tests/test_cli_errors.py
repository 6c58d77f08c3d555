"""Every bad invocation: exit code 2, one line naming the input, no traceback, and every input file's bytes unchanged."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from datasets import Dataset

from hf_qselect.cli import main

TEXTS = [f"a {w} sentence number {i}" for i, w in enumerate(["good", "bad", "fine", "poor"] * 6)]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (inputs included) and its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".cache" not in p.parts}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with every kind of input: CSVs good and bad, a save_to_disk folder, a tiny saved model, recipes."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_qselect.selection.embeddings import default_embedder

    root = tmp_path_factory.mktemp("cli")
    labels = [i % 2 for i in range(len(TEXTS))]
    good = Dataset.from_dict({"text": TEXTS, "label": labels, "rating": [0.25 * (i % 7) - 0.7 for i in range(len(TEXTS))],
                              "three": [i % 3 for i in range(len(TEXTS))]})
    (root / "in").mkdir()
    good.to_csv(str(root / "in" / "data.csv"))
    good.save_to_disk(str(root / "saved"))
    (root / "in" / "empty.csv").write_bytes(b"")
    (root / "in" / "header.csv").write_text("text,label\n")
    (root / "in" / "latin1.csv").write_bytes("text,label\ncaf\xe9 au lait,1\nplain,0\n".encode("latin-1"))
    (root / "in" / "multi.jsonl").write_text("\n".join(json.dumps({"text": t, "label": [0, 1]}) for t in TEXTS[:6]))
    (root / "a_file").write_text("not a folder")
    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    (root / "python_tag.yaml").write_text("dataset: !!python/object/apply:os.system ['echo pwned']\n")
    (root / "mapping.yaml").write_text(yaml.safe_dump({"dataset": {"path": "in/data.csv"}, "output_dir": "o"}))
    for name, keep in (("keep_big.yaml", 1.5), ("keep_nan.yaml", float("nan"))):
        (root / name).write_text(yaml.safe_dump({"dataset": "in/data.csv", "selection_keep": keep, "output_dir": "o"}))
    (root / "float_labels.yaml").write_text(yaml.safe_dump({"dataset": "in/data.csv", "label_column": "rating", "output_dir": "o"}))
    (root / "busy").mkdir()
    (root / "busy" / "keep.txt").write_text("someone's file")
    (root / "busy.yaml").write_text(yaml.safe_dump({"dataset": "in/data.csv", "output_dir": "busy"}))
    (root / "model_out.yaml").write_text(yaml.safe_dump({"dataset": "in/data.csv", "output_dir": "model", "model_name_or_path": "model",
                                                         "overwrite_output_dir": True}))
    (root / "negative_budget.yaml").write_text("dataset: in/data.csv\noutput_dir: o\ncompress_budget: -5MB\n")
    (root / "two_budgets.yaml").write_text("dataset: in/data.csv\noutput_dir: o\ncompress_budget: 10%\ncompress_latency_ms: 3\n")
    # issue 29's folders: compressed (int8), truncated weights, an unsupported family; data with holes and one class
    from hf_qselect.compression import save_compressed
    from hf_qselect.compression.quantize import quantize_linears

    compressed = BertForSequenceClassification(config)
    save_compressed(quantize_linears(compressed, ["bert.encoder.layer.0.intermediate.dense"]), root / "compressed", tokenizer)
    shutil.copytree(root / "model", root / "truncated")
    weights = (root / "truncated" / "model.safetensors").read_bytes()
    (root / "truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=tokenizer.vocab_size)).save_pretrained(root / "gpt2")
    tokenizer.save_pretrained(root / "gpt2")
    holes = [None if i in (3, 7, 11) else t for i, t in enumerate(TEXTS)]
    Dataset.from_dict({"text": holes, "label": labels}).to_csv(str(root / "in" / "holes.csv"))
    Dataset.from_dict({"text": TEXTS, "label": [1] * len(TEXTS)}).to_csv(str(root / "in" / "one_class.csv"))
    return root


SELECT = ["select", "--method", "random", "--n-jobs", "1"]
# (id, argv, what the one line must contain); paths are relative to the work folder
CASES = [
    ("out-is-the-input-folder", SELECT + ["--data", "saved", "--out", "saved", "--overwrite"], "would overwrite the input saved"),
    ("out-is-cwd", SELECT + ["--data", "in/data.csv", "--out", ".", "--overwrite"], "current directory"),
    ("out-is-empty-string", SELECT + ["--data", "in/data.csv", "--out", "", "--overwrite"], "current directory"),
    ("out-is-dot-slash", SELECT + ["--data", "in/data.csv", "--out", "./", "--overwrite"], "current directory"),
    ("out-is-a-parent-of-cwd", SELECT + ["--data", "in/data.csv", "--out", "..", "--overwrite"], "current directory or one of its parents"),
    ("out-holds-the-input-csv", SELECT + ["--data", "in/data.csv", "--out", "in", "--overwrite"], "would overwrite the input in/data.csv"),
    ("out-inside-the-input-folder", SELECT + ["--data", "saved", "--out", "saved/sub"], "would overwrite the input saved"),
    ("out-is-a-file", SELECT + ["--data", "in/data.csv", "--out", "a_file", "--overwrite"], "is a file"),
    ("out-busy-without-overwrite", SELECT + ["--data", "in/data.csv", "--out", "busy"], "pass --overwrite"),
    ("push-without-publish", SELECT + ["--data", "in/data.csv", "--out", "o", "--push", "--repo-id", "org/x"], "add --publish"),
    ("repo-id-trailing-newline", SELECT + ["--data", "in/data.csv", "--out", "o", "--publish", "--repo-id", "org/x\n"], "repo_id must look like"),
    ("repo-id-non-ascii", SELECT + ["--data", "in/data.csv", "--out", "o", "--publish", "--repo-id", "orgé/x"], "repo_id must look like"),
    ("empty-csv", SELECT + ["--data", "in/empty.csv", "--out", "o"], "in/empty.csv is empty"),
    ("header-only-csv", SELECT + ["--data", "in/header.csv", "--out", "o"], "has no rows"),
    ("non-utf8-csv", SELECT + ["--data", "in/latin1.csv", "--out", "o"], "in/latin1.csv is not UTF-8 text: byte 0xe9 at offset 14"),
    ("mistyped-path", SELECT + ["--data", "in/dta.csv", "--out", "o"], "no such file or folder: in/dta.csv"),
    ("mistyped-relative-path", SELECT + ["--data", "./saevd", "--out", "o"], "no such file or folder: ./saevd"),
    ("hub-id-offline", SELECT + ["--data", "someorg/somedata", "--out", "o"], "the Hub is offline"),
    ("unknown-builtin", SELECT + ["--data", "builtin:imdb", "--out", "o"], "unknown built-in dataset 'builtin:imdb'"),
    ("float-labels", SELECT + ["--data", "in/data.csv", "--label-column", "rating", "--out", "o"], "label column 'rating' holds non-integer numbers"),
    ("multi-label-lists", SELECT + ["--data", "in/multi.jsonl", "--out", "o"], "holds lists (multi-label)"),
    ("keep-below-the-class-count", SELECT + ["--data", "in/data.csv", "--label-column", "three", "--keep", "0.05", "--out", "o"],
     "fewer than the 3 classes"),
    ("publish-local-dir-is-a-file", ["publish", "saved", "--local-dir", "a_file"], "is a file"),
    ("publish-missing-folder", ["publish", "nowhere"], "no such folder: nowhere"),
    ("publish-not-a-select-output", ["publish", "saved", "--local-dir", "hub"], "selection_report.json not found"),
    ("train-python-yaml-tag", ["train", "python_tag.yaml"], "unsafe YAML tag refused"),
    ("train-dataset-is-a-mapping", ["train", "mapping.yaml"], "recipe key 'dataset' must be a single value"),
    ("train-keep-above-one", ["train", "keep_big.yaml"], "selection_keep must be a fraction in (0, 1], got selection_keep=1.5"),
    ("train-keep-nan", ["train", "keep_nan.yaml"], "selection_keep must be a fraction in (0, 1], got selection_keep=nan"),
    ("train-missing-recipe", ["train", "nope.yaml"], "no such recipe file: nope.yaml"),
    ("train-busy-output-dir", ["train", "busy.yaml"], "pass --overwrite_output_dir"),
    ("train-output-dir-is-the-model", ["train", "model_out.yaml"], "would overwrite the input model"),
    ("train-float-labels", ["train", "float_labels.yaml"], "label column 'rating' holds non-integer numbers"),
    ("prune-missing-model-dir", ["prune", "nomodel", "--data", "in/data.csv", "--remove-heads", "0.5", "--out", "p"], "no such model folder: nomodel"),
    ("prune-more-classes-than-labels", ["prune", "model", "--data", "in/data.csv", "--label-column", "three", "--remove-heads", "0.5", "--out", "p"],
     "has class ids [2] but the model has 2 labels"),
    ("prune-zero-calibration-rows", ["prune", "model", "--data", "in/data.csv", "--calibration-rows", "0", "--remove-heads", "0.5", "--out", "p"],
     "--calibration-rows must be at least 1"),
    ("prune-float-labels", ["prune", "model", "--data", "in/data.csv", "--label-column", "rating", "--remove-heads", "0.5", "--out", "p"],
     "label column 'rating' holds non-integer numbers"),
    ("prune-out-is-the-model", ["prune", "model", "--data", "in/data.csv", "--remove-heads", "0.5", "--out", "model", "--overwrite"],
     "would overwrite the input model"),
    # issue 29, cases 1-2: --scores is checked like an output folder, before any work
    ("scores-is-the-input-csv", SELECT + ["--data", "in/data.csv", "--out", "o", "--scores", "in/data.csv"],
     "--scores file in/data.csv would overwrite the input in/data.csv"),
    ("scores-is-the-input-csv-with-overwrite", SELECT + ["--data", "in/data.csv", "--out", "o", "--scores", "in/data.csv", "--overwrite"],
     "would overwrite the input in/data.csv"),
    ("scores-is-a-foreign-file", SELECT + ["--data", "in/data.csv", "--out", "o", "--scores", "a_file"],
     "--scores file a_file exists and is not an earlier --scores file; pass --overwrite"),
    ("scores-is-a-folder", SELECT + ["--data", "in/data.csv", "--out", "o", "--scores", "busy"], "--scores file busy is a folder"),
    ("scores-under-a-file", SELECT + ["--data", "in/data.csv", "--out", "o", "--scores", "a_file/x.parquet"], "cannot create files in"),
    ("scores-inside-out", SELECT + ["--data", "in/data.csv", "--out", "o", "--scores", "o/scores.parquet"], "is inside --out o"),
    # 3, 12: folders that plain loading would misread, refused before loading
    *[(f"{cmd}-on-a-compressed-folder", [cmd, "compressed", "--data", "in/data.csv", *extra, "--out", "p"], "was written by hf-qselect compress")
      for cmd, extra in (("prune", ["--remove-heads", "0.5"]), ("subnetwork", []), ("diagnose", []), ("compress", []))],
    *[(f"{cmd}-on-truncated-weights", [cmd, "truncated", "--data", "in/data.csv", *extra, "--out", "p"], "model.safetensors is truncated")
      for cmd, extra in (("prune", ["--remove-heads", "0.5"]), ("subnetwork", []), ("diagnose", []), ("compress", []))],
    *[(f"{cmd}-on-an-unsupported-family", [cmd, "gpt2", "--data", "in/data.csv", *extra, "--out", "p"], "model_type='gpt2'")
      for cmd, extra in (("prune", ["--remove-heads", "0.5"]), ("subnetwork", []), ("compress", []))],
    # 4, 5, 16: compare's settings
    ("compare-no-methods", ["compare", "--data", "in/data.csv", "--methods", "", "--out", "o"], "methods is empty"),
    ("compare-no-keeps", ["compare", "--data", "in/data.csv", "--keep", "", "--out", "o"], "keeps is empty"),
    ("compare-zero-finetune-steps", ["compare", "--data", "in/data.csv", "--eval", "finetune", "--finetune-steps", "0", "--out", "o"],
     "finetune_steps must be an integer >= 1"),
    ("compare-one-fold", ["compare", "--data", "in/data.csv", "--folds", "1", "--out", "o"], "folds must be an integer >= 2"),
    ("compare-zero-repeats", ["compare", "--data", "in/data.csv", "--repeats", "0", "--out", "o"], "repeats must be an integer >= 1"),
    ("prune-recovery-on-a-classifier", ["prune", "model", "--data", "in/data.csv", "--remove-heads", "0.5", "--recover-steps", "2", "--out", "p"],
     "LoRA recovery (recover_steps) is for causal LMs"),
    # issue 27: compare without class labels
    ("compare-causal-lm-with-labels", ["compare", "--data", "in/data.csv", "--eval", "causal-lm", "--model", "m", "--out", "o"],
     "pass label_column=None (--label-column none)"),
    ("compare-causal-lm-without-model", ["compare", "--data", "in/data.csv", "--eval", "causal-lm", "--label-column", "none", "--out", "o"],
     "evaluation='causal-lm' needs model="),
    ("compare-probe-without-labels", ["compare", "--data", "in/data.csv", "--label-column", "none", "--out", "o"],
     "use evaluation='causal-lm' with model="),
    ("compare-unlabelled-with-a-labelled-method", ["compare", "--data", "in/data.csv", "--eval", "causal-lm", "--model", "m",
                                                   "--label-column", "none", "--methods", "random,pasin2024", "--out", "o"],
     "method(s) ['pasin2024'] need class labels"),
    ("compare-zero-epochs", ["compare", "--data", "in/data.csv", "--eval", "causal-lm", "--model", "m", "--label-column", "none",
                             "--epochs", "0", "--out", "o"], "epochs must be a number > 0"),
    # 10: missing texts named by their row in the file
    ("compress-missing-text", ["compress", "model", "--data", "in/holes.csv", "--out", "p"], "missing (None) values at rows [3, 7, 11]"),
    # 11, 13: counts checked before any work
    ("diagnose-zero-rows", ["diagnose", "model", "--data", "in/data.csv", "--rows", "0", "--out", "p"], "--rows must be at least 1"),
    ("diagnose-negative-rows", ["diagnose", "model", "--data", "in/data.csv", "--rows=-5", "--out", "p"], "--rows must be at least 1"),
    ("compress-negative-max-length", ["compress", "model", "--data", "in/data.csv", "--max-length=-1", "--out", "p"],
     "--max-length must be at least 2"),
    ("compress-zero-max-length", ["compress", "model", "--data", "in/data.csv", "--max-length", "0", "--out", "p"], "--max-length must be at least 2"),
    ("prune-negative-max-length", ["prune", "model", "--data", "in/data.csv", "--remove-heads", "0.5", "--max-length=-1", "--out", "p"],
     "--max-length must be at least 2"),
    # 16: wording
    ("subnetwork-keep-one", ["subnetwork", "model", "--data", "in/data.csv", "--keep", "1", "--out", "p"], "keep must be in (0, 1), got keep=1.0"),
    ("subnetwork-one-class", ["subnetwork", "model", "--data", "in/one_class.csv", "--out", "p"], "subnetwork selection needs at least two"),
    ("diagnose-one-class", ["diagnose", "model", "--data", "in/one_class.csv", "--out", "p"], "sparse-training diagnostics needs at least two"),
    ("train-negative-budget", ["train", "negative_budget.yaml"], "compress_budget must be a size such as '25%'"),
    ("train-two-budgets", ["train", "two_budgets.yaml"], "give one of compress_budget (a size) and compress_latency_ms (a time)"),
]


@pytest.mark.parametrize("argv,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_invocation_exits_2_with_one_line(workdir, monkeypatch, capsys, argv, expected):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("HF_QSELECT_CACHE", str(workdir / ".cache"))
    before = snapshot(workdir)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("hf-qselect")]
    assert len(lines) == 1 and err.strip().endswith(lines[0]) and "Traceback" not in err, err  # progress bars may come before it
    assert lines[0].startswith(f"hf-qselect {argv[0]}: error: ") and expected in lines[0], lines[0]
    assert snapshot(workdir) == before  # no input (nor anything else) changed
    assert not (workdir / "o").exists() and not (workdir / "p").exists()


def test_the_real_command_prints_no_traceback(workdir):
    """One case through the installed entry point, in its own process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "hf_qselect.cli", "select", "--data", "saved", "--out", "saved", "--overwrite"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("hf-qselect select: error: output folder saved would overwrite the input")


def test_qpu_without_network_is_one_line(workdir, monkeypatch, capsys):
    """The D-Wave cloud cannot be reached from here: its client is replaced by one that times out."""
    import dwave.system.samplers.clique as clique
    from dwave.cloud.exceptions import RequestTimeout

    def unreachable(*args, **kwargs):
        raise RequestTimeout("API request timed out")

    monkeypatch.setattr(clique, "DWaveSampler", unreachable)  # the Leap client inside DWaveCliqueSampler
    monkeypatch.setenv("DWAVE_API_TOKEN", "test-token")
    monkeypatch.chdir(workdir)
    assert main(["select", "--data", "in/data.csv", "--solver", "qpu", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "could not connect to D-Wave Leap (RequestTimeout" in err
    assert not (workdir / "o").exists()


def test_hub_id_without_network_fails_in_seconds(workdir, monkeypatch, capsys):
    """Online mode but no Hub: a closed loopback port stands in for the unreachable endpoint."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.chdir(workdir)
    assert main(["select", "--data", "someorg/somedata", "--out", "o"]) == 2
    assert "cannot be reached within 3 s" in capsys.readouterr().err  # the probe answered, not the client's retries
