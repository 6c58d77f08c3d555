"""The block solving on real local Dask and Ray clusters gives the same rows as this machine's processes."""
import sys

import numpy as np
import pytest

from hf_qselect.selection import InstanceSelector
from tests.conftest import clustered


def select(backend, emb, labels, **kw):
    return InstanceSelector(keep=0.5, method="qubo", seed=3, block_size=40, n_jobs=2, backend=backend, show_progress=False, **kw)


@pytest.fixture(scope="module")
def data():
    from datasets import Dataset

    emb, labels = clustered(400, classes=3, seed=1)
    return Dataset.from_dict({"text": [f"r{i}" for i in range(400)], "label": labels.tolist()}), emb


def test_dask_cluster_gives_the_loky_mask(data, monkeypatch):
    from dask.distributed import LocalCluster

    ds, emb = data
    reference = select("loky", emb, None).fit(ds, embeddings=emb).mask_
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        mask = select("dask", emb, None).fit(ds, embeddings=emb).mask_
        ran = cluster.scheduler.transition_counter
    assert np.array_equal(mask, reference)
    assert ran > 0  # the chunks went through the cluster's scheduler


def test_ray_local_cluster_gives_the_loky_mask(data, monkeypatch):
    import ray

    ds, emb = data
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    reference = select("loky", emb, None).fit(ds, embeddings=emb).mask_
    mask = select("ray", emb, None).fit(ds, embeddings=emb).mask_  # starts a 2-worker local Ray and shuts it down
    assert np.array_equal(mask, reference)
    assert not ray.is_initialized()


@pytest.mark.parametrize("backend, module", [("ray", "ray"), ("dask", "dask.distributed")])
def test_a_missing_backend_names_its_extra(data, monkeypatch, backend, module):
    ds, emb = data
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf"pip install 'hf-qselect\[{backend}\]'"):
        select(backend, emb, None).fit(ds, embeddings=emb)


def test_unknown_backend_is_refused_before_any_work(data):
    ds, emb = data
    with pytest.raises(ValueError, match="backend must be one of"):
        select("spark", emb, None).fit(ds, embeddings=emb)


def test_chunk_jobs_on_dask_read_a_file_and_match_loky(data, monkeypatch, tmp_path):
    """Chunks of a memory-mapped file travel as its path and row numbers; Dask workers read them."""
    from dask.distributed import LocalCluster

    ds, emb = data
    np.save(tmp_path / "emb.npy", emb)
    on_disk = np.load(tmp_path / "emb.npy", mmap_mode="r")
    reference = select("loky", emb, None, chunk_rows=50, score_rows=200).fit(ds, embeddings=emb).mask_
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        fitted = select("dask", emb, None, chunk_rows=50, score_rows=200).fit(ds, embeddings=on_disk)
    assert "jobs_anneal" in fitted.report_.timings
    assert np.array_equal(fitted.mask_, reference)


def test_chunk_jobs_on_ray_match_loky(data, monkeypatch):
    import ray

    ds, emb = data
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    reference = select("loky", emb, None, chunk_rows=50).fit(ds, embeddings=emb).mask_
    fitted = select("ray", emb, None, chunk_rows=50).fit(ds, embeddings=emb)
    assert "jobs_anneal" in fitted.report_.timings
    assert np.array_equal(fitted.mask_, reference)
    assert not ray.is_initialized()


def test_a_dask_cluster_embeds_the_shards_and_scores_the_rows(sentences, monkeypatch, tmp_path):
    """Inside a Dask backend the embedding shards and the capped scoring's blocks are jobs on the cluster, and give
    what this process gives."""
    from dask.distributed import LocalCluster

    from hf_qselect.qubo import backend_context
    from hf_qselect.selection import embedding_cache
    from hf_qselect.selection.embeddings import embed_dataset, embed_texts
    from hf_qselect.selection.scoring import out_of_fold_proba

    monkeypatch.setattr(embedding_cache, "SHARD_ROWS", 7)  # 24 sentences: 4 shards
    texts = list(sentences["text"])
    emb, labels = clustered(400, classes=3, seed=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        with backend_context("dask", 2):
            vectors, cached = embed_dataset(sentences, "text", texts, cache_dir=tmp_path, show_progress=False)
            proba = out_of_fold_proba(emb, labels, max_rows=100)
        ran = cluster.scheduler.transition_counter
    assert ran > 0 and not cached
    assert np.allclose(vectors, embed_texts(texts, show_progress=False), atol=1e-5)
    assert np.allclose(proba, out_of_fold_proba(emb, labels, max_rows=100))
