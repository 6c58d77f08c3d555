"""Issue 12's reproductions: no input lost, no silently wrong result, no unreadable file used as is."""
import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, load_from_disk

from hf_qselect import InstanceSelector
from hf_qselect.cli import main
from hf_qselect.selection.embeddings import cache_path, embed_dataset, texts_digest
from hf_qselect.hub import load_reduced, publish_reduced
from hf_qselect.training.recipes import parse_recipe

from .conftest import clustered
from .test_output_dir import run_killed, tree


def fit(ds, emb=None, **kw):
    return InstanceSelector(**{"show_progress": False, "n_jobs": 1, "seed": 0, **kw}).fit(ds, embeddings=emb)


# ---------------------------------------------------------------- data loss (1-3)
def test_select_onto_its_own_input_folder_keeps_the_input(small, tmp_path):
    ds, _ = small
    ds.save_to_disk(str(tmp_path / "D"))
    before = tree(tmp_path / "D")
    assert main(["select", "--data", str(tmp_path / "D"), "--out", str(tmp_path / "D"), "--overwrite", "--method", "random"]) == 2
    assert tree(tmp_path / "D") == before and len(load_from_disk(str(tmp_path / "D"))) == len(ds)


@pytest.mark.parametrize("local_dir", [".", "", "./"])
def test_publish_into_the_current_directory_is_refused(small, tmp_path, monkeypatch, local_dir):
    ds, emb = small
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mydata.csv").write_text("text,label\n")
    sel = fit(ds, emb)
    with pytest.raises(ValueError, match="current directory"):
        publish_reduced(sel.select(ds), sel, local_dir=local_dir, overwrite=True)
    assert (tmp_path / "mydata.csv").read_text() == "text,label\n"


def test_select_with_overwrite_replaces_the_old_output_whole(small, tmp_path):
    ds, _ = small
    ds.to_csv(str(tmp_path / "in.csv"))
    out = tmp_path / "out"
    assert main(["select", "--data", str(tmp_path / "in.csv"), "--out", str(out), "--method", "random", "--keep", "0.5"]) == 0
    assert main(["select", "--data", str(tmp_path / "in.csv"), "--out", str(out), "--method", "random", "--keep", "0.25", "--overwrite"]) == 0
    assert len(load_from_disk(str(out))) == 60 and sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out"]


SELECT = """
from hf_qselect.cli import main
sys.exit(main(["select", "--data", sys.argv[4], "--out", str(target), "--method", "random", "--keep", "0.25", "--overwrite"]))
"""
PUBLISH = """
from hf_qselect.cli import main
sys.exit(main(["publish", sys.argv[4], "--local-dir", str(target), "--overwrite"]))
"""
PRUNE = """
from hf_qselect.cli import main
sys.exit(main(["prune", sys.argv[4], "--data", sys.argv[5], "--remove-heads", "0.5", "--method", "greedy", "--out", str(target), "--overwrite"]))
"""


@pytest.fixture(scope="module")
def command_inputs(tmp_path_factory):
    """A CSV, a `select` output, a tiny saved model, and a first output of each command to be replaced."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_qselect.selection.embeddings import default_embedder

    root = tmp_path_factory.mktemp("kill")
    emb, labels = clustered(80, classes=2)
    Dataset.from_dict({"text": [f"row {i}" for i in range(80)], "label": labels.tolist()}).to_csv(str(root / "in.csv"))
    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    common = ["--method", "random", "--keep", "0.5"]
    assert main(["select", "--data", str(root / "in.csv"), "--out", str(root / "sel"), *common]) == 0
    return root


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("command", ["select", "publish", "prune"])
def test_a_command_killed_between_the_renames_leaves_one_complete_folder(command_inputs, tmp_path, command, sig):
    root = command_inputs
    body, argv, first = {
        "select": (SELECT, [str(root / "in.csv")], ["select", "--data", str(root / "in.csv"), "--method", "random", "--keep", "0.5"]),
        "publish": (PUBLISH, [str(root / "sel")], ["publish", str(root / "sel")]),
        "prune": (PRUNE, [str(root / "model"), str(root / "in.csv")], ["prune", str(root / "model"), "--data", str(root / "in.csv"),
                                                                         "--remove-ffn", "0.5", "--method", "greedy"]),
    }[command]
    target = tmp_path / "out"
    flag = "--local-dir" if command == "publish" else "--out"
    assert main([*first, flag, str(target)]) == 0
    old = tree(target)
    inputs = {p: tree(root / p) if (root / p).is_dir() else (root / p).read_bytes() for p in ("in.csv", "sel", "model")}
    run_killed(body, target, sig, 2, *argv)  # killed after the old folder is set aside, before the new one is renamed in
    if sig == "SIGKILL":
        assert not target.exists()  # the old folder is aside: the next run restores it
        assert main([*first, flag, str(target)]) == 2  # refused (not empty), but the old folder is back first
    assert tree(target) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert inputs == {p: tree(root / p) if (root / p).is_dir() else (root / p).read_bytes() for p in ("in.csv", "sel", "model")}


# ---------------------------------------------------------------- silently wrong results (4-10)
@pytest.mark.parametrize("keep", ["1.5", "nan", "0", "-0.1"])
def test_recipe_keep_out_of_range_is_refused(tmp_path, keep):
    path = tmp_path / "r.yaml"
    path.write_text(f"dataset: builtin:vader_nyt\nselection_keep: {keep}\noutput_dir: {tmp_path / 'o'}\n")
    with pytest.raises(ValueError, match="keep must be a fraction in"):
        parse_recipe(path)


def test_float_labels_are_refused_unless_integral(small):
    ds, emb = small
    rating = Dataset.from_dict({"text": ds["text"], "label": [float(v) + 0.25 for v in ds["label"]]})
    with pytest.raises(ValueError, match="label column 'label' holds non-integer numbers"):
        fit(rating, emb)
    integral = Dataset.from_dict({"text": ds["text"], "label": [float(v) for v in ds["label"]]})
    assert fit(integral, emb).report_.n_kept == 120
    lists = Dataset.from_dict({"text": ds["text"], "label": [[v] for v in ds["label"]]})
    with pytest.raises(ValueError, match="multi-label"):
        fit(lists, emb)


def test_no_class_vanishes():
    emb, labels = clustered(2000, classes=2, seed=1)
    labels[:10] = 2  # a 10-row class
    ds = Dataset.from_dict({"text": [f"r{i}" for i in range(2000)], "label": labels.tolist()})
    for method in ("pasin2024", "qubo", "random", "e2sc", "biois", "facility", "semdedup"):
        sel = fit(ds, emb, keep=0.01, method=method, block_size=40)
        kept = np.bincount(labels[sel.mask_], minlength=3)
        assert kept.min() >= 1 and kept.sum() == 20, (method, kept)
    assert fit(ds, emb, keep=0.01, method="pasin2024", block_size=40).report_.classes_topped_up >= 0
    with pytest.raises(ValueError, match="fewer than the 3 classes; every class keeps at least one row, so keep must be at least"):
        fit(ds, emb, keep=0.0005)


def test_pasin2024_tops_up_an_emptied_class_and_says_so():
    emb, labels = clustered(2000, classes=2, seed=1)
    labels[:10] = 2
    ds = Dataset.from_dict({"text": [f"r{i}" for i in range(2000)], "label": labels.tolist()})
    topped = [fit(ds, emb, keep=0.01, method="pasin2024", seed=s).report_.classes_topped_up for s in range(6)]
    assert max(topped) >= 1  # without the top-up the small class is emptied on some seeds


@pytest.mark.parametrize("confidence", [0, 0.5, 0.3, 1.2, float("nan")])
def test_noise_confidence_outside_the_range_is_refused(small, confidence):
    ds, emb = small
    with pytest.raises(ValueError, match="noise_confidence must be in"):
        fit(ds, emb, noise_confidence=confidence)


def test_noise_confidence_reaches_biois(small):
    ds, emb = small
    masks = {c: fit(ds, emb, method="biois", noise_confidence=c).mask_ for c in (0.51, 0.99)}
    assert not np.array_equal(masks[0.51], masks[0.99])


def test_class_balance_is_checked_before_any_scoring(small):
    ds, emb = small
    with pytest.raises(ValueError, match="class_balance must be in"):
        fit(ds, emb, class_balance=1.5)


def cache_entry(ds, root):
    return cache_path(None, texts_digest(list(ds["text"])), "text", len(ds), root)


@pytest.mark.parametrize("bad", ["wrong-shape", "wrong-dtype", "truncated", "empty", "pickled", "nan"])
def test_a_bad_cache_entry_is_named_deleted_and_recomputed(sentences, tmp_path, bad):
    texts = list(sentences["text"])
    good, _ = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    path = cache_entry(sentences, tmp_path)
    if bad == "wrong-shape":
        np.save(path, good[:, :10])
    elif bad == "wrong-dtype":
        np.save(path, good.astype(np.float64))
    elif bad == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif bad == "empty":
        path.write_bytes(b"")
    elif bad == "pickled":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        broken = good.copy()
        broken[3, 3] = np.nan
        np.save(path, broken)
    with pytest.warns(UserWarning, match=str(path.name)):
        again, cached = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
    assert not cached and np.allclose(again, good, atol=1e-5)
    assert np.array_equal(np.load(path), again)  # written anew, valid
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)[1]


def test_cache_writes_from_threads_do_not_collide(tmp_path):
    from hf_qselect.selection.embeddings import write_cached

    path = tmp_path / "emb.npy"
    errors = []
    vectors = [np.full((50, 8), i, dtype=np.float32) for i in range(6)]

    def write(v):
        try:
            for _ in range(20):
                write_cached(path, v)
        except Exception as err:  # noqa: BLE001 - the test collects any failure
            errors.append(err)

    threads = [threading.Thread(target=write, args=(v,)) for v in vectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert any(np.array_equal(np.load(path), v) for v in vectors) and [p.name for p in tmp_path.iterdir()] == ["emb.npy"]


def test_published_folder_holds_no_local_paths(sentences, tmp_path, monkeypatch):
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    monkeypatch.setenv("HF_QSELECT_CACHE", str(home / "cache"))
    csv = home / "private_reviews.csv"
    sentences.to_csv(str(csv))
    out = tmp_path / "pub"
    assert main(["select", "--data", str(csv), "--block-size", "12", "--n-jobs", "1", "--out", str(out), "--publish"]) == 0
    sel = InstanceSelector(keep=0.5, block_size=12, n_jobs=1, show_progress=False, cache_dir=home / "cache").fit(sentences)
    publish_reduced(sel.select(sentences), sel, local_dir=tmp_path / "api", source=str(csv))
    for folder in (out, tmp_path / "api"):
        for f in folder.rglob("*"):
            if f.is_file() and f.suffix in (".md", ".json"):
                text = f.read_text()
                assert str(home) not in text and str(tmp_path) not in text, f
        assert "private_reviews.csv" in (folder / "README.md").read_text()
        assert json.loads((folder / "selection_report.json").read_text())["source_fingerprint"]


# ---------------------------------------------------------------- load_reduced on broken folders
@pytest.fixture
def published(small, tmp_path):
    ds, emb = small
    sel = fit(ds, emb)
    return publish_reduced(sel.select(ds), sel, local_dir=tmp_path / "pub")


def test_load_reduced_names_what_is_broken(published, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_reduced(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no such folder: ./nowhere"):
        load_reduced("./nowhere")
    report = published / "selection_report.json"
    good = report.read_text()
    report.write_text("{ not json")
    with pytest.raises(ValueError, match="selection_report.json is not a valid selection report"):
        load_reduced(published)
    report.write_text(json.dumps({**json.loads(good), "n_kept": 7}))
    with pytest.raises(ValueError, match="train split has 120 rows but selection_report.json says 7"):
        load_reduced(published)
    report.write_text(good)
    shard = next((published / "data").glob("train-*.parquet"))
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"shard .*{shard.name} is not readable Parquet"):
        load_reduced(published)
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="holds no Parquet shards"):
        load_reduced(published)


def test_load_reduced_finds_a_missing_shard(published):
    shard = next((published / "data").glob("train-*.parquet"))
    shard.rename(shard.with_name("train-00000-of-00002.parquet"))
    with pytest.raises(FileNotFoundError, match="train-00001-of-00002.parquet is missing"):
        load_reduced(published)


def test_train_replaces_its_output_dir_only_with_the_flag(sentences, tmp_path, monkeypatch):
    import yaml
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_qselect.selection.embeddings import default_embedder

    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    sentences.to_csv(str(tmp_path / "data.csv"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("an earlier run")
    recipe = {"model_name_or_path": str(tmp_path / "model"), "max_length": 16, "dataset": str(tmp_path / "data.csv"), "method": "random",
              "output_dir": str(out), "num_train_epochs": 1, "per_device_train_batch_size": 4, "report_to": "none",
              "save_strategy": "no", "use_cpu": True, "disable_tqdm": True}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml")]) == 2 and (out / "old.txt").exists()
    assert main(["train", str(tmp_path / "r.yaml"), "--overwrite_output_dir", "true"]) == 0
    assert not (out / "old.txt").exists() and (out / "config.json").exists() and (out / "README.md").exists()
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["output_dir"] == "out" and summary["model_card"] == "README.md" and "staging" not in (out / "README.md").read_text()
    # issue 29 case 9: the card names the local model by its folder name; no file of the run holds a local path
    card = (out / "README.md").read_text()
    assert "`model`" in card and str(tmp_path) not in card and str(tmp_path) not in (out / "run_summary.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# ---------------------------------------------------------------- issue 29: the newer writers and loaders
def test_scores_file_is_atomic_replaces_only_its_own_kind_and_never_an_input(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds, _ = small
    ds.to_csv("data.csv")
    data = Path("data.csv").read_bytes()
    base = ["select", "--data", "data.csv", "--method", "random", "--keep", "0.5", "--n-jobs", "1"]
    assert main([*base, "--out", "o1", "--scores", "scores.parquet"]) == 0
    import pandas as pd

    first = pd.read_parquet("scores.parquet")
    assert len(first) == len(ds) and int(first["kept"].sum()) == len(load_from_disk("o1"))
    assert main([*base, "--out", "o2", "--scores", "scores.parquet"]) == 0  # an earlier scores file is replaced
    Path("notes.txt").write_text("my notes")
    assert main([*base, "--out", "o3", "--scores", "notes.txt"]) == 2 and Path("notes.txt").read_text() == "my notes"
    assert main([*base, "--out", "o4", "--scores", "data.csv", "--overwrite"]) == 2
    assert Path("data.csv").read_bytes() == data and not Path("o3").exists() and not Path("o4").exists()
    assert main([*base, "--out", "o5", "--scores", "notes.txt", "--overwrite"]) == 0  # the user's own choice
    assert len(pd.read_parquet("notes.txt")) == len(ds)
    assert not [p for p in Path(".").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_reports_and_figures_never_replace_a_foreign_file(tmp_path):
    from hf_qselect.output_dir import save_figure
    from hf_qselect.selection import SelectionReport

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = SelectionReport.from_dict(json.loads(json.dumps(fit(*_small_pair()).report_.to_dict())))
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": 1}')
    with pytest.raises(FileExistsError, match="not a SelectionReport"):
        report.to_json(str(mine))
    assert mine.read_text() == '{"mine": 1}'
    report.to_json(str(tmp_path / "r.json"))
    report.to_json(str(tmp_path / "r.json"))  # an earlier report of the same kind is replaced
    assert json.loads((tmp_path / "r.json").read_text())["n_kept"] == report.n_kept
    report.to_json(str(mine), overwrite=True)
    assert json.loads(mine.read_text())["n_kept"] == report.n_kept
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n a holiday photo")
    fig = plt.figure()
    with pytest.raises(FileExistsError, match="not a figure"):
        save_figure(fig, photo)
    assert photo.read_bytes() == b"\x89PNG\r\n\x1a\n a holiday photo"
    save_figure(fig, tmp_path / "plot.png")
    save_figure(fig, tmp_path / "plot.png")  # its own figure is replaced
    plt.close(fig)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json", "photo.png", "plot.png", "r.json"]


def _small_pair():
    emb, labels = clustered(60, classes=2)
    return Dataset.from_dict({"text": [f"row {i}" for i in range(60)], "label": labels.tolist()}), emb


def test_compare_refuses_empty_or_repeated_settings(small):
    from hf_qselect.comparison import compare

    ds, _ = small
    for methods, keeps, match in (([], [0.5], "methods is empty"), (["random"], [], "keeps is empty"),
                                  (["random", "random"], [0.5], "names a method twice"), (["random"], [0.5, 0.5], "names a keep rate twice")):
        with pytest.raises(ValueError, match=match):
            compare(ds, methods, keeps, show_progress=False)
    for name, value in (("folds", 1), ("repeats", 0), ("finetune_steps", 0)):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= "):
            compare(ds, ["random"], [0.5], show_progress=False, **{name: value})


def test_comparison_save_is_a_staged_folder(small, tmp_path):
    from hf_qselect.comparison import compare
    from hf_qselect.selection.embeddings import write_cached

    ds, emb = small
    write_cached(cache_path(None, texts_digest(list(ds["text"])), "text", len(ds), tmp_path / "cache"), emb)
    result = compare(ds, ["random"], [0.5], folds=2, repeats=1, show_progress=False, cache_dir=tmp_path / "cache")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        result.save(busy)
    assert (busy / "mine.txt").read_text() == "keep me"
    out = result.save(tmp_path / "cmp")
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "compare.md", "compare.png"]
    result.save(out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "cache", "cmp"]


def test_subnetwork_mlp_refuses_nan_features_and_a_single_class():
    import torch
    from torch import nn

    from hf_qselect.subnetworks import SubnetworkSelector

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = np.arange(40) % 2
    bad = X.copy()
    bad[[3, 9], 1] = np.nan
    with pytest.raises(ValueError, match=r"X has NaN or inf at rows \[3, 9\]"):
        SubnetworkSelector(show_progress=False).fit(model, bad, y)
    with pytest.raises(ValueError, match="subnetwork selection needs at least two classes"):
        SubnetworkSelector(show_progress=False).fit(model, X, np.zeros(40, dtype=int))
    with pytest.raises(ValueError, match=r"keep must be in \(0, 1\), got keep=1.0"):
        SubnetworkSelector(keep=1.0, show_progress=False).fit(model, X, y)


def test_subnetwork_defaults_resolve_per_model_kind():
    """Issue 29 case 18: rounds=None / schedule="auto" are what docs/subnetworks.md measures for each kind."""
    import torch
    from torch import nn

    from hf_qselect.subnetworks import SubnetworkSelector

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    selector = SubnetworkSelector(show_progress=False, block_size=8).fit(model, X, np.arange(40) % 2)
    assert (selector.rounds_, selector.schedule_) == (20, "layer") == (selector.report_["rounds_run"], selector.report_["schedule_run"])
    assert selector.get_params()["rounds"] is None and selector.get_params()["schedule"] == "auto"


def _tiny_classifier(tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config)


def test_loaders_refuse_folders_of_another_writer(tmp_path):
    """Issue 29 cases 3 and 14: load_pruned refuses an int8 folder; load_compressed refuses a plain one."""
    from transformers import AutoTokenizer

    from hf_qselect.compression import load_compressed, save_compressed
    from hf_qselect.compression.quantize import quantize_linears
    from hf_qselect.models import check_model_dir, load_pruned
    from hf_qselect.selection.embeddings import default_embedder

    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    _tiny_classifier(tokenizer).save_pretrained(tmp_path / "plain")
    save_compressed(quantize_linears(_tiny_classifier(tokenizer), ["bert.encoder.layer.0.output.dense"]), tmp_path / "int8")
    with pytest.raises(ValueError, match="was written by hf-qselect compress .1 int8 Linears., which load_pruned cannot read"):
        load_pruned(tmp_path / "int8")
    with pytest.raises(ValueError, match="was not written by hf_qselect.compression.save_compressed"):
        load_compressed(tmp_path / "plain")
    assert load_compressed(tmp_path / "int8") is not None and load_pruned(tmp_path / "plain") is not None
    weights = tmp_path / "plain" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="model.safetensors is truncated"):
        check_model_dir(tmp_path / "plain", "structured pruning")
    weights.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="is not a readable safetensors file"):
        check_model_dir(tmp_path / "plain", "structured pruning")


def test_zero_rows_are_one_line_errors(sentences):
    from transformers import AutoTokenizer

    from hf_qselect.diagnostics import sparse_training_report
    from hf_qselect.selection.embeddings import default_embedder

    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    with pytest.raises(ValueError, match="label column 'label' has no rows; sparse-training diagnostics needs labelled rows"):
        sparse_training_report(_tiny_classifier(tokenizer), sentences.select([]), tokenizer)


UNGUARDED = """
import numpy as np
from datasets import Dataset
from hf_qselect import InstanceSelector

emb = np.random.default_rng(0).normal(size=(40, 4))
ds = Dataset.from_dict({"label": [i % 2 for i in range(40)]})
InstanceSelector(keep=0.5, backend="dask", n_jobs=2, show_progress=False).fit(ds, embeddings=emb)
"""


def test_dask_from_an_unguarded_script_says_what_to_do(tmp_path):
    """Issue 29 case 17: refused before any worker starts, naming the line and the fix."""
    import subprocess
    import sys

    pytest.importorskip("dask.distributed")
    script = tmp_path / "job.py"
    script.write_text(UNGUARDED)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode != 0 and "Nanny" not in done.stderr
    assert "job.py line 8 runs at the script's top level" in done.stderr and 'if __name__ == "__main__":' in done.stderr
    from hf_qselect.qubo.backends import unguarded_main_line

    assert unguarded_main_line() is None  # pytest's own entry point is guarded
