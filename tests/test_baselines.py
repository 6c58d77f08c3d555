"""The classical baselines keep exactly k rows, are seeded, and behave as their descriptions say."""
import numpy as np
import pytest
from datasets import Dataset

from hf_qselect import InstanceSelector
from hf_qselect.selection.baselines import lazy_greedy_facility
from hf_qselect.selection.knn import knn, similarity_graph

from .conftest import clustered

BASELINES = ["e2sc", "biois", "facility", "semdedup"]


def fit(ds, emb, **kw):
    return InstanceSelector(**{"seed": 0, "show_progress": False, "n_jobs": 1, **kw}).fit(ds, embeddings=emb)


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9])
def test_exact_k_and_deterministic(small, method, keep):
    ds, emb = small
    a, b = fit(ds, emb, method=method, keep=keep), fit(ds, emb, method=method, keep=keep)
    assert a.mask_.sum() == int(np.floor(keep * 240 + 0.5))
    assert np.array_equal(a.indices_, b.indices_)


def test_knn_matches_brute_force():
    emb, _ = clustered(300, dim=8, seed=1)
    idx, sims = knn(emb, 5, block=64)
    full = emb @ emb.T
    np.fill_diagonal(full, -np.inf)
    assert np.allclose(np.sort(sims, axis=1), np.sort(np.sort(full, axis=1)[:, -5:], axis=1), atol=1e-6)
    assert not (idx == np.arange(300)[:, None]).any()


def test_e2sc_never_removes_a_misclassified_row(small):
    ds, emb = small
    labels = np.array(ds["label"])
    labels[:10] = 1 - labels[:10]
    noisy = Dataset.from_dict({"text": list(ds["text"]), "label": labels.tolist()})
    neighbours, _ = knn(emb / np.linalg.norm(emb, axis=1, keepdims=True), 10)
    votes = np.stack([(labels[neighbours] == c).mean(axis=1) for c in (0, 1)], axis=1)
    misclassified = votes.argmax(axis=1) != labels
    assert misclassified.any()
    sel = fit(noisy, emb, method="e2sc", keep=0.5)
    assert sel.mask_[misclassified].all()


def test_biois_removes_confident_mistakes_first(small):
    ds, emb = small
    labels = np.array(ds["label"])
    labels[:6] = 1 - labels[:6]
    noisy = Dataset.from_dict({"text": list(ds["text"]), "label": labels.tolist()})
    from hf_qselect.selection.baselines import out_of_fold_logistic

    sel = fit(noisy, emb, method="biois", keep=0.9)
    proba = out_of_fold_logistic(sel.embeddings_, labels, seed=0)
    flagged = (proba.argmax(axis=1) != labels) & (proba.max(axis=1) >= 0.8)
    assert flagged[:6].sum() >= 4 and sel.report_.likely_mislabelled == flagged.sum() <= 24
    assert not sel.mask_[flagged].any()  # confidently wrong rows are removed before any redundant one


def test_facility_location_gains_never_increase():
    emb, _ = clustered(200, dim=8, seed=3)
    idx, sims = knn(emb, 10)
    graph = similarity_graph(idx, sims, 200)
    graph.setdiag(1.0)
    picks, gains = lazy_greedy_facility(graph.tocsr(), 40)
    assert len(set(picks)) == 40
    assert all(a >= b - 1e-9 for a, b in zip(gains, gains[1:]))


def test_semdedup_drops_one_of_each_duplicate_pair():
    emb, _ = clustered(60, dim=8, seed=4)
    labels = np.array([0, 1] * 30)  # 30 rows a class
    emb = np.concatenate([emb, emb[:10] + 1e-4])  # ten near-duplicates, five a class: quotas 30/30 are exact
    labels = np.concatenate([labels, labels[:10]])
    ds = Dataset.from_dict({"text": [f"r{i}" for i in range(70)], "label": labels.tolist()})
    sel = fit(ds, emb, method="semdedup", keep=60 / 70)
    for i in range(10):
        assert sel.mask_[i] != sel.mask_[60 + i]  # exactly one of each twin pair is kept
