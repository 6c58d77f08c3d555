"""Paired intervals, the recommendation rule, ``compare`` and its CLI, ``method="auto"`` and per-row diagnostics."""
import json
import shlex

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset, load_from_disk

from hf_qselect import InstanceSelector, compare
from hf_qselect.cli import main
from hf_qselect.selection import corrected_interval, paired, recommend

from .conftest import clustered


def test_corrected_interval_matches_a_hand_computation():
    d = np.array([0.01, 0.03, -0.01, 0.02, 0.00])  # mean 0.01, sample variance 0.00025
    mean, low, high = corrected_interval(d, test_fraction=0.2)
    # se = sqrt((1/5 + 0.2/0.8) * 0.00025) = sqrt(0.45 * 0.00025) = 0.010607; t(0.975, 4) = 2.776445
    assert mean == pytest.approx(0.01)
    assert low == pytest.approx(0.01 - 2.776445 * 0.0106066, abs=1e-6) and high == pytest.approx(0.01 + 2.776445 * 0.0106066, abs=1e-6)
    diff = paired(np.array([0.8, 0.7, 0.9]), np.array([0.7, 0.7, 0.8]), 0.2)
    assert diff.win_rate == pytest.approx(2 / 3) and diff.n == 3


def test_recommendation_is_the_smallest_keep_within_tolerance():
    full = np.full(10, 0.80) + np.linspace(-0.01, 0.01, 10)
    jitter = np.linspace(-0.002, 0.002, 10)
    results = {
        "a": {0.5: full - 0.002 + jitter, 0.25: full - 0.03 + jitter},   # within 1 point at 0.5 only
        "b": {0.5: full - 0.001 + jitter, 0.25: full - 0.004 + jitter},  # within 1 point at 0.25 too
    }
    rec = recommend(results, full, test_fraction=0.2, tolerance=0.01)
    assert rec["method"] == "b" and rec["keep"] == 0.25
    assert recommend({"a": {0.5: full - 0.05}}, full, 0.2, 0.01) is None


@pytest.fixture
def labelled(tmp_path):
    emb, labels = clustered(300, classes=2, seed=3)
    texts = [f"sentence {i} about topic {y}" for i, y in enumerate(labels)]
    ds = Dataset.from_dict({"text": texts, "label": labels.tolist()})
    return ds, emb


def test_compare_function_on_precomputed_embeddings(labelled, tmp_path, monkeypatch):
    ds, emb = labelled
    from hf_qselect.selection.embeddings import cache_path, texts_digest, write_cached

    write_cached(cache_path(None, texts_digest(list(ds["text"])), "text", len(ds), tmp_path), emb)
    result = compare(ds, ["random", "qubo"], [0.5, 0.25], folds=3, repeats=2, cache_dir=tmp_path, show_progress=False, source="toy.csv")
    assert len(result.full) == 6 and len(result.scores["qubo"]["0.25"]) == 6
    row = next(r for r in result.table if r["method"] == "qubo" and r["keep"] == 0.5)
    assert row["vs_full"]["ci95"][0] <= row["vs_full"]["mean"] <= row["vs_full"]["ci95"][1] and "vs_random" in row
    folder = result.save(tmp_path / "out")
    record = json.loads((folder / "compare.json").read_text())
    assert set(record) >= {"table", "recommendation", "flagged", "scores"} and (folder / "compare.png").exists()
    assert "paired split by split" in (folder / "compare.md").read_text()


def test_cli_compare_and_its_recommended_command(labelled, tmp_path, monkeypatch, capsys):
    ds, emb = labelled
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    ds.to_csv("toy.csv")
    from hf_qselect.data import load_data
    from hf_qselect.selection.embeddings import cache_path, texts_digest, write_cached

    loaded = load_data("toy.csv")
    write_cached(cache_path(None, texts_digest(list(loaded["text"])), "text", len(loaded), tmp_path / "cache"), emb)
    assert main(["compare", "--data", "toy.csv", "--methods", "random,qubo", "--keep", "0.75,0.5", "--folds", "3", "--repeats", "3",
                 "--tolerance", "2", "--out", "cmp"]) == 0
    record = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    rec = record["recommendation"]
    assert rec is not None and rec["keep"] in (0.75, 0.5)  # well-separated clusters: half the rows suffice
    argv = shlex.split(rec["command"])
    assert main(argv[1:]) == 0
    kept = sorted(load_from_disk(argv[argv.index("--out") + 1])["source_index"])
    expected = InstanceSelector(keep=rec["keep"], method=rec["method"], seed=0, show_progress=False, n_jobs=1).fit(loaded, embeddings=emb)
    assert kept == expected.indices_.tolist()  # the command makes exactly the recommended subset
    assert "Recommendation" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--methods", "random,kmeans"], "unknown method 'kmeans'"),
    (["--keep", "0.5,1.5"], "keep must be a fraction in (0, 1]"),
    (["--keep", "half"], "--keep must be comma-separated fractions"),
    (["--folds", "400"], "fewer than the 400 folds"),
])
def test_cli_compare_bad_arguments(labelled, tmp_path, monkeypatch, capsys, argv, message):
    ds, _ = labelled
    monkeypatch.chdir(tmp_path)
    ds.to_csv("toy.csv")
    assert main(["compare", "--data", "toy.csv", "--out", "cmp", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and not (tmp_path / "cmp").exists()


def test_auto_picks_the_best_candidate_and_records_it(labelled, tmp_path):
    ds, emb = labelled
    sel = InstanceSelector(keep=0.3, method="auto", candidates=("qubo", "random", "facility"), show_progress=False, n_jobs=1)
    sel.fit(ds, embeddings=emb)
    auto = sel.report_.auto
    assert auto["chosen"] == max(auto["mean_macro_f1"], key=auto["mean_macro_f1"].get) == sel.report_.chosen_method
    assert set(auto["mean_macro_f1"]) == {"qubo", "random", "facility"} and "auto" in sel.report_.timings
    again = InstanceSelector(keep=0.3, method=auto["chosen"], show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    assert np.array_equal(sel.mask_, again.mask_)  # then selects with the chosen method as is
    with pytest.raises(ValueError, match="method must be one of"):
        InstanceSelector(method="auto", candidates="qubo,nope", show_progress=False).fit(ds, embeddings=emb)


def test_row_scores_and_the_scores_flag(labelled, tmp_path, monkeypatch):
    ds, emb = labelled
    flipped = np.asarray(ds["label"]).copy()
    flipped[:15] = 1 - flipped[:15]  # 15 labels made wrong
    noisy = Dataset.from_dict({"text": ds["text"], "label": flipped.tolist()})
    sel = InstanceSelector(keep=0.5, show_progress=False, n_jobs=1).fit(noisy, embeddings=emb)
    scores = sel.row_scores_
    assert list(scores.columns) == ["row", "label", "label_proba", "predicted", "flagged", "block", "kept"]
    assert int(scores["kept"].sum()) == 150 and scores["flagged"].sum() == sel.report_.likely_mislabelled
    assert scores.loc[:14, "flagged"].mean() > scores.loc[15:, "flagged"].mean()  # the wrong labels are the flagged ones
    assert (scores["block"] >= 0).all() and np.array_equal(scores["kept"], sel.mask_)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    noisy.to_csv("noisy.csv")
    from hf_qselect.data import load_data
    from hf_qselect.selection.embeddings import cache_path, texts_digest, write_cached

    loaded = load_data("noisy.csv")
    write_cached(cache_path(None, texts_digest(list(loaded["text"])), "text", len(loaded), tmp_path / "cache"), emb)
    assert main(["select", "--data", "noisy.csv", "--out", "pub", "--publish", "--scores", "scores.parquet", "--n-jobs", "1"]) == 0
    table = pd.read_parquet("scores.parquet")
    assert len(table) == 300 and table["flagged"].sum() >= 1
    published = pd.read_parquet(tmp_path / "pub" / "row_scores.parquet")
    assert published.equals(table)
    card = (tmp_path / "pub" / "README.md").read_text()
    assert f"{int(table['flagged'].sum())} of 300 source rows are flagged as likely mislabelled" in card


def test_compare_can_fine_tune_instead_of_probing(labelled, tmp_path):
    """--eval finetune: a real transformers.Trainer on a tiny random BERT, 2 steps per run."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_qselect.selection import default_embedder
    from hf_qselect.selection.embeddings import cache_path, texts_digest, write_cached

    ds, emb = labelled
    small = ds.select(range(60))
    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    write_cached(cache_path(None, texts_digest(list(small["text"])), "text", 60, tmp_path / "c"), emb[:60])
    result = compare(small, ["random", "qubo"], [0.5], evaluation="finetune", folds=2, repeats=1, cache_dir=tmp_path / "c",
                     model=str(tmp_path / "m"), finetune_steps=2, show_progress=False)
    assert result.evaluation == "finetune" and len(result.full) == 2
    assert all(0.0 <= f1 <= 1.0 for f1 in result.scores["qubo"]["0.5"])
