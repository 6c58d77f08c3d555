"""InstanceSelector on small real problems, solved by real dwave-samplers runs."""
import itertools

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from hf_qselect import InstanceSelector, SelectionReport
from hf_qselect.qubo.decompose import solve_blocks
from hf_qselect.selection.formulations import mmd_block
from hf_qselect.qubo.solvers import get_solver

from .conftest import clustered, mmd_energy


@pytest.mark.parametrize("method", ["qubo", "pasin2024", "random"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 1.0])
def test_keeps_exactly_k(small, method, keep):
    ds, emb = small
    sel = InstanceSelector(keep=keep, method=method, seed=0, block_size=40, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    k = int(np.floor(keep * len(ds) + 0.5))
    assert sel.mask_.sum() == k == len(sel.indices_) == sel.report_.n_kept
    assert len(sel.select(ds)) == k


def test_report_energy_equals_independent_recomputation(small):
    ds, emb = small
    sel = InstanceSelector(keep=0.4, seed=1, block_size=30, denoise=False, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    total = mmd_energy(sel.embeddings_, sel.blocks_, sel.mask_)
    assert np.isclose(sel.report_.energy, total, rtol=1e-9, atol=1e-9)


def test_sa_finds_the_exhaustive_optimum_on_a_small_block():
    emb, _ = clustered(14, dim=8, seed=5)
    q = mmd_block(np.arange(14), emb, k=6)
    best = min(
        q.energy(np.isin(np.arange(14), subset).astype(float)) for subset in itertools.combinations(range(14), 6)
    )
    sa = solve_blocks([q], get_solver("sa"), num_reads=20, seed=0, n_jobs=1, show_progress=False)[0]
    exact = solve_blocks([q], get_solver("exact"), n_jobs=1, show_progress=False)[0]
    assert sa.x.sum() == 6
    assert np.isclose(sa.energy, best) and np.isclose(exact.energy, best)


def test_same_seed_same_selection_and_parallel_agrees(small):
    ds, emb = small
    a = InstanceSelector(keep=0.5, seed=7, block_size=30, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    b = InstanceSelector(keep=0.5, seed=7, block_size=30, show_progress=False, n_jobs=2).fit(ds, embeddings=emb)
    assert np.array_equal(a.indices_, b.indices_)
    c = InstanceSelector(keep=0.5, method="random", seed=8, show_progress=False).fit(ds, embeddings=emb)
    d = InstanceSelector(keep=0.5, method="random", seed=9, show_progress=False).fit(ds, embeddings=emb)
    assert not np.array_equal(c.indices_, d.indices_)


def test_filter_and_select_agree(small):
    ds, emb = small
    sel = InstanceSelector(keep=0.3, seed=0, block_size=40, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    filtered = ds.filter(sel, with_indices=True, batched=True, batch_size=50)
    selected = sel.select(ds)
    assert list(filtered["text"]) == list(selected["text"])
    single = ds.filter(sel, with_indices=True)
    assert list(single["text"]) == list(selected["text"])
    assert len(ds) == 240  # the input is untouched


def test_datasetdict_selects_train_only(small):
    ds, emb = small
    dd = DatasetDict({"train": ds, "test": ds.select(range(20))})
    sel = InstanceSelector(keep=0.5, seed=0, block_size=40, show_progress=False, n_jobs=1).fit(dd, embeddings=emb)
    out = sel.select(dd)
    assert len(out["train"]) == 120 and len(out["test"]) == 20
    assert len(dd["train"]) == 240


def test_class_quotas_and_denoise(small):
    ds, emb = small
    labels = np.array(list(ds["label"]))
    flipped = labels.copy()
    flipped[:6] = 1 - flipped[:6]  # six rows labelled against their cluster
    noisy_ds = Dataset.from_dict({"text": list(ds["text"]), "label": flipped.tolist()})
    sel = InstanceSelector(keep=0.5, seed=0, block_size=40, show_progress=False, n_jobs=1).fit(noisy_ds, embeddings=emb)
    assert sel.report_.likely_mislabelled >= 1
    from hf_qselect.selection.scoring import likely_mislabelled, out_of_fold_proba

    noisy = likely_mislabelled(out_of_fold_proba(emb, flipped, seed=0), flipped)
    assert not (sel.mask_ & noisy).any()  # with half kept, no flagged row is needed


def test_report_roundtrip(small, tmp_path):
    ds, emb = small
    sel = InstanceSelector(keep=0.5, seed=0, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    path = tmp_path / "r.json"
    sel.report_.to_json(str(path))
    import json

    again = SelectionReport.from_dict(json.loads(path.read_text()))
    assert again.n_kept == 120 and again.kept_per_class == sel.report_.kept_per_class
    assert sum(v["after"] for v in again.kept_per_class.values()) == 120
    assert "solve" in again.timings and again.solver == "sa"


def test_any_dimod_sampler_is_accepted(small):
    from dwave.samplers import SteepestDescentSolver

    ds, emb = small
    sel = InstanceSelector(keep=0.5, solver=SteepestDescentSolver(), seed=0, block_size=40, show_progress=False, n_jobs=1)
    sel.fit(ds, embeddings=emb)
    assert sel.mask_.sum() == 120 and sel.report_.solver == "SteepestDescentSolver"


@pytest.mark.parametrize("solver", ["tabu", "steepest"])
def test_other_local_solvers(small, solver):
    ds, emb = small
    sel = InstanceSelector(keep=0.25, solver=solver, seed=0, block_size=40, show_progress=False, n_jobs=1,
                           sampler_params={"timeout": 20} if solver == "tabu" else None).fit(ds, embeddings=emb)
    assert sel.mask_.sum() == 60


def test_qpu_path_runs_through_dwave_clique_sampler(small, monkeypatch):
    """solver="qpu" is dwave-system's DWaveCliqueSampler; the cloud QPU behind it is dwave-system's own local
    MockDWaveSampler (a Pegasus topology sampled by simulated annealing), since Leap cannot be reached here."""
    import dwave.system.samplers.clique as clique
    from dwave.system.testing import MockDWaveSampler

    made = []

    def local_qpu(**config):
        made.append(config)
        return MockDWaveSampler(topology_type="pegasus", topology_shape=[6])

    monkeypatch.setattr(clique, "DWaveSampler", local_qpu)
    monkeypatch.setenv("DWAVE_API_TOKEN", "test-token")
    ds, emb = small
    sel = InstanceSelector(keep=0.5, solver="qpu", seed=0, block_size=16, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    assert sel.mask_.sum() == 120 and sel.report_.solver == "qpu"
    assert made and made[0]["token"] == "test-token"
    for block in sel.blocks_:  # every block keeps its quota
        assert 0 < sel.mask_[block].sum() <= len(block)
