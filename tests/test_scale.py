"""Selection past one machine's comfort: classes cut into chunks solved by their own jobs, scoring on a capped
sample, embeddings read a block at a time from a memory-mapped file, and the streamed partition."""
import pickle

import numpy as np
import pytest
from datasets import Dataset

from hf_qselect.qubo import Vectors, bisect, split_large
from hf_qselect.selection import InstanceSelector
from hf_qselect.selection.quotas import class_quotas
from hf_qselect.selection.scoring import _lda, out_of_fold_proba, stratified_sample
from hf_qselect.selection.embedding_checks import check_embeddings
from tests.conftest import clustered, mmd_energy

N = 900


@pytest.fixture(scope="module")
def data():
    emb, labels = clustered(N, dim=12, classes=3, seed=4)
    return Dataset.from_dict({"label": labels.tolist()}), emb, labels


@pytest.fixture
def on_disk(tmp_path, data):
    path = tmp_path / "emb.npy"
    np.save(path, data[1])
    return np.load(path, mmap_mode="r")


def chunked(**kw):
    params = dict(keep=0.4, seed=2, block_size=30, chunk_rows=120, score_rows=300, n_jobs=1, show_progress=False)
    return InstanceSelector(**{**params, **kw})


def test_vectors_read_a_file_by_path_and_rows_in_any_order(on_disk, data):
    emb = data[1]
    v = Vectors(on_disk)
    assert v.on_disk and len(pickle.dumps(v)) < 1000  # a worker gets the path, not the rows
    rows = np.array([7, 3, 899, 3, 0])
    assert np.array_equal(v.rows(rows), emb[rows])
    assert np.array_equal(np.concatenate([b for _, b in v.blocks(256)]), emb)
    assert not Vectors(on_disk[10:20]).on_disk  # a slice of a file is read as the array it is


def test_split_large_halves_until_every_part_fits(data, on_disk):
    emb, labels = data[1], data[2]
    classes = [np.flatnonzero(labels == c) for c in range(3)]
    parts = split_large(emb, classes, 70)
    assert all(len(p) <= 70 for p in parts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(N))  # every row once
    assert all(len(np.unique(labels[p])) == 1 for p in parts)  # never across classes
    for c in classes:  # halving: the parts of a class differ in size by at most one
        sizes = [len(p) for p in parts if labels[p[0]] == labels[c[0]]]
        assert max(sizes) - min(sizes) <= 1
    from_file = split_large(on_disk, classes, 70)
    assert all(np.array_equal(a, b) for a, b in zip(parts, from_file))


def test_split_large_with_the_whole_part_as_sample_cuts_where_bisect_does(data):
    emb, labels = data[1], data[2]
    rows = np.flatnonzero(labels == 0)
    first = split_large(emb, [rows], len(rows) - 1)  # one level
    halves = bisect(emb, rows, len(rows) - 1)
    assert sorted(map(tuple, first)) == sorted(map(tuple, halves))


def test_stratified_sample_keeps_shares_and_every_class():
    codes = np.array([0] * 900 + [1] * 97 + [2] * 3)
    picked = stratified_sample(codes, 100, min_per_class=5, seed=0)
    counts = np.bincount(codes[picked], minlength=3)
    assert len(picked) == 100 and np.all(np.diff(picked) > 0)
    assert counts[2] == 3 and counts[0] > 80


def test_capped_scoring_scores_the_rest_with_the_sample_model(data):
    emb, labels = data[1], data[2]
    assert np.array_equal(out_of_fold_proba(emb, labels, max_rows=None), out_of_fold_proba(emb, labels, max_rows=N))
    proba = out_of_fold_proba(emb, labels, max_rows=200, seed=3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    sample = stratified_sample(labels, 200, 5, 3)
    rest = np.setdiff1d(np.arange(N), sample)
    model = _lda().fit(emb[sample], labels[sample])
    assert np.allclose(proba[rest], model.predict_proba(emb[rest]))
    assert not np.allclose(proba[sample], model.predict_proba(emb[sample]))  # the sample's own rows are out of fold


def test_chunked_selection_keeps_exact_quotas_and_reports_its_energy(data):
    ds, emb, labels = data
    sel = chunked(denoise=False).fit(ds, embeddings=emb)
    n_keep = int(np.floor(0.4 * N + 0.5))
    assert sel.mask_.sum() == n_keep
    assert np.array_equal(np.bincount(labels[sel.mask_], minlength=3), class_quotas(labels, n_keep, 0.5))
    assert "jobs_anneal" in sel.report_.timings  # the chunked path ran
    blocks = sel.blocks_
    assert all(len(b) <= 30 and len(np.unique(labels[b])) == 1 for b in blocks)
    assert np.array_equal(np.sort(np.concatenate(blocks)), np.arange(N))
    assert np.isclose(sel.report_.energy, mmd_energy(emb, blocks, sel.mask_), rtol=1e-9, atol=1e-9)


def test_chunked_answer_does_not_depend_on_workers_or_where_the_rows_live(data, on_disk):
    ds, emb, _ = data
    one = chunked().fit(ds, embeddings=emb).mask_
    assert np.array_equal(one, chunked(n_jobs=2).fit(ds, embeddings=emb).mask_)
    from_file = chunked(n_jobs=2).fit(ds, embeddings=on_disk)
    assert isinstance(from_file.embeddings_, np.memmap)  # never loaded whole
    assert np.array_equal(one, from_file.mask_)


def test_a_float16_file_is_read_in_place(tmp_path, data):
    ds, emb, labels = data
    np.save(tmp_path / "half.npy", emb.astype(np.float16))
    half = np.load(tmp_path / "half.npy", mmap_mode="r")
    assert check_embeddings(half, N) is half
    sel = chunked().fit(ds, embeddings=half)
    assert sel.embeddings_.dtype == np.float16 and sel.mask_.sum() == int(np.floor(0.4 * N + 0.5))


def test_unit_float32_embeddings_are_not_copied(data):
    emb = data[1]
    assert check_embeddings(emb, N) is emb
    scaled = check_embeddings(emb * 3, N)
    assert scaled is not emb and np.allclose(scaled, emb, atol=1e-6)


@pytest.mark.parametrize("param, value", [("chunk_rows", 1), ("score_rows", 5), ("chunk_rows", "big")])
def test_bad_sizes_are_refused_naming_the_parameter(data, param, value):
    ds, emb, _ = data
    with pytest.raises((ValueError, TypeError), match=param):
        chunked(**{param: value}).fit(ds, embeddings=emb)


def test_a_serial_solver_runs_its_chunks_one_at_a_time_here(data):
    """A cloud solver's plan is serial (Leap queues the calls): chunk jobs then run in this process, not a pool."""
    import dimod
    from dwave.samplers import SteepestDescentSolver

    from hf_qselect.qubo import AnnealSettings, SolverPlan
    from hf_qselect.selection.chunked import class_chunks, solve_chunks

    calls = []

    class Recording(dimod.Sampler):
        parameters, properties = {}, {}

        def sample(self, bqm, **kwargs):
            calls.append(len(bqm))
            return SteepestDescentSolver().sample(bqm)

    _, emb, labels = data
    vectors = Vectors(emb)
    chunks, quotas = class_chunks(vectors, labels, np.array([100, 100, 100]), 120)
    plan = SolverPlan("recording", Recording(), serial=True)
    answers = solve_chunks(vectors, chunks, quotas, None, AnnealSettings(solver=plan, seed=0, block_size=30, n_jobs=2, show_progress=False))
    assert len(answers) == len(chunks) > 3 and calls  # sampled here: a pool worker's calls would not reach this list
    assert sum(len(a.kept) for a in answers) == 300
