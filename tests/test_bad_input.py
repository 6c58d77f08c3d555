"""Each bad input fails before any work, with a message naming the column, parameter or value."""
import numpy as np
import pytest
from datasets import Dataset, IterableDataset

from hf_qselect import InstanceSelector


def fit(ds, emb=None, **kw):
    kw.setdefault("show_progress", False)
    kw.setdefault("n_jobs", 1)
    return InstanceSelector(**kw).fit(ds, embeddings=emb)


def test_missing_columns(small):
    ds, emb = small
    with pytest.raises(KeyError, match="label_column='stars'"):
        fit(ds, emb, label_column="stars")
    with pytest.raises(KeyError, match="text_column='review'"):
        fit(ds, text_column="review")


def test_empty_dataset():
    ds = Dataset.from_dict({"text": [], "label": []})
    with pytest.raises(ValueError, match="empty"):
        fit(ds)


def test_single_class(small):
    ds, emb = small
    one = Dataset.from_dict({"text": list(ds["text"]), "label": [3] * len(ds)})
    with pytest.raises(ValueError, match="single class"):
        fit(one, emb)


@pytest.mark.parametrize("keep", [0, -0.2, 1.5, float("nan")])
def test_keep_out_of_range(small, keep):
    ds, emb = small
    with pytest.raises(ValueError, match="keep"):
        fit(ds, emb, keep=keep)


def test_keep_wrong_type(small):
    ds, emb = small
    with pytest.raises(TypeError, match="keep"):
        fit(ds, emb, keep="half")


def test_nan_and_zero_embeddings(small):
    ds, emb = small
    bad = emb.copy()
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf at rows \[5\]"):
        fit(ds, bad)
    zero = emb.copy()
    zero[7] = 0
    with pytest.raises(ValueError, match=r"all-zero at rows \[7\]"):
        fit(ds, zero)
    with pytest.raises(ValueError, match="shape"):
        fit(ds, emb[:10])


def test_non_text_column(small):
    ds, _ = small
    numeric = ds.add_column("score", list(range(len(ds))))
    with pytest.raises(TypeError, match="text column 'score' must hold strings"):
        fit(numeric, text_column="score")


def test_missing_text_values():
    ds = Dataset.from_dict({"text": ["a", None, "c", "d"], "label": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match=r"missing \(None\) values at rows \[1\]"):
        fit(ds)


def test_iterable_dataset(small):
    ds, _ = small
    with pytest.raises(TypeError, match="IterableDataset"):
        fit(ds.to_iterable_dataset())


def test_bad_method_solver_block_size(small):
    ds, emb = small
    with pytest.raises(ValueError, match="method"):
        fit(ds, emb, method="magic")
    with pytest.raises(ValueError, match="solver"):
        fit(ds, emb, solver="quantum-magic")
    with pytest.raises(ValueError, match="block_size"):
        fit(ds, emb, block_size=1)
    with pytest.raises(ValueError, match="exact"):
        fit(ds, emb, solver="exact", block_size=40)


@pytest.mark.parametrize("solver", ["qpu", "hybrid"])
def test_cloud_solver_without_token_fails_at_once(small, solver, monkeypatch, tmp_path):
    ds, emb = small
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    empty = tmp_path / "dwave.conf"
    empty.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(empty))
    with pytest.raises(RuntimeError, match="DWAVE_API_TOKEN"):
        fit(ds, emb, solver=solver)


def test_filter_unfitted_or_on_other_data(small):
    ds, emb = small
    sel = InstanceSelector(show_progress=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        ds.filter(sel, with_indices=True, batched=True)
    with pytest.raises(RuntimeError, match="not fitted"):
        sel.select(ds)
    sel = fit(ds, emb, keep=0.5)
    longer = Dataset.from_dict({"text": list(ds["text"]) * 2, "label": list(ds["label"]) * 2})
    with pytest.raises(ValueError, match="fitted on 240 rows"):
        longer.filter(sel, with_indices=True, batched=True)
    with pytest.raises(ValueError, match="480 rows"):
        sel.select(longer)
    other = Dataset.from_dict({"text": [t + "!" for t in list(ds["text"])], "label": list(ds["label"])})
    with pytest.raises(ValueError, match="differ"):
        other.filter(sel, with_indices=True, batched=True)
    with pytest.raises(ValueError, match="fingerprint"):
        sel.select(other)


def test_input_dataset_is_never_modified(small):
    ds, emb = small
    before = (ds._fingerprint, list(ds["text"]), list(ds["label"]))
    emb_before = emb.copy()
    sel = fit(ds, emb, keep=0.5)
    sel.select(ds)
    assert (ds._fingerprint, list(ds["text"]), list(ds["label"])) == before
    assert np.array_equal(emb, emb_before)
