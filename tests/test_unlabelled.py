"""Selection without class labels (issue 27, first part): plain text, chat ``messages``, prompt/completion and Alpaca
rows; one group, a strata column or k-means strata; exact counts; one-line errors for bad rows."""
import json

import numpy as np
import pytest
from datasets import Dataset, load_from_disk

from hf_qselect import InstanceSelector
from hf_qselect.cli import main
from hf_qselect.text_formats import row_texts

from .conftest import clustered


def fit(ds, emb=None, **kw):
    return InstanceSelector(**{"show_progress": False, "n_jobs": 1, "seed": 0, "label_column": None, **kw}).fit(ds, embeddings=emb)


def chat(i: int) -> list[dict]:
    return [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i % 7}"}]


def test_text_only_rows_keep_exactly_k_in_one_group():
    emb, _ = clustered(90, classes=3)
    ds = Dataset.from_dict({"text": [f"line {i}" for i in range(90)]})
    selector = fit(ds, emb, keep=0.3)
    assert selector.mask_.sum() == 27 and len(selector.select(ds)) == 27
    report = selector.report_
    assert report.kept_per_class == {"all": {"before": 90, "after": 27}} and report.grouping == "one group (no class labels)"
    assert report.likely_mislabelled == 0 and report.params["label_column"] is None and report.text_format == "text"
    scores = selector.row_scores_
    assert scores["label_proba"].isna().all() and int(scores["kept"].sum()) == 27


@pytest.mark.parametrize("method", ["qubo", "random", "facility", "semdedup"])
def test_a_strata_column_keeps_each_stratum_its_share(method):
    emb, _ = clustered(80, classes=2, seed=4)
    source = ["web"] * 60 + ["books"] * 20
    ds = Dataset.from_dict({"messages": [chat(i) for i in range(80)], "source": source})
    selector = fit(ds, emb, keep=0.25, strata="source", method=method)
    kept = np.asarray(source)[selector.mask_]
    assert (int((kept == "web").sum()), int((kept == "books").sum())) == (15, 5)  # 25% of each, exactly
    assert selector.report_.kept_per_class == {"books": {"before": 20, "after": 5}, "web": {"before": 60, "after": 15}}
    assert selector.report_.text_format == "messages" and selector.report_.class_balance == 0.0


def test_kmeans_strata_are_clusters_of_the_embeddings():
    emb, truth = clustered(120, classes=3, seed=2)
    ds = Dataset.from_dict({"text": [f"row {i}" for i in range(120)]})
    selector = fit(ds, emb, keep=0.5, strata="kmeans", strata_clusters=3)
    groups = selector.codes_
    assert len(np.unique(groups)) == 3 and selector.mask_.sum() == 60
    for g in range(3):  # every cluster keeps half of its rows (the apportioned quota)
        assert abs(int(selector.mask_[groups == g].sum()) - (groups == g).sum() / 2) <= 1
    assert selector.report_.grouping == "strata: 3 k-means clusters of the embeddings"


def test_instruction_and_chat_rows_are_embedded_whole():
    alpaca = Dataset.from_dict({"instruction": ["Add", "Name a colour"], "input": ["1 + 1", ""], "output": ["2", "blue"]})
    assert row_texts(alpaca) == (["Add\n\n1 + 1\n\n2", "Name a colour\n\nblue"], "alpaca")
    pc = Dataset.from_dict({"prompt": ["Say hi"], "completion": ["hi"]})
    assert row_texts(pc) == (["Say hi\n\nhi"], "prompt_completion")
    messages = Dataset.from_dict({"messages": [chat(3)]})
    assert row_texts(messages) == (["user: question 3\nassistant: answer 3"], "messages")
    both = Dataset.from_dict({"text": ["the text column wins"], "messages": [chat(1)]})
    assert row_texts(both) == (["the text column wins"], "text")


@pytest.mark.parametrize("rows, match", [
    ({"messages": [chat(0), []]}, r"row 1: 'messages' must be a non-empty list of \{'role': str, 'content': str\} turns"),
    ({"messages": [chat(0), [{"role": "user", "content": None}]]}, "row 1: 'messages' must be"),
    ({"instruction": ["a", "b"], "output": ["x", "  "]}, "row 1: the response is empty"),
    ({"prompt": ["a"], "completion": [""]}, "row 0: the response is empty"),
    ({"question": ["a"], "answer": ["b"]}, "no usable text"),
])
def test_bad_rows_are_named_before_any_work(rows, match):
    with pytest.raises((ValueError, KeyError, TypeError), match=match):
        fit(Dataset.from_dict(rows))


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="pasin2024"), "method='pasin2024' needs class labels; with label_column=None use one of"),
    (dict(method="auto"), "method='auto' compares methods by macro-F1 on class labels"),
    (dict(strata="topic"), r"strata='topic'"),
    (dict(label_column="label", strata="source"), "applies with label_column=None"),
])
def test_label_free_settings_are_checked(kwargs, match):
    emb, labels = clustered(40, classes=2)
    ds = Dataset.from_dict({"text": [f"r {i}" for i in range(40)], "label": labels.tolist(), "source": ["a", "b"] * 20})
    with pytest.raises((ValueError, KeyError), match=match):
        fit(ds, emb, **kwargs)


def test_a_missing_label_column_says_how_to_select_without_labels():
    with pytest.raises(KeyError, match="pass label_column=None"):
        InstanceSelector(show_progress=False).fit(Dataset.from_dict({"text": ["a", "b"]}), embeddings=np.eye(2))


def test_cli_selects_an_alpaca_file_and_a_chat_file_without_labels(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    rows = [{"instruction": f"Task {i}", "input": "" if i % 3 else f"ctx {i}", "output": f"out {i % 4}"} for i in range(40)]
    (tmp_path / "alpaca.json").write_text(json.dumps(rows))
    assert main(["select", "--data", "alpaca.json", "--label-column", "none", "--keep", "0.25", "--n-jobs", "1", "--out", "a"]) == 0
    kept = load_from_disk("a")
    assert len(kept) == 10 and set(kept.column_names) >= {"instruction", "input", "output", "source_index"}
    report = json.loads((tmp_path / "a" / "selection_report.json").read_text())
    assert report["text_format"] == "alpaca" and report["kept_per_class"] == {"all": {"before": 40, "after": 10}}
    with open(tmp_path / "chat.jsonl", "w") as handle:
        for i in range(30):
            handle.write(json.dumps({"messages": chat(i), "source": "xy"[i % 3 == 0]}) + "\n")
    assert main(["select", "--data", "chat.jsonl", "--label-column", "none", "--strata", "source", "--keep", "0.5", "--n-jobs", "1",
                 "--publish", "--out", "c"]) == 0
    card = (tmp_path / "c" / "README.md").read_text()
    assert "- text-generation" in card and "| x | 20 | 10 |" in card and "| y | 10 | 5 |" in card
    assert "--label-column none" in card and "--strata source" in card  # the reproduce command
    with open(tmp_path / "bad.jsonl", "w") as handle:
        handle.write(json.dumps({"messages": chat(0)}) + "\n" + json.dumps({"messages": [{"role": "user", "text": "x"}]}) + "\n")
    capsys.readouterr()
    assert main(["select", "--data", "bad.jsonl", "--label-column", "none", "--out", "b"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("hf-qselect")]  # progress bars may come before it
    assert len(lines) == 1 and "row 1: 'messages' must be a non-empty list" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "b").exists()
