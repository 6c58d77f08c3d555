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
sys.exit(main(["prune", sys.argv[4], "--data", sys.argv[5], "--heads", "0.5", "--method", "greedy", "--out", str(target), "--overwrite"]))
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
                                                                         "--ffn", "0.5", "--method", "greedy"]),
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
    assert summary["output_dir"] == str(out) and "staging" not in (out / "README.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
