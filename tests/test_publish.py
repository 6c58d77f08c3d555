"""Publishing a reduced dataset: a real folder on disk, read back row for row; only the Hub upload is replaced."""
import json

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset
from huggingface_hub import DatasetCard

from hf_qselect import InstanceSelector
from hf_qselect.cli import main
from hf_qselect.hub import load_reduced, publish_reduced

from .conftest import clustered


@pytest.fixture
def fitted():
    emb, labels = clustered(300, classes=3, seed=2)
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "neu", "pos"])})
    ds = Dataset.from_dict({"text": [f"snippet {i}" for i in range(300)], "label": labels.tolist()}, features=features)
    sel = InstanceSelector(keep=0.4, seed=3, block_size=50, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    return ds, sel


def test_round_trip_row_for_row(fitted, tmp_path):
    ds, sel = fitted
    small = sel.select(ds)
    folder = publish_reduced(small, sel, repo_id="org/snippets-40", local_dir=tmp_path / "pub", source="org/snippets")
    loaded = load_dataset(str(folder), cache_dir=str(tmp_path / "hf_cache"))["train"]
    assert len(loaded) == 120
    assert list(loaded["text"]) == list(small["text"]) and list(loaded["label"]) == list(small["label"])
    assert loaded.features["label"] == ds.features["label"] and loaded.features["text"] == ds.features["text"]
    source_text = list(ds["text"])
    assert [source_text[i] for i in loaded["source_index"]] == list(loaded["text"])
    assert list(loaded["source_index"]) == sel.indices_.tolist()


def test_card_holds_the_real_parameters_and_map_is_a_png(fitted, tmp_path):
    from PIL import Image

    ds, sel = fitted
    folder = publish_reduced(sel.select(ds), sel, local_dir=tmp_path / "pub", source="org/snippets", revision="abc123")
    card = DatasetCard.load(folder / "README.md")
    assert {"instance-selection", "qubo"} <= set(card.data.tags)
    assert card.data.source_datasets == ["org/snippets"]
    assert card.data.size_categories == ["n<1K"]
    assert card.data.configs[0]["data_files"][0]["split"] == "train"
    text = card.text
    assert f"| keep | `0.4` |" in text and "| seed | `3` |" in text and "| solver | `sa` |" in text
    for name, counts in sel.report_.kept_per_class.items():
        assert f"| {name} | {counts['before']} | {counts['after']} |" in text
    assert "--keep 0.4" in text and "--seed 3" in text and "abc123" in text and sel.report_.source_fingerprint in text
    with Image.open(folder / "selection_map.png") as img:
        img.verify()
        assert img.format == "PNG" and img.size[0] > 100
    _, provenance = load_reduced(folder)
    assert provenance["n_kept"] == 120 and provenance["source"] == "org/snippets" and provenance["seed"] == 3


def test_datasetdict_other_splits_untouched(fitted, tmp_path):
    ds, sel = fitted
    dd = DatasetDict({"train": ds, "test": ds.select(range(30))})
    folder = publish_reduced(sel.select(dd), sel, local_dir=tmp_path / "pub")
    loaded = load_dataset(str(folder), cache_dir=str(tmp_path / "hf_cache"))
    assert len(loaded["train"]) == 120 and len(loaded["test"]) == 30
    assert list(loaded["test"]["source_index"]) == list(range(30))
    assert list(loaded["test"]["text"]) == list(ds["text"])[:30]


def test_bad_input(fitted, tmp_path):
    ds, sel = fitted
    small = sel.select(ds)
    with pytest.raises(ValueError, match="namespace/name"):
        publish_reduced(small, sel, repo_id="just-a-name", local_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="selector kept 120"):
        publish_reduced(ds.select(range(50)), sel, local_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="not the rows"):
        publish_reduced(ds.select(range(120)), sel, local_dir=tmp_path / "c")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        publish_reduced(small, sel, local_dir=busy)
    assert (busy / "keep.txt").read_text() == "mine"
    publish_reduced(small, sel, local_dir=busy, overwrite=True)
    assert not (busy / "keep.txt").exists() and (busy / "README.md").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging folders left


def test_failure_leaves_nothing_partial(fitted, tmp_path, monkeypatch):
    import hf_qselect.hub.publish as publish

    ds, sel = fitted

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(publish, "render_dataset_card", broken)
    with pytest.raises(OSError, match="disk full"):
        publish_reduced(sel.select(ds), sel, local_dir=tmp_path / "pub")
    assert list(tmp_path.iterdir()) == []


def test_push_without_token_keeps_the_complete_folder(fitted, tmp_path, monkeypatch):
    ds, sel = fitted
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    with pytest.raises(RuntimeError, match="no Hugging Face token"):
        publish_reduced(sel.select(ds), sel, repo_id="org/x", local_dir=tmp_path / "pub", push=True)
    assert len(load_dataset(str(tmp_path / "pub"), cache_dir=str(tmp_path / "hf_cache"))["train"]) == 120


def test_upload_sends_the_folder(fitted, tmp_path, monkeypatch):
    """The Hub cannot be reached here: HfApi's two network calls are replaced and what they get is checked."""
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw, self.token)))

    def upload_folder(self, folder_path, repo_id, **kw):
        calls.append(("upload", repo_id, kw, sorted(p.name for p in __import__("pathlib").Path(folder_path).rglob("*"))))
        return type("Info", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    ds, sel = fitted
    publish_reduced(sel.select(ds), sel, repo_id="org/x", local_dir=tmp_path / "pub", push=True, token="hf_test", private=True)
    create, upload = calls
    assert create[1] == "org/x" and create[2]["repo_type"] == "dataset" and create[2]["private"] is True and create[3] == "hf_test"
    assert upload[1] == "org/x" and upload[2]["repo_type"] == "dataset"
    assert {"README.md", "selection_map.png", "selection_report.json", "train-00000-of-00001.parquet"} <= set(upload[3])


def test_cli_select_then_publish(sentences, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    csv = tmp_path / "reviews.csv"
    sentences.to_csv(str(csv))
    out = tmp_path / "sel"
    assert main(["select", "--data", str(csv), "--keep", "0.5", "--block-size", "12", "--n-jobs", "1", "--out", str(out)]) == 0
    assert main(["publish", str(out), "--repo-id", "org/reviews-50"]) == 0
    data, provenance = load_reduced(tmp_path / "sel-hub")
    assert len(data["train"]) == 12 and provenance["source"] == "reviews.csv"  # the file name, never the home directory
    assert main(["publish", str(out), "--repo-id", "bad id"]) == 2
    direct = tmp_path / "direct"
    assert main(["select", "--data", str(csv), "--keep", "0.5", "--block-size", "12", "--n-jobs", "1", "--out", str(direct), "--publish"]) == 0
    assert (direct / "selection_map.png").exists() and len(load_dataset(str(direct), cache_dir=str(tmp_path / "hf_cache"))["train"]) == 12


def test_reproduce_command_rebuilds_the_same_selector(fitted):
    import shlex

    from hf_qselect.cli import build_parser, selector_from_args
    from hf_qselect.hub.dataset_card import reproduce_command

    ds, _ = fitted
    emb, _ = clustered(300, classes=3, seed=2)
    sel = InstanceSelector(keep=0.4, seed=3, block_size=50, show_progress=False, n_jobs=1, denoise=False, polish=False,
                           class_balance=0.25).fit(ds, embeddings=emb)
    argv = shlex.split(reproduce_command(sel.report_, "org/snippets"))[1:]
    rebuilt = selector_from_args(build_parser().parse_args(argv)).get_params()
    for name in ("keep", "method", "seed", "block_size", "num_reads", "class_balance", "denoise", "polish", "solver"):
        assert rebuilt[name] == sel.get_params()[name], name
