"""QuboClassifier: K-bit linear heads trained by annealing block QUBOs on a quadratic surrogate of cross-entropy."""
import itertools

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

from hf_qselect.classifier import QuboClassifier
from hf_qselect.classifier import grid, surrogate


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def random_quadratic(d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(d, d))
    return M @ M.T / d + 0.1 * np.eye(d), rng.normal(size=d)


@pytest.mark.parametrize("bits", [1, 3])
def test_block_qubo_energy_is_the_surrogate_recomputed_independently(bits):
    A, b = random_quadratic(9, seed=bits)
    rng = np.random.default_rng(1)
    steps = rng.choice(grid.levels(bits), size=9)
    block = np.array([2, 3, 7])
    qubo = surrogate.block_qubo(A, b, steps, 0.7, block, bits)
    for x in rng.integers(0, 2, (20, len(block) * bits)):
        trial = steps.copy()
        trial[block] = grid.from_bits(x.reshape(len(block), bits), bits)
        w = 0.7 * trial
        assert qubo.energy(x) == pytest.approx(0.5 * w @ A @ w + b @ w, rel=1e-9, abs=1e-9)


def test_block_coordinate_descent_never_raises_the_surrogate():
    A, b = random_quadratic(20, seed=3)
    head = QuboClassifier(bits=3, block_features=4, num_reads=2, num_sweeps=50)
    steps = np.full(20, -grid.offset(3))
    scale = 0.5
    from hf_qselect.classifier.qubo_classifier import ClassifierReport
    from hf_qselect.qubo import AnnealSettings

    report = ClassifierReport(3, "surrogate", "zero", "sa", 19, 1, 12, 5)
    rng = np.random.default_rng(0)
    energies = [surrogate.energy(A, b, scale * steps)]
    blocks = [np.arange(i, i + 4) for i in range(0, 20, 4)]
    for _ in range(4):
        steps, scale = head._descend(A, b, steps, scale, blocks, AnnealSettings(solver="sa", n_jobs=1, show_progress=False), rng, report)
        energies.append(surrogate.energy(A, b, scale * steps))
    assert all(later <= earlier + 1e-12 for earlier, later in zip(energies, energies[1:]))
    assert energies[-1] < energies[0]


def test_two_features_reach_the_exact_optimum_with_exact_solver():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X @ [1.5, -0.7] + 0.3 * rng.normal(size=200) > 0.2).astype(int)
    head = QuboClassifier(bits=3, mode="surrogate", solver="exact", block_features=3, max_iter=20, tol=0.0).fit(X, y)
    A, b = surrogate.expansion(surrogate.augment(X), head.fp32_coef_, surrogate.ridge(2, 1.0, 200))[0]
    s = head.scale_[0]
    best = min(surrogate.energy(A, b, s * np.array(q)) for q in itertools.product(grid.levels(3), repeat=3))
    assert surrogate.energy(A, b, s * head.steps_[0]) == pytest.approx(best)


@pytest.mark.parametrize("mode", ["surrogate", "iterative"])
def test_weights_lie_on_the_grid_and_energies_fall(digits, mode):
    X, y = digits
    head = QuboClassifier(bits=2, mode=mode, max_iter=3, num_sweeps=200).fit(X, y)
    assert head.coef_.shape == (10, 64) and head.intercept_.shape == (10,)
    codes = head.codes_
    assert np.all(np.abs(codes) <= 3) and np.all(codes % 2 == 1)  # odd integers: the 4 levels of 2 bits
    assert np.allclose(head.coef_, codes[:, :-1] * head.scale_[:, None] / 2)
    if mode == "surrogate":
        assert all(b <= a + 1e-12 for a, b in zip(head.report_.energies, head.report_.energies[1:]))
    else:
        assert all(b <= a + 1e-12 for a, b in zip(head.report_.losses, head.report_.losses[1:]))
    assert head.score(X, y) > 0.8


def test_binary_task_is_one_output():
    X, y = load_digits(n_class=2, return_X_y=True)
    X = X / 16.0
    head = QuboClassifier(bits=1, mode="iterative", max_iter=4, num_sweeps=200).fit(X, y)
    assert head.coef_.shape == (1, 64) and set(np.unique(head.predict(X))) <= {0, 1}
    proba = head.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)


def test_clone_save_load_and_torch_agree_with_predict(digits, tmp_path):
    X, y = digits
    head = QuboClassifier(bits=3, mode="surrogate", max_iter=2, num_sweeps=200).fit(X, y)
    assert clone(head).get_params() == head.get_params() and not hasattr(clone(head), "steps_")
    head.save(tmp_path / "head")
    again = QuboClassifier.load(tmp_path / "head")
    assert np.array_equal(again.predict(X), head.predict(X)) and np.allclose(again.decision_function(X), head.decision_function(X))
    tensor = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        linear = head.to_linear()(tensor).numpy()
        integer = head.to_int_linear()(tensor).numpy()
    assert np.allclose(linear, head.decision_function(X), atol=1e-4) and np.allclose(integer, linear, atol=1e-4)
    assert np.array_equal(head.classes_[linear.argmax(axis=1)], head.predict(X))
    assert head.to_int_linear().weight_codes.dtype == torch.int64


def test_fit_dataset_embeds_with_the_selector_embedder(sentences, tmp_path):
    head = QuboClassifier(bits=2, mode="surrogate", max_iter=2, num_sweeps=100).fit_dataset(sentences, cache_dir=tmp_path, show_progress=False)
    assert head.n_features_in_ == 384 and head.report_.n_outputs == 1


@pytest.mark.parametrize("call,match", [
    (lambda X, y: QuboClassifier(bits=0).fit(X, y), "bits must be an integer >= 1"),
    (lambda X, y: QuboClassifier(bits=33).fit(X, y), r"bits must be in \[1, 32\]"),
    (lambda X, y: QuboClassifier().fit(np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y), r"NaN or inf at rows \[0\]"),
    (lambda X, y: QuboClassifier().fit(X, np.zeros(len(y))), "single class"),
    (lambda X, y: QuboClassifier().fit(X, y[:-3]), "must match"),
    (lambda X, y: QuboClassifier().predict(X), "not fitted"),
    (lambda X, y: QuboClassifier(mode="newton").fit(X, y), "mode must be one of"),
    (lambda X, y: QuboClassifier(solver="annealer").fit(X, y), "solver must be one of"),
    (lambda X, y: QuboClassifier().fit(X, y + 0.5), r"y holds non-integer numbers \(e.g. 0.5\): a regression target"),
    (lambda X, y: QuboClassifier().fit(X, X[:, 10] + 0.01), "y holds non-integer numbers"),
    (lambda X, y: QuboClassifier().fit(X[:0], y[:0]), "0 rows"),
])
def test_bad_input_is_one_clear_error(digits, call, match):
    X, y = digits
    with pytest.raises((ValueError, TypeError, RuntimeError), match=match):
        call(X, y)


def test_wrong_feature_count_at_predict(digits):
    X, y = digits
    head = QuboClassifier(bits=1, mode="surrogate", max_iter=1, num_sweeps=50).fit(X, y)
    with pytest.raises(ValueError, match="X has 10 features but the head was fitted on 64"):
        head.predict(X[:, :10])


def test_drops_into_a_scikit_learn_pipeline(digits):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    X, y = digits
    pipe = make_pipeline(Normalizer(), QuboClassifier(bits=2, mode="surrogate", max_iter=1, num_sweeps=100))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8 and clone(pipe).get_params()["quboclassifier__bits"] == 2


def test_the_old_heads_import_path_warns_and_still_works():
    import importlib
    import sys

    sys.modules.pop("hf_qselect.heads", None)
    with pytest.warns(FutureWarning, match="hf_qselect.classifier"):
        old = importlib.import_module("hf_qselect.heads")
    assert old.QuboHead is QuboClassifier


def test_save_is_a_staged_folder_and_load_refuses_foreign_ones(digits, tmp_path):
    """Issue 29 case 8: save never adds files to someone's folder; load names the writer it expects."""
    X, y = digits
    head = QuboClassifier(bits=2, mode="surrogate", max_iter=1, num_sweeps=50).fit(X, y)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        head.save(model_dir)
    assert [p.name for p in model_dir.iterdir()] == ["config.json"]
    folder = head.save(tmp_path / "head")
    head.save(folder)  # an earlier head folder is replaced without asking
    assert sorted(p.name for p in folder.iterdir()) == ["head.json", "head.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head", "model"]  # nothing staged left beside it
    assert np.array_equal(QuboClassifier.load(folder).predict(X), head.predict(X))
    with pytest.raises(FileNotFoundError, match="give a folder written by QuboClassifier.save"):
        QuboClassifier.load(model_dir)
    half = tmp_path / "half"
    half.mkdir()
    (half / "head.json").write_text((folder / "head.json").read_text())
    (half / "head.npz").write_bytes((folder / "head.npz").read_bytes()[:40])  # killed mid-write by an older version
    with pytest.raises(ValueError, match="is not a readable classifier head"):
        QuboClassifier.load(half)
    (half / "head.json").write_text('{"writer": "someone else", "params": {}, "classes": [], "n_features": 1, "report": {}}')
    (half / "head.npz").write_bytes((folder / "head.npz").read_bytes())
    with pytest.raises(ValueError, match="was not written by QuboClassifier.save"):
        QuboClassifier.load(half)
