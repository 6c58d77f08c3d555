"""Subnetwork selection on frozen models: real gradients, real annealing, real removal; no weight ever changes."""
import copy
import itertools
import json

import dimod
import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from hf_qselect.subnetworks import SubnetworkSelector, load_mask
from hf_qselect.subnetworks.gates import gates_for, unit_sets
from hf_qselect.subnetworks.objectives import MLPObjective
from hf_qselect.subnetworks.quadratic import local_qubo


def mlp(widths=(8, 12, 3), seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        linear = nn.Linear(a, b)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        layers += [linear, nn.ReLU()] if i < len(widths) - 2 else [linear]
    return nn.Sequential(*layers)


def blobs(n=120, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.normal(size=(classes, d))[y] + 0.8 * rng.normal(size=(n, d))
    return X.astype(np.float32), y


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_local_qubo_energy_is_the_quadratic_model():
    rng = np.random.default_rng(1)
    G, V = rng.normal(size=(30, 20)), rng.normal(size=(90, 20))
    mask = (rng.random(20) < 0.5).astype(np.int8)
    index = np.array([1, 4, 5, 9, 12, 13, 17, 19])
    rho = 0.3
    q = local_qubo(G, mask, index, int(mask[index].sum()), rho, V)
    F = V.T @ V / len(G)
    for _ in range(20):
        x = mask.astype(float).copy()
        x[index] = rng.integers(0, 2, len(index))
        d = x - mask
        expected = G.mean(0) @ d + 0.5 * d @ F @ d + rho * np.abs(d).sum()
        assert q.energy(x[index]) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    fisher = local_qubo(G, mask, index, 3, 0.0)  # without V: the empirical Fisher G^T G / N
    x = np.zeros(len(index)); x[:3] = 1
    d = mask.astype(float); d[index] = x; d -= mask
    assert fisher.energy(x) == pytest.approx(G.mean(0) @ d + 0.5 * d @ (G.T @ G / len(G)) @ d)


def test_gauss_newton_factors_match_autograd_hessian_of_the_last_layer():
    """The logits are linear in the last hidden layer's gates, so V^T V / N is the exact Hessian there."""
    model = mlp((8, 6, 3))
    X, y = blobs(20)
    gates = gates_for(model, unit_sets(model, ()))
    objective = MLPObjective(gates, X, y, batch_size=7)
    mask = np.array([1, 0, 1, 1, 0, 1], dtype=np.int8)
    G, V = objective.local_terms({"0": mask})["0"]

    def loss(g):
        gates.values = {"0": g}
        return nn.functional.cross_entropy(model(torch.as_tensor(X)), torch.as_tensor(y))

    g0 = torch.tensor(mask, dtype=torch.float64).float()
    H = torch.autograd.functional.hessian(loss, g0).numpy()
    grad = torch.autograd.functional.jacobian(loss, g0).numpy()
    assert np.allclose(V.T @ V / len(G), H, atol=1e-5)
    assert np.allclose(G.mean(0), grad, atol=1e-5)
    gates.remove()


def test_exact_solver_finds_the_mask_the_quadratic_model_ranks_best():
    model = mlp((8, 12, 3))
    X, y = blobs()
    selector = SubnetworkSelector(keep=0.5, rounds=0, block_size=16, solver=dimod.ExactSolver(), show_progress=False).fit(model, X, y)
    gates = gates_for(model, unit_sets(model, ()))
    G, V = MLPObjective(gates, X, y, 64).local_terms({"0": np.ones(12, dtype=np.int8)})["0"]
    gates.remove()
    F = V.T @ V / len(G)
    best, best_value = None, np.inf
    for kept in itertools.combinations(range(12), 6):
        d = -np.ones(12)
        d[list(kept)] = 0
        value = G.mean(0) @ d + 0.5 * d @ F @ d
        if value < best_value:
            best, best_value = set(kept), value
    assert set(np.flatnonzero(selector.mask_["0"])) == best


def test_search_keeps_exact_counts_and_accepted_rounds_never_raise_the_loss():
    model = mlp((8, 24, 16, 3))
    before = state(model)
    X, y = blobs(150)
    selector = SubnetworkSelector(keep=0.5, rounds=6, block_size=8, show_progress=False).fit(model, X, y)
    assert {k: int(m.sum()) for k, m in selector.mask_.items()} == {"0": 12, "2": 8}
    losses = selector.report_["losses"]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert selector.report_["accepted"] + selector.report_["refused"] > 0
    gates = gates_for(model, selector.units_)
    assert MLPObjective(gates, X, y, 64).loss(selector.mask_) == pytest.approx(losses[-1], rel=1e-6)  # the report's loss is the real one
    gates.remove()
    assert same_state(before, state(model)) and not model[1]._forward_hooks  # no weight changed, no hook left
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("method", ["random", "greedy", "edgepopup"])
def test_baselines_keep_exact_counts(method):
    model = mlp((8, 20, 10, 3))
    X, y = blobs()
    selector = SubnetworkSelector(keep=0.3, method=method, epochs=2, show_progress=False).fit(model, X, y)
    assert {k: int(m.sum()) for k, m in selector.mask_.items()} == {"0": 6, "2": 3}


def test_masks_round_trip_as_bits(tmp_path):
    model = mlp((8, 21, 3))
    X, y = blobs()
    selector = SubnetworkSelector(keep=0.4, rounds=1, show_progress=False).fit(model, X, y)
    path = selector.save_mask(tmp_path / "mask.json")
    body = json.loads(path.read_text())
    assert len(bytes.fromhex(body["layers"][0]["bits"])) == 3 == selector.report_["mask_bytes"]  # 21 gates in 3 bytes
    masks, kinds, meta = load_mask(path)
    assert np.array_equal(masks["0"], selector.mask_["0"]) and kinds == {"0": "neurons"} and meta["params"]["keep"] == 0.4
    again = SubnetworkSelector().load_mask(path)
    with again.masked(model):
        a = model(torch.as_tensor(X))
    with selector.masked(model):
        assert torch.equal(a, model(torch.as_tensor(X)))
    other = tmp_path / "notes.json"
    other.write_text('{"mine": 1}')
    with pytest.raises(FileExistsError, match="not a subnetwork mask"):
        selector.save_mask(other)
    assert other.read_text() == '{"mine": 1}'
    with pytest.raises(ValueError, match="not a subnetwork mask"):
        load_mask(other)


def test_apply_gives_the_masked_outputs_mlp():
    model = mlp((8, 24, 16, 3))
    X, y = blobs()
    selector = SubnetworkSelector(keep=0.5, rounds=2, show_progress=False).fit(model, X, y)
    with selector.masked(model), torch.no_grad():
        masked = model(torch.as_tensor(X))
    pruned = selector.apply(copy.deepcopy(model))
    assert [m.out_features for m in pruned if isinstance(m, nn.Linear)] == [12, 8, 3]
    with torch.no_grad():
        assert torch.allclose(pruned(torch.as_tensor(X)), masked, atol=1e-5)


@pytest.fixture(scope="module")
def encoder():
    from transformers import AutoTokenizer, BertConfig, BertModel

    from hf_qselect.selection.embeddings import default_embedder

    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    return BertModel(config).eval(), tokenizer


def test_encoder_heads_and_ffn_apply_gives_the_masked_outputs(encoder, sentences):
    model, tokenizer = encoder
    before = state(model)
    selector = SubnetworkSelector(units=("ffn", "heads"), keep=0.5, rounds=2, batch_size=8, show_progress=False)
    selector.fit(model, sentences, tokenizer=tokenizer)
    assert same_state(before, state(model))
    assert selector.report_["kept"] == {"layer.0.heads": 2, "layer.0.ffn": 32, "layer.1.heads": 2, "layer.1.ffn": 32}
    losses = selector.report_["losses"]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    enc = tokenizer(sentences["text"][:6], padding=True, return_tensors="pt")
    with torch.no_grad():
        with selector.masked(model):
            masked = model(**enc).last_hidden_state
        pruned = selector.apply(copy.deepcopy(model))
        assert pruned.config.intermediate_size == 32
        assert torch.allclose(pruned(**enc).last_hidden_state, masked, atol=1e-5)


def test_clone_and_params():
    selector = SubnetworkSelector(keep=0.3, method="greedy", rounds=4)
    twin = clone(selector)
    assert twin.get_params() == selector.get_params() and twin is not selector


@pytest.mark.parametrize("keep", [0.0, 1.0, 1.5, -0.2, float("nan"), True])
def test_keep_outside_the_open_interval_is_refused_before_any_work(keep):
    model = mlp()
    before = state(model)
    X, y = blobs()
    with pytest.raises((ValueError, TypeError), match="keep"):
        SubnetworkSelector(keep=keep, show_progress=False).fit(model, X, y)
    assert same_state(before, state(model))


def test_unsupported_architectures_are_named():
    X, y = blobs()
    conv = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    with pytest.raises(TypeError, match="module 1 is BatchNorm1d"):
        SubnetworkSelector(show_progress=False).fit(conv, X, y)
    with pytest.raises(TypeError, match="at least two Linear"):
        SubnetworkSelector(show_progress=False).fit(nn.Sequential(nn.Linear(8, 3)), X, y)
    from transformers import GPT2Config, GPT2Model

    gpt = GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(TypeError, match="supports nn.Sequential MLPs and the BERT family"):
        SubnetworkSelector(show_progress=False).fit(gpt, X, y)


def test_bad_units_labels_and_shapes_are_named(encoder, sentences):
    model, tokenizer = encoder
    X, y = blobs()
    with pytest.raises(ValueError, match="units must be one or both"):
        SubnetworkSelector(units=("neurons",)).fit(model, sentences, tokenizer=tokenizer)
    with pytest.raises(KeyError, match="label_column='label'"):
        SubnetworkSelector(show_progress=False).fit(model, sentences.remove_columns("label"), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="y is required"):
        SubnetworkSelector(show_progress=False).fit(mlp(), X)
    with pytest.raises(ValueError, match="integer class ids in \\[0, 3\\)"):
        SubnetworkSelector(show_progress=False).fit(mlp(), X, y + 5)
    with pytest.raises(ValueError, match="X has 8 features but the model's first Linear takes 5"):
        SubnetworkSelector(show_progress=False).fit(mlp((5, 6, 3)), X, y)
    with pytest.raises(RuntimeError, match="not fitted"):
        SubnetworkSelector().apply(mlp())
    fitted = SubnetworkSelector(rounds=0, show_progress=False).fit(mlp(), X, y)
    with pytest.raises(ValueError, match="differ from those the mask was made for"):
        fitted.apply(mlp((8, 10, 3)))


def test_cli_subnetwork_of_a_saved_encoder(encoder, sentences, tmp_path):
    from transformers import AutoModel

    from hf_qselect.cli import main
    from hf_qselect.pruning import load_pruned

    model, tokenizer = encoder
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    csv = tmp_path / "data.csv"
    sentences.to_csv(str(csv))
    saved = {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()}
    out = tmp_path / "sub"
    assert main(["subnetwork", str(tmp_path / "model"), "--data", str(csv), "--keep", "0.25", "--rounds", "1", "--units", "ffn,heads",
                 "--batch-size", "8", "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()} == saved  # the input model is untouched
    masks, _, _ = load_mask(out / "mask.json")
    assert int(masks["layer.0.ffn"].sum()) == 16 and int(masks["layer.1.heads"].sum()) == 1
    reloaded = load_pruned(out, AutoModel)
    assert reloaded.config.intermediate_size == 16
    assert (out / "subnetwork.png").exists() and json.loads((out / "subnetwork_report.json").read_text())["kept"]["layer.0.ffn"] == 16
    assert main(["subnetwork", str(tmp_path / "model"), "--data", str(csv), "--keep", "1.0", "--out", str(tmp_path / "x")]) == 2
    assert main(["subnetwork", str(tmp_path / "model"), "--data", str(csv), "--label-column", "nope", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
